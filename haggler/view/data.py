"""What the viewer shows of a run, read from the store, and kept while the run does not change.

The cheap parts (outcome counts, spend, the values to filter by) are a few SQL queries per
request. The results (a self-play run's per-round table and chart, a tournament's leaderboard)
read every game: for a 10,000-game run that takes a second or two, so they are computed on a
thread of their own, once per state of the run, and kept. A page waits for them only so long
(`wait_s`); past that it is served without them and says they are coming.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haggler.store.query import RunFacets
from haggler.store.records import RunRecord
from haggler.store.sqlite import Store

__all__ = ["RunOverview", "RunResults", "clear", "run_overview"]


@dataclass(frozen=True)
class RunResults:
    # The self-play per-round table and chart, when the run has rounds.
    round_rows: list[Any] = field(default_factory=list)
    rounds_chart: str | None = None
    # The tournament leaderboard, when the run is a tournament.
    leaderboard: list[Any] = field(default_factory=list)
    # Why there are none, when computing them failed.
    error: str | None = None


@dataclass(frozen=True)
class RunOverview:
    run: RunRecord
    counts: dict[str, int]  # games by outcome (see haggler.store.query.OUTCOMES)
    spent_usd: float
    facets: RunFacets
    results: RunResults | None  # None while they are being computed

    @property
    def games(self) -> int:
        return sum(self.counts.values())


class _Pending:
    """A run's overview at one state: its cheap parts read at once, its results computed on a
    thread of their own."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.run = next(r for r in store.runs() if r.id == run_id)
        self.facets = store.run_facets(run_id)
        self.counts = store.outcome_counts(run_id)
        self.spent_usd = store.run_cost(run_id)
        self.done = threading.Event()
        self.results = RunResults()
        thread = threading.Thread(
            target=self._compute,
            args=(Path(store.path), self.run, bool(self.facets.rounds)),
            name="haggler-results",
            daemon=True,
        )
        thread.start()

    def _compute(self, db: Path, run: RunRecord, has_rounds: bool) -> None:
        try:
            # SQLite connections belong to the thread that opened them.
            with Store(db) as store:
                self.results = _results(store, run, has_rounds)
        except Exception as error:  # a page must still load; it says what went wrong
            self.results = RunResults(error=f"{type(error).__name__}: {error}")
        finally:
            self.done.set()


_cache: dict[tuple[str, str], tuple[tuple[Any, ...], _Pending]] = {}
_lock = threading.Lock()


def run_overview(store: Store, run_id: str, *, wait_s: float | None = None) -> RunOverview:
    """The overview of `run_id`, read once per state of the run; its results waited for at
    most `wait_s` seconds (None: until they are there)."""
    state = store.run_state(run_id)
    key = (str(Path(store.path).resolve()), run_id)
    with _lock:
        cached = _cache.get(key)
        if cached is None or cached[0] != state:
            cached = (state, _Pending(store, run_id))
            _cache[key] = cached
    pending = cached[1]
    ready = pending.done.wait(wait_s)
    return RunOverview(
        run=pending.run,
        counts=pending.counts,
        spent_usd=pending.spent_usd,
        facets=pending.facets,
        results=pending.results if ready else None,
    )


def _results(store: Store, run: RunRecord, has_rounds: bool) -> RunResults:
    if run.kind == "tournament":
        from haggler.evals import leaderboard
        from haggler.matches import current_match_ids

        return RunResults(
            leaderboard=leaderboard(store, run.id, match_ids=current_match_ids(run.spec))
        )
    if has_rounds:
        from haggler.evals import round_metrics, rounds_svg

        rows = round_metrics(store, run.id)
        return RunResults(round_rows=rows, rounds_chart=rounds_svg(rows) if rows else None)
    return RunResults()


def clear() -> None:
    """Forget every computed result (benchmarks time the cold path with this)."""
    with _lock:
        _cache.clear()
