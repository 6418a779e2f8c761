"""The executor contract: run jobs with bounded concurrency, delivering each result as it comes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

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

    @abstractmethod
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

    async def aclose(self) -> None:  # noqa: B027 - optional hook, the local executor holds nothing
        """Release what the executor started (a Ray runtime); the default holds nothing."""
