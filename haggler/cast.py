"""Casting a spec's roles: negotiators, moderator and critic, on shared model backends.

Every backend is opened once per spec, when the cast is made, so a missing key or a bad server
address is reported before the first call; players are then made fresh for each game (the
rival of a self-play round remembers nothing) on those same backends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache

from haggler.agents.base import Negotiator
from haggler.agents.critic import Critic, LLMCritic, RuleCritic
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import LLMModerator, Moderator, RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.games.base import Game
from haggler.llm.base import Backend
from haggler.llm.limits import Limits
from haggler.llm.providers import open_backend
from haggler.llm.retry import RetryPolicy
from haggler.spec import DEFAULT_ROLES, CriticSpec, LocalSpec, ModeratorSpec, PlaySpec, RoleSpec

__all__ = ["Cast"]


@lru_cache(maxsize=16)
def _shared_limits(rate_limits_json: str) -> Limits:
    # One set of buckets per process for a given set of limits: every game a tournament plays
    # here draws on the same per-provider allowance.
    return Limits(json.loads(rate_limits_json))


ModelSpec = RoleSpec | ModeratorSpec | CriticSpec


class Cast:
    """The roles of `spec` for `game`; close it (`await cast.aclose()`) to release backends."""

    def __init__(
        self,
        spec: PlaySpec,
        game: Game,
        *,
        rate_limits: Mapping[str, Mapping[str, float | None]] | None = None,
    ) -> None:
        self.spec = spec
        self.game = game
        self._limits = (
            _shared_limits(json.dumps(rate_limits, sort_keys=True)) if rate_limits else None
        )
        defaults = {r: RoleSpec(model=DEFAULT_ROLES.get(r, "rule:linear")) for r in game.roles}
        self.roles: dict[str, RoleSpec] = defaults | spec.roles
        self._backends: dict[tuple[str, str | None, str | None, LocalSpec | None], Backend] = {}
        try:
            for role_spec in self.roles.values():
                if not role_spec.is_rule:
                    self.backend(role_spec)
            self.moderator = self._moderator()
        except BaseException:
            # Nothing was played yet: release whatever did open before the failure.
            self._backends.clear()
            raise

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

    def players(self, seed: int) -> dict[str, Negotiator]:
        """Fresh negotiators for one game; rule-based ones are seeded with `seed`."""
        players: dict[str, Negotiator] = {}
        for role, role_spec in self.roles.items():
            if role_spec.is_rule:
                tactic_params, options = role_spec.rule_options()
                tactic = TACTICS.get(role_spec.tactic)(**tactic_params)
                players[role] = RuleNegotiator(
                    role, tactic, seed=seed, label=f"rule:{role_spec.tactic}", **options
                )
            else:
                players[role] = LLMNegotiator(
                    role, self.backend(role_spec), params=role_spec.generation()
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
        if chosen.is_rule:
            return RuleCritic()
        return LLMCritic(self.backend(chosen), params=chosen.generation())

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
