"""A seat at a game's table, and what a role needs of one before it sits down.

`Seat` is what a role may know of a game before it plays: the game's name and roles, its
public facts, the role's own brief and the actions the role may take. A game makes it
(`Game.seat(role)`); a role reads it to say whether it can play there (`Player.cannot_play`).
`Requirements` is the usual way to say so: the roles it plays, the other roles it needs at
the table, the public facts it reads, the private values it respects and the actions it takes.
A rule-based role that would ignore a private value of its brief (a seller's floor it does
not know by name) must refuse the seat: playing on would sell below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from haggler.agents.base import Brief
    from haggler.agents.vocabulary import Vocabulary

__all__ = ["Requirements", "Seat"]


@dataclass(frozen=True, slots=True)
class Seat:
    """What a role is told of a game before it plays."""

    game: str
    role: str
    # Every role of the game, in the game's order.
    roles: tuple[str, ...]
    facts: Mapping[str, Any]
    brief: Brief
    # The actions this role may take.
    actions: Vocabulary
    max_turns: int


def _listed(names: Any) -> str:
    return ", ".join(sorted(str(n) for n in names)) or "none"


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a role needs of a seat. Empty requirements (the default) fit every seat, as an LLM
    player's do: it reads its brief whole and writes whatever tag the brief asks for."""

    # The roles it can play; None: any.
    roles: frozenset[str] | None = None
    # Other roles the game must have (a negotiator's rival, a mediator's two sides).
    others: frozenset[str] = frozenset()
    # Public facts it reads.
    facts: frozenset[str] = frozenset()
    # The private values it respects, by role (or for every role under "*"); None: it reads
    # its brief's text whole. A private value of its brief outside these is refused.
    private: Mapping[str, frozenset[str]] | None = field(default=None)
    # The action kinds it takes: the seat must allow every one.
    actions: frozenset[str] = frozenset()

    def unmet(self, seat: Seat) -> str | None:
        """Why this role cannot play `seat`, in a clause ("it needs ..."); None if it can."""
        if self.roles is not None and seat.role not in self.roles:
            return f"it plays {_listed(self.roles)}, not {seat.role}"
        missing = sorted(self.others - set(seat.roles) - {seat.role})
        if missing:
            return (
                f"it needs a {' and a '.join(missing)} at the table, and {seat.game} has "
                f"{_listed(seat.roles)}"
            )
        facts = sorted(self.facts - set(seat.facts))
        if facts:
            return (
                f"it needs the public facts {', '.join(facts)}, which {seat.game} does not give "
                f"(it gives {_listed(seat.facts)})"
            )
        if self.private is not None:
            known = self.private.get(seat.role, self.private.get("*", frozenset()))
            ignored = sorted(set(seat.brief.private) - set(known))
            if ignored:
                return (
                    f"the {seat.role}'s brief holds the private value {ignored[0]!r}, which it "
                    f"would ignore (it respects {_listed(known)})"
                )
        actions = sorted(self.actions - set(seat.actions.kinds))
        if actions:
            return (
                f"it takes the actions {', '.join(actions)}, which the {seat.role} of "
                f"{seat.game} cannot (its actions: {seat.actions.examples() or 'none'})"
            )
        return None
