"""What a role is: given what it may see, it returns its next message.

A `RoleView` is built by the episode for one role at a time and holds only that role's brief
and the public conversation; it is the whole of what a negotiator can know.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from haggler.agents.actions import Action
from haggler.llm.base import Completion

__all__ = ["Brief", "Negotiator", "PublicMessage", "Reply", "RoleMemory", "RoleView"]


@dataclass(frozen=True, slots=True)
class Brief:
    """What only `role` knows: the instructions its model reads and the private values in them."""

    role: str
    text: str
    # Values that must never reach another role's model (a cost, a budget).
    private: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublicMessage:
    """A message every role sees."""

    speaker: str
    text: str
    action: Action | None = None
    scripted: bool = False


@dataclass(frozen=True, slots=True)
class RoleMemory:
    """A role's own recollection of earlier rounds, as self-play hands it to the role."""

    # Earlier games and advice, rendered for a prompt under the memory's token budget.
    history: str = ""
    # The coach's advice, oldest first: the channel through which rule-based roles learn.
    advice: tuple[str, ...] = ()
    # The round's goal, e.g. "This time, sell for more than $16.", or None.
    goal: str | None = None


@dataclass(frozen=True, slots=True)
class RoleView:
    role: str
    brief: Brief
    public: tuple[PublicMessage, ...]
    facts: Mapping[str, Any]
    # Generated turns already taken by both sides, and the most the game allows.
    turn: int
    max_turns: int
    # Set when the role's previous attempt could not stand: told to it alone.
    correction: str | None = None
    # What the role remembers of earlier rounds (self-play); empty for a fresh role.
    memory: RoleMemory | None = None

    @property
    def turns_left(self) -> int:
        return self.max_turns - self.turn


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    # None for rule-based roles: they call no model.
    completion: Completion | None = None


class Negotiator(ABC):
    """A role in a game: the seller, the buyer, or any role a plug-in game declares."""

    role: str
    # What drove the role, as stored in transcripts: `rule:boulware`, `openai/gpt-4o`.
    label: str
    # The player's own instructions to its model, stored with its games; None: none.
    prompt: str | None = None

    @abstractmethod
    async def respond(self, view: RoleView) -> Reply:
        """The role's next message."""
