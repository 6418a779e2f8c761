"""What agents remember, with provenance: episodes, critic feedback and notes.

An `AgentMemory` belongs to one agent and may write through to a `haggler.store.Store`;
`build_context` renders it for a prompt under a token budget (its policy is in
`haggler.memory.context`); `haggler.memory.forgetting` forgets on request, at three levels
and in three modes. Memory knows nothing of games beyond the `Environment` tags it
stores.
"""

from haggler.memory.agent_memory import AgentMemory, UnknownMemoryItemError
from haggler.memory.context import TRUNCATION_MARKER, Recollection, build_context, render_items
from haggler.memory.items import KINDS, Environment, MemoryItem, MemoryKind
from haggler.memory.tokens import CharEstimate, TokenCounter, estimate_tokens

__all__ = [
    "KINDS",
    "TRUNCATION_MARKER",
    "AgentMemory",
    "CharEstimate",
    "Environment",
    "MemoryItem",
    "MemoryKind",
    "Recollection",
    "TokenCounter",
    "UnknownMemoryItemError",
    "build_context",
    "estimate_tokens",
    "render_items",
]
