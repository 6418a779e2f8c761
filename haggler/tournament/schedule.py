"""A tournament's schedule: its matches expanded from its spec and named by their content.

A match is one game between players in fixed roles (every role of the game: the players
compete for those a game entry does not cast itself). Its id is a hash of everything that
decides how it is played (game and rules, every player's model, settings and prompt, the
fixed roles, the moderator, the repetition and its seed), so the same spec always yields the same ids: a rerun
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
from itertools import permutations
from typing import Any

from haggler.games.registry import make_game
from haggler.tournament.spec import PlayerSpec, TournamentSpec

__all__ = ["MatchJob", "current_match_ids", "expand"]


@dataclass(frozen=True, slots=True)
class MatchJob:
    """Everything needed to play one match, as plain picklable data."""

    id: str
    game: str
    # Who plays each role the players compete for: role -> player name.
    players: dict[str, str]
    repetition: int
    # The match as a one-game play spec (PlaySpec.model_dump(mode="json")).
    play_spec: dict[str, Any]
    rate_limits: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # For a self-play schedule: rounds, feedback, coached role, critic, memory budget.
    lineage: dict[str, Any] | None = None

    @property
    def seller(self) -> str | None:
        return self.players.get("seller")

    @property
    def buyer(self) -> str | None:
        return self.players.get("buyer")

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


def _casts(spec: TournamentSpec, competing: tuple[str, ...]) -> list[tuple[PlayerSpec, ...]]:
    """Who plays the `competing` roles (in their order) in each match of one game and
    repetition. With a seller and a buyer: every ordered pair; with more roles, every ordered
    choice of distinct players, so every player meets every other in every role."""
    players = spec.players
    schedule = spec.schedule
    k = len(competing)
    if schedule.kind == "selfplay":
        # The coached player takes its role against every choice of rivals from the others.
        at = competing.index(schedule.coached)
        return [
            (*rest[:at], coached, *rest[at:])
            for coached in players
            for rest in permutations([p for p in players if p.name != coached.name], k - 1)
        ]
    if schedule.kind == "round_robin":
        return list(permutations(players, k))
    panel = set(schedule.opponents)
    return [
        (*rest[:at], player, *rest[at:])
        for player in players
        if player.name not in panel
        for rest in permutations([o for o in players if o.name in panel], k - 1)
        for at in range(k)
    ]


def expand(spec: TournamentSpec) -> list[MatchJob]:
    """Every match of `spec`, in a stable order: game, repetition, cast."""
    lineage: dict[str, Any] | None = None
    if spec.schedule.kind == "selfplay":
        lineage = spec.schedule.lineage_content()
    limits = {k: v.model_dump() for k, v in spec.rate_limits.items()}
    jobs = []
    for entry in spec.games:
        game = make_game(entry.game, entry.rules)
        rules = game.settings()
        competing = tuple(r for r in game.roles if r not in entry.roles)
        # Matches of a seller and a buyer keep the ids they had before games of more roles.
        two_sided = competing == ("seller", "buyer")
        casts = _casts(spec, competing)
        for repetition in range(spec.repetitions):
            seed = _repetition_seed(spec.seed, repetition)
            for chosen in casts:
                cast = dict(zip(competing, chosen, strict=True))
                play = spec.play_spec(entry, cast, seed)
                content: dict[str, Any] = {"game": entry.game, "rules": rules}
                if two_sided:
                    content |= {role: player.content() for role, player in cast.items()}
                else:
                    content["cast"] = {role: player.content() for role, player in cast.items()}
                if entry.roles:
                    content["fixed"] = {
                        role: fixed.model_dump(mode="json", exclude=_WHERE)
                        for role, fixed in entry.roles.items()
                    }
                content |= {
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
                        players={role: player.name for role, player in cast.items()},
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
