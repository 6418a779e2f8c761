"""Running many jobs (tournament matches) concurrently: locally on asyncio, or on a Ray cluster.

Both executors take the same jobs and the same async work function and deliver every result to
the caller's event loop as it comes, so a tournament stores the same games either way.
"""

from __future__ import annotations

from haggler.errors import ConfigError
from haggler.executors.base import Executor, RunSummary
from haggler.executors.local import LocalExecutor
from haggler.executors.ray import RayExecutor

__all__ = [
    "EXECUTOR_KINDS",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "RunSummary",
    "make_executor",
]

EXECUTOR_KINDS = ("local", "ray")


def make_executor(kind: str, *, max_concurrency: int, address: str | None = None) -> Executor:
    """The executor named `kind`; `address` (a Ray cluster's) only applies to "ray"."""
    if kind == "local":
        return LocalExecutor(max_concurrency)
    if kind == "ray":
        return RayExecutor(max_concurrency, address=address)
    raise ConfigError(f"unknown executor {kind!r}; use one of: {', '.join(EXECUTOR_KINDS)}")
