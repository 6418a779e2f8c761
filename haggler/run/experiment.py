"""Running a self-play experiment from a spec: every arm, every lineage, concurrently.

Arms (feedback kinds) are played on the same lineage seeds, so they compare pair by pair. A
lineage whose model calls keep failing after their retries is marked failed and the others go
on; a refused key or request stops the whole experiment, since every lineage would hit it. An
interrupted experiment (Ctrl-C, SIGTERM) marks the lineages in flight failed ("interrupted").

A run is continued by naming it (`run_id`): the lineages it does not hold finished (failed,
interrupted, never started) are played again from round 1, the earlier attempt's games staying
in the store as they were, and its memory items forgotten along their provenance so that the
new attempt starts from what the lineage knew before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from haggler.agents.base import Player
from haggler.agents.roles import check_players, described
from haggler.errors import ModelAuthError, ModelRequestError, SpecError, TransientModelError
from haggler.games.registry import make_game
from haggler.games.selfplay import (
    AIFeedback,
    ConstantFeedback,
    FeedbackSource,
    HumanFeedback,
    Lineage,
    LineageResult,
    NoFeedback,
    ScheduledForget,
    SelfPlaySetup,
    play_lineage,
)
from haggler.memory import AgentMemory
from haggler.run.cast import Cast
from haggler.run.spec import SelfPlaySpec, check_selfplay_spec
from haggler.store.records import EpisodeRecord, LineageRecord
from haggler.store.sqlite import Store

__all__ = ["SelfPlayRun", "check_continuation", "selfplay"]

# Called after each finished round: (rounds done, rounds planned at most).
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class SelfPlayRun:
    run_id: str
    lineages: dict[str, list[LineageResult]] = field(default_factory=dict)
    # Lineages that failed for good (model errors after retries), by arm.
    failures: dict[str, list[str]] = field(default_factory=dict)
    # Lineages the run held finished before this session (a continued run), and in all.
    already_done: int = 0
    planned: int = 0

    @property
    def failed(self) -> int:
        return sum(len(errors) for errors in self.failures.values())


def feedback_source(spec: SelfPlaySpec, cast: Cast, kind: str) -> FeedbackSource:
    """The feedback arm `kind` of `spec`, on `cast`'s models."""
    if kind == "ai":
        # Each coached role gets its critic: by default its own model, as in the paper.
        return AIFeedback({role: cast.critic(spec.critic, role) for role in spec.coached_roles()})
    if kind == "constant":
        return ConstantFeedback(spec.constant_feedback)
    if kind == "human":
        return HumanFeedback(spec.human_suggestions())
    return NoFeedback()


def lineage_seed(spec: SelfPlaySpec, index: int) -> int:
    """The seed of lineage `index`, the same in every arm."""
    return spec.seed * 1_000_003 + index


def memory_owner(spec: SelfPlaySpec, run_id: str, arm: str, index: int, role: str) -> str:
    # A named agent keeps its memory from run to run; otherwise each run starts afresh.
    return f"{spec.agent or run_id}/{arm}/{index}/{role}"


# What may change when a run is continued: how it is played, never what is played.
_FREE_TO_CHANGE = {"concurrency"}


def check_continuation(spec: SelfPlaySpec, store: Store, run_id: str) -> None:
    """SpecError unless run `run_id` is a self-play run of `spec` (its concurrency aside)."""
    run = next(r for r in store.runs() if r.id == run_id)
    if run.kind != "selfplay":
        raise SpecError(
            f"run {run_id} is a {run.kind} run, not a self-play run; name a `haggler selfplay` run"
        )
    now = spec.model_dump(mode="json")
    changed = sorted(
        key
        for key in set(now) | set(run.spec)
        if key not in _FREE_TO_CHANGE and now.get(key) != run.spec.get(key)
    )
    if changed:
        raise SpecError(
            f"run {run_id} was played with another {', '.join(changed)}; continue it with the "
            f"spec it was played with, or start a new run",
            field=changed[0],
        )


