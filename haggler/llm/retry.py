"""The one place where model calls are retried.

Only `TransientModelError` is retried (rate limits, timeouts, dropped connections, 5xx), with
jittered exponential backoff; a server's retry-after is honoured when it asks for longer.
Authentication and bad-request errors go straight through. Provider SDKs have their own retries
switched off by the backends, so attempts do not multiply.

A server that cannot be reached at all (`ModelUnreachableError`: nothing listens at its
address, or its host name does not resolve) is tried `unreachable_attempts` times in all (2:
one re-try), `unreachable_wait` seconds apart (0.5 s), and then reported: under a second, where
the backoff for a busy server would take half a minute to say the same. Why one quick re-try
and no more: a refused connection answers at once, so waiting tells us nothing new unless the
server comes up meanwhile; half a second covers a server that is restarting or rebinding its
port, while one that is still starting (a vLLM loading its weights takes minutes) cannot be
waited for within a call, and its user is better told at once to start it or fix the address.
The same holds for a host name that does not resolve, and one re-try lets a passing resolver
hiccup (EAI_AGAIN) go by.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from haggler.errors import ModelUnreachableError, TransientModelError

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, waits from `initial_wait` doubling up to `max_wait`;
    a server that cannot be reached, `unreachable_attempts` in all, `unreachable_wait` apart."""

    attempts: int = 6
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0
    unreachable_attempts: int = 2
    unreachable_wait: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.unreachable_attempts < 1:
            raise ValueError(
                "RetryPolicy.unreachable_attempts must be at least 1, "
                f"got {self.unreachable_attempts}"
            )


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(
        initial=policy.initial_wait, max=policy.max_wait, jitter=policy.jitter
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ModelUnreachableError):
            return policy.unreachable_wait
        delay = backoff(state)
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
    # The first attempt runs on its own: nearly every call succeeds at once, and setting up
    # the retry machinery for it costs more CPU than the rest of haggler's call path.
    try:
        return await attempt(), 1
    except TransientModelError as error:
        if policy.attempts <= 1:
            raise
        first = error
    return await _retry(attempt, policy, first)


async def _retry(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, first: TransientModelError
) -> tuple[T, int]:
    """Go on after a first attempt that failed with `first`, as if it were the first trial."""
    # Attempts that found no server, counted against unreachable_attempts.
    unreachable = 1 if isinstance(first, ModelUnreachableError) else 0
    replayed = False

    async def trial_attempt() -> T:
        nonlocal replayed, unreachable
        if not replayed:
            replayed = True
            raise first
        try:
            return await attempt()
        except ModelUnreachableError:
            unreachable += 1
            raise

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        error = state.outcome.exception() if state.outcome else None
        return isinstance(error, ModelUnreachableError) and (
            unreachable >= policy.unreachable_attempts
        )

    retrying = AsyncRetrying(
        stop=stop,
        wait=_wait(policy),
        retry=retry_if_exception_type(TransientModelError),
        reraise=True,
    )
    attempts = 0
    async for trial in retrying:
        with trial:
            attempts += 1
            result = await trial_attempt()
    return result, attempts
