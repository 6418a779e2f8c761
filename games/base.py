"""What a game is to the rest of haggler: roles, private briefs, rules for actions, an outcome.

A game holds no per-episode state itself; `new_table()` makes the state of one episode and
`apply` moves it on, so one game object serves any number of concurrent episodes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haggler.agents.actions import Action
from haggler.agents.base import Brief, PublicMessage
from haggler.games.outcome import Outcome

__all__ = ["Game", "Step"]


@dataclass(frozen=True, slots=True)
class Step:
    """The result of applying one action: the game goes on, ends, or asks the speaker to retry."""

    outcome: Outcome | None = None
    # Why the action cannot stand, told privately to its speaker, who may try again.
    error: str | None = None


class Game(ABC):
    """A negotiation game. Subclasses are registered by name in `haggler.games.registry`."""

    name: str
    roles: tuple[str, ...]

    @property
    @abstractmethod
    def max_turns(self) -> int:
        """Generated messages allowed before the game ends without a deal."""

    @property
    @abstractmethod
    def facts(self) -> Mapping[str, Any]:
        """Public facts every role may know (the item, the opening prices)."""

    def settings(self) -> dict[str, Any]:
        """The game's configurable rules, as stored beside each episode."""
        return {}

    @abstractmethod
    def brief(self, role: str) -> Brief:
        """The private brief of `role`."""

    @abstractmethod
    def opening(self) -> list[PublicMessage]:
        """The scripted messages the game starts with."""

    @abstractmethod
    def first_speaker(self) -> str:
        """Who speaks first after the scripted opening."""

    def next_speaker(self, role: str) -> str:
        """Roles take turns in declaration order."""
        return self.roles[(self.roles.index(role) + 1) % len(self.roles)]

    @abstractmethod
    def new_table(self) -> Any:
        """The mutable state of one episode, after the scripted opening."""

    @abstractmethod
    def apply(self, table: Any, role: str, action: Action) -> Step:
        """Apply `role`'s `action` to `table` (in place) and say what follows."""

    def goal(self, role: str, last_price: float) -> str | None:
        """The target a coached `role` gets after a deal at `last_price` (None: no target)."""
        return None

    @abstractmethod
    def at_turn_limit(self, table: Any) -> Outcome:
        """The outcome when the turns run out."""

    @abstractmethod
    def score(self, outcome: Outcome) -> dict[str, float]:
        """Each role's surplus under `outcome`."""