async def selfplay(
    spec: SelfPlaySpec | dict[str, Any],
    *,
    store: Store,
    progress: Progress | None = None,
    run_id: str | None = None,
    on_run: Callable[[str], None] | None = None,
    players: Mapping[str, Player] | None = None,
) -> SelfPlayRun:
    """Play every lineage of every arm of `spec`, storing games, lineages and memories.

    `players` puts player objects in roles (Python only); each plays every game of the run,
    so it must keep nothing between games (a class in the spec's roles makes a fresh one per
    game instead).

    `run_id` names a run of this same spec to continue: only the lineages it does not hold
    finished or stopped are played, from round 1. None starts a new run, once the models are
    open; `on_run` is told its id then (to say how to continue it, should it be interrupted).
    """
    if not isinstance(spec, SelfPlaySpec):
        spec = check_selfplay_spec(dict(spec))
    if run_id is not None:
        run_id = store.resolve_run(run_id)
        check_continuation(spec, store, run_id)
    game = make_game(spec.game, spec.rules)
    given = check_players(game, players)
    cast = Cast(spec, game, players=given)
    try:
        sources: dict[str, FeedbackSource] = {
            kind: feedback_source(spec, cast, kind) for kind in spec.feedback
        }
        run = SelfPlayRun(run_id or store.start_run("selfplay", described(spec, given)))
        if on_run is not None:
            on_run(run.run_id)
        earlier = _earlier_attempts(store, run.run_id)
        games = _games_by_lineage(store, run.run_id) if earlier else {}
        todo = [
            (kind, index)
            for kind in sources
            for index in range(spec.lineages)
            if not any(
                lin.status in _DONE for lin in earlier.get((kind, lineage_seed(spec, index)), [])
            )
        ]
        run.planned = len(sources) * spec.lineages
        run.already_done = run.planned - len(todo)
        limit = asyncio.Semaphore(spec.concurrency)
        forgetting = _forgetting(spec, cast)
        total = len(todo) * spec.rounds
        done = 0

        def round_done() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        async def one(kind: str, index: int) -> None:
            coached = spec.coached_roles()
            seed = lineage_seed(spec, index)
            attempts = earlier.get((kind, seed), [])
            _close_attempts(store, attempts, games)
            lineage = Lineage(
                arm=kind,
                coached=coached,
                seed=seed,
                rounds=spec.rounds,
                memories={
                    role: _memory(
                        store,
                        memory_owner(spec, run.run_id, kind, index, role),
                        spec,
                        forget={e.id for lin in attempts for e in games.get(lin.id, [])},
                    )
                    for role in coached
                },
                stop_at_first_failure=spec.stop_at_first_failure,
                memory_budget=spec.memory_budget,
                forgetting=forgetting,
                counters={role: cast.token_counter(role) for role in coached},
            )
            if spec.agent:
                lineage.continue_memory()
            setup = SelfPlaySetup(
                game=game,
                make_players=cast.players,
                moderator=cast.moderator,
                feedback=sources[kind],
                invalid_allowance=spec.invalid_allowance,
                store=store,
                run_id=run.run_id,
                on_round=round_done,
            )
            async with limit:
                try:
                    result = await play_lineage(lineage, setup)
                except TransientModelError as error:
                    run.failures.setdefault(kind, []).append(str(error))
                    return
            run.lineages.setdefault(kind, []).append(result)

        try:
            async with asyncio.TaskGroup() as group:
                for kind, index in todo:
                    group.create_task(one(kind, index))
        except BaseExceptionGroup as failed:
            # One refused key or request cancels the rest; report it as itself, on one line.
            first = _first_leaf(failed)
            if isinstance(first, ModelAuthError | ModelRequestError):
                raise first from None
            raise
        return run
    finally:
        await cast.aclose()


def _forgetting(spec: SelfPlaySpec, cast: Cast) -> list[ScheduledForget]:
    """The spec's forget steps, ready for every lineage (one unlearner for words, shared)."""
    if not spec.forget:
        return []
    unlearner = cast.unlearner(spec.unlearner)
    steps = []
    for step in spec.forget:
        typed = step.typed()
        request = typed if typed is not None else step.request
        steps.append(
            ScheduledForget(step.after_round, request, unlearner, level=step.level, mode=step.mode)
        )
    return steps


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


_DONE = ("finished", "stopped")


def _earlier_attempts(store: Store, run_id: str) -> dict[tuple[str, int], list[LineageRecord]]:
    """The lineages `run_id` holds, by (arm, seed): a lineage's attempts so far."""
    attempts: dict[tuple[str, int], list[LineageRecord]] = {}
    for lineage in store.lineages(run_id):
        attempts.setdefault((lineage.arm, lineage.seed), []).append(lineage)
    return attempts


def _games_by_lineage(store: Store, run_id: str) -> dict[str, list[EpisodeRecord]]:
    games: dict[str, list[EpisodeRecord]] = {}
    for episode in store.run_episodes(run_id, transcripts=False):
        if episode.lineage_id is not None:
            games.setdefault(episode.lineage_id, []).append(episode)
    return games


def _close_attempts(
    store: Store, attempts: list[LineageRecord], games: dict[str, list[EpisodeRecord]]
) -> None:
    """Mark failed what earlier attempts left running: their process ended (`kill -9`, a lost
    machine) before they could say so."""
    reason = "interrupted: its process ended before the lineage did"
    for lineage in attempts:
        if lineage.status != "running":
            continue
        for episode in games.get(lineage.id, []):
            if episode.status == "running":
                store.fail_episode(episode.id, reason)
        store.update_lineage(
            lineage.id, rounds_played=lineage.rounds_played, status="failed", stop_reason=reason
        )


def _memory(
    store: Store,
    owner: str,
    spec: SelfPlaySpec,
    *,
    forget: Collection[str] = (),
) -> AgentMemory:
    if not (spec.agent or store.has_memory(owner)):
        return AgentMemory(owner, store)
    memory = AgentMemory.load(store, owner)
    # A lineage played again starts from what it knew before its earlier attempts: forget
    # their games, and with them (along provenance) the advice drawn from those games.
    for item in memory.items(kind="episode"):
        if item.episode_id in forget and item.id in memory:
            memory.forget(item.id)
    return memory
