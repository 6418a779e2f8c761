"""Running a self-play experiment from a spec: every arm, every lineage, concurrently.

Arms (feedback kinds) are played on the same lineage seeds, so they compare pair by pair. A
lineage whose model calls keep failing after their retries is marked failed and the others go
on; a refused key or request stops the whole experiment, since every lineage would hit it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haggler.cast import Cast
from haggler.errors import ModelAuthError, ModelRequestError, TransientModelError
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
from haggler.spec import SelfPlaySpec, check_selfplay_spec
from haggler.store.sqlite import Store

__all__ = ["SelfPlayRun", "selfplay"]

# Called after each finished round: (rounds done, rounds planned at most).
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class SelfPlayRun:
    run_id: str
    lineages: dict[str, list[LineageResult]] = field(default_factory=dict)
    # Lineages that failed for good (model errors after retries), by arm.
    failures: dict[str, list[str]] = field(default_factory=dict)


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


async def selfplay(
    spec: SelfPlaySpec | dict[str, Any],
    *,
    store: Store,
    progress: Progress | None = None,
) -> SelfPlayRun:
    """Play every lineage of every arm of `spec`, storing games, lineages and memories."""
    if not isinstance(spec, SelfPlaySpec):
        spec = check_selfplay_spec(dict(spec))
    game = make_game(spec.game, spec.rules)
    cast = Cast(spec, game)
    try:
        sources: dict[str, FeedbackSource] = {
            kind: feedback_source(spec, cast, kind) for kind in spec.feedback
        }
        run = SelfPlayRun(store.start_run("selfplay", spec.model_dump(mode="json")))
        limit = asyncio.Semaphore(spec.concurrency)
        forgetting = _forgetting(spec, cast)
        total = len(sources) * spec.lineages * spec.rounds
        done = 0

        def round_done() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        async def one(kind: str, index: int) -> None:
            coached = spec.coached_roles()
            lineage = Lineage(
                arm=kind,
                coached=coached,
                seed=lineage_seed(spec, index),
                rounds=spec.rounds,
                memories={
                    role: _memory(store, memory_owner(spec, run.run_id, kind, index, role), spec)
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
                for kind in sources:
                    for index in range(spec.lineages):
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


def _memory(store: Store, owner: str, spec: SelfPlaySpec) -> AgentMemory:
    if spec.agent:
        return AgentMemory.load(store, owner)
    return AgentMemory(owner, store)
