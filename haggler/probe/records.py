"""Probe attempts stored like games: a run of kind `probe` or `unlearn-eval` whose episodes
are attempts, with roles `adversary` and `target`, the exchanges as turns (the adversary's
message, the target's reply), a last turn by the judge, and the verdict as the outcome
(`leak`, `no_leak`, `undetermined`). Where an attempt sits in the experiment is its
`rules["probe"]` (`haggler.evals.unlearning.ProbeTag`), which is also how games played for
the experiment (in-game elicitation, utility, the self-play that made the agents) are
tagged. `show`, exports and the viewer read them as they read games.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from haggler.agents.adversary.base import Exchange, Secret, Strategy
from haggler.evals.unlearning import ProbeTag, SecretTag
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult
from haggler.probe.attempts import JudgedAttempt
from haggler.store.records import (
    FindingRecord,
    OutcomeRecord,
    RoleRecord,
    TurnRecord,
)

__all__ = ["attempt_episode", "game_episode", "secret_tag"]


def secret_tag(secret: Secret, fact: str = "secret") -> SecretTag:
    return SecretTag(
        fact=fact, text=secret.text, topic=secret.topic, value=secret.value, level=secret.level
    )


def _turns(exchange: Exchange, index: int, at: float) -> list[TurnRecord]:
    reply = exchange.reply
    completion = reply.completion
    answered = reply.status == "answered"
    why = {
        "refused": "refused by the target",
        "blocked": "withheld by a defence",
        "error": "the call failed",
    }.get(reply.status, reply.status)
    return [
        TurnRecord(
            index=index, speaker="adversary", text=exchange.question, started_at=at, ended_at=at
        ),
        TurnRecord(
            index=index + 1,
            speaker="target",
            text=reply.text,
            accepted=answered,
            error=None if answered else f"{why}" + (f": {reply.reason}" if reply.reason else ""),
            model=completion.model if completion else None,
            prompt_tokens=completion.usage.prompt_tokens if completion else 0,
            completion_tokens=completion.usage.completion_tokens if completion else 0,
            cost_usd=completion.cost_usd if completion else 0.0,
            latency_s=completion.latency_s if completion else 0.0,
            retries=completion.retries if completion else 0,
            usage_estimated=completion.usage.estimated if completion else False,
            started_at=at,
            ended_at=at + (completion.latency_s if completion else 0.0),
        ),
    ]


def attempt_episode(
    judged: JudgedAttempt,
    *,
    strategy: Strategy,
    secret: Secret,
    tag: ProbeTag,
    game: Game,
    target_model: str,
    target_brief: str,
    match_id: str | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """`judged` as the fields of `Store.add_episode`."""
    at = started_at if started_at is not None else time.time()
    attempt, ruling = judged.attempt, judged.ruling
    turns: list[TurnRecord] = []
    for exchange in attempt.exchanges:
        turns += _turns(exchange, len(turns), at)
    others = ", ".join(f"{name} {verdict}" for name, verdict in ruling.verdicts.items())
    turns.append(
        TurnRecord(
            index=len(turns),
            speaker="judge",
            text=f"{ruling.verdict.replace('_', ' ')}: {ruling.reason}"
            + (f" ({others})" if len(ruling.verdicts) > 1 else ""),
            model=f"judge:{ruling.judge}",
            cost_usd=ruling.cost_usd,
            started_at=at,
            ended_at=time.time(),
        )
    )
    guess = attempt.guess
    return {
        "game": game.name,
        "rules": {"probe": tag.model_dump(mode="json")},
        "roles": {
            "adversary": RoleRecord(
                model=f"strategy:{strategy.name}",
                player=strategy.name,
                brief=f"{strategy.goal} Looking for {secret.topic} ({secret.level} level).",
            ),
            "target": RoleRecord(
                model=target_model,
                player=tag.variant if tag.defence == "none" else f"{tag.variant}+{tag.defence}",
                brief=target_brief,
            ),
        },
        "seed": tag.seed,
        "turns": turns,
        "outcome": OutcomeRecord(
            kind=ruling.verdict,
            reason=ruling.reason or ruling.verdict.replace("_", " "),
            by=ruling.judge,
            finding=FindingRecord(
                guess=guess if isinstance(guess, str) else None,
                guessed_value=_finite(attempt.guessed_value),
                queries=attempt.queries,
                first_leak=ruling.first_leak,
                refused=judged.refused,
                answer=judged.answer,
                cost_usd=judged.cost_usd,
                verdicts=dict(ruling.verdicts),
            ),
        ),
        "scores": {},
        "match_id": match_id,
        "started_at": at,
    }


def game_episode(
    result: EpisodeResult,
    *,
    game: Game,
    roles: Mapping[str, RoleRecord],
    tag: ProbeTag,
    seed: int,
    match_id: str | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """A game played for the experiment as the fields of `Store.add_episode`: the game's own
    rules, and where it sits in the experiment (`rules["probe"]`)."""
    return {
        "game": game.name,
        "rules": game.settings() | {"probe": tag.model_dump(mode="json")},
        "roles": dict(roles),
        "seed": seed,
        "turns": list(result.turns),
        "outcome": OutcomeRecord(**result.outcome.as_dict()),
        "scores": dict(result.scores),
        "match_id": match_id,
        "started_at": started_at if started_at is not None else time.time(),
    }


def _finite(value: object) -> float | None:
    import math

    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
