"""What each run of a store is: its kind, its size, how far it got, what it cost, and when.

`haggler runs` prints these; `--json` gives them to scripts. A run's status says:

- running:      games in flight (a tournament: matches left) and something stored in the
                last `STALE_AFTER_S`;
- interrupted:  games in flight but nothing stored since: the process was killed;
- incomplete:   fewer lineages or matches than the spec asks for and nothing stored lately
                (a budget or a refused key stopped it, or it was killed between games);
- has failures: games, lineages or matches failed for good (model errors after retries) and
                were not played again;
- failed:       a run of one game (`haggler play`) whose game failed;
- empty:        a run that holds no game;
- finished:     everything the spec asks for was played.

Everything is read through the store's own queries, a handful per run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from haggler.store.query import GameFilter
from haggler.store.records import LineageRecord, RunRecord
from haggler.store.sqlite import Store

__all__ = ["STALE_AFTER_S", "RunSummary", "run_table", "summarize_runs"]

# Longer than the slowest call the retry policy allows (60 s timeouts and waits, 6 attempts),
# so a run waiting on a slow provider is not called interrupted.
STALE_AFTER_S = 15 * 60

Status = Literal[
    "running", "interrupted", "incomplete", "has failures", "failed", "empty", "finished"
]


class RunSummary(BaseModel):
    """One run, as `haggler runs --json` prints it (timestamps in ISO 8601, UTC)."""

    id: str
    kind: str
    games: int
    # Games by outcome: deal, no_deal, invalid, and failed or running for unfinished ones.
    outcomes: dict[str, int]
    # Self-play: lineages stored and asked for (every arm); None for other kinds.
    lineages: int | None = None
    lineages_planned: int | None = None
    # Tournaments: matches of the run's current spec finished, and their number (a forgetting
    # experiment: its agents).
    matches: int | None = None
    matches_planned: int | None = None
    status: Status
    # Why, in a few words: "3 games failed", "40 of 120 matches played".
    detail: str = ""
    spend_usd: float
    created_at: str
    last_activity_at: str
    haggler_version: str

    def size(self) -> str:
        """Games, and the lineages or matches they make up, for a table cell."""
        parts = [_count(self.games, "game")]
        if self.matches is not None:
            parts.append(f"{self.matches}/{self.matches_planned} {_unit(self.kind)}")
        elif self.lineages is not None:
            planned = f"/{self.lineages_planned}" if self.lineages_planned else ""
            parts.append(f"{self.lineages}{planned} lineages")
        return ", ".join(parts)


def summarize_runs(store: Store, *, now: float | None = None) -> list[RunSummary]:
    """Every run of `store`, oldest first."""
    now = time.time() if now is None else now
    return [_summarize(store, run, now) for run in store.runs()]


@dataclass(slots=True)
class _Progress:
    """How far a run got, as its kind counts it."""

    lineages: list[LineageRecord] = field(default_factory=list)
    lineages_planned: int | None = None
    matches: int | None = None
    matches_planned: int | None = None
    # A match of the current spec that is not finished has a failed attempt.
    unfinished_match_failed: bool = False


def _summarize(store: Store, run: RunRecord, now: float) -> RunSummary:
    outcomes = store.outcome_counts(run.id)
    last = max(store.last_activity(run.id) or 0.0, run.created_at)
    progress = _Progress()
    if run.kind == "selfplay":
        progress.lineages = store.lineages(run.id)
        progress.lineages_planned = _lineages_planned(run.spec)
    elif run.kind == "tournament":
        _count_matches(store, run, progress)
    elif run.kind == "unlearn-eval":
        _count_agents(store, run, progress)
    status, detail = _status(run, outcomes, progress, quiet_s=now - last)
    return RunSummary(
        id=run.id,
        kind=run.kind,
        games=run.episodes,
        outcomes=outcomes,
        lineages=len(progress.lineages) if run.kind == "selfplay" else None,
        lineages_planned=progress.lineages_planned,
        matches=progress.matches,
        matches_planned=progress.matches_planned,
        status=status,
        detail=detail,
        spend_usd=store.run_cost(run.id),
        created_at=_iso(run.created_at),
        last_activity_at=_iso(last),
        haggler_version=run.haggler_version,
    )


def _status(
    run: RunRecord, outcomes: dict[str, int], progress: _Progress, *, quiet_s: float
) -> tuple[Status, str]:
    failed = outcomes.get("failed", 0)
    in_flight = outcomes.get("running", 0)
    # A lineage between its rounds (its critic at work) has no game in flight.
    lineages_in_flight = sum(lineage.status == "running" for lineage in progress.lineages)
    if in_flight or lineages_in_flight:
        if quiet_s >= STALE_AFTER_S:
            return "interrupted", f"nothing stored for {_duration(quiet_s)}"
        if in_flight:
            return "running", f"{_count(in_flight, 'game')} in flight"
        return "running", f"{_count(lineages_in_flight, 'lineage')} in flight"
    if progress.matches is not None and progress.matches_planned is not None:
        done, planned = progress.matches, progress.matches_planned
        attempts = _count(failed, "failed attempt")
        if done >= planned:
            return "finished", f"{attempts}, replayed" if failed else ""
        played = f"{done} of {planned} {_unit(run.kind)} played" + (
            f"; {attempts}" if failed else ""
        )
        # A tournament stores a match whole when it ends, so a live one shows no game in
        # flight: matches left and one stored lately is how it looks.
        if quiet_s < STALE_AFTER_S:
            return "running", played
        return ("has failures" if progress.unfinished_match_failed else "incomplete"), played
    if run.kind == "selfplay":
        broken = sum(lineage.status == "failed" for lineage in progress.lineages)
        if broken:
            return "has failures", f"{_count(broken, 'lineage')} failed"
        asked = progress.lineages_planned
        if asked is not None and len(progress.lineages) < asked:
            return "incomplete", f"{len(progress.lineages)} of {asked} lineages played"
    if run.episodes == 0:
        return "empty", "no game stored"
    if failed:
        if run.episodes == 1:
            return "failed", "its game failed"
        return "has failures", f"{_count(failed, 'game')} failed"
    return "finished", ""


def _count_matches(store: Store, run: RunRecord, progress: _Progress) -> None:
    # The matches of the spec the run was last run with, counted as a rerun counts them.
    from pydantic import ValidationError

    from haggler.errors import ConfigError
    from haggler.tournament.schedule import expand
    from haggler.tournament.spec import TournamentSpec

    try:
        jobs = expand(TournamentSpec.model_validate(run.spec))
    except (ValidationError, ConfigError):
        return  # a spec this haggler cannot read (a newer one, a game not installed)
    finished = store.finished_matches(run.id)
    failed = {e.match_id for e in store.find_episodes(run.id, GameFilter.of(outcome="failed"))}
    left = [job for job in jobs if not all(game in finished for game in job.game_ids())]
    progress.matches = len(jobs) - len(left)
    progress.matches_planned = len(jobs)
    progress.unfinished_match_failed = any(
        game in failed for job in left for game in [*job.game_ids(), job.id]
    )


def _unit(kind: str) -> str:
    # A tournament is played in matches; a forgetting experiment, agent by agent.
    return "agents" if kind == "unlearn-eval" else "matches"


def _count_agents(store: Store, run: RunRecord, progress: _Progress) -> None:
    # The agents of the spec the experiment was last run with, counted as a rerun counts them.
    from haggler.probe.experiment import current_jobs

    jobs = current_jobs(run.spec)
    if jobs is None:
        return  # a spec this haggler cannot read
    done = {match.split("/", 1)[0] for match in store.finished_matches(run.id)}
    failed = {e.match_id for e in store.find_episodes(run.id, GameFilter.of(outcome="failed"))}
    progress.matches = len(jobs & done)
    progress.matches_planned = len(jobs)
    progress.unfinished_match_failed = bool((jobs - done) & failed)


_STATUS_STYLE = {
    "finished": "green",
    "running": "cyan",
    "interrupted": "yellow",
    "incomplete": "yellow",
    "has failures": "red",
    "failed": "red",
    "empty": "dim",
}


def run_table(summaries: list[RunSummary], *, title: str = "runs") -> Table:
    """The runs as a terminal table; times are local, as a person reads them."""
    table = Table(title=title)
    # Ids stay whole, so they can be copied into `haggler show --run ID`.
    table.add_column("run", no_wrap=True, min_width=max((len(r.id) for r in summaries), default=8))
    table.add_column("kind", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("status")
    table.add_column("spend", justify="right")
    table.add_column("created", no_wrap=True)
    table.add_column("last activity", no_wrap=True)
    for run in summaries:
        status = Text(run.status, style=_STATUS_STYLE[run.status])
        if run.detail:
            status.append(f": {run.detail}", style="dim")
        table.add_row(
            run.id,
            run.kind,
            run.size(),
            status,
            f"${run.spend_usd:.4f}",
            _local(run.created_at),
            _local(run.last_activity_at),
        )
    return table


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _lineages_planned(spec: dict[str, Any]) -> int | None:
    lineages, feedback = spec.get("lineages"), spec.get("feedback")
    if isinstance(lineages, int) and isinstance(feedback, list):
        return lineages * len(feedback)
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
