"""`mediated-balloon`: the balloon game with a mediator at the table.

Three parties: the seller, the buyer and a mediator. They speak seller, mediator, buyer,
mediator, ... ; the sides bargain as in the balloon game (offer, accept, reject, walk away)
and the mediator may only suggest a price to both (`[SUGGEST $X]`), which binds no one: a
deal is still one side's offer and the other's acceptance. The mediator scores 1 for a deal
and 0 without one; the sides score their surplus as in the balloon game.

Registered through the `haggler.games` entry-point group; its factory takes the balloon's
rules as keyword arguments (`mediated_balloon(max_exchanges=8)`), by haggler's one factory
convention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haggler.agents import Brief
from haggler.agents.vocabulary import BARGAINING, SUGGEST, Vocabulary
from haggler.games import BALLOON, BargainingGame, BargainingRules, Outcome
from haggler.games.base import Step

__all__ = ["MediatedBargainingGame", "mediated_balloon"]

MEDIATOR = "mediator"
_SUGGESTS = Vocabulary([SUGGEST])


class MediatedBargainingGame(BargainingGame):
    roles = ("seller", "buyer", MEDIATOR)

    @property
    def turn_order(self) -> tuple[str, ...]:
        return ("seller", MEDIATOR, "buyer", MEDIATOR)

    @property
    def max_turns(self) -> int:
        # Every exchange of the sides has a suggestion after each of their messages.
        return 4 * self.rules.max_exchanges

    @property
    def default_players(self) -> Mapping[str, str]:
        return {
            "seller": "rule:boulware",
            "buyer": "rule:toward-mediator",
            MEDIATOR: "role:split-the-difference",
        }

    def actions(self, role: str) -> Vocabulary:
        return _SUGGESTS if role == MEDIATOR else BARGAINING

    def brief(self, role: str) -> Brief:
        if role != MEDIATOR:
            return super().brief(role)
        r = self.rules
        return Brief(
            MEDIATOR,
            f"You mediate between a seller and a buyer of a {r.item}: the seller asked "
            f"${r.seller_opening:g} and the buyer offered ${r.buyer_opening:g}. Help them "
            f"reach a deal; you cannot make one yourself. Speak in one short sentence per "
            f"turn. {_SUGGESTS.help()}",
            {},
        )

    def apply(self, table: Any, role: str, action: Any) -> Step:
        if role == MEDIATOR:
            if action.price is None or self._offer_range_error(action.price):
                return Step(error=f"suggest a price between the openings, e.g. {SUGGEST.example}")
            return Step()
        return super().apply(table, role, action)

    def score(self, outcome: Outcome) -> dict[str, float]:
        sides = super().score(outcome)
        return {**sides, MEDIATOR: 1.0 if outcome.kind == "deal" else 0.0}


def mediated_balloon(**rules: Any) -> MediatedBargainingGame:
    """The balloon game with a mediator, with `rules` over the balloon's."""
    merged = BargainingRules.model_validate(BALLOON.model_dump() | rules)
    return MediatedBargainingGame(merged, name="mediated-balloon")


mediated_balloon.parameters = tuple(BargainingRules.model_fields)  # type: ignore[attr-defined]
