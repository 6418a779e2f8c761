"""Running a tournament: expand its matches, skip what is stored, play the rest concurrently.

Each match is stored whole when it ends (one transaction), so a crash — even `kill -9` —
loses only the matches in flight, and a rerun of the same spec plays exactly those, never
storing a game twice; a match that another process running the same tournament stored first
is counted as played by it. A budget stops the starting of new matches once reached; a
refused API key stops it too, since every other match of that player would fail the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from haggler.errors import ConfigError, SpecError
from haggler.executors import make_executor
from haggler.executors.heap import long_lived_heap_frozen
from haggler.games.registry import make_game
from haggler.run.cast import Cast, MissingKeys, missing_keys_message
from haggler.store.sqlite import Store
from haggler.tournament.matches import MatchJob, MatchRecord, expand, play_match
from haggler.tournament.spec import TournamentSpec

__all__ = [
    "TournamentProgress",
    "TournamentRun",
    "run_tournament",
    "tournament_run_id",
    "unfinished_matches",
]


@dataclass(slots=True)
class TournamentProgress:
    """Live counts, for a progress display."""

    total: int
    already_done: int
    running: int = 0
    finished: int = 0
    # Played here, but another process running the same tournament stored it first.
    by_other: int = 0
    failed: int = 0
    spent_usd: float = 0.0
    started_at: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> int:
        # A failed match is done for this run (a rerun retries it), so it is not waited for.
        return self.total - self.already_done - self.finished - self.by_other - self.failed

    def eta_s(self) -> float | None:
        """Seconds left at the pace so far, or None before the first match ends."""
        done = self.finished + self.by_other + self.failed
        if done == 0:
            return None
        elapsed = time.monotonic() - self.started_at
        return elapsed / done * self.remaining


@dataclass(slots=True)
class TournamentRun:
    """How a run of a tournament went. Every match of the spec is counted once:
    matches = skipped_as_done + finished + by_other + failed + not_started."""

    run_id: str
    matches: int
    skipped_as_done: int
    finished: int = 0
    # Played here, but found already stored by another process running the same tournament.
    by_other: int = 0
    failed: int = 0
    not_started: int = 0
    spent_usd: float = 0.0
    # Why new matches stopped being started early, if they did.
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)
    # Matches of the spec the store does not hold finished once the run ended (any process's
    # work counted): 0 means the tournament is complete.
    unfinished: int = 0

    @property
    def complete(self) -> bool:
        return self.unfinished == 0


def tournament_run_id(spec: TournamentSpec) -> str:
    """A tournament's run in the store is named after it, so a rerun continues it."""
    return f"tour-{spec.name}"


async def _preflight(spec: TournamentSpec) -> None:
    # Open every player's model once (keys, servers, local paths) before any match starts,
    # so a missing key is one clear error naming the player, not a hundred failed matches;
    # every player's missing key in that one line.
    game = make_game(spec.games[0].game, spec.games[0].rules)
    missing: dict[str, list[tuple[str, str]]] = {}
    for index, player in enumerate(spec.players):
        try:
            competing = [r for r in game.roles if r not in spec.games[0].roles]
            cast = Cast(
                spec.play_spec(spec.games[0], dict.fromkeys(competing, player), spec.seed), game
            )
        except MissingKeys as error:
            # The player holds both roles here: name it once, as the spec does.
            name = f"players.{index} {player.name}"
            for env, needs in error.missing.items():
                for who, model in needs:
                    need = (name if who in game.roles else who, model)
                    if need not in missing.setdefault(env, []):
                        missing[env].append(need)
            continue
        except ConfigError as error:
            raise SpecError(str(error), field=f"players.{index} ({player.name})") from None
        await cast.aclose()
    if missing:
        raise SpecError(missing_keys_message(missing), field="players")


