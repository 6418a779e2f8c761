"""A tournament's matches, played anywhere (their schedule and ids: `haggler.tournament.schedule`).

`play_match` is a module-level coroutine over plain data, so an executor can run it in this
process or ship it to a Ray worker; it writes nothing, and returns the whole game for the
caller to store at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from haggler.errors import ModelAuthError, ModelError, failure_reason
from haggler.games.episode import play_episode, role_records
from haggler.games.registry import make_game
from haggler.games.selfplay import (
    AIFeedback,
    ConstantFeedback,
    FeedbackSource,
    Lineage,
    NoFeedback,
    ScheduledForget,
    SelfPlaySetup,
    critique_record,
    play_lineage,
)
from haggler.memory import AgentMemory
from haggler.run.cast import Cast
from haggler.run.spec import CriticSpec, ForgetStep, PlaySpec, UnlearnerSpec
from haggler.store.records import (
    CritiqueRecord,
    ForgettingRecord,
    OutcomeRecord,
    RoleRecord,
    TurnRecord,
)
from haggler.tournament.schedule import MatchJob, current_match_ids, expand

__all__ = ["MatchJob", "MatchRecord", "current_match_ids", "expand", "play_match"]


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """A played match, finished or failed, ready to be stored in one go."""

    job: MatchJob
    status: str  # "finished" or "failed"
    roles: dict[str, RoleRecord]
    rules: dict[str, Any]
    turns: list[TurnRecord]
    outcome: OutcomeRecord | None
    scores: dict[str, float]
    error: str | None
    # A refused key: every other match of this player would fail the same way.
    fatal: bool = False
    started_at: float = 0.0
    ended_at: float = 0.0
    # In a self-play lineage: the feedback the coached role got after this game, and the
    # forget requests carried out right after it (their audit rows, stored with the lineage).
    critique: CritiqueRecord | None = None
    forgetting: tuple[ForgettingRecord, ...] = ()

    @property
    def cost_usd(self) -> float:
        return sum(
            t.cost_usd + (t.moderation.cost_usd if t.moderation else 0.0) for t in self.turns
        )


async def play_match(job: MatchJob) -> MatchRecord | list[MatchRecord]:
    """Play `job`'s game (or its self-play lineage, one record per round); a model failure
    becomes a failed record, never an exception."""
    if job.lineage is not None:
        return await play_lineage_match(job)
    spec = PlaySpec.model_validate(job.play_spec)
    game = make_game(spec.game, spec.rules)
    names = dict(job.players)
    turns: list[TurnRecord] = []
    started = time.time()
    cast = Cast(spec, game, rate_limits=job.rate_limits)
    try:
        players = cast.players(spec.seed)
        roles = role_records(game, players, names)
        try:
            result = await play_episode(
                game,
                players,
                moderator=cast.moderator,
                listeners=[turns.append],
                invalid_allowance=spec.invalid_allowance,
            )
        except ModelError as error:
            return MatchRecord(
                job=job,
                status="failed",
                roles=roles,
                rules=game.settings(),
                turns=turns,
                outcome=None,
                scores={},
                error=failure_reason(error),
                fatal=isinstance(error, ModelAuthError),
                started_at=started,
                ended_at=time.time(),
            )
        return MatchRecord(
            job=job,
            status="finished",
            roles=roles,
            rules=game.settings(),
            turns=turns,
            outcome=OutcomeRecord(**result.outcome.as_dict()),
            scores=result.scores,
            error=None,
            started_at=started,
            ended_at=time.time(),
        )
    finally:
        await cast.aclose()


def _feedback_source(job: MatchJob, cast: Cast) -> FeedbackSource:
    assert job.lineage is not None
    kind, coached = job.lineage["feedback"], job.lineage["coached"]
    if kind == "ai":
        critic = job.lineage.get("critic")
        return AIFeedback(cast.critic(CriticSpec(**critic) if critic else None, coached))
    if kind == "constant":
        return ConstantFeedback()
    return NoFeedback()


def _forgetting(job: MatchJob, cast: Cast) -> list[ScheduledForget]:
    """The schedule's forget steps for this lineage (an unlearner reads those in words)."""
    assert job.lineage is not None
    steps = [ForgetStep.model_validate(step) for step in job.lineage.get("forget") or []]
    if not steps:
        return []
    unlearner = cast.unlearner(UnlearnerSpec.model_validate(job.lineage.get("unlearner") or {}))
    return [
        ScheduledForget(
            step.after_round,
            step.typed() if step.typed() is not None else step.request,
            unlearner,
            level=step.level,
            mode=step.mode,
        )
        for step in steps
    ]


async def play_lineage_match(job: MatchJob) -> list[MatchRecord]:
    """Play `job`'s self-play lineage: one record per round, all failed if a round failed.

    A lineage is stored all at once or not at all as finished, so a rerun replays a broken
    lineage from its first round rather than splicing two attempts together.
    """
    assert job.lineage is not None
    spec = PlaySpec.model_validate(job.play_spec)
    game = make_game(spec.game, spec.rules)
    coached = str(job.lineage["coached"])
    names = dict(job.players)
    cast = Cast(spec, game, rate_limits=job.rate_limits)
    started = time.time()
    try:
        roles = role_records(game, cast.players(spec.seed), names)
        source = _feedback_source(job, cast)
        lineage = Lineage(
            arm=source.kind,
            coached=(coached,),
            seed=spec.seed,
            rounds=int(job.lineage["rounds"]),
            memories={coached: AgentMemory(f"{job.id}/{names[coached]}")},
            memory_budget=int(job.lineage.get("memory_budget", 2000)),
            forgetting=_forgetting(job, cast),
            counters={coached: cast.token_counter(coached)},
        )
        setup = SelfPlaySetup(
            game=game,
            make_players=cast.players,
            moderator=cast.moderator,
            feedback=source,
            invalid_allowance=spec.invalid_allowance,
            # Each round's game is stored under its match round id when the lineage ends.
            game_id=lambda number: job.game_ids()[number - 1],
        )
        error: str | None = None
        fatal = False
        try:
            result = await play_lineage(lineage, setup)
            rounds, feedback = list(result.rounds), list(result.feedback)
            forgotten = [f.record for f in result.forgotten if f.record is not None]
        except ModelError as failure:
            error, fatal = failure_reason(failure), isinstance(failure, ModelAuthError)
            rounds, feedback, forgotten = [], [], []
        records = []
        for number, episode in enumerate(rounds, 1):
            told = feedback[number - 1].get(coached) if number <= len(feedback) else None
            critique = None
            if told is not None and told.suggestions:
                critique = critique_record(told, coached, source.label)
            records.append(
                MatchRecord(
                    job=job,
                    status="finished" if error is None else "failed",
                    roles=roles,
                    rules=game.settings(),
                    turns=list(episode.turns),
                    outcome=OutcomeRecord(**episode.outcome.as_dict()) if error is None else None,
                    scores=episode.scores,
                    error=error,
                    started_at=started,
                    ended_at=time.time(),
                    critique=critique,
                    forgetting=tuple(f for f in forgotten if f.after_round == number),
                )
            )
        if error is not None:
            records.append(
                MatchRecord(
                    job=job,
                    status="failed",
                    roles=roles,
                    rules=game.settings(),
                    turns=[],
                    outcome=None,
                    scores={},
                    error=error,
                    fatal=fatal,
                    started_at=started,
                    ended_at=time.time(),
                )
            )
        return records
    finally:
        await cast.aclose()
