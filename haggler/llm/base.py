"""The model contract: one async call from chat messages to a `Completion`.

Providers implement `Backend._generate`; everything shared by all of them (latency, retries,
rate limits, redaction of secrets, and the checking of what a provider sent) lives in
`Backend.complete`, `haggler.llm.retry` and `haggler.llm.limits`, not in each provider.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from haggler.llm.limits import RateLimiter
from haggler.llm.retry import RetryPolicy, call_with_retries
from haggler.model_text import storable_text

__all__ = [
    "CHARS_PER_TOKEN",
    "MAX_CALL_TOKENS",
    "Backend",
    "Completion",
    "Message",
    "Usage",
    "token_count",
]

logger = logging.getLogger(__name__)

# No call reads or writes a billion tokens: a count beyond that is a provider's garbage.
MAX_CALL_TOKENS = 10**9
# Characters per token when haggler counts for itself: the rule of thumb the rate limiter
# also uses for its estimates.
CHARS_PER_TOKEN = 4

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as a model receives it."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens one call read and wrote.

    `estimated`: haggler counted them itself, one token per `CHARS_PER_TOKEN` characters sent
    and received (rounded up), because the provider's own count was missing or not believable.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @classmethod
    def reported(cls, prompt_tokens: object, completion_tokens: object) -> Usage:
        """The usage a provider reported, taken as given only when each count is a whole number
        from 0 to `MAX_CALL_TOKENS`; otherwise an empty usage marked `estimated`, which
        `Backend.complete` replaces by its own count."""
        prompt, completion = token_count(prompt_tokens), token_count(completion_tokens)
        if prompt is None or completion is None:
            return cls(0, 0, estimated=True)
        return cls(prompt, completion)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def token_count(value: object) -> int | None:
    """`value` as a token count if it is a believable one (a whole number from 0 to
    `MAX_CALL_TOKENS`, `12` or `12.0`); None for anything else: missing, negative, huge,
    fractional, NaN, a string, a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_CALL_TOKENS:
        return value
    return None


@dataclass(frozen=True, slots=True)
class Completion:
    """What one model call produced, with its price in tokens, dollars and seconds."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    # Attempts beyond the first that the retry policy made for this call.
    retries: int = 0


class Backend(ABC):
    """A model that completes chat conversations.

    `model` is the user-facing name (`openai/gpt-4o`, `local:/models/tiny`); it is what lands in
    transcripts, so it must never hold a secret.
    """

    model: str
    retry_policy: RetryPolicy
    # The provider's shared limiter (see haggler.llm.limits), set by whoever opens the backend.
    limiter: RateLimiter | None = None

    def __init__(self, model: str, *, retry_policy: RetryPolicy | None = None) -> None:
        self.model = model
        self.retry_policy = retry_policy or RetryPolicy()

    async def complete(self, messages: list[Message], **params: Any) -> Completion:
        """Complete `messages`, retrying transient failures per `retry_policy`.

        What the provider sent is checked here, for every backend alike:

        - the text is made storable (`haggler.model_text.storable_text`: a lone surrogate
          becomes its escape `\\udc00`, NUL becomes `\\x00`); a reply with no text is `""`;
        - the usage is taken as given only when believable: each count a whole number from 0
          to `MAX_CALL_TOKENS`, at least one prompt token for a prompt that was sent and one
          completion token for a text that came back. Otherwise haggler counts the tokens
          itself (`Usage.estimated`, one token per `CHARS_PER_TOKEN` characters, rounded up)
          and prices that count as the model's own count would be priced (`cost_of`);
        - the cost is never negative, infinite or NaN: a cost that is, is replaced by the price
          of the usage.

        So no reply can write what the store cannot hold, and no reported usage can make a
        call free, or cheaper than nothing, to a budget that adds up `cost_usd`.
        """
        started = time.perf_counter()
        completion, attempts = await call_with_retries(
            lambda: self._limited_attempt(messages, params), self.retry_policy
        )
        return Completion(
            text=completion.text,
            model=completion.model,
            usage=completion.usage,
            cost_usd=completion.cost_usd,
            latency_s=time.perf_counter() - started,
            retries=attempts - 1,
        )

    async def _limited_attempt(self, messages: list[Message], params: dict[str, Any]) -> Completion:
        """One attempt, after waiting for the rate limiter; every retry waits its turn too."""
        if self.limiter is None:
            return self._checked(messages, await self._generate(messages, **params))
        estimate = sum(len(m.content) for m in messages) // 4 + int(params.get("max_tokens") or 256)
        await self.limiter.acquire(estimate)
        completion = self._checked(messages, await self._generate(messages, **params))
        # A failed attempt keeps its estimate: the provider may well have counted it.
        if completion.usage.total_tokens:
            self.limiter.settle(estimate, completion.usage.total_tokens)
        return completion

    def _checked(self, messages: Sequence[Message], completion: Completion) -> Completion:
        """`completion` with storable text, believable usage and a sane cost (see `complete`)."""
        text = storable_text(completion.text) if isinstance(completion.text, str) else ""
        usage, cost = _believable(completion.usage, messages, text), completion.cost_usd
        if usage is None:
            if not getattr(self, "_usage_doubted", False):
                # Once per backend: a provider that sends garbage usually always does.
                self._usage_doubted = True
                logger.warning(
                    "%s: the provider's token counts are missing or cannot be right; haggler "
                    "counts its calls' tokens from characters instead (%d a token)",
                    self.model,
                    CHARS_PER_TOKEN,
                )
            usage = _estimate(messages, text)
            # The provider's cost, if any, was computed from the count just thrown away.
            cost = self.cost_of(usage)
        elif not _sane_cost(cost):
            cost = self.cost_of(usage)
        if not _sane_cost(cost):
            logger.warning("%s: cannot price a call (%r); counting it as $0", self.model, cost)
            cost = 0.0
        return Completion(
            text=text,
            model=completion.model,
            usage=usage,
            cost_usd=float(cost),
            latency_s=completion.latency_s,
            retries=completion.retries,
        )

    def cost_of(self, usage: Usage) -> float:
        """What `usage` costs on this model, in dollars: the price of a call whose provider
        sent no usable count or cost. A model run here, or one with no known price, costs
        nothing."""
        return 0.0

    @abstractmethod
    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        """One attempt. Raise `TransientModelError` for what may pass, other ModelErrors otherwise."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections or weights; the default holds nothing."""


def _believable(usage: Usage, messages: Sequence[Message], text: str) -> Usage | None:
    """`usage` in whole numbers if it can be right, else None."""
    prompt, completion = token_count(usage.prompt_tokens), token_count(usage.completion_tokens)
    if usage.estimated or prompt is None or completion is None:
        return None
    # A provider that counts nothing for what it read or wrote is not counting.
    if (prompt == 0 and any(m.content for m in messages)) or (completion == 0 and text):
        return None
    return Usage(prompt, completion)


def _estimate(messages: Sequence[Message], text: str) -> Usage:
    sent = sum(len(m.content) for m in messages)
    return Usage(
        prompt_tokens=-(-sent // CHARS_PER_TOKEN),
        completion_tokens=-(-len(text) // CHARS_PER_TOKEN),
        estimated=True,
    )


def _sane_cost(cost: object) -> bool:
    return (
        isinstance(cost, int | float)
        and not isinstance(cost, bool)
        and math.isfinite(cost)
        and cost >= 0
    )
