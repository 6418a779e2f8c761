"""What a model writes is hostile input: made storable once, and shown inert on a terminal.

Two rules, each applied at one boundary:

- `storable_text` (where a `Completion` is made, and again where the store's records are
  built): a lone UTF-16 surrogate, which no UTF-8 file or SQLite text can hold, becomes the
  six characters of its Python escape (`\\udc00`), and NUL, at which SQLite's text functions
  (search, length) stop, becomes `\\x00`. A high surrogate followed by a low one is the
  character they encode together, as JSON means it. Everything else is kept as sent, control
  characters included: the store keeps what the model wrote. The rule is not reversible for a
  text that already held those escapes literally; nothing else is lost.
- `terminal_text` (where text reaches a terminal): C0 controls except newline and tab, DEL,
  C1 controls, the bidirectional embedding, override and isolate marks, and lone surrogates
  are shown as their Python escapes (`\\x1b`, `\\x9b`, `\\u202e`), so a reply can neither
  drive the terminal (colours, titles, cursor moves) nor reorder what is shown.
"""

from __future__ import annotations

import re

__all__ = ["escape_of", "storable_text", "terminal_text"]

# A surrogate pair first, so that only unpaired halves are escaped.
_UNSTORABLE = re.compile("([\ud800-\udbff][\udc00-\udfff])|[\ud800-\udfff\x00]")
# Lone surrogates too: a strict UTF-8 stdout cannot write them.
_TERMINAL_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def escape_of(char: str) -> str:
    """Python's escape for one character: `\\x1b`, `\\u202e`, `\\udc00`."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _storable(match: re.Match[str]) -> str:
    pair = match.group(1)
    if pair is not None:
        high, low = ord(pair[0]), ord(pair[1])
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return escape_of(match.group(0))


def storable_text(text: str) -> str:
    """`text` as text any UTF-8 store can hold (see the module's rule); unchanged when it is."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub(_storable, text)


def terminal_text(text: str) -> str:
    """`text` with every character that could drive a terminal written as its escape."""
    return _TERMINAL_CONTROL.sub(lambda match: escape_of(match.group(0)), text)
