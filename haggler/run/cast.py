"""Casting a spec's roles: negotiators, moderator and critic, on shared model backends.

Every backend is opened once per spec, when the cast is made, so a missing key or a bad server
address is reported before the first call (every missing key at once, with who needs it);
players are then made fresh for each game (the rival of a self-play round remembers nothing) on
those same backends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from haggler.agents.base import Player
from haggler.agents.critic import Critic, LLMCritic, RuleCritic
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import LLMModerator, Moderator, RuleModerator
from haggler.agents.roles import is_plugin, make_player
from haggler.errors import ConfigError
from haggler.games.base import Game
from haggler.llm.base import Backend
from haggler.llm.limits import Limits
from haggler.llm.providers import (
    LOCAL_PREFIX,
    api_key_env_for,
    open_backend,
    split_model_name,
)
from haggler.llm.retry import RetryPolicy
from haggler.llm.tokenizers import tokenizer_for
from haggler.memory.tokens import CharEstimate, TokenCounter
from haggler.run.spec import (
    CriticSpec,
    LocalSpec,
    ModeratorSpec,
    PlaySpec,
    RoleSpec,
    SelfPlaySpec,
    UnlearnerSpec,
)

if TYPE_CHECKING:
    from haggler.agents.unlearner import Unlearner

__all__ = ["Cast", "MissingKeys", "missing_keys_message"]


@lru_cache(maxsize=16)
def _shared_limits(rate_limits_json: str) -> Limits:
    # One set of buckets per process for a given set of limits: every game a tournament plays
    # here draws on the same per-provider allowance.
    return Limits(json.loads(rate_limits_json))


ModelSpec = RoleSpec | ModeratorSpec | CriticSpec | UnlearnerSpec


class MissingKeys(ConfigError):
    """API keys that are not set: `missing` maps each variable to who needs it, as (role,
    model) pairs. One line names them all, so that a user sets them in one go."""

    def __init__(self, missing: Mapping[str, Sequence[tuple[str, str]]], first: ConfigError):
        self.missing = {env: list(needs) for env, needs in missing.items()}
        needs = [need for needs in self.missing.values() for need in needs]
        # A single one keeps the backend's own words (model and variable).
        super().__init__(str(first) if len(needs) == 1 else missing_keys_message(self.missing))


def missing_keys_message(missing: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    """`API keys missing: set A for seller (openai/gpt-4o); set B for buyer (…)`: the
    variables and who needs them, never a key's value."""
    parts = [
        f"set {env} for {', '.join(f'{who} ({model})' for who, model in needs)}"
        for env, needs in missing.items()
    ]
    return f"API key{'s' if len(parts) > 1 else ''} missing: {'; '.join(parts)}"


def _unset_key(model_spec: ModelSpec) -> str | None:
    """The variable `model_spec`'s key is read from, if it is unset; None when it is set or
    the model takes no key. Asked only after opening its backend failed, to say why."""
    if model_spec.is_rule or _is_plugin(model_spec) or model_spec.model.startswith(LOCAL_PREFIX):
        return None
    env = model_spec.api_key_env or api_key_env_for(split_model_name(model_spec.model).provider)
    if env is None or os.environ.get(env):
        return None
    return env


def _is_plugin(model_spec: ModelSpec) -> bool:
    return is_plugin(model_spec.model)


