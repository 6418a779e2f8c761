"""The executor contract: run jobs with bounded concurrency, delivering each result as it comes."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Executor", "RunSummary"]

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """How a run went. `finished` and `failed` are disjoint: started = finished + failed.

    `skipped` counts jobs never started because `should_start` said no (a spent budget).
    """

    started: int
    finished: int
    failed: int
    skipped: int


class Executor(ABC):
    """Runs `work(job)` for many jobs, at most `max_concurrency` at once."""

    def __init__(self, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency

    async def run(
        self,
        jobs: Sequence[J],
        work: Callable[[J], Awaitable[R]],
        *,
        on_result: Callable[[J, R | BaseException], None],
        should_start: Callable[[], bool] = lambda: True,
    ) -> RunSummary:
        """Run every job; call `on_result(job, result)` in this event loop as each one ends.

        A job whose work raised an `Exception` is delivered with that exception as its result,
        and the others carry on. Cancellation or KeyboardInterrupt cancels the jobs in flight
        and propagates; so does an exception raised by `on_result` itself. `should_start()` is
        asked before each job starts: once it says False no more jobs start, and those running
        finish and are delivered.
        """
        launch = await self._start(work)
        # Finished jobs queue up here, so waiting for the next one costs the same at any
        # concurrency, and a job is launched only when a slot is free.
        ended: asyncio.Queue[asyncio.Future[Any]] = asyncio.Queue()
        running: dict[asyncio.Future[Any], J] = {}
        started = finished = failed = 0

        async def deliver_next() -> None:
            nonlocal finished, failed
            done = await ended.get()
            job = running.pop(done)
            error = self._failure(done)  # a cancelled job raises CancelledError: propagate
            if error is not None and not isinstance(error, Exception):
                raise error
            if error is None:
                finished += 1
                on_result(job, done.result())
            else:
                failed += 1
                on_result(job, error)

        try:
            for job in jobs:
                while len(running) >= self.max_concurrency:
                    await deliver_next()
                if not should_start():
                    break
                future = launch(job)
                future.add_done_callback(ended.put_nowait)
                running[future] = job
                started += 1
            while running:
                await deliver_next()
        finally:
            if running:
                await self._cancel(list(running))
        return RunSummary(started, finished, failed, skipped=len(jobs) - started)

    @abstractmethod
    async def _start(self, work: Callable[[J], Awaitable[R]]) -> Callable[[J], asyncio.Future[Any]]:
        """Get ready to run `work`; return how to launch one job of it."""

    def _failure(self, done: asyncio.Future[Any]) -> BaseException | None:
        """What a finished job raised, as the caller should see it."""
        return done.exception()

    async def _cancel(self, futures: list[asyncio.Future[Any]]) -> None:
        """Stop the jobs still in flight when a run is abandoned."""
        for future in futures:
            future.cancel()
        await asyncio.wait(futures)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, the local executor holds nothing
        """Release what the executor started (a Ray runtime); the default holds nothing."""
