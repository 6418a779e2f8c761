"""Playing one game from a spec: build the roles, open the models, play, store every turn."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from haggler.agents.base import Player
from haggler.agents.roles import check_players, described
from haggler.errors import failure_reason
from haggler.games.episode import EpisodeResult, TurnListener, play_episode, role_records
from haggler.games.registry import make_game
from haggler.run.cast import Cast
from haggler.run.spec import PlaySpec, check_play_spec
from haggler.store.records import OutcomeRecord
from haggler.store.sqlite import Store

__all__ = ["PlayedGame", "play", "play_sync"]


@dataclass(frozen=True, slots=True)
class PlayedGame:
    run_id: str | None
    episode_id: str | None
    result: EpisodeResult


async def play(
    spec: PlaySpec | dict[str, object] | None = None,
    *,
    store: Store | None = None,
    run_id: str | None = None,
    listeners: Sequence[TurnListener] = (),
    players: Mapping[str, Player] | None = None,
) -> PlayedGame:
    """Play one game of `spec` (the offline default when None), recording it in `store`.

    `players` puts player objects in roles (Python only): `{"mediator": SplitTheDifference(
    "mediator")}`; they are checked against their seats like the spec's own.

    A model failure that outlasts its retries marks the stored game as failed and is raised;
    an interrupted game stays marked as failed too, never as finished.
    """
    if not isinstance(spec, PlaySpec):
        spec = check_play_spec(dict(spec or {}))
    game = make_game(spec.game, spec.rules)
    given = check_players(game, players)
    cast = Cast(spec, game, players=given)
    try:
        players = cast.players(spec.seed)
        moderator = cast.moderator
        if store is None:
            result = await play_episode(
                game,
                players,
                moderator=moderator,
                listeners=listeners,
                invalid_allowance=spec.invalid_allowance,
            )
            return PlayedGame(None, None, result)
        run_id = run_id or store.start_run("play", described(spec, given))
        roles = role_records(game, players)
        episode_id = store.start_episode(
            run_id,
            game=game.name,
            rules=game.settings(),
            roles=roles,
            seed=spec.seed,
        )
        try:
            result = await play_episode(
                game,
                players,
                moderator=moderator,
                listeners=[lambda turn: store.add_turn(episode_id, turn), *listeners],
                invalid_allowance=spec.invalid_allowance,
            )
        except BaseException as error:
            store.fail_episode(episode_id, failure_reason(error))
            raise
        store.finish_episode(episode_id, OutcomeRecord(**result.outcome.as_dict()), result.scores)
        return PlayedGame(run_id, episode_id, result)
    finally:
        await cast.aclose()


def play_sync(
    spec: PlaySpec | dict[str, object] | None = None,
    *,
    store: Store | None = None,
    listeners: Sequence[TurnListener] = (),
    players: Mapping[str, Player] | None = None,
) -> PlayedGame:
    """`play` for scripts without an event loop of their own."""
    return asyncio.run(play(spec, store=store, listeners=listeners, players=players))
