"""How an episode ended: a deal at a price, no deal, or an invalid game."""

from __future__ import annotations

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

    @classmethod
    def deal(cls, price: float, by: str) -> Outcome:
        return cls("deal", "accepted", price, by)

    @classmethod
    def no_deal(cls, reason: str, by: str | None = None) -> Outcome:
        return cls("no_deal", reason, None, by)

    @classmethod
    def invalid(cls, reason: str, by: str | None = None, price: float | None = None) -> Outcome:
        return cls("invalid", reason, price, by)

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "reason": self.reason, "price": self.price, "by": self.by}

    def describe(self) -> str:
        if self.kind == "deal":
            return f"deal at {format_price(self.price)} ({self.by} accepted)"
        who = f" by {self.by}" if self.by else ""
        price = f" at {format_price(self.price)}" if self.price is not None else ""
        return f"{self.kind.replace('_', ' ')}: {self.reason.replace('_', ' ')}{price}{who}"
