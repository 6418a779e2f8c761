"""Agents to probe: an agent of the store by name (its memory, and its model from the spec of
the self-play run that made it), or an agent an experiment made; and each as a target.

A target is the agent as it would play (`haggler.games.targets.AgentTarget`): its model —
or, for a rule-based agent, the offline responder over its own assembled context — and the
context its memory recalls. It can also be played against (in-game elicitation), with the
negotiator its model makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from haggler.errors import ConfigError
from haggler.games.base import Game
from haggler.memory import AgentMemory
from haggler.run.spec import RoleSpec, SelfPlaySpec

if TYPE_CHECKING:
    from haggler.agents.base import Negotiator
    from haggler.games.targets import AgentTarget
    from haggler.run.cast import Cast
    from haggler.store.records import RunRecord
    from haggler.store.sqlite import Store

__all__ = ["StoredAgent", "find_agent", "make_target", "model_of"]


@dataclass(frozen=True)
class StoredAgent:
    """An agent whose memory the store holds, and the self-play run that made it."""

    owner: str
    role: str
    run: RunRecord
    spec: SelfPlaySpec

    @property
    def role_spec(self) -> RoleSpec:
        from haggler.run.spec import DEFAULT_ROLES

        return self.spec.roles.get(self.role) or RoleSpec(
            model=DEFAULT_ROLES.get(self.role, "rule:linear")
        )


def find_agent(store: Store, name: str) -> StoredAgent:
    """The one agent `name` stands for (as `haggler memory` lists them), with the run whose
    spec says what model it runs on."""
    from pydantic import ValidationError

    from haggler.memory.forgetting import resolve_agents

    owners = resolve_agents([name], store=store, memories={})
    if len(owners) > 1:
        shown = ", ".join(owners[:3]) + (", …" if len(owners) > 3 else "")
        raise ConfigError(
            f"{name!r} names {len(owners)} agents ({shown}); give one agent's full name"
        )
    (owner,) = owners
    parts = owner.split("/")
    run = next(
        (
            r
            for r in reversed(store.runs())
            if r.kind == "selfplay" and parts[0] in (r.id, r.spec.get("agent"))
        ),
        None,
    )
    if run is None or len(parts) < 2:
        raise ConfigError(
            f"agent {owner!r}: no self-play run of this store made its memory, so its model is "
            "not known; probe agents that `haggler selfplay` made"
        )
    try:
        spec = SelfPlaySpec.model_validate(run.spec)
    except ValidationError:
        raise ConfigError(
            f"agent {owner!r}: the spec of run {run.id} cannot be read by this haggler"
        ) from None
    role = parts[-1]
    if role not in spec.coached_roles():
        raise ConfigError(f"agent {owner!r}: its run coached no {role!r}")
    return StoredAgent(owner, role, run, spec)


def model_of(role_spec: RoleSpec) -> str:
    """The model an agent runs on, as transcripts name it (`rule:boulware`, `openai/…`)."""
    return f"rule:{role_spec.tactic}" if role_spec.is_rule else role_spec.model


def make_target(
    label: str,
    memory: AgentMemory,
    game: Game,
    role: str,
    cast: Cast,
    *,
    budget: int,
) -> AgentTarget:
    """`memory`'s agent in `role` as the adversary meets it, on `cast`'s model for the role
    (the offline responder for a rule-based one), playable with the negotiator it makes."""
    from haggler.games.targets import AgentTarget

    role_spec = cast.roles[role]
    backend = None if role_spec.is_rule else cast.backend(role_spec)
    params: dict[str, Any] = {} if role_spec.is_rule else role_spec.generation()
    player: Callable[[int], Negotiator] = lambda seed: cast.players(seed)[role]  # noqa: E731
    return AgentTarget(
        label, memory, game, role, backend=backend, params=params, budget=budget,
        counter=cast.token_counter(role), player=player,
    )  # fmt: skip
