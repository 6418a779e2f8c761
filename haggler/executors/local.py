"""Jobs as asyncio tasks in this process, started lazily as earlier ones end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from haggler.executors.base import Executor

__all__ = ["LocalExecutor"]

J = TypeVar("J")
R = TypeVar("R")


class LocalExecutor(Executor):
    """Runs jobs on this event loop, at most `max_concurrency` at once."""

    async def _start(self, work: Callable[[J], Awaitable[R]]) -> Callable[[J], asyncio.Future[Any]]:
        return lambda job: asyncio.ensure_future(work(job))
