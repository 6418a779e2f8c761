"""How an episode ended: a deal (at a price, or on terms), no deal, or an invalid game."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from haggler.agents.prices import format_price

__all__ = ["Outcome", "OutcomeKind"]

OutcomeKind = Literal["deal", "no_deal", "invalid"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """`reason` says why in a few words: "accepted", "walk_away", "turn_limit", "unreadable"…"""

    kind: OutcomeKind
    reason: str
    price: float | None = None
    # The role whose move ended the game (the accepter, the one who walked, the unreadable one).
    by: str | None = None
    # What a deal on a package settled: one option per issue.
    terms: Mapping[str, str] | None = None

    @classmethod
    def deal(cls, price: float | None, by: str, terms: Mapping[str, str] | None = None) -> Outcome:
        return cls("deal", "accepted", price, by, dict(terms) if terms is not None else None)

    @classmethod
    def no_deal(cls, reason: str, by: str | None = None) -> Outcome:
        return cls("no_deal", reason, None, by)

    @classmethod
    def invalid(cls, reason: str, by: str | None = None, price: float | None = None) -> Outcome:
        return cls("invalid", reason, price, by)

    def as_dict(self) -> dict[str, object]:
        described: dict[str, object] = {
            "kind": self.kind,
            "reason": self.reason,
            "price": self.price,
            "by": self.by,
        }
        if self.terms is not None:
            described["terms"] = dict(self.terms)
        return described

    def describe(self) -> str:
        if self.kind == "deal" and self.price is None and self.terms:
            return f"deal on {' '.join(self.terms.values())} ({self.by} accepted last)"
        if self.kind == "deal":
            return f"deal at {format_price(self.price)} ({self.by} accepted)"
        who = f" by {self.by}" if self.by else ""
        price = f" at {format_price(self.price)}" if self.price is not None else ""
        return f"{self.kind.replace('_', ' ')}: {self.reason.replace('_', ' ')}{price}{who}"
