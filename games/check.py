"""Conformance checks that any game or role can run in its own tests.

`check_game(game)` and `await check_role(make_player, game)` raise AssertionError with a message
saying what a plug-in got wrong; they pass silently.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from haggler.agents.actions import Action, ActionKind
from haggler.agents.base import Negotiator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TimeDependent
from haggler.games.base import Game
from haggler.games.episode import play_episode

__all__ = ["check_game", "check_role"]


def check_game(game: Game, *, trials: int = 200, seed: int = 0) -> None:
    """Check `game`'s declarations and that random actions never break it."""
    assert game.roles, f"{game!r} declares no roles"
    assert len(set(game.roles)) == len(game.roles), f"{game.name}: duplicate roles {game.roles}"
    assert game.max_turns >= 1, f"{game.name}: max_turns must be at least 1, got {game.max_turns}"
    briefs = {role: game.brief(role) for role in game.roles}
    for role, brief in briefs.items():
        assert brief.role == role, f"{game.name}: brief for {role!r} says it is for {brief.role!r}"
        assert brief.text.strip(), f"{game.name}: the brief of {role!r} is empty"
    public = " ".join(str(v) for v in game.facts.values())
    opening = " ".join(m.text for m in game.opening())
    for role, brief in briefs.items():
        for name, value in brief.private.items():
            secret = _number_pattern(value)
            for other, other_brief in briefs.items():
                if other != role:
                    assert not secret.search(other_brief.text), (
                        f"{game.name}: {role}'s private {name} ({value:g}) appears in the "
                        f"brief of {other}"
                    )
            assert not secret.search(public), (
                f"{game.name}: {role}'s private {name} is in the public facts"
            )
            assert not secret.search(opening), (
                f"{game.name}: {role}'s private {name} is in the opening"
            )
    for message in game.opening():
        assert message.speaker in game.roles, (
            f"{game.name}: opening by unknown role {message.speaker!r}"
        )
    assert game.first_speaker() in game.roles, f"{game.name}: first speaker is not a role"

    rng = random.Random(seed)
    for _ in range(trials):
        table = game.new_table()
        speaker = game.first_speaker()
        for _turn in range(game.max_turns):
            kind = rng.choice(list(ActionKind))
            price = rng.choice([None, -1.0, 0.0, rng.uniform(0, 3000), 1e12])
            step = game.apply(table, speaker, Action(kind, price))
            assert not (step.error and step.outcome), (
                f"{game.name}: a step both ends the game and asks for a retry ({kind}, {price})"
            )
            if step.outcome is not None:
                assert step.outcome.kind in ("deal", "no_deal", "invalid"), step.outcome
                scores = game.score(step.outcome)
                assert set(scores) == set(game.roles), f"{game.name}: scores {scores} miss roles"
                break
            if step.error is None:
                speaker = game.next_speaker(speaker)
        else:
            outcome = game.at_turn_limit(table)
            assert outcome.kind != "deal" or outcome.price is not None, outcome


def _number_pattern(value: float) -> re.Pattern[str]:
    # The number as a whole token: a cost of 50 is not "found" inside a price of $500.
    forms = {f"{value:g}", f"{value:,g}", f"{value:.2f}", f"{value:,.2f}"}
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![\d.,])(?:{alternatives})(?![\d]|[.,]\d)")


async def check_role(
    make_player: Callable[[str], Negotiator], game: Game, *, episodes: int = 4
) -> None:
    """Play `episodes` games of `game` with `make_player(role)` in each role against a rule rival."""
    for index in range(episodes):
        for role in game.roles:
            player = make_player(role)
            assert player.role == role, f"make_player({role!r}) built a player for {player.role!r}"
            assert player.label, f"{type(player).__name__} has no label for transcripts"
            players: dict[str, Negotiator] = {
                other: RuleNegotiator(other, TimeDependent(1.0), seed=index)
                for other in game.roles
                if other != role
            }
            players[role] = player
            result = await play_episode(game, players)
            assert result.outcome.kind in ("deal", "no_deal", "invalid"), result.outcome
            for turn in result.turns:
                assert isinstance(turn.text, str), f"{role} produced {type(turn.text).__name__}"
