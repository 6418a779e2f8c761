"""The tokenizer a model's prompts are counted with, where one is known offline.

- OpenAI's models: their own BPE (o200k for the gpt-4o, gpt-4.1, gpt-5 and o-series families,
  cl100k for gpt-4 and gpt-3.5), read from the copies litellm ships, so no download is needed.
- `local:/path` models: the model's own tokenizer, from its folder.
- Anthropic's models: the tokenizer litellm ships for them (an older Claude's; close, not
  exact, for current ones).
- Anything else (another provider, a vLLM or Ollama server whose tokenizer is not on this
  machine): None, and the caller estimates (see `haggler.run.cast.Cast.token_counter`).

A tokenizer here has `count(text)` and `chars_at_most(tokens)`: it is a
`haggler.memory.TokenCounter`, which memory budgets accept.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Tokenizer", "tokenizer_for"]

# A BPE token of these encodings is rarely longer than this many characters; a context may
# skip an item longer than this many characters a token left without reading it.
_MAX_CHARS_PER_TOKEN = 32
_env_lock = threading.Lock()


class Tokenizer:
    """Counts tokens with an `encode(text) -> ids` function."""

    def __init__(self, name: str, encode: Any) -> None:
        self.name = name
        self._encode = encode

    def count(self, text: str) -> int:
        return len(self._encode(text)) if text else 0

    def chars_at_most(self, tokens: int) -> float:
        return tokens * _MAX_CHARS_PER_TOKEN

    def __repr__(self) -> str:
        return f"<tokenizer {self.name}>"


def tokenizer_for(model: str) -> Tokenizer | None:
    """`model`'s own tokenizer, when one can be had offline (see the module's docstring)."""
    name = model.strip()
    if name.startswith("local:"):
        return _local(name.removeprefix("local:"))
    if name.startswith("openai/"):
        return _openai(name.removeprefix("openai/"))
    if name.startswith("anthropic/"):
        return _anthropic()
    return None


def _openai_encoding(model: str) -> str:
    bare = model.removeprefix("ft:").lower()
    if bare.startswith(
        ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-6", "o1", "o3", "o4", "chatgpt-4o")
    ):
        return "o200k_base"
    return "cl100k_base"


@lru_cache(maxsize=8)
def _openai(model: str) -> Tokenizer | None:
    encoding = _openai_encoding(model)
    bundled = _litellm_tokenizers()
    if bundled is None:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    # tiktoken looks for its files in TIKTOKEN_CACHE_DIR under the hash of their address;
    # litellm ships them named so. Pointed there for this one load, it reads them offline.
    with _env_lock:
        before = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
        try:
            loaded = tiktoken.get_encoding(encoding)
        except Exception:  # a missing or damaged copy: fall back to the estimate
            return None
        finally:
            if before is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = before
    return Tokenizer(encoding, lambda text: loaded.encode(text, disallowed_special=()))


@lru_cache(maxsize=1)
def _anthropic() -> Tokenizer | None:
    bundled = _litellm_tokenizers()
    if bundled is None or not (bundled / "anthropic_tokenizer.json").is_file():
        return None
    try:
        from tokenizers import Tokenizer as HFTokenizer
    except ImportError:
        return None
    tokenizer = HFTokenizer.from_file(str(bundled / "anthropic_tokenizer.json"))
    return Tokenizer("anthropic (litellm's copy)", lambda text: tokenizer.encode(text).ids)


@lru_cache(maxsize=8)
def _local(path: str) -> Tokenizer | None:
    folder = Path(path).expanduser()
    if (folder / "tokenizer.json").is_file():
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            return None
        tokenizer = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        return Tokenizer(
            f"local ({folder.name})",
            lambda text: tokenizer.encode(text, add_special_tokens=False).ids,
        )
    return None


def _litellm_tokenizers() -> Path | None:
    # Found without importing litellm, which takes seconds.
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return folder if folder.is_dir() else None
