"""The bargaining game of the seed paper: a seller and a buyer haggle over one item.

Defaults are the paper's balloon (cost $8, seller opens at $20, buyer at $10, at most ten
exchanges); `diamond` is its expensive variant. A deal needs an offer from one side and the
other side's acceptance of that same price, and stands only strictly between the openings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from haggler.agents.actions import ACTION_HELP, Action, ActionKind, format_action
from haggler.agents.base import Brief, PublicMessage
from haggler.agents.prices import format_price
from haggler.games.base import Game, Step
from haggler.games.outcome import Outcome

__all__ = ["BALLOON", "DIAMOND", "BargainingGame", "BargainingRules"]

SELLER, BUYER = "seller", "buyer"
# Prices within half a cent are the same price: "$15" accepts an offer of "$15.00".
_SAME_PRICE = 0.005
# An offer above this many times the seller's opening is noise, not a move: the message cannot
# stand. (Offers a little outside the openings stay legal; accepting one makes no deal.)
_OFFER_CEILING = 100


class BargainingRules(BaseModel):
    """The configurable facts of a bargaining game."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str = Field("balloon", min_length=1)
    # Finite prices only: a NaN or infinite price would make every comparison lie.
    seller_opening: float = Field(20.0, gt=0, allow_inf_nan=False)
    buyer_opening: float = Field(10.0, ge=0, allow_inf_nan=False)
    seller_cost: float = Field(8.0, ge=0, allow_inf_nan=False)
    max_exchanges: int = Field(10, ge=1, le=1000, strict=True)
    # The paper's buyer has no budget; one can be set to give the buyer a secret of its own.
    buyer_budget: float | None = Field(None, gt=0, allow_inf_nan=False)

    # Field validators see the fields declared before them, so each error names its own field.
    @field_validator("buyer_opening")
    @classmethod
    def _below_the_ask(cls, value: float, info: ValidationInfo) -> float:
        ask = info.data.get("seller_opening")
        if ask is not None and value >= ask:
            raise ValueError(
                f"buyer_opening ({value:g}) must be below seller_opening ({ask:g}): "
                f"a deal has to fit strictly between them"
            )
        return value

    @field_validator("seller_cost")
    @classmethod
    def _below_the_opening(cls, value: float, info: ValidationInfo) -> float:
        ask = info.data.get("seller_opening")
        if ask is not None and value >= ask:
            raise ValueError(
                f"seller_cost ({value:g}) must be below seller_opening ({ask:g}), "
                f"or the seller can never profit"
            )
        return value

    @field_validator("buyer_budget")
    @classmethod
    def _above_the_bid(cls, value: float | None, info: ValidationInfo) -> float | None:
        bid = info.data.get("buyer_opening")
        if value is not None and bid is not None and value <= bid:
            raise ValueError(
                f"buyer_budget ({value:g}) must be above buyer_opening ({bid:g}), "
                f"or no valid deal fits the budget"
            )
        return value


BALLOON = BargainingRules()
DIAMOND = BargainingRules(item="diamond", seller_cost=50, seller_opening=2000, buyer_opening=500)


@dataclass(slots=True)
class _Table:
    # The latest offer each side has on the table.
    offers: dict[str, float | None] = field(default_factory=dict)


_RIVAL = {SELLER: BUYER, BUYER: SELLER}


