"""Playing one game from a spec: build the roles, open the models, play, store every turn."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from haggler.agents.base import Negotiator
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import LLMModerator, Moderator, RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.errors import ModelError
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult, TurnListener, play_episode
from haggler.games.registry import make_game
from haggler.llm.base import Backend
from haggler.llm.providers import open_backend
from haggler.llm.retry import RetryPolicy
from haggler.llm.secrets import redact
from haggler.spec import DEFAULT_ROLES, ModeratorSpec, PlaySpec, RoleSpec, check_play_spec
from haggler.store.records import OutcomeRecord, RoleRecord
from haggler.store.sqlite import Store

__all__ = ["PlayedGame", "play", "play_sync"]


@dataclass(frozen=True, slots=True)
class PlayedGame:
    run_id: str | None
    episode_id: str | None
    result: EpisodeResult


def _role_specs(spec: PlaySpec, game: Game) -> dict[str, RoleSpec]:
    defaults = {r: RoleSpec(model=DEFAULT_ROLES.get(r, "rule:linear")) for r in game.roles}
    return defaults | spec.roles


def _open_backend(spec: PlaySpec, model_spec: RoleSpec | ModeratorSpec) -> Backend:
    retry = spec.retry
    return open_backend(
        model_spec.model,
        api_base=model_spec.api_base,
        api_key_env=model_spec.api_key_env,
        timeout_s=retry.timeout_s,
        retry_policy=RetryPolicy(
            attempts=retry.attempts, initial_wait=retry.initial_wait, max_wait=retry.max_wait
        ),
    )


def build_players(spec: PlaySpec, game: Game, backends: list[Backend]) -> dict[str, Negotiator]:
    """One negotiator per role; every model backend is opened (and its key checked) here."""
    players: dict[str, Negotiator] = {}
    for role, role_spec in _role_specs(spec, game).items():
        if role_spec.is_rule:
            tactic_params, options = role_spec.rule_options()
            tactic = TACTICS.get(role_spec.tactic)(**tactic_params)
            players[role] = RuleNegotiator(
                role, tactic, seed=spec.seed, label=f"rule:{role_spec.tactic}", **options
            )
        else:
            backend = _open_backend(spec, role_spec)
            backends.append(backend)
            players[role] = LLMNegotiator(role, backend, params=role_spec.generation())
    return players


def build_moderator(spec: PlaySpec, backends: list[Backend]) -> Moderator:
    moderator = spec.moderator
    if moderator.is_rule:
        return RuleModerator()
    backend = _open_backend(spec, moderator)
    backends.append(backend)
    return LLMModerator(backend, params=moderator.generation())


async def play(
    spec: PlaySpec | dict[str, object] | None = None,
    *,
    store: Store | None = None,
    run_id: str | None = None,
    listeners: Sequence[TurnListener] = (),
) -> PlayedGame:
    """Play one game of `spec` (the offline default when None), recording it in `store`.

    A model failure that outlasts its retries marks the stored game as failed and is raised;
    an interrupted game stays marked as failed too, never as finished.
    """
    if not isinstance(spec, PlaySpec):
        spec = check_play_spec(dict(spec or {}))
    game = make_game(spec.game, spec.rules)
    backends: list[Backend] = []
    try:
        players = build_players(spec, game, backends)
        moderator = build_moderator(spec, backends)
        if store is None:
            result = await play_episode(
                game,
                players,
                moderator=moderator,
                listeners=listeners,
                invalid_allowance=spec.invalid_allowance,
            )
            return PlayedGame(None, None, result)
        run_id = run_id or store.start_run("play", spec.model_dump(mode="json"))
        roles = {
            role: RoleRecord(model=player.label, brief=brief.text, private=dict(brief.private))
            for role, player in players.items()
            for brief in [game.brief(role)]
        }
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
        except ModelError as error:
            store.fail_episode(episode_id, redact(str(error)))
            raise
        except BaseException:
            store.fail_episode(episode_id, "interrupted before the game ended")
            raise
        store.finish_episode(episode_id, OutcomeRecord(**result.outcome.as_dict()), result.scores)
        return PlayedGame(run_id, episode_id, result)
    finally:
        for backend in backends:
            await backend.aclose()


def play_sync(
    spec: PlaySpec | dict[str, object] | None = None,
    *,
    store: Store | None = None,
    listeners: Sequence[TurnListener] = (),
) -> PlayedGame:
    """`play` for scripts without an event loop of their own."""
    return asyncio.run(play(spec, store=store, listeners=listeners))
