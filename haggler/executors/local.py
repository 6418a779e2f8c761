"""Jobs as asyncio tasks in this process, started lazily as earlier ones end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from haggler.executors.base import Executor, RunSummary

__all__ = ["LocalExecutor"]

J = TypeVar("J")
R = TypeVar("R")


class LocalExecutor(Executor):
    """Runs jobs on this event loop, at most `max_concurrency` at once."""

    async def run(
        self,
        jobs: Sequence[J],
        work: Callable[[J], Awaitable[R]],
        *,
        on_result: Callable[[J, R | BaseException], None],
        should_start: Callable[[], bool] = lambda: True,
    ) -> RunSummary:
        # Finished tasks queue up here, so waiting for the next one costs the same at any
        # concurrency, and a task is created only when a slot is free.
        ended: asyncio.Queue[asyncio.Future[R]] = asyncio.Queue()
        running: dict[asyncio.Future[R], J] = {}
        started = finished = failed = 0

        async def deliver_next() -> None:
            nonlocal finished, failed
            done = await ended.get()
            job = running.pop(done)
            error = done.exception()  # a cancelled job raises CancelledError here: propagate
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
                task: asyncio.Future[R] = asyncio.ensure_future(work(job))
                task.add_done_callback(ended.put_nowait)
                running[task] = job
                started += 1
            while running:
                await deliver_next()
        finally:
            for still_running in running:
                still_running.cancel()
            if running:
                await asyncio.wait(list(running))
        return RunSummary(started, finished, failed, skipped=len(jobs) - started)
