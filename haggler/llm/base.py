"""The model contract: one async call from chat messages to a `Completion`.

Providers implement `Backend._generate`; everything shared by all of them (latency, retries,
rate limits, redaction of secrets) lives in `Backend.complete`, `haggler.llm.retry` and
`haggler.llm.limits`, not in each provider.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from haggler.llm.limits import RateLimiter
from haggler.llm.retry import RetryPolicy, call_with_retries

__all__ = ["Backend", "Completion", "Message", "Usage"]

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
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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
        """Complete `messages`, retrying transient failures per `retry_policy`."""
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
            return await self._generate(messages, **params)
        estimate = sum(len(m.content) for m in messages) // 4 + int(params.get("max_tokens") or 256)
        await self.limiter.acquire(estimate)
        completion = await self._generate(messages, **params)
        # A failed attempt keeps its estimate: the provider may well have counted it.
        if completion.usage.total_tokens:
            self.limiter.settle(estimate, completion.usage.total_tokens)
        return completion

    @abstractmethod
    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        """One attempt. Raise `TransientModelError` for what may pass, other ModelErrors otherwise."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections or weights; the default holds nothing."""
