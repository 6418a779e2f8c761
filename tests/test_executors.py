"""Executors: every job delivered once, bounded concurrency, failures isolated, budget stops.

Each behaviour runs on the local executor and on Ray (one Ray runtime for the whole module).
Work functions live at module level: Ray workers import them by name.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from haggler.errors import ConfigError
from haggler.executors import Executor, LocalExecutor, RayExecutor, RunSummary, make_executor
from haggler.executors.heap import long_lived_heap_frozen

JOBS = list(range(50))


async def square(n: int) -> int:
    await asyncio.sleep(0.002)
    return n * n


async def square_but_not_13(n: int) -> int:
    if n == 13:
        raise ArithmeticError("13 is unlucky")
    return await square(n)


# The local executor shares this process with the work, so it can be watched directly.
_running = 0
_peak = 0


async def timed_square(n: int) -> tuple[int, float, float]:
    global _running, _peak
    _running += 1
    _peak = max(_peak, _running)
    started = time.time()
    await asyncio.sleep(0.02)
    _running -= 1
    return n * n, started, time.time()


async def play_seed(seed: int) -> dict[str, Any]:
    from haggler.run.play import play

    played = await play({"seed": seed})
    return {
        "outcome": played.result.outcome.as_dict(),
        "scores": played.result.scores,
        "texts": [message.text for message in played.result.public],
    }


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    try:
        # Four slots on any machine, so the executor's own limit is what holds concurrency.
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"Ray cannot start here: {error}")
    yield
    ray.shutdown()


@pytest.fixture(params=["local", "ray"])
def executor_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_runtime")
    return str(request.param)


class Collector:
    """An `on_result` that records deliveries in order."""

    def __init__(self) -> None:
        self.delivered: list[tuple[Any, Any]] = []

    def __call__(self, job: Any, result: Any) -> None:
        self.delivered.append((job, result))

    @property
    def jobs(self) -> list[Any]:
        return [job for job, _ in self.delivered]

    @property
    def results(self) -> dict[Any, Any]:
        return dict(self.delivered)


async def run(
    kind: str,
    work: Callable[[Any], Any],
    *,
    max_concurrency: int = 4,
    jobs: list[Any] = JOBS,
    should_start: Callable[[], bool] = lambda: True,
) -> tuple[RunSummary, Collector]:
    collector = Collector()
    executor = make_executor(kind, max_concurrency=max_concurrency)
    summary = await executor.run(jobs, work, on_result=collector, should_start=should_start)
    await executor.aclose()
    return summary, collector


async def test_every_job_is_delivered_exactly_once(executor_kind: str) -> None:
    summary, collector = await run(executor_kind, square)

    assert sorted(collector.jobs) == JOBS
    assert collector.results == {n: n * n for n in JOBS}
    assert summary == RunSummary(started=50, finished=50, failed=0, skipped=0)


async def test_concurrency_never_exceeds_the_limit(executor_kind: str) -> None:
    global _running, _peak
    _running = _peak = 0

    summary, collector = await run(executor_kind, timed_square, max_concurrency=3, jobs=JOBS[:30])

    assert summary.finished == 30
    intervals = [(start, end) for _, start, end in collector.results.values()]
    overlapping = max(sum(s <= start < e for s, e in intervals) for start, _ in intervals)
    assert overlapping <= 3, f"{overlapping} jobs ran at once with max_concurrency=3"
    if executor_kind == "local":
        assert _peak == 3, f"the local executor should fill its 3 slots, peaked at {_peak}"


async def test_a_failing_job_is_delivered_as_its_exception_and_the_others_finish(
    executor_kind: str,
) -> None:
    summary, collector = await run(executor_kind, square_but_not_13)

    results = collector.results
    error = results.pop(13)
    assert type(error) is ArithmeticError, f"expected the original exception, got {error!r}"
    assert str(error) == "13 is unlucky"
    assert results == {n: n * n for n in JOBS if n != 13}
    assert summary == RunSummary(started=50, finished=49, failed=1, skipped=0)


async def test_no_job_starts_once_should_start_says_no(executor_kind: str) -> None:
    collector = Collector()
    executor = make_executor(executor_kind, max_concurrency=4)

    summary = await executor.run(
        JOBS, square, on_result=collector, should_start=lambda: len(collector.delivered) < 10
    )

    assert 10 <= summary.started <= 10 + 3, "only jobs already running may finish after 10"
    assert summary.skipped == 50 - summary.started > 0
    assert len(collector.delivered) == summary.started == summary.finished


async def test_local_and_ray_play_the_same_games(ray_runtime: None) -> None:
    seeds = list(range(6))

    _, local = await run("local", play_seed, jobs=seeds)
    summary, on_ray = await run("ray", play_seed, jobs=seeds)

    assert summary.finished == len(seeds)
    assert on_ray.results == local.results
    prices = {result["outcome"]["price"] for result in local.results.values()}
    assert len(prices) > 1, "the seeds should play different games"


async def test_cancelling_a_run_cancels_the_jobs_in_flight() -> None:
    cancelled: list[int] = []

    async def slow(n: int) -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    running = asyncio.create_task(LocalExecutor(3).run(JOBS, slow, on_result=Collector()))
    await asyncio.sleep(0.05)
    running.cancel()

    with pytest.raises(asyncio.CancelledError):
        await running
    assert sorted(cancelled) == [0, 1, 2]


async def test_an_error_in_on_result_stops_the_run_and_cancels_the_rest() -> None:
    def explode(job: int, result: object) -> None:
        raise RuntimeError(f"cannot store {job}")

    with pytest.raises(RuntimeError, match="cannot store"):
        await LocalExecutor(3).run(JOBS, square, on_result=explode)


async def test_the_local_executor_starts_jobs_lazily() -> None:
    tasks_seen: list[int] = []

    async def count_tasks(n: int) -> int:
        tasks_seen.append(len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return n

    await LocalExecutor(5).run(list(range(1000)), count_tasks, on_result=Collector())

    assert max(tasks_seen) <= 5 + 1, "at most the running jobs and the test's own task"


def test_make_executor_knows_local_and_ray_and_nothing_else() -> None:
    assert isinstance(make_executor("local", max_concurrency=2), LocalExecutor)
    ray_executor = make_executor("ray", max_concurrency=2, address="ray://head:10001")
    assert isinstance(ray_executor, RayExecutor) and ray_executor.address == "ray://head:10001"
    with pytest.raises(ConfigError) as raised:
        make_executor("dask", max_concurrency=2)
    assert str(raised.value) == "unknown executor 'dask'; use one of: local, ray"
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(0)
    assert issubclass(RayExecutor, Executor)


def test_the_long_lived_heap_is_frozen_for_a_run_and_handed_back_after() -> None:
    assert gc.get_freeze_count() == 0
    with long_lived_heap_frozen():
        frozen = gc.get_freeze_count()
        with long_lived_heap_frozen():  # a run inside a run shares the one freeze
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    assert frozen > 0
    assert gc.get_freeze_count() == 0  # nothing left out of collection for good


def test_a_freeze_made_by_someone_else_is_left_alone() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with long_lived_heap_frozen():
            pass
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()
