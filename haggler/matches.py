"""A tournament's matches: expanded from its spec, named by their content, played anywhere.

A match is one game between two players in fixed roles. Its id is a hash of everything that
decides how it is played (game and rules, both players' models and settings, the moderator,
the repetition and its seed), so the same spec always yields the same ids: a rerun skips what
the store already holds, and editing a player's settings makes its matches new ones.

`play_match` is a module-level coroutine over plain data, so an executor can run it in this
process or ship it to a Ray worker; it writes nothing, and returns the whole game for the
caller to store at once.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from haggler.cast import Cast
from haggler.errors import ModelAuthError, ModelError, failure_reason
from haggler.games.episode import play_episode
from haggler.games.registry import make_game
from haggler.llm.base import Backend
from haggler.llm.providers import LOCAL_PREFIX, open_backend
from haggler.spec import PlaySpec
from haggler.store.records import OutcomeRecord, RoleRecord, TurnRecord
from haggler.tournament_spec import TournamentSpec

__all__ = ["MatchJob", "MatchRecord", "expand", "play_match"]


@dataclass(frozen=True, slots=True)
class MatchJob:
    """Everything needed to play one match, as plain picklable data."""

    id: str
    game: str
    seller: str
    buyer: str
    repetition: int
    # The match as a one-game play spec (PlaySpec.model_dump(mode="json")).
    play_spec: dict[str, Any]
    rate_limits: dict[str, dict[str, float | None]] = field(default_factory=dict)


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

    @property
    def cost_usd(self) -> float:
        return sum(
            t.cost_usd + (t.moderation.cost_usd if t.moderation else 0.0) for t in self.turns
        )


def _repetition_seed(seed: int, repetition: int) -> int:
    return random.Random(f"tournament/{seed}/{repetition}").randrange(2**31)


def _match_id(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "m-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def expand(spec: TournamentSpec) -> list[MatchJob]:
    """Every match of `spec`, in a stable order: game, repetition, pairing."""
    players = spec.players
    if spec.schedule.kind == "round_robin":
        pairs = [(a, b) for a in players for b in players if a.name != b.name]
    else:
        panel = set(spec.schedule.opponents)
        pairs = [
            pair
            for p in players
            if p.name not in panel
            for o in players
            if o.name in panel
            for pair in ((p, o), (o, p))
        ]
    limits = {k: v.model_dump() for k, v in spec.rate_limits.items()}
    jobs = []
    for entry in spec.games:
        rules = make_game(entry.game, entry.rules).settings()
        for repetition in range(spec.repetitions):
            seed = _repetition_seed(spec.seed, repetition)
            for seller, buyer in pairs:
                play = spec.play_spec(entry, seller, buyer, seed)
                content = {
                    "game": entry.game,
                    "rules": rules,
                    "seller": seller.model_dump(mode="json", exclude={"api_base"}),
                    "buyer": buyer.model_dump(mode="json", exclude={"api_base"}),
                    "moderator": spec.moderator.model_dump(mode="json", exclude={"api_base"}),
                    "invalid_allowance": spec.invalid_allowance,
                    "repetition": repetition,
                    "seed": seed,
                }
                jobs.append(
                    MatchJob(
                        id=_match_id(content),
                        game=entry.game,
                        seller=seller.name,
                        buyer=buyer.name,
                        repetition=repetition,
                        play_spec=play.model_dump(mode="json"),
                        rate_limits=limits,
                    )
                )
    return jobs


# Local models this process keeps loaded between matches. Each match's Cast releases its
# backends when it ends; without a standing holder, a worker would reload the weights for
# every match it plays.
_RESIDENT: dict[str, Backend] = {}


def _keep_local_models(spec: PlaySpec) -> None:
    models = [r.model for r in spec.roles.values()] + [spec.moderator.model]
    for model in models:
        if model.startswith(LOCAL_PREFIX) and model not in _RESIDENT:
            _RESIDENT[model] = open_backend(model)


async def play_match(job: MatchJob) -> MatchRecord:
    """Play `job`'s game; a model failure becomes a failed record, never an exception."""
    spec = PlaySpec.model_validate(job.play_spec)
    _keep_local_models(spec)
    game = make_game(spec.game, spec.rules)
    names = {"seller": job.seller, "buyer": job.buyer}
    turns: list[TurnRecord] = []
    started = time.time()
    cast = Cast(spec, game, rate_limits=job.rate_limits)
    try:
        players = cast.players(spec.seed)
        roles = {
            role: RoleRecord(
                model=player.label,
                player=names[role],
                brief=game.brief(role).text,
                private=dict(game.brief(role).private),
            )
            for role, player in players.items()
        }
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
