"""The unlearner role: it turns a forget request in words into a typed request, to be planned,
shown as a dry run and carried out by `haggler.memory.forgetting`.

    words -> Unlearner.plan -> UnlearnerPlan(request, cost) -> plan_forget -> describe_plan
          -> carry_out
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.requests import (
    EnvironmentRequest,
    Level,
    Mode,
    StateRequest,
    TrajectoryRequest,
)

if TYPE_CHECKING:
    from haggler.memory.forgetting.plan import ForgetPlan
    from haggler.store.sqlite import Store

__all__ = ["Request", "Unlearner", "UnlearnerPlan"]

Request: TypeAlias = StateRequest | TrajectoryRequest | EnvironmentRequest


@dataclass(frozen=True, slots=True)
class UnlearnerPlan:
    """A request in words as an unlearner read it, and what reading it cost.

    `request`'s scope names the memories' owners unless the words named other agents. `calls`,
    `tokens` and `cost_usd` are the model calls made (zero for the rule-based unlearner);
    `attempts` the replies read, so `attempts - 1` were refused and asked again.
    """

    words: str
    request: Request
    unlearner: str
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0

    def forget_plan(
        self, *, memories: Mapping[str, AgentMemory], store: Store | None = None
    ) -> ForgetPlan:
        """What carrying the request out would do (nothing changes): the dry run's plan."""
        from haggler.memory.forgetting import load_scope, plan_forget

        scope = load_scope(self.request, store=store, memories=memories)
        return plan_forget(self.request, memories=scope, store=store)


class Unlearner(ABC):
    """Reads forget requests in words. `label` names it in reports (`rule`, a model's name)."""

    label: str

    @abstractmethod
    async def plan(
        self,
        words: str,
        *,
        memories: Mapping[str, AgentMemory],
        store: Store | None = None,
        level: Level | None = None,
        mode: Mode | None = None,
    ) -> UnlearnerPlan:
        """The request `words` make over `memories` (and the store they live in).

        `level` constrains the reading (words that could be a fact or an environment are read
        at that level); `mode`, when given, is the mode of the request. Raises RequestError when
        the words cannot be read or are ambiguous; an unknown agent or a request that selects
        nothing is the caller's to decide (planning reports it).
        """
