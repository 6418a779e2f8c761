"""A mediator that suggests splitting the difference: a haggler role in one file.

A role is a `Player`: it has a `role` and a `label`, says what it needs of a game
(`requires`), and answers what it may see (a `RoleView`) with a `Reply` whose text ends in
one of the actions its seat allows. This one sits between a seller and a buyer and, each
turn, suggests the price halfway between their latest offers: `[SUGGEST $X]`. It makes no
offer and accepts nothing; the sides decide.

Register it through the `haggler.roles` entry-point group (see this package's pyproject.toml)
and name it `role:split-the-difference` in a spec, or name it by where it lives:
`haggler_mediation.mediator:SplitTheDifference`. haggler calls its class as
`SplitTheDifference(role=..., seed=..., **params)`, the params coming from the spec.
"""

from __future__ import annotations

import math

from haggler.agents import Player, Reply, Requirements, RoleView

__all__ = ["SplitTheDifference"]


class SplitTheDifference(Player):
    """Suggests the midpoint of the two sides' latest offers, rounded to `step` dollars,
    leaning `lean` of the way from the midpoint towards the seller's offer (-1 to 1)."""

    # What it needs of a game: the mediator's seat, a seller and a buyer at the table, the
    # openings among the public facts, [SUGGEST $X] among its actions, and no private values
    # (a brief with one would be refused: it would ignore it).
    requires = Requirements(
        roles=frozenset({"mediator"}),
        others=frozenset({"seller", "buyer"}),
        facts=frozenset({"seller_opening", "buyer_opening"}),
        private={"*": frozenset()},
        actions=frozenset({"suggest"}),
    )

    def __init__(self, role: str = "mediator", *, step: float = 0.5, lean: float = 0.0) -> None:
        if not (isinstance(step, int | float) and math.isfinite(step) and step > 0):
            raise ValueError(f"step must be a positive number of dollars, got {step!r}")
        if not (isinstance(lean, int | float) and -1 <= lean <= 1):
            raise ValueError(f"lean must be a number from -1 to 1, got {lean!r}")
        self.role = role
        self.step = float(step)
        self.lean = float(lean)
        self.label = "split-the-difference" if not lean else f"split-the-difference({lean:+g})"

    async def respond(self, view: RoleView) -> Reply:
        ask = float(view.facts["seller_opening"])
        bid = float(view.facts["buyer_opening"])
        # The latest offer of each side among the messages this role may see.
        for message in view.public:
            action = message.action
            if action is None or action.name != "offer" or action.price is None:
                continue
            if message.speaker == "seller":
                ask = action.price
            elif message.speaker == "buyer":
                bid = action.price
        middle = (ask + bid) / 2 + self.lean * abs(ask - bid) / 2
        price = round(middle / self.step) * self.step
        return Reply(
            f"You are ${abs(ask - bid):.2f} apart; meet at ${price:.2f}? [SUGGEST ${price:.2f}]"
        )
