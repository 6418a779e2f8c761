"""Conformance checks that any game or role can run in its own tests.

`check_game(game)` and `await check_role(make_player, game)` raise AssertionError with a message
saying what a plug-in got wrong; they pass silently.

`check_game` checks a game's declarations (roles, briefs that keep each role's private values
to it, a vocabulary for every role, a turn order that names only its roles), plays random
moves of each role's own actions through `apply` and its routing, and plays a few episodes
with its default players, who must be able to sit where the game seats them and must never
end with a deal that scores a role below what no deal gives it.

`check_role` plays `make_player(role)` in every role of the game it can play (or the `roles`
given), the other seats filled by the game's default players (or `others`), and holds it to
the same rules: it can play the seat it claims, every message it sends stands (it takes only
the actions its seat allows, readably, so it never breaks the turn order by forcing its turn to
be taken again or the game to end invalid), and no deal it joins scores it below no deal —
a role that ignores a private value it should respect (a seller's floor given under an
unexpected name) fails there.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any

from haggler.agents.actions import Action
from haggler.agents.base import Player
from haggler.agents.vocabulary import ActionType, Vocabulary
from haggler.errors import PlayerError
from haggler.games.base import Game, TurnState
from haggler.games.episode import EpisodeResult, play_episode
from haggler.games.outcome import Outcome

__all__ = ["check_game", "check_role"]

# A deal that scores a role below this is a deal it should have refused (rounding aside).
_BELOW_NO_DEAL = -1e-9


def check_game(game: Game, *, trials: int = 200, seed: int = 0, episodes: int = 2) -> None:
    """Check `game`'s declarations, that random actions never break it, and that its default
    players can play it (`episodes` games each, 0 to skip)."""
    assert game.roles, f"{game!r} declares no roles"
    name = getattr(game, "name", type(game).__name__)
    assert len(set(game.roles)) == len(game.roles), f"{name}: duplicate roles {game.roles}"
    assert game.max_turns >= 1, f"{name}: max_turns must be at least 1, got {game.max_turns}"
    briefs = {role: game.brief(role) for role in game.roles}
    for role, brief in briefs.items():
        assert brief.role == role, f"{name}: brief for {role!r} says it is for {brief.role!r}"
        assert brief.text.strip(), f"{name}: the brief of {role!r} is empty"
    public = " ".join(str(v) for v in game.facts.values())
    opening = " ".join(m.text for m in game.opening())
    for role, brief in briefs.items():
        for value_name, value in brief.private.items():
            secret = _number_pattern(value)
            for other, other_brief in briefs.items():
                # A number the other role holds as a private value of its own is no leak (a
                # score table gives many roles the same points).
                own = {float(v) for v in other_brief.private.values()}
                if other != role and float(value) not in own:
                    assert not secret.search(other_brief.text), (
                        f"{name}: {role}'s private {value_name} ({value:g}) appears in the "
                        f"brief of {other}"
                    )
            assert not secret.search(public), (
                f"{name}: {role}'s private {value_name} is in the public facts"
            )
            assert not secret.search(opening), (
                f"{name}: {role}'s private {value_name} is in the opening"
            )
    for message in game.opening():
        assert message.speaker in game.roles, f"{name}: opening by unknown role {message.speaker!r}"
    assert game.first_speaker() in game.roles, f"{name}: first speaker is not a role"
    for role in game.roles:
        actions = game.actions(role)
        assert isinstance(actions, Vocabulary) and actions.types, (
            f"{name}: the {role} may take no action (actions({role!r}) must be a Vocabulary "
            f"of at least one ActionType)"
        )
        for action_type in actions.types:
            assert action_type.kind in game.vocabulary, (
                f"{name}: the {role}'s action {action_type.kind} is missing from the game's "
                f"vocabulary"
            )
    no_deal = game.score(Outcome.no_deal("turn_limit"))
    assert set(no_deal) == set(game.roles), f"{name}: scores {no_deal} miss roles"
    assert all(abs(v) < 1e-9 for v in no_deal.values()), (
        f"{name}: no deal must score 0 for every role (scores are measured from it), got {no_deal}"
    )
    _random_play(game, name, trials, seed)
    if episodes:
        _run_now(_default_episodes(game, name, episodes))


def _run_now(coroutine: Coroutine[Any, Any, None]) -> None:
    # check_game is plain sync code; called from inside an event loop (an async test), the
    # episodes get a loop of their own on a worker thread.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def _random_action(action_type: ActionType, rng: random.Random) -> Action:
    if action_type.carries == "terms":
        terms = {issue: rng.choice(labels) for issue, labels in action_type.options.items()}
        if terms and rng.random() < 0.2:
            terms.pop(rng.choice(list(terms)))  # a package that leaves an issue out
        return Action(action_type.kind, None, terms=terms)
    price = rng.choice([None, -1.0, 0.0, rng.uniform(0, 3000), 1e12])
    return Action(action_type.kind, price)


def _random_play(game: Game, name: str, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(trials):
        table = game.new_table()
        speaker = game.first_speaker()
        turn, last = 0, None
        public = tuple(game.opening())
        while turn < game.max_turns:
            action = _random_action(rng.choice(game.actions(speaker).types), rng)
            step = game.apply(table, speaker, action)
            assert not (step.error and step.outcome), (
                f"{name}: a step both ends the game and asks for a retry ({action})"
            )
            if step.outcome is not None:
                assert step.outcome.kind in ("deal", "no_deal", "invalid"), step.outcome
                scores = game.score(step.outcome)
                assert set(scores) == set(game.roles), f"{name}: scores {scores} miss roles"
                break
            if step.error is None:
                turn, last = turn + 1, speaker
                state = TurnState(turn, last, public, table)
                speaker = game.next_speaker(state)
                assert speaker in game.roles, (
                    f"{name}: next_speaker named {speaker!r}, which is no role of the game"
                )
        else:
            outcome = game.at_turn_limit(table)
            assert outcome.kind != "deal" or outcome.price is not None or outcome.terms, outcome


async def _default_episodes(game: Game, name: str, episodes: int) -> None:
    from haggler.agents.roles import make_player

    defaults = _default_cast(game)
    for index in range(episodes):
        players = {}
        for role, model in defaults.items():
            player = make_player(model, role, seed=index, seat=game.seat(role))
            reason = player.cannot_play(game.seat(role))
            assert reason is None, f"{name}: its default {role} ({model}) cannot play it: {reason}"
            players[role] = player
        result = await play_episode(game, players)
        _check_result(game, name, result, set(game.roles), "its default players")


def _default_cast(game: Game) -> dict[str, str]:
    return {role: game.default_players.get(role, "rule:linear") for role in game.roles}


def _number_pattern(value: float) -> re.Pattern[str]:
    # The number as a whole token: a cost of 50 is not "found" inside a price of $500.
    forms = {f"{value:g}", f"{value:,g}", f"{value:.2f}", f"{value:,.2f}"}
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    # Nor is it part of a label such as "R1".
    return re.compile(rf"(?<![\w.,])(?:{alternatives})(?![\d]|[.,]\d)")


def _check_result(
    game: Game, name: str, result: EpisodeResult, checked: Collection[str], who: str
) -> None:
    assert result.outcome.kind in ("deal", "no_deal", "invalid"), result.outcome
    for turn in result.turns:
        assert isinstance(turn.text, str), f"{turn.speaker} produced {type(turn.text).__name__}"
        if turn.speaker in checked:
            assert turn.error is None, (
                f"{name}: a message of {who} as the {turn.speaker} did not stand ({turn.error}): "
                f"{turn.text[:200]!r}"
            )
    if result.outcome.kind == "invalid" and result.outcome.by in checked:
        raise AssertionError(
            f"{name}: {who} as the {result.outcome.by} ended the game invalid "
            f"({result.outcome.reason})"
        )
    if result.outcome.kind == "deal":
        for role in checked:
            score = result.scores.get(role)
            assert score is None or score >= _BELOW_NO_DEAL, (
                f"{name}: {who} as the {role} agreed to {result.outcome.describe()}, which scores "
                f"it {score:g}, below no deal: it ignores a private value it should respect"
            )


async def check_role(
    make_player: Callable[[str], Player],
    game: Game,
    *,
    episodes: int = 4,
    roles: Collection[str] | None = None,
    others: Mapping[str, Callable[[str, int], Player]] | None = None,
) -> None:
    """Play `episodes` games of `game` with `make_player(role)` in each of `roles` (default:
    every role of the game it says it can play, at least one), the other seats filled by
    `others[role](role, index)` or the game's default players."""
    from haggler.agents.roles import make_player as make_default

    name = getattr(game, "name", type(game).__name__)
    chosen = list(roles) if roles is not None else list(game.roles)
    unknown = [role for role in chosen if role not in game.roles]
    assert not unknown, f"{name} has no role {unknown[0]!r}; its roles are {game.roles}"
    playable: list[str] = []
    reasons: dict[str, str] = {}
    for role in chosen:
        player = make_player(role)
        assert isinstance(player, Player), (
            f"make_player({role!r}) made a {type(player).__name__}, not a Player"
        )
        assert player.role == role, f"make_player({role!r}) built a player for {player.role!r}"
        assert player.label, f"{type(player).__name__} has no label for transcripts"
        reason = player.cannot_play(game.seat(role))
        if reason is None:
            playable.append(role)
        else:
            reasons[role] = reason
    if roles is not None and reasons:
        role, reason = next(iter(reasons.items()))
        raise AssertionError(f"{name}: the player cannot play the {role}: {reason}")
    assert playable, f"{name}: the player can play none of its roles: " + "; ".join(
        f"{role}: {reason}" for role, reason in reasons.items()
    )
    defaults = _default_cast(game)
    for index in range(episodes):
        for role in playable:
            players: dict[str, Player] = {}
            for other in game.roles:
                if other == role:
                    players[other] = make_player(other)
                elif others is not None and other in others:
                    players[other] = others[other](other, index)
                else:
                    seat = game.seat(other)
                    players[other] = make_default(defaults[other], other, seed=index, seat=seat)
            try:
                result = await play_episode(game, players)
            except PlayerError as error:
                # The conformance check's verdict is an AssertionError, whoever's code raised.
                raise AssertionError(f"{name}: {error}") from error
            _check_result(game, name, result, {role}, "the player")