class BargainingGame(Game):
    roles = (SELLER, BUYER)

    def __init__(self, rules: BargainingRules = BALLOON, *, name: str = "balloon") -> None:
        self.rules = rules
        self.name = name

    @property
    def max_turns(self) -> int:
        return 2 * self.rules.max_exchanges

    @property
    def facts(self) -> Mapping[str, Any]:
        r = self.rules
        return {
            "item": r.item,
            "seller_opening": r.seller_opening,
            "buyer_opening": r.buyer_opening,
            "max_turns": self.max_turns,
        }

    def settings(self) -> dict[str, Any]:
        return self.rules.model_dump()

    @property
    def default_players(self) -> Mapping[str, str]:
        # A firm seller against a steady buyer: the offline game of `haggler play`.
        return {SELLER: "rule:boulware", BUYER: "rule:linear"}

    def brief(self, role: str) -> Brief:
        r = self.rules
        if role == SELLER:
            return Brief(
                SELLER,
                f"You are selling a {r.item}. It cost you {format_price(r.seller_cost)}, and you opened "
                f"at {format_price(r.seller_opening)}. The buyer offered {format_price(r.buyer_opening)}. Sell it for "
                f"as high a price as you can. Speak in one short sentence per turn. "
                f"{ACTION_HELP}",
                {"cost": r.seller_cost},
            )
        if role == BUYER:
            budget = (
                f" You cannot pay more than {format_price(r.buyer_budget)}."
                if r.buyer_budget is not None
                else ""
            )
            return Brief(
                BUYER,
                f"You want to buy a {r.item}. The seller asked {format_price(r.seller_opening)} and you "
                f"offered {format_price(r.buyer_opening)}. Buy it for as low a price as you can.{budget} "
                f"Speak in one short sentence per turn. {ACTION_HELP}",
                {} if r.buyer_budget is None else {"budget": r.buyer_budget},
            )
        raise KeyError(f"bargaining has roles {self.roles}, not {role!r}")

    def opening(self) -> list[PublicMessage]:
        r = self.rules
        ask = Action(ActionKind.OFFER, r.seller_opening)
        bid = Action(ActionKind.OFFER, r.buyer_opening)
        return [
            PublicMessage(
                SELLER,
                f"This is a good {r.item} and its price is {format_price(r.seller_opening)}. "
                f"{format_action(ask)}",
                ask,
                scripted=True,
            ),
            PublicMessage(
                BUYER,
                f"Would you sell it for {format_price(r.buyer_opening)}? {format_action(bid)}",
                bid,
                scripted=True,
            ),
        ]

    def first_speaker(self) -> str:
        return SELLER

    def new_table(self) -> _Table:
        return _Table({SELLER: self.rules.seller_opening, BUYER: self.rules.buyer_opening})

    def apply(self, table: _Table, role: str, action: Action) -> Step:
        other = _RIVAL[role]
        if action.kind is ActionKind.OFFER:
            if action.price is None:
                return Step(error="an offer needs a price, e.g. [OFFER $15]")
            error = self._offer_range_error(action.price)
            if error is not None:
                return Step(error=error)
            table.offers[role] = action.price
            return Step()
        if action.kind is ActionKind.REJECT:
            return Step()
        if action.kind is ActionKind.WALK_AWAY:
            return Step(outcome=Outcome.no_deal("walk_away", by=role))
        if action.kind is not ActionKind.ACCEPT:
            # A kind a subclass added to the vocabulary and did not rule on: never a deal.
            return Step(error=f"{self.name} has no rule for {action.name}")
        standing = table.offers.get(other)
        if standing is None:
            return Step(error=f"the {other} has no offer on the table to accept")
        if action.price is not None and not abs(action.price - standing) <= _SAME_PRICE:
            return Step(
                error=(
                    f"you accepted {format_price(action.price)} but the {other}'s offer is {format_price(standing)}; "
                    f"accept {format_price(standing)} or make an offer of your own"
                )
            )
        if not self.rules.buyer_opening < standing < self.rules.seller_opening:
            return Step(outcome=Outcome.invalid("price_out_of_range", by=role, price=standing))
        return Step(outcome=Outcome.deal(standing, by=role))

    def _offer_range_error(self, price: float) -> str | None:
        """Why `price` is no offer in this game, or None: a price is finite and in range."""
        r = self.rules
        ceiling = _OFFER_CEILING * r.seller_opening
        if math.isfinite(price) and 0 <= price <= ceiling:
            return None
        example = format_price(round((r.buyer_opening + r.seller_opening) / 2, 2))
        return (
            f"{format_price(price)} is no price for a {r.item}: offer between $0 and "
            f"{format_price(ceiling)}, e.g. [OFFER {example}]"
        )

    def goal(self, role: str, last_price: float) -> str | None:
        # The paper's target: beat the price of the last round.
        if role == SELLER:
            return (
                f"This time, sell the {self.rules.item} for more than {format_price(last_price)}."
            )
        return f"This time, buy the {self.rules.item} for less than {format_price(last_price)}."

    def at_turn_limit(self, table: _Table) -> Outcome:
        return Outcome.no_deal("turn_limit")

    def score(self, outcome: Outcome) -> dict[str, float]:
        if outcome.kind != "deal" or outcome.price is None:
            return {SELLER: 0.0, BUYER: 0.0}
        r = self.rules
        # With no budget, the buyer's gain is what it saved on the seller's asking price.
        ceiling = r.buyer_budget if r.buyer_budget is not None else r.seller_opening
        return {SELLER: outcome.price - r.seller_cost, BUYER: ceiling - outcome.price}
