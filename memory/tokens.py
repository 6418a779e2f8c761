"""A provider-neutral estimate of how many tokens a text costs in a prompt."""

from __future__ import annotations

import math

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens"]

# No single tokenizer fits every provider (OpenAI, Anthropic, a local model each split text
# their own way), and memory must not load one just to count. English prose runs close to
# four characters a token across them, so that is the estimate. Rounding up makes it slightly
# conservative, which is the safe side for a budget: overrunning a context window costs a
# failed call, undershooting it by a few tokens costs nothing. Non-Latin scripts take more
# tokens a character; callers writing them should leave headroom in the budget.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About one token per four characters, rounded up: 0 for "", at least 1 otherwise."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
