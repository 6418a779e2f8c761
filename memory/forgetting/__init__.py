"""Forgetting on request, at three levels (a fact, a trajectory, an environment), in three
modes (exact, redact, rederive): plan it, look at the plan (a dry run), carry it out.

    request -> plan_forget -> ForgetPlan (dry run: counts, samples) -> carry_out -> ForgetResult

`forget` does all three for agents whose memory is in a store (or already loaded). The modes'
guarantees are stated in `haggler.memory.forgetting.requests`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.dry_run import describe_plan
from haggler.memory.forgetting.execute import ForgetResult, Rederived, Rederiver, Where, carry_out
from haggler.memory.forgetting.plan import (
    ForgetPlan,
    OwnerPlan,
    RecordPlan,
    plan_forget,
    resolve_agents,
)
from haggler.memory.forgetting.requests import (
    LEVELS,
    MODES,
    PLACEHOLDER,
    EnvironmentRequest,
    ForgetRequest,
    Level,
    Mode,
    NameFact,
    PatternFact,
    PhraseFact,
    Scope,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
    parse_request,
)

if TYPE_CHECKING:
    from haggler.store.sqlite import Store

__all__ = [
    "LEVELS",
    "MODES",
    "PLACEHOLDER",
    "EnvironmentRequest",
    "ForgetPlan",
    "ForgetRequest",
    "ForgetResult",
    "Level",
    "Mode",
    "NameFact",
    "OwnerPlan",
    "PatternFact",
    "PhraseFact",
    "RecordPlan",
    "Rederived",
    "Rederiver",
    "Scope",
    "StateRequest",
    "TrajectoryRequest",
    "ValueFact",
    "Where",
    "carry_out",
    "describe_plan",
    "forget",
    "load_agents",
    "load_scope",
    "parse_request",
    "plan_forget",
    "resolve_agents",
]

Request = StateRequest | TrajectoryRequest | EnvironmentRequest


def load_scope(
    request: Request,
    *,
    store: Store | None,
    memories: Mapping[str, AgentMemory] | None = None,
) -> dict[str, AgentMemory]:
    """The memories of every agent `request` covers: those given, the rest loaded from
    `store`."""
    return load_agents(request.scope.agents, store=store, memories=memories)


def load_agents(
    names: Sequence[str],
    *,
    store: Store | None,
    memories: Mapping[str, AgentMemory] | None = None,
) -> dict[str, AgentMemory]:
    """The memories of the agents `names` stand for (see `resolve_agents`): those given, the
    rest loaded from `store`."""
    given = dict(memories or {})
    owners = resolve_agents(names, store=store, memories=given)
    loaded: dict[str, AgentMemory] = {}
    for owner in owners:
        if owner in given:
            loaded[owner] = given[owner]
        else:
            assert store is not None  # resolve_agents found it there
            loaded[owner] = AgentMemory.load(store, owner)
    return loaded


async def forget(
    request: Request,
    *,
    store: Store | None = None,
    memories: Mapping[str, AgentMemory] | None = None,
    rederive: Rederiver | None = None,
    erase: bool = True,
    vacuum: bool = False,
    where: Where | None = None,
) -> ForgetResult:
    """Plan `request` and carry it out over the agents it covers."""
    scope = load_scope(request, store=store, memories=memories)
    plan = plan_forget(request, memories=scope, store=store)
    return await carry_out(
        plan, memories=scope, store=store, rederive=rederive, erase=erase, vacuum=vacuum,
        where=where,
    )  # fmt: skip