async def run_tournament(
    spec: TournamentSpec,
    *,
    store: Store,
    executor: str = "local",
    address: str | None = None,
    on_progress: Callable[[TournamentProgress], None] | None = None,
) -> TournamentRun:
    """Play every match of `spec` not yet finished in `store`.

    Cancelled (Ctrl-C, SIGTERM in the CLI), it stops the matches in flight, stores nothing of
    them, and raises: what finished is stored, and a rerun plays the rest.
    """
    await _preflight(spec)
    run_id = tournament_run_id(spec)
    store.ensure_run(run_id, "tournament", spec.model_dump(mode="json"))
    jobs = expand(spec)
    todo = unfinished_matches(spec, store, jobs)
    run = TournamentRun(run_id, matches=len(jobs), skipped_as_done=len(jobs) - len(todo))
    progress = TournamentProgress(total=len(jobs), already_done=run.skipped_as_done)
    spent = store.run_cost(run_id)
    progress.spent_usd = run.spent_usd = spent

    def should_start() -> bool:
        if run.stopped is not None:
            return False
        if spec.budget_usd is not None and run.spent_usd >= spec.budget_usd:
            run.stopped = (
                f"budget reached: ${run.spent_usd:.4f} spent of ${spec.budget_usd:.4f}; "
                f"raise budget_usd and run again to play the rest"
            )
            return False
        progress.running += 1
        _tell(on_progress, progress)
        return True

    def on_result(job: MatchJob, result: MatchRecord | list[MatchRecord] | BaseException) -> None:
        progress.running -= 1
        if isinstance(result, BaseException):
            # The match code itself broke (not the model): record it like a failed game.
            run.failed += 1
            progress.failed += 1
            run.errors.append(f"{job.id}: {type(result).__name__}: {result}")
            _tell(on_progress, progress)
            return
        records = result if isinstance(result, list) else [result]
        stored = _store(store, run_id, job, records)
        run.spent_usd += sum(
            r.cost_usd + (r.critique.cost_usd if r.critique else 0.0) for r in records
        )
        progress.spent_usd = run.spent_usd
        broken = next((r for r in records if r.status != "finished"), None)
        if broken is None and stored:
            run.finished += 1
            progress.finished += 1
        elif broken is None:
            run.by_other += 1
            progress.by_other += 1
        else:
            run.failed += 1
            progress.failed += 1
            run.errors.append(f"{job.id}: {broken.error}")
            if broken.fatal and run.stopped is None:
                run.stopped = f"stopped starting matches: {broken.error}"
        _tell(on_progress, progress)

    def played_elsewhere(job: MatchJob) -> None:
        run.by_other += 1
        progress.by_other += 1
        _tell(on_progress, progress)

    pending = _StillToPlay(todo, store, run_id, played_elsewhere)
    engine = make_executor(executor, max_concurrency=spec.concurrency, address=address)
    try:
        with long_lived_heap_frozen():
            summary = await engine.run(
                pending, play_match, on_result=on_result, should_start=should_start
            )
    finally:
        await engine.aclose()
    run.not_started = summary.skipped - pending.passed_over
    run.unfinished = len(unfinished_matches(spec, store, jobs))
    return run


def unfinished_matches(
    spec: TournamentSpec, store: Store, jobs: Sequence[MatchJob] | None = None
) -> list[MatchJob]:
    """The matches of `spec` (`jobs`, when already expanded) that its run in `store` does not
    hold finished, every round of a lineage: what a rerun would play."""
    done = store.finished_matches(tournament_run_id(spec))
    return [
        job
        for job in (expand(spec) if jobs is None else jobs)
        if not all(game in done for game in job.game_ids())
    ]


class _StillToPlay(Sequence[MatchJob]):
    """The matches to play, each looked up in the store as its turn comes: one that another
    process running the same tournament finished meanwhile is passed over, not paid for twice.

    The store's finished matches are read again at most once a second, so a match finished
    elsewhere in that second (or while this one waited for a free slot) may still be played
    here; storing it then finds it there and counts it as the other process's.
    """

    def __init__(
        self,
        jobs: list[MatchJob],
        store: Store,
        run_id: str,
        passed: Callable[[MatchJob], None],
    ) -> None:
        self._jobs, self._store, self._run_id, self._passed = jobs, store, run_id, passed
        self._done: set[str] = set()
        self._read_at = time.monotonic()
        self.passed_over = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def __getitem__(self, index: int) -> MatchJob:  # type: ignore[override]
        return self._jobs[index]

    def __iter__(self) -> Iterator[MatchJob]:
        for job in self._jobs:
            if time.monotonic() - self._read_at >= 1.0:
                self._done = self._store.finished_matches(self._run_id)
                self._read_at = time.monotonic()
            if all(game in self._done for game in job.game_ids()):
                self.passed_over += 1
                self._passed(job)
                continue
            yield job


def _store(store: Store, run_id: str, job: MatchJob, records: list[MatchRecord]) -> bool:
    """Store a played match (or lineage) whole; False if it was already stored."""
    games: list[dict[str, Any]] = [
        {
            "game": job.game,
            "rules": r.rules,
            "roles": r.roles,
            "seed": int(job.play_spec["seed"]),
            "turns": r.turns,
            "outcome": r.outcome,
            "scores": r.scores,
            "error": r.error,
            # Failed attempts keep their match id (they are counted): only a finished game is
            # held to one per match.
            "match_id": match_id,
            "started_at": r.started_at,
        }
        for r, match_id in zip(records, [*job.game_ids(), job.id], strict=False)
    ]
    if job.lineage is None:
        return store.add_episode(run_id, **games[0]) is not None
    lineage = store.add_lineage(
        run_id,
        arm=str(job.lineage["feedback"]),
        coached=str(job.lineage["coached"]),
        seed=int(job.play_spec["seed"]),
        games=games,
        critiques=[r.critique for r in records],
        forgetting=[f for r in records for f in r.forgetting],
    )
    return lineage is not None


def _tell(
    listener: Callable[[TournamentProgress], None] | None, progress: TournamentProgress
) -> None:
    if listener is not None:
        listener(progress)
