"""Keeping API keys out of everything a person or a model can read.

Backends register the secrets they hold; every message built from a provider's reply or
exception passes through `redact` before it reaches an error, a log line or a transcript.
"""

from __future__ import annotations

import re

__all__ = ["redact", "register_secret"]

_secrets: set[str] = set()

# Key shapes worth hiding even when nobody registered them (a key echoed back by a proxy).
_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|(?<=Bearer )[A-Za-z0-9._\-]{8,})"
)


def register_secret(value: str | None) -> None:
    """Remember `value` so that `redact` hides it; short values are ignored (too many collisions)."""
    if value and len(value) >= 8:
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret and every key-shaped token replaced by `***`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _KEY_PATTERNS.sub("***", text)
