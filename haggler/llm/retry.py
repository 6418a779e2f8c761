"""The one place where model calls are retried.

Only `TransientModelError` is retried (rate limits, timeouts, dropped connections, 5xx), with
jittered exponential backoff; a server's retry-after is honoured when it asks for longer.
Authentication and bad-request errors go straight through. Provider SDKs have their own retries
switched off by the backends, so attempts do not multiply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from haggler.errors import TransientModelError

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, waits from `initial_wait` doubling up to `max_wait`."""

    attempts: int = 6
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(
        initial=policy.initial_wait, max=policy.max_wait, jitter=policy.jitter
    )

    def wait(state: RetryCallState) -> float:
        delay = backoff(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientModelError) and error.retry_after is not None:
            # The server knows its own window better than our backoff does, but a huge
            # retry-after must not park a tournament for an hour.
            delay = max(delay, min(error.retry_after, policy.max_wait))
        return delay

    return wait


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy
) -> tuple[T, int]:
    """Await `attempt()` until it succeeds or the policy gives up; return (result, attempts)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type(TransientModelError),
        reraise=True,
    )
    attempts = 0
    async for trial in retrying:
        with trial:
            attempts += 1
            result = await attempt()
    return result, attempts