class Cast:
    """The roles of `spec` for `game`; close it (`await cast.aclose()`) to release backends."""

    def __init__(
        self,
        spec: PlaySpec,
        game: Game,
        *,
        rate_limits: Mapping[str, Mapping[str, float | None]] | None = None,
        players: Mapping[str, Player] | None = None,
    ) -> None:
        self.spec = spec
        self.game = game
        self._limits = (
            _shared_limits(json.dumps(rate_limits, sort_keys=True)) if rate_limits else None
        )
        defaults = {
            r: RoleSpec(model=game.default_players.get(r, "rule:linear")) for r in game.roles
        }
        self.roles: dict[str, RoleSpec] = defaults | spec.roles
        # Players given as objects (Python only): they play every game of this cast as they are.
        self.given: dict[str, Player] = dict(players or {})
        self._backends: dict[tuple[str, str | None, str | None, LocalSpec | None], Backend] = {}
        try:
            self._open_backends()
            self.moderator = self._moderator()
        except BaseException:
            # Nothing was played yet: release whatever did open before the failure.
            self._backends.clear()
            raise

    def _models(self) -> Iterator[tuple[str, ModelSpec]]:
        """Every model the spec names, by who uses it: roles, moderator, a named critic."""
        yield from self.roles.items()
        yield "moderator", self.spec.moderator
        spec = self.spec
        if isinstance(spec, SelfPlaySpec) and "ai" in spec.feedback and spec.critic is not None:
            yield "critic", spec.critic

    def _open_backends(self) -> None:
        missing: dict[str, list[tuple[str, str]]] = {}
        first: ConfigError | None = None
        for who, model_spec in self._models():
            if model_spec.is_rule or _is_plugin(model_spec) or who in self.given:
                continue
            try:
                self.backend(model_spec)
            except ConfigError as error:
                env = _unset_key(model_spec)
                if env is None:
                    raise
                missing.setdefault(env, []).append((who, model_spec.model))
                first = first or error
        if first is not None:
            raise MissingKeys(missing, first)

    def backend(self, model_spec: ModelSpec) -> Backend:
        """The shared backend for `model_spec`, opened on first use."""
        local = model_spec.local
        key = (model_spec.model, model_spec.api_base, model_spec.api_key_env, local)
        if key not in self._backends:
            retry = self.spec.retry
            self._backends[key] = open_backend(
                model_spec.model,
                api_base=model_spec.api_base,
                api_key_env=model_spec.api_key_env,
                local=local.settings() if local is not None else None,
                timeout_s=retry.timeout_s,
                retry_policy=RetryPolicy(
                    attempts=retry.attempts,
                    initial_wait=retry.initial_wait,
                    max_wait=retry.max_wait,
                ),
            )
            if self._limits is not None:
                self._backends[key].limiter = self._limits.for_model(model_spec.model)
        return self._backends[key]

    def players(self, seed: int) -> dict[str, Player]:
        """Fresh players for one game; rule-based ones and plug-ins are seeded with `seed`."""
        players: dict[str, Player] = {}
        for role, role_spec in self.roles.items():
            if role in self.given:
                players[role] = self.given[role]
            elif role_spec.is_rule or role_spec.is_plugin:
                players[role] = make_player(
                    role_spec.model,
                    role,
                    seed=seed,
                    params=role_spec.params,
                    seat=self.game.seat(role),
                )
            else:
                players[role] = LLMNegotiator(
                    role,
                    self.backend(role_spec),
                    params=role_spec.generation(),
                    prompt=role_spec.prompt,
                )
        return players

    def _moderator(self) -> Moderator:
        moderator = self.spec.moderator
        if moderator.is_rule:
            return RuleModerator()
        return LLMModerator(self.backend(moderator), params=moderator.generation())

    def critic(self, critic: CriticSpec | None, coached: str) -> Critic:
        """The critic of `coached`: as specified, or (the paper's choice) the player's own model."""
        chosen: ModelSpec = critic if critic is not None else self.roles[coached]
        if chosen.is_rule or _is_plugin(chosen) or (critic is None and coached in self.given):
            return RuleCritic()
        return LLMCritic(self.backend(chosen), params=chosen.generation())

    def token_counter(self, role: str) -> TokenCounter:
        """How `role`'s context budget is counted: its model's tokenizer where one is known
        offline, else an estimate (four characters a token for rule-based roles, three for
        models whose tokenizer is not at hand: negotiation text runs short of four)."""
        role_spec = self.roles[role]
        if role_spec.is_rule or role_spec.is_plugin or role in self.given:
            return CharEstimate()
        return tokenizer_for(role_spec.model) or CharEstimate(3)

    def unlearner(self, spec: UnlearnerSpec) -> Unlearner:
        """Who reads forget requests in words: the request grammar, or a model."""
        from haggler.agents.unlearner import LLMUnlearner, RuleUnlearner

        if spec.is_rule:
            return RuleUnlearner()
        return LLMUnlearner(self.backend(spec), params=spec.generation())

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
