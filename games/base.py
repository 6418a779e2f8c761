"""What a game is to the rest of haggler: its parties, their private briefs, its turn order,
its actions and their rules, and how an outcome is scored.

A game holds no per-episode state itself; `new_table()` makes the state of one episode and
`apply` moves it on, so one game object serves any number of concurrent episodes. Turn order
is read from the episode's state (`TurnState`): by default the roles take turns along
`turn_order`, and a game whose order depends on what was said overrides `next_speaker` (and
`turns_left`, which tells each role how many turns it still has).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haggler.agents.actions import Action
from haggler.agents.base import Brief, PublicMessage
from haggler.agents.seat import Seat
from haggler.agents.vocabulary import BARGAINING, Vocabulary
from haggler.games.outcome import Outcome

__all__ = ["Game", "Step", "TurnState"]


@dataclass(frozen=True, slots=True)
class Step:
    """The result of applying one action: the game goes on, ends, or asks the speaker to retry."""

    outcome: Outcome | None = None
    # Why the action cannot stand, told privately to its speaker, who may try again.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TurnState:
    """Where an episode stands between two turns: what routing may read."""

    # Generated messages that stood so far (the scripted opening not counted).
    turn: int
    # Who spoke the last of them; None before the first.
    last: str | None
    # The conversation so far, the scripted opening included.
    public: tuple[PublicMessage, ...]
    # The game's own state of this episode (`new_table()`), read-only here.
    table: Any


class Game(ABC):
    """A negotiation game. Registered by name in `haggler.games.registry.GAMES` (or through
    the `haggler.games` entry-point group); `haggler.games.check.check_game` checks one."""

    name: str
    # Its parties, in order: every role a player must be cast in.
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

    @property
    def default_players(self) -> Mapping[str, str]:
        """Who plays each role when a spec names nobody, as a spec would name them
        (`rule:boulware`, `role:NAME`, `package.module:Factory`); a role left out gets
        `rule:linear`."""
        return {}

    @abstractmethod
    def brief(self, role: str) -> Brief:
        """The private brief of `role`."""

    def actions(self, role: str) -> Vocabulary:
        """The actions `role` may take: by default the four of bargaining."""
        return BARGAINING

    @property
    def vocabulary(self) -> Vocabulary:
        """Every action of the game: what a message's tag is read against."""
        merged = self.actions(self.roles[0])
        for role in self.roles[1:]:
            merged = merged | self.actions(role)
        return merged

    def may_see(self, role: str, message: PublicMessage) -> bool:
        """Whether `role` sees `message` (its own always): by default every role sees all."""
        return True

    def seat(self, role: str) -> Seat:
        """What `role` is told of this game before it plays."""
        return Seat(
            game=self.name,
            role=role,
            roles=tuple(self.roles),
            facts=self.facts,
            brief=self.brief(role),
            actions=self.actions(role),
            max_turns=self.max_turns,
        )

    @abstractmethod
    def opening(self) -> list[PublicMessage]:
        """The scripted messages the game starts with."""

    @property
    def turn_order(self) -> tuple[str, ...]:
        """Who speaks, one generated turn after another, from the first speaker on; the
        sequence repeats. By default the roles in declaration order."""
        return tuple(self.roles)

    def first_speaker(self) -> str:
        """Who speaks first after the scripted opening."""
        return self.turn_order[0]

    def next_speaker(self, state: TurnState) -> str:
        """Who speaks after the message that brought the episode to `state`: by default the
        next along `turn_order`."""
        order = self.turn_order
        return order[state.turn % len(order)]

    def turns_left(self, role: str, state: TurnState) -> int:
        """How many turns `role` still has from `state` on (the one about to be taken
        included), by `turn_order`. A game that overrides `next_speaker` says its own."""
        order = self.turn_order
        return sum(1 for t in range(state.turn, self.max_turns) if order[t % len(order)] == role)

    @abstractmethod
    def new_table(self) -> Any:
        """The mutable state of one episode, after the scripted opening."""

    @abstractmethod
    def apply(self, table: Any, role: str, action: Action) -> Step:
        """Apply `role`'s `action` to `table` (in place) and say what follows. The episode has
        already checked that `action` is one `role` may take (`actions(role)`)."""

    def goal(self, role: str, last_price: float) -> str | None:
        """The target a coached `role` gets after a deal at `last_price` (None: no target)."""
        return None

    @abstractmethod
    def at_turn_limit(self, table: Any) -> Outcome:
        """The outcome when the turns run out."""

    @abstractmethod
    def score(self, outcome: Outcome) -> dict[str, float]:
        """Each role's surplus under `outcome`, measured from what no deal gives it: a role
        that respects its private values never agrees to a deal that scores it below the
        no-deal score (`check_role` holds players to that)."""
