"""Counting what a text costs in a prompt: an estimate, or a model's own tokenizer.

Memory loads no tokenizer itself: whoever knows the model hands `build_context` a
`TokenCounter` for it (`haggler.llm.tokenizers.token_counter`); without one, the estimate below.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

__all__ = ["CHARS_PER_TOKEN", "CharEstimate", "TokenCounter", "estimate_tokens"]

# English prose runs close to four characters a token across providers, so that is the estimate.
# Rounding up makes it slightly conservative. Prices, digits and short negotiation lines cost
# more tokens a character than prose, which is why a model's real tokenizer should be used
# wherever one is known.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About one token per four characters, rounded up: 0 for "", at least 1 otherwise."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@runtime_checkable
class TokenCounter(Protocol):
    """How many tokens a text costs, and a bound that lets a context skip what cannot fit."""

    name: str

    def count(self, text: str) -> int:
        """Tokens of `text`."""
        ...

    def chars_at_most(self, tokens: int) -> float:
        """The longest text that could cost at most `tokens` (an upper bound; inf if none)."""
        ...


class CharEstimate:
    """`chars_per_token` characters a token, rounded up (the default: `estimate_tokens`)."""

    def __init__(self, chars_per_token: float = CHARS_PER_TOKEN) -> None:
        if not chars_per_token > 0:
            raise ValueError(f"chars_per_token must be positive, got {chars_per_token!r}")
        self.chars_per_token = chars_per_token
        self.name = f"estimate ({chars_per_token:g} characters a token)"

    def count(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def count_length(self, length: int) -> int:
        """Tokens of any text of `length` characters: the estimate reads nothing else."""
        return math.ceil(length / self.chars_per_token)

    def chars_at_most(self, tokens: int) -> float:
        return tokens * self.chars_per_token

    def __repr__(self) -> str:
        return f"CharEstimate({self.chars_per_token:g})"
