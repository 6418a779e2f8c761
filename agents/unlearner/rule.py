"""The rule-based unlearner: the documented request grammar, offline, with no model and no
cost (docs/forgetting.md, "Requests in words")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from haggler.agents.unlearner.base import Unlearner, UnlearnerPlan
from haggler.agents.unlearner.grammar import read_request
from haggler.agents.unlearner.index import index_memories
from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.requests import Level, Mode

if TYPE_CHECKING:
    from haggler.store.sqlite import Store

__all__ = ["RuleUnlearner"]


class RuleUnlearner(Unlearner):
    label = "rule"

    async def plan(
        self,
        words: str,
        *,
        memories: Mapping[str, AgentMemory],
        store: Store | None = None,
        level: Level | None = None,
        mode: Mode | None = None,
    ) -> UnlearnerPlan:
        index = index_memories(memories, store)
        request = read_request(words, index, level=level, mode=mode)
        return UnlearnerPlan(words=words, request=request, unlearner=self.label)
