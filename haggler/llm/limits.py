"""Per-provider rate limits: requests and tokens per minute, as async token buckets.

A `RateLimiter` holds two buckets that refill continuously and hold at most one minute's
allowance. Callers queue in arrival order and only the head of the queue draws from the
buckets, so a large request is never starved by a stream of small ones. Token counts are
estimated before a call and corrected (`settle`) once the provider reports real usage.

Limits live in one process: each Ray worker, or each separate script, has buckets of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haggler.errors import ConfigError

__all__ = ["Limits", "RateLimiter"]

# Models that run on this machine have no provider to protect.
_UNLIMITED_PREFIXES = ("local:", "rule:")


@dataclass(slots=True)
class _Bucket:
    """`level` units available now, refilled at `rate` per second up to `capacity`.

    The level may go below zero: an oversized request or an underestimate is a debt that
    later requests wait out.
    """

    capacity: float
    rate: float
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 if it is now)."""
        return max(0.0, (amount - self.level) / self.rate)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits for one provider; None means no limit."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        for name, value in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} per minute must be positive or None, got {value}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._requests: _Bucket | None = None
        self._tokens: _Bucket | None = None
        self._turnstile: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of about `tokens` tokens fits in both limits, and take it."""
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            return
        loop = asyncio.get_running_loop()
        async with self._turnstile_for(loop):
            while True:
                now = loop.time()
                wait = 0.0
                if self._requests is not None:
                    self._requests.refill(now)
                    wait = self._requests.wait_for(1)
                if self._tokens is not None:
                    self._tokens.refill(now)
                    # More than a minute's allowance can never fit: let it through on a full
                    # bucket, and the debt it leaves holds back the requests after it.
                    wait = max(wait, self._tokens.wait_for(min(tokens, self._tokens.capacity)))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= tokens

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once a call's real usage (`actual`) is known."""
        if self._tokens is not None:
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + estimated - actual)

    def _turnstile_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        # asyncio.Lock wakes waiters in FIFO order, which is the fairness we want. A lock
        # belongs to one event loop, so a limiter reused by a later asyncio.run gets a new
        # one; the buckets carry over, as the loops share the monotonic clock.
        if self._turnstile is None or self._loop is not loop:
            self._turnstile = asyncio.Lock()
            self._loop = loop
            now = loop.time()
            if self._requests is None and self.requests_per_minute is not None:
                burst = max(1.0, self.requests_per_minute)
                self._requests = _Bucket(burst, self.requests_per_minute / 60, burst, now)
            if self._tokens is None and self.tokens_per_minute is not None:
                burst = self.tokens_per_minute
                self._tokens = _Bucket(burst, self.tokens_per_minute / 60, burst, now)
        return self._turnstile

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.requests_per_minute}, tpm={self.tokens_per_minute})"


class Limits:
    """Rate limiters by provider (the model-name prefix before "/"), one per provider per process.

    Built from a mapping such as `{"openai": {"rpm": 500, "tpm": 200_000}}`; values may also be
    objects with `rpm` and `tpm` attributes (a tournament spec's `rate_limits`). A pickled copy
    (sent to a Ray worker) carries the settings and starts with full buckets of its own.
    """

    def __init__(self, limits: Mapping[str, Any] | None = None) -> None:
        self._settings: dict[str, tuple[float | None, float | None]] = {}
        for provider, setting in (limits or {}).items():
            self._settings[provider] = _rpm_tpm(provider, setting)
        self._limiters: dict[str, RateLimiter] = {}

    def for_model(self, model: str) -> RateLimiter | None:
        """The shared limiter of `model`'s provider; None for local models or unlisted providers."""
        if model.startswith(_UNLIMITED_PREFIXES):
            return None
        provider = model.partition("/")[0]
        if provider not in self._settings:
            return None
        if provider not in self._limiters:
            self._limiters[provider] = RateLimiter(*self._settings[provider])
        return self._limiters[provider]

    def __reduce__(self) -> tuple[Any, ...]:
        settings = {p: {"rpm": rpm, "tpm": tpm} for p, (rpm, tpm) in self._settings.items()}
        return (Limits, (settings,))

    def __repr__(self) -> str:
        return f"Limits({self._settings!r})"


def _rpm_tpm(provider: str, setting: Any) -> tuple[float | None, float | None]:
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - {"rpm", "tpm"})
        if unknown:
            raise ConfigError(
                f"rate limit for {provider!r}: unknown key {unknown[0]!r}; use rpm and/or tpm"
            )
        rpm, tpm = setting.get("rpm"), setting.get("tpm")
    else:
        rpm, tpm = getattr(setting, "rpm", None), getattr(setting, "tpm", None)
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        valid = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        if value is not None and not valid:
            raise ConfigError(
                f"rate limit for {provider!r}: {name} must be a positive number, got {value!r}"
            )
    return rpm, tpm
