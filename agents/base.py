"""What a role is: given what it may see, it returns its next message.

A `RoleView` is built by the episode for one role at a time and holds only that role's brief
and the messages the game lets it see; it is the whole of what a player can know. A `Player`
declares what it needs of a game (`requires`, `cannot_play`) and answers a view with a `Reply`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from haggler.agents.actions import Action
from haggler.agents.seat import Requirements, Seat
from haggler.llm.base import Completion

__all__ = [
    "Brief",
    "Negotiator",
    "Player",
    "PublicMessage",
    "Reply",
    "Requirements",
    "RoleMemory",
    "RoleView",
    "Seat",
]


@dataclass(frozen=True, slots=True)
class Brief:
    """What only `role` knows: the instructions its model reads and the private values in them."""

    role: str
    text: str
    # Values that must never reach another role's model (a cost, a budget).
    private: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublicMessage:
    """A message of the conversation: every role sees it unless the game says otherwise
    (`Game.may_see`)."""

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
    # Generated turns already taken by every role, and the most the game allows.
    turn: int
    max_turns: int
    # Set when the role's previous attempt could not stand: told to it alone.
    correction: str | None = None
    # What the role remembers of earlier rounds (self-play); empty for a fresh role.
    memory: RoleMemory | None = None
    # Every role at the table, in the game's order (empty: not told, a two-party game).
    roles: tuple[str, ...] = ()
    # Turns this role still has, this one included, by the game's turn order (None: not
    # told; two alternating parties then share what is left).
    own_turns_left: int | None = None

    @property
    def turns_left(self) -> int:
        return self.max_turns - self.turn

    @property
    def my_turns_left(self) -> int:
        """Turns this role still has, this one included."""
        if self.own_turns_left is not None:
            return self.own_turns_left
        return -(-self.turns_left // 2)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    # None for rule-based roles: they call no model.
    completion: Completion | None = None


class Player(ABC):
    """Who plays a role in a game: the seller, the buyer, a mediator, or any role a plug-in
    game declares. Plug-in roles subclass it (see docs/plugins.md)."""

    role: str
    # What drove the role, as stored in transcripts: `rule:boulware`, `openai/gpt-4o`.
    label: str
    # The player's own instructions to its model, stored with its games; None: none.
    prompt: str | None = None
    # What it needs of a game; the default fits every seat (it reads its brief whole).
    requires: ClassVar[Requirements] = Requirements()

    def cannot_play(self, seat: Seat) -> str | None:
        """Why it cannot play `seat` (a clause such as "it needs the public facts ..."), or
        None when it can. Asked before any game is played: a spec that casts it where it
        cannot play is refused in one line."""
        return self.requires.unmet(seat)

    @abstractmethod
    async def respond(self, view: RoleView) -> Reply:
        """The role's next message."""


# The name roles had when every role negotiated; kept for code written against it.
Negotiator = Player
