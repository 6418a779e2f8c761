"""Per-provider rate limits: token buckets, fairness, settling, and the hook in every backend."""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import pytest

from haggler.errors import ConfigError, ModelUnreachableError, TransientModelError
from haggler.llm.base import Backend, Completion, Message, Usage
from haggler.llm.limits import Limits, RateLimiter
from haggler.llm.retry import RetryPolicy

# Timing tests sleep for real: waits are tenths of a second and tolerances generous.
TOLERANCE = 0.08


async def timed(awaitable: Any) -> float:
    started = time.monotonic()
    await awaitable
    return time.monotonic() - started


async def test_requests_beyond_the_burst_wait_for_the_refill() -> None:
    limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=None)  # 10 per second
    burst = await timed(asyncio.gather(*(limiter.acquire(1) for _ in range(600))))
    assert burst < 0.5, f"a minute's allowance should pass at once, took {burst:.2f}s"

    elapsed = await timed(asyncio.gather(*(limiter.acquire(1) for _ in range(5))))

    assert elapsed == pytest.approx(0.5, abs=TOLERANCE), f"5 requests at 10/s took {elapsed:.2f}s"


async def test_a_large_request_waits_for_tokens_and_settling_returns_the_unused_ones() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=6000)  # 100 tokens/s
    await limiter.acquire(6000)

    waited = await timed(limiter.acquire(50))
    assert waited == pytest.approx(0.5, abs=TOLERANCE), f"50 tokens at 100/s took {waited:.2f}s"

    limiter.settle(estimated=6000, actual=100)  # the first call used far less than estimated
    at_once = await timed(limiter.acquire(5000))
    assert at_once < 0.05, f"settled tokens should be available again, waited {at_once:.2f}s"


async def test_an_underestimate_is_a_debt_that_later_requests_wait_out() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=12_000)  # 200 tokens/s
    await limiter.acquire(12_000)
    limiter.settle(estimated=12_000, actual=12_050)  # 50 more than was taken

    waited = await timed(limiter.acquire(50))

    assert waited == pytest.approx(0.5, abs=TOLERANCE), (
        f"50 + 50 tokens at 200/s took {waited:.2f}s"
    )


async def test_waiters_are_served_in_arrival_order_so_a_big_request_is_not_starved() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=60_000)  # 1000 tokens/s
    await limiter.acquire(60_000)
    served: list[str] = []

    async def request(name: str, tokens: int) -> None:
        await limiter.acquire(tokens)
        served.append(name)

    big = asyncio.create_task(request("big", 300))
    await asyncio.sleep(0)  # the big one queues first
    smalls = [asyncio.create_task(request(f"small{i}", 10)) for i in range(5)]
    await asyncio.gather(big, *smalls)

    assert served == ["big", *(f"small{i}" for i in range(5))]


async def test_a_request_larger_than_a_minutes_allowance_passes_on_a_full_bucket() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=600)

    passed = await timed(asyncio.wait_for(limiter.acquire(10_000), timeout=1))
    assert passed < 0.05, f"an oversized request on a full bucket waited {passed:.2f}s"

    # It left a debt: the next request waits, and a caller giving up does not break the queue.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(1), timeout=0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(1), timeout=0.05)


async def test_no_limits_never_wait_and_bad_limits_are_refused() -> None:
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=None)
    assert await timed(asyncio.gather(*(limiter.acquire(10**9) for _ in range(1000)))) < 0.5
    with pytest.raises(ValueError, match="requests per minute must be positive"):
        RateLimiter(requests_per_minute=0, tokens_per_minute=None)


async def test_a_limiter_survives_being_used_from_a_second_event_loop() -> None:
    limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=None)
    await asyncio.gather(*(limiter.acquire(1) for _ in range(601)))  # contended: lock in use

    async def two_more() -> float:
        return await timed(asyncio.gather(limiter.acquire(1), limiter.acquire(1)))

    def in_another_loop() -> float:
        return asyncio.run(two_more())

    elapsed = await asyncio.to_thread(in_another_loop)
    assert elapsed == pytest.approx(0.2, abs=TOLERANCE), "the buckets should carry over"


def test_limits_are_looked_up_by_provider_prefix_and_shared_per_provider() -> None:
    limits = Limits({"openai": {"rpm": 500, "tpm": 200_000}, "anthropic": {"tpm": 40_000}})

    openai = limits.for_model("openai/gpt-4o")
    assert openai is not None
    assert (openai.requests_per_minute, openai.tokens_per_minute) == (500, 200_000)
    assert limits.for_model("openai/gpt-4o-mini") is openai, "one bucket per provider"
    anthropic = limits.for_model("anthropic/claude-3-5-haiku")
    assert anthropic is not None and anthropic.requests_per_minute is None
    assert limits.for_model("groq/llama-3") is None, "unlisted providers are not limited"
    assert limits.for_model("local:/models/tiny") is None
    assert limits.for_model("rule:boulware") is None


