"""Jobs as Ray tasks, on this machine or a Ray cluster (`pip install haggler[ray]`).

Each job runs in a Ray worker as `asyncio.run(work(job))`, so `work` must be a module-level
async function that the workers can import, and jobs must pickle. Results come back to the
driver's event loop as they complete. State inside one process (a backend, a rate limiter)
is per worker: rate limits are not shared across workers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from haggler.errors import ConfigError
from haggler.executors.base import Executor

__all__ = ["RayExecutor"]

J = TypeVar("J")
R = TypeVar("R")


def _run_job(work: Callable[[Any], Awaitable[Any]], job: Any) -> Any:
    """What a Ray worker runs for one job: its own event loop, for this job only."""

    async def main() -> Any:
        return await work(job)

    return asyncio.run(main())


class RayExecutor(Executor):
    """Runs jobs as Ray tasks, at most `max_concurrency` in flight.

    `address` names a running Ray cluster (`ray://host:10001`, `auto`); None starts Ray on this
    machine with one worker slot per CPU. Ray is started on the first `run`, not here.
    """

    def __init__(self, max_concurrency: int, address: str | None = None) -> None:
        super().__init__(max_concurrency)
        self.address = address
        self._started_ray = False
        # The Ray task behind each job in flight, to cancel it.
        self._refs: dict[asyncio.Future[Any], Any] = {}

    async def _start(self, work: Callable[[J], Awaitable[R]]) -> Callable[[J], asyncio.Future[Any]]:
        ray = self._ray()
        remote_job = ray.remote(_run_job)
        work_ref = ray.put(work)  # serialised once, not once per job

        def launch(job: J) -> asyncio.Future[Any]:
            ref = remote_job.remote(work_ref, job)
            future = asyncio.wrap_future(ref.future())
            self._refs[future] = ref
            future.add_done_callback(lambda done: self._refs.pop(done, None))
            return future

        return launch

    def _failure(self, done: asyncio.Future[Any]) -> BaseException | None:
        error = done.exception()
        return None if error is None else _unwrap(error)

    async def _cancel(self, futures: list[asyncio.Future[Any]]) -> None:
        ray = self._ray()
        for future in futures:
            ref = self._refs.pop(future, None)
            if ref is not None:
                ray.cancel(ref)

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError as error:
            raise ConfigError(
                "the ray executor needs Ray: pip install 'haggler[ray]' (or pick executor local)"
            ) from error
        if not ray.is_initialized():
            options: dict[str, Any] = {}
            if self.address is None:
                options["num_cpus"] = os.cpu_count() or 1
            ray.init(
                address=self.address,
                ignore_reinit_error=True,
                include_dashboard=False,
                log_to_driver=False,
                **options,
            )
            self._started_ray = True
        return ray

    async def aclose(self) -> None:
        """Shut Ray down if this executor started it; a Ray started by the caller stays up."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False


def _unwrap(error: BaseException) -> BaseException:
    # Ray wraps what the work raised in a RayTaskError; callers want the original (a
    # ModelError stays a ModelError). Worker crashes and cancellations have no cause.
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error
