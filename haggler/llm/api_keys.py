"""Where a provider's API key lives, and when a server needs none.

Both the choice of a backend (haggler.llm.providers) and the backends themselves read this:
it sits below them, so that neither imports the other to learn it.
"""

from __future__ import annotations

__all__ = ["KEY_ENV", "PLACEHOLDER_KEY", "api_key_env_for", "is_loopback"]

# The OpenAI SDK refuses to build a client without a key, but a local vLLM or a test fake often
# takes none; this stands in for it.
PLACEHOLDER_KEY = "haggler-no-key"

# Providers whose key lives in a well-known variable. None: the provider needs no key.
KEY_ENV: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere_chat": "COHERE_API_KEY",
    "hosted_vllm": None,
    "ollama": None,
    "ollama_chat": None,
    "lm_studio": None,
}


def api_key_env_for(provider: str) -> str | None:
    """The environment variable that holds `provider`'s key; None if it needs none or if
    haggler does not know (Bedrock, Vertex and others use cloud credentials, which litellm
    reads itself)."""
    return KEY_ENV.get(provider)


def is_loopback(url: str) -> bool:
    """Whether `url` names a server on this machine (a local vLLM or a test fake), which often
    takes no key at all."""
    from urllib.parse import urlparse

    host = urlparse(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")