def test_limits_accept_spec_objects_and_travel_as_settings() -> None:
    class RateLimitSetting:
        rpm = 60.0
        tpm = None

    limits = Limits({"hosted_vllm": RateLimitSetting()})
    original = limits.for_model("hosted_vllm/qwen")

    copied = pickle.loads(pickle.dumps(limits))

    fresh = copied.for_model("hosted_vllm/qwen")
    assert fresh is not None and fresh is not original
    assert (fresh.requests_per_minute, fresh.tokens_per_minute) == (60.0, None)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"rpn": 5}, "unknown key 'rpn'; use rpm and/or tpm"),
        ({"rpm": 0}, "rpm must be a positive number, got 0"),
        ({"tpm": "lots"}, "tpm must be a positive number, got 'lots'"),
    ],
)
def test_bad_limits_say_which_provider_and_what_is_wrong(
    setting: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Limits({"openai": setting})
    assert str(raised.value) == f"rate limit for 'openai': {message}"


class RecordingLimiter(RateLimiter):
    """A real limiter that also records what the backend asked of it."""

    def __init__(self) -> None:
        super().__init__(requests_per_minute=600, tokens_per_minute=100_000)
        self.acquired: list[int] = []
        self.settled: list[tuple[int, int]] = []

    async def acquire(self, tokens: int) -> None:
        self.acquired.append(tokens)
        await super().acquire(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        self.settled.append((estimated, actual))
        super().settle(estimated, actual)


class FlakyBackend(Backend):
    """Fails its first `failures` attempts with a rate-limit error, then answers."""

    def __init__(self, failures: int) -> None:
        super().__init__("openai/fake", retry_policy=RetryPolicy(initial_wait=0.001, jitter=0))
        self.failures = failures
        self.attempts = 0

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise TransientModelError("429 slow down", model=self.model, status=429)
        return Completion("ok", self.model, Usage(prompt_tokens=30, completion_tokens=12))


async def test_the_backend_waits_for_the_limiter_before_every_attempt_retries_included() -> None:
    backend = FlakyBackend(failures=1)
    backend.limiter = limiter = RecordingLimiter()
    messages = [Message("system", "s" * 40), Message("user", "u" * 80)]

    completion = await backend.complete(messages, max_tokens=100)

    estimate = 120 // 4 + 100
    assert (backend.attempts, completion.retries) == (2, 1)
    assert limiter.acquired == [estimate, estimate], "one acquire per attempt"
    assert limiter.settled == [(estimate, 42)], "settled once, with the real usage"


async def test_the_estimate_falls_back_to_256_completion_tokens_and_no_limiter_means_none() -> None:
    backend = FlakyBackend(failures=0)
    backend.limiter = limiter = RecordingLimiter()
    await backend.complete([Message("user", "x" * 8)])
    assert limiter.acquired == [2 + 256]

    unlimited = FlakyBackend(failures=0)
    assert unlimited.limiter is None
    assert (await unlimited.complete([Message("user", "hi")])).text == "ok"


async def test_a_limited_backend_is_slowed_to_the_providers_rate() -> None:
    backend = FlakyBackend(failures=0)
    backend.limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=None)
    await asyncio.gather(*(backend.limiter.acquire(1) for _ in range(600)))

    elapsed = await timed(
        asyncio.gather(*(backend.complete([Message("user", "hi")]) for _ in range(3)))
    )

    assert elapsed == pytest.approx(0.3, abs=TOLERANCE)


class ScriptedBackend(Backend):
    """Fails as `script` says, attempt by attempt ("busy": a 503, "gone": nothing listens),
    then answers."""

    def __init__(self, script: list[str], policy: RetryPolicy | None = None) -> None:
        super().__init__(
            "openai/fake", retry_policy=policy or RetryPolicy(initial_wait=0.001, jitter=0)
        )
        self.script = list(script)
        self.attempts = 0

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        self.attempts += 1
        step = self.script.pop(0) if self.script else "ok"
        if step == "busy":
            raise TransientModelError("503 overloaded", model=self.model, status=503)
        if step == "gone":
            raise ModelUnreachableError("nothing listens", model=self.model)
        return Completion("ok", self.model)


async def test_a_server_nobody_runs_is_tried_once_more_half_a_second_later_then_reported() -> None:
    backend = ScriptedBackend(["gone"] * 6, RetryPolicy())  # the default policy
    started = time.monotonic()
    with pytest.raises(ModelUnreachableError):
        await backend.complete([Message("user", "hi")])
    elapsed = time.monotonic() - started
    assert backend.attempts == 2
    assert elapsed == pytest.approx(0.5, abs=TOLERANCE * 2)


async def test_a_server_that_comes_up_for_the_re_try_answers_it() -> None:
    backend = ScriptedBackend(["gone"], RetryPolicy(unreachable_wait=0.01))
    completion = await backend.complete([Message("user", "hi")])
    assert (completion.text, completion.retries, backend.attempts) == ("ok", 1, 2)


async def test_unreachable_attempts_count_apart_from_a_busy_servers_attempts() -> None:
    # Busy, busy, then restarting: the two quick tries it gets are its own.
    backend = ScriptedBackend(["busy", "busy", "gone", "gone", "gone"])
    with pytest.raises(ModelUnreachableError):
        await backend.complete([Message("user", "hi")])
    assert backend.attempts == 4

    once = ScriptedBackend(["gone"], RetryPolicy(unreachable_attempts=1))
    with pytest.raises(ModelUnreachableError):
        await once.complete([Message("user", "hi")])
    assert once.attempts == 1

    capped = ScriptedBackend(["gone"] * 3, RetryPolicy(attempts=1, unreachable_attempts=3))
    with pytest.raises(ModelUnreachableError):
        await capped.complete([Message("user", "hi")])
    assert capped.attempts == 1, "attempts bounds every kind of retry"


def test_a_retry_policy_refuses_fewer_than_one_unreachable_attempt() -> None:
    with pytest.raises(ValueError, match="unreachable_attempts must be at least 1"):
        RetryPolicy(unreachable_attempts=0)
