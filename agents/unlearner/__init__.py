"""The unlearner role: forget requests in words turned into typed requests, by rule (the
grammar of docs/forgetting.md) or by any model answering a strict JSON schema."""

from haggler.agents.unlearner.base import Unlearner, UnlearnerPlan
from haggler.agents.unlearner.index import MemoryIndex, index_memories
from haggler.agents.unlearner.llm import LLMUnlearner
from haggler.agents.unlearner.rule import RuleUnlearner

__all__ = [
    "LLMUnlearner",
    "MemoryIndex",
    "RuleUnlearner",
    "Unlearner",
    "UnlearnerPlan",
    "index_memories",
]
