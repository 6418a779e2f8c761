"""What the viewer shows of a run, read from the store, and kept while the run does not change.

The cheap parts (outcome counts, spend, the values to filter by) are a few SQL queries, read
once per state of the run. The results (a self-play run's per-round table and chart, a
tournament's leaderboard) read every game: for a 10,000-game run that takes seconds, so they
are computed in a worker process (pure Python: on a thread it would slow every page served
meanwhile), one computation per run at a time. A page waits for
them only so long (`wait_s`); past that it is served with the last results computed (marked
as behind the run) or, the first time, without them.

No code of ours runs when a computation ends: nothing is attached to the worker's futures.
A finished computation is collected by the next request for its run, under that run's lock,
and a request waits with `concurrent.futures.wait`, outside any lock. A completion callback
would run in whichever thread attaches it if the worker has already finished, and so under
any lock that thread holds (that hung run pages for good, issue 12.4).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from haggler.store.query import RunFacets
from haggler.store.records import RunRecord
from haggler.store.sqlite import Store

__all__ = [
    "RunOverview",
    "RunResults",
    "forget_results",
    "computations_in_flight",
    "run_overview",
    "stop_worker",
    "warm_up",
]


@dataclass(frozen=True)
class RunResults:
    # The self-play per-round table and chart, when the run has rounds.
    round_rows: list[Any] = field(default_factory=list)
    rounds_chart: str | None = None
    # The tournament leaderboard, when the run is a tournament.
    leaderboard: list[Any] = field(default_factory=list)
    # A probe or forgetting experiment: its leak rates in lines, and its plot.
    probe_lines: list[str] = field(default_factory=list)
    probe_chart: str | None = None
    # Why there are none, when computing them failed.
    error: str | None = None


@dataclass(frozen=True)
class RunOverview:
    run: RunRecord
    counts: dict[str, int]  # games by outcome (see haggler.store.query.OUTCOMES)
    spent_usd: float
    facets: RunFacets
    results: RunResults | None  # None while the first ones are being computed
    # The results are of an earlier state of the run; newer ones are being computed.
    results_behind: bool = False

    @property
    def games(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class _Computation:
    """Results being computed by `worker`, of the run at `state`."""

    future: Future[RunResults]
    state: tuple[Any, ...] | None
    worker: Executor


@dataclass
class _Entry:
    """What is known of one run: its cheap parts at one state, its latest finished results
    (and the state they are of), and the computation in progress, if any. Read and written
    under `lock`, which is never held while waiting on a computation."""

    state: tuple[Any, ...] | None = None
    cheap: tuple[RunRecord, RunFacets, dict[str, int], float] | None = None
    results: RunResults | None = None
    results_state: tuple[Any, ...] | None = None
    computing: _Computation | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_entries: dict[tuple[str, str], _Entry] = {}
_entries_lock = threading.Lock()


def run_overview(store: Store, run_id: str, *, wait_s: float | None = None) -> RunOverview:
    """The overview of `run_id`; its results waited for at most `wait_s` seconds (None: until
    results of the run's present state are there)."""
    key = (str(Path(store.path).resolve()), run_id)
    with _entries_lock:
        entry = _entries.setdefault(key, _Entry())
    state = store.run_state(run_id)
    db = Path(store.path)
    with entry.lock:
        if entry.state != state or entry.cheap is None:
            run = next(r for r in store.runs() if r.id == run_id)
            facets = store.run_facets(run_id)
            entry.cheap = (run, facets, store.outcome_counts(run_id), store.run_cost(run_id))
            entry.state = state
        run, facets, counts, spent = entry.cheap
        _collect(entry)
        if entry.results_state != state and entry.computing is None and wait_s is not None:
            entry.computing = _start(db, run, bool(facets.rounds), state)
        computing = entry.computing
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while computing is not None:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not wait([computing.future], timeout=left).done:
            break  # out of time: the page goes with what there is
        with entry.lock:
            _collect(entry)
            if entry.results_state == state or wait_s is None or _lost(computing.future):
                # Stopped or lost (the viewer is closing, the worker died): the next request
                # asks again, rather than this one starting a worker now.
                break
            # What ended was of an older state: the run's present state is computed next, one
            # computation at a time, while time is left.
            if entry.computing is None:
                entry.computing = _start(db, run, bool(facets.rounds), state)
            computing = entry.computing
    with entry.lock:
        if wait_s is None and entry.results_state != state:
            # A report waits anyway: compute here, once what was in flight has ended.
            entry.results = _guarded(store, run, bool(facets.rounds))
            entry.results_state = state
        return RunOverview(
            run=run,
            counts=counts,
            spent_usd=spent,
            facets=facets,
            results=entry.results,
            results_behind=entry.results is not None and entry.results_state != state,
        )


def _start(
    db: Path, run: RunRecord, has_rounds: bool, state: tuple[Any, ...] | None
) -> _Computation:
    future, worker = _submit(str(db), run, has_rounds)
    return _Computation(future, state, worker)


def _submit(
    db: str | None, run: RunRecord | None, has_rounds: bool
) -> tuple[Future[RunResults], Executor]:
    worker = _worker()
    try:
        return worker.submit(_compute, db, run, has_rounds), worker
    except BrokenProcessPool:
        # The worker died while idle (killed outright, out of memory): start another.
        _drop_worker(worker)
        worker = _worker()
        return worker.submit(_compute, db, run, has_rounds), worker


def _lost(future: Future[RunResults]) -> bool:
    """Whether an ended computation came to nothing: stopped, or its worker gone."""
    return future.cancelled() or isinstance(future.exception(), BrokenProcessPool)


def _collect(entry: _Entry) -> None:
    """Keep what the run's computation came to, if it has ended (under `entry.lock`)."""
    computing = entry.computing
    if computing is None or not computing.future.done():
        return
    entry.computing = None
    if _lost(computing.future):
        # Nothing was learnt. A worker that died (or was stopped) is not asked again: the next
        # computation starts another.
        _drop_worker(computing.worker)
        return
    error = computing.future.exception()
    if error is not None:  # a page must still load; it says what went wrong
        entry.results = RunResults(error=f"{type(error).__name__}: {error}")
    else:
        entry.results = computing.future.result()
    entry.results_state = computing.state


# Results are computed in a process of their own: the computation is pure Python, and on a
# thread it would hold the GIL against the pages being served meanwhile.
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def computations_in_flight() -> int:
    """How many run results are being computed now (at most one per run)."""
    with _entries_lock:
        entries = list(_entries.values())
    # A plain read of each entry's computation: taking the entries' locks is not needed.
    return sum(1 for e in entries if (c := e.computing) is not None and not c.future.done())


def _worker() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the viewer has threads, and a forked child would inherit
            # whatever locks they held.
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=get_context("spawn"),
                initializer=_follow_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def _drop_worker(worker: Executor) -> None:
    """Forget `worker` (it died); the next computation starts a new one."""
    global _pool
    with _pool_lock:
        if _pool is worker:
            _pool = None
    worker.shutdown(wait=False, cancel_futures=True)


def stop_worker() -> None:
    """End the worker process now, computations in progress included."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # a computation may run for seconds; nobody waits for it now
        pool.shutdown(wait=False, cancel_futures=True)


def _follow_parent(parent: int) -> None:
    # In the worker: a viewer killed outright (SIGKILL, a crash) never tells its worker, which
    # would otherwise wait on its queue forever; it leaves when its parent is gone.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="haggler-follow-parent", daemon=True).start()


def warm_up() -> None:
    """Start the worker and let it import what results need, before the first run page."""
    _submit(None, None, False)


def _guarded(store: Store, run: RunRecord, has_rounds: bool) -> RunResults:
    try:
        return _results(store, run, has_rounds)
    except Exception as error:  # a report must still be written; it says what went wrong
        return RunResults(error=f"{type(error).__name__}: {error}")


def _compute(db: str | None, run: RunRecord | None, has_rounds: bool) -> RunResults:
    if db is None or run is None:  # warming up: the imports are the point
        import haggler.evals  # noqa: F401
        import haggler.tournament.schedule  # noqa: F401

        return RunResults()
    with Store(db, read_only=True) as store:
        return _results(store, run, has_rounds)


def _results(store: Store, run: RunRecord, has_rounds: bool) -> RunResults:
    if run.kind in ("probe", "unlearn-eval"):
        from haggler.probe.report import probe_results

        lines, chart = probe_results(store, run)
        return RunResults(probe_lines=lines, probe_chart=chart)
    if run.kind == "tournament":
        from haggler.evals import leaderboard
        from haggler.tournament.schedule import current_match_ids

        return RunResults(
            leaderboard=leaderboard(store, run.id, match_ids=current_match_ids(run.spec))
        )
    if has_rounds:
        from haggler.evals import round_metrics, rounds_svg

        rows = round_metrics(store, run.id)
        return RunResults(round_rows=rows, rounds_chart=rounds_svg(rows) if rows else None)
    return RunResults()


def forget_results() -> None:
    """Forget every run's results, as a freshly started viewer has none (for benchmarks)."""
    with _entries_lock:
        _entries.clear()
