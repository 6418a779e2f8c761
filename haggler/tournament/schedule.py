"""A tournament's schedule: its matches expanded from its spec and named by their content.

A match is one game between two players in fixed roles. Its id is a hash of everything that
decides how it is played (game and rules, both players' models, settings and prompts, the
moderator, the repetition and its seed), so the same spec always yields the same ids: a rerun
skips what the store already holds, and editing a player's settings or prompt makes its
matches new ones.

Kept apart from playing (`haggler.tournament.matches`), so that reading a run's schedule (the
viewer, the leaderboard) does not load the episode graph and the model backends.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from haggler.games.registry import make_game
from haggler.tournament.spec import TournamentSpec

__all__ = ["MatchJob", "current_match_ids", "expand"]


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
    # For a self-play schedule: rounds, feedback, coached role, critic, memory budget.
    lineage: dict[str, Any] | None = None

    def game_ids(self) -> list[str]:
        """The match ids its games are stored under: one, or one per self-play round."""
        if self.lineage is None:
            return [self.id]
        return [f"{self.id}/r{k}" for k in range(1, int(self.lineage["rounds"]) + 1)]


def _repetition_seed(seed: int, repetition: int) -> int:
    return random.Random(f"tournament/{seed}/{repetition}").randrange(2**31)


# Where and how a model runs (its server, a local model's device and batching) is no part of
# what a match is: moving a model elsewhere keeps its finished games.
_WHERE = {"api_base", "local"}


def _match_id(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "m-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def expand(spec: TournamentSpec) -> list[MatchJob]:
    """Every match of `spec`, in a stable order: game, repetition, pairing."""
    players = spec.players
    schedule = spec.schedule
    lineage: dict[str, Any] | None = None
    if schedule.kind == "selfplay":
        # The coached player takes its role against every other player as the rival.
        ordered = [(a, b) for a in players for b in players if a.name != b.name]
        pairs = ordered if schedule.coached == "seller" else [(b, a) for a, b in ordered]
        lineage = schedule.lineage_content()
    elif schedule.kind == "round_robin":
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
                    "seller": seller.content(),
                    "buyer": buyer.content(),
                    "moderator": spec.moderator.model_dump(mode="json", exclude=_WHERE),
                    "invalid_allowance": spec.invalid_allowance,
                    "repetition": repetition,
                    "seed": seed,
                }
                if lineage is not None:
                    content["lineage"] = lineage
                jobs.append(
                    MatchJob(
                        id=_match_id(content),
                        game=entry.game,
                        seller=seller.name,
                        buyer=buyer.name,
                        repetition=repetition,
                        play_spec=play.model_dump(mode="json"),
                        rate_limits=limits,
                        lineage=lineage,
                    )
                )
    return jobs


def current_match_ids(run_spec: dict[str, Any]) -> set[str] | None:
    """The match ids of the spec a tournament run was last run with — each match's, and on a
    self-play schedule each of its rounds' (`<id>/r1`, …) — or None if it is not one.

    A tournament rerun under its name with an edited spec keeps its earlier games: only these
    matches are ranked and counted.
    """
    from pydantic import ValidationError

    try:
        jobs = expand(TournamentSpec.model_validate(run_spec))
    except ValidationError:
        return None
    return {match_id for job in jobs for match_id in (job.id, *job.game_ids())}
