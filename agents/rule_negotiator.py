"""The offline default: a bargaining negotiator driven by a concession tactic.

It reads only what its `RoleView` holds (its brief's private values, the public facts and
the public conversation) and answers with a sentence ending in an action tag, like a model.
It says what it needs of a game (`requires`): to be the seller or the buyer, with the other
at the table; the public facts `seller_opening` and `buyer_opening`; offers and acceptances
among its actions; and of private values, only a seller's `cost` and a buyer's `budget`,
which it never passes. A game that gives it any other private value is refused before it is
played: it would ignore the value, and sell below a floor it does not know by name.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from haggler.agents.actions import Action, ActionKind, format_action
from haggler.agents.advice import read_advice
from haggler.agents.base import Player, Reply, RoleView
from haggler.agents.phrasing import sentence
from haggler.agents.recollection import RivalLimit, remembered_limit
from haggler.agents.seat import Requirements
from haggler.agents.tactics import Position, Tactic

__all__ = ["RuleNegotiator"]

SELLER, BUYER = "seller", "buyer"
_RIVAL = {SELLER: BUYER, BUYER: SELLER}
# A mediator's move: a price put to both sides (see haggler.agents.vocabulary.SUGGEST).
_SUGGEST = "suggest"


class RuleNegotiator(Player):
    """A seller or buyer that concedes by `tactic` and accepts once the rival beats its next offer.

    `reserve_share` places the walk-away price inside the range between the two openings, from
    the negotiator's own side: 0.25 means a seller will not go below a quarter of the way up
    from the buyer's opening (the buyer, mirrored); `jitter` moves it by up to that much per
    seed, and makes the tactic up to about 20% more or less patient (with the default 0.05). `plain_text` drops the action tags, so the free-text parser (or an LLM moderator)
    has to read the prose.

    It learns from what its memory recalls, afresh each turn: the coach's advice moves its
    tactic (`haggler.agents.advice`), and a rival's limit stated in a remembered game ("my
    budget is $14") sets its walk-away price (`haggler.agents.recollection`), unless
    `remembered_limits` is False (then it learns from advice alone).

    Its own offers and its rival's count; a third party's suggestions reach its tactic as
    `Position.suggestions`, which the built-in tactics leave aside.
    """

    requires = Requirements(
        roles=frozenset({SELLER, BUYER}),
        others=frozenset({SELLER, BUYER}),
        facts=frozenset({"seller_opening", "buyer_opening"}),
        private={SELLER: frozenset({"cost"}), BUYER: frozenset({"budget"})},
        actions=frozenset({ActionKind.OFFER.value, ActionKind.ACCEPT.value}),
    )

    def __init__(
        self,
        role: str,
        tactic: Tactic,
        *,
        seed: int = 0,
        reserve_share: float = 0.25,
        jitter: float = 0.05,
        plain_text: bool = False,
        label: str | None = None,
        remembered_limits: bool = True,
    ) -> None:
        if role not in _RIVAL:
            raise ValueError(f"rule-based negotiators play seller or buyer, not {role!r}")
        if not _number_in(reserve_share, 0.0, 1.0):
            raise ValueError(f"reserve_share must be a number within [0, 1], got {reserve_share!r}")
        if not _number_in(jitter, 0.0, 0.5):
            raise ValueError(f"jitter must be a number within [0, 0.5], got {jitter!r}")
        if not isinstance(plain_text, bool):
            raise ValueError(f"plain_text must be true or false, got {plain_text!r}")
        if not isinstance(remembered_limits, bool):
            raise ValueError(f"remembered_limits must be true or false, got {remembered_limits!r}")
        self.remembered_limits = remembered_limits
        self.role = role
        self.tactic = tactic
        self.plain_text = plain_text
        self.label = label or f"rule:{tactic.name}"
        self._rng = random.Random(f"{seed}:{role}")
        # Seeds differ in where the walk-away price sits and in how patient the tactic is, so
        # repeated games spread like a population of negotiators rather than replaying one.
        shift = self._rng.uniform(-jitter, jitter) if jitter else 0.0
        self.reserve_share = min(1.0, max(0.0, reserve_share + shift))
        if jitter:
            self.tactic = tactic.firmer(math.exp(self._rng.uniform(-4 * jitter, 4 * jitter)))

    async def respond(self, view: RoleView) -> Reply:
        action = self.decide(view)
        text = sentence(
            self.role,
            action.kind.value,
            action.price,
            str(view.facts.get("item", "item")),
            self._rng,
            self.plain_text,
        )
        if not self.plain_text:
            text = f"{text} {format_action(action)}"
        return Reply(text)

    def decide(self, view: RoleView) -> Action:
        """The action this negotiator takes now."""
        low, high = float(view.facts["buyer_opening"]), float(view.facts["seller_opening"])
        tick = _tick(high - low)
        # Own direction: +price for the seller, -price for the buyer, so "more" is better.
        sign = 1.0 if self.role == SELLER else -1.0
        tactic, share = self.tactic, self.reserve_share
        if view.memory is not None and view.memory.advice:
            # Learning: the coach's words, and nothing else, move the tactic's parameters.
            adjustment = read_advice(view.memory.advice, self.role)
            tactic = adjustment.tactic(tactic)
            share = adjustment.reserve_share(share, final=view.turns_left <= 4)
        reserve = self._reserve(view.brief.private, share, low, high, tick)
        if self.remembered_limits and view.memory is not None and view.memory.history:
            # Learning from remembered games: what a rival like the next one said it could
            # pay (or take) moves the walk-away price, and the offers made towards it.
            limit = remembered_limit(view.memory.history, self.role, view.memory.advice)
            if limit is not None:
                reserve = self._informed(reserve, limit, view.brief.private, low, high, tick)
        own = [
            m.action.price for m in view.public if m.speaker == self.role and _is_offer(m.action)
        ]
        # Its rival is the other side, not whoever else speaks: a mediator makes no offers.
        rival_role = _RIVAL[self.role]
        rival = [
            m.action.price for m in view.public if m.speaker == rival_role and _is_offer(m.action)
        ]
        suggested = [
            m.action.price
            for m in view.public
            if m.action is not None and m.action.kind == _SUGGEST and m.action.price is not None
        ]
        opening = high if self.role == SELLER else low
        done = sum(1 for m in view.public if m.speaker == self.role and not m.scripted)
        mine_left = view.my_turns_left
        position = Position(
            opening=sign * opening,
            reserve=sign * reserve,
            progress=(done + 1) / max(1, done + mine_left),
            own_offers=tuple(sign * p for p in own if p is not None),
            rival_offers=tuple(sign * p for p in rival if p is not None),
            suggestions=tuple(sign * p for p in suggested),
        )
        proposal = sign * tactic.next_offer(position)
        proposal = self._tidy(proposal, own[-1] if own else opening, reserve, low, high, tick)

        standing = rival[-1] if rival else None
        if standing is not None and low < standing < high:
            if sign * standing >= sign * proposal:
                return Action(ActionKind.ACCEPT, standing)
            if mine_left <= 1 and sign * standing >= sign * reserve:
                return Action(ActionKind.ACCEPT, standing)
        if mine_left <= 1:
            return Action(ActionKind.WALK_AWAY)
        return Action(ActionKind.OFFER, proposal)

    def _reserve(
        self, private: Mapping[str, Any], share: float, low: float, high: float, tick: float
    ) -> float:
        # Rounded inwards to the price grid: offers then never pass the reserve, and the
        # negotiator never says its exact cost or budget out loud.
        if self.role == SELLER:
            floor = low + share * (high - low)
            cost = private.get("cost")
            if cost is not None:
                floor = max(floor, float(cost) + tick)
            return math.ceil(round(floor / tick, 6)) * tick
        ceiling = high - share * (high - low)
        budget = private.get("budget")
        if budget is not None:
            ceiling = min(ceiling, float(budget))
        return math.floor(round(ceiling / tick, 6)) * tick

    def _informed(
        self,
        reserve: float,
        limit: RivalLimit,
        private: Mapping[str, Any],
        low: float,
        high: float,
        tick: float,
    ) -> float:
        """The walk-away price given a rival's remembered limit (see the recollection module):
        a stated limit becomes it, a price the rival could never meet bounds it; always on the
        price grid, inside the openings, and never past the negotiator's own cost or budget."""
        inside_low, inside_high = low + tick, high - tick
        if self.role == SELLER:
            if limit.value is not None:
                # A price such buyers can pay: rounded down to the grid.
                reserve = math.floor(round(limit.value / tick, 6)) * tick
            if limit.beyond is not None:
                # The highest grid price below what they could never pay.
                reserve = min(reserve, (math.ceil(round(limit.beyond / tick, 6)) - 1) * tick)
            reserve = min(max(reserve, inside_low), inside_high)
            cost = private.get("cost")
            if cost is not None:
                reserve = max(reserve, math.ceil(round((float(cost) + tick) / tick, 6)) * tick)
            return round(reserve, 6)
        if limit.value is not None:
            # A price such sellers take: rounded up to the grid.
            reserve = math.ceil(round(limit.value / tick, 6)) * tick
        if limit.beyond is not None:
            reserve = max(reserve, (math.floor(round(limit.beyond / tick, 6)) + 1) * tick)
        reserve = min(max(reserve, inside_low), inside_high)
        budget = private.get("budget")
        if budget is not None:
            reserve = min(reserve, math.floor(round(float(budget) / tick, 6)) * tick)
        return round(reserve, 6)

    def _tidy(
        self, price: float, last: float, reserve: float, low: float, high: float, tick: float
    ) -> float:
        # Round to the tick, stay strictly inside the openings so that a deal on it is valid,
        # never take back a concession, and never pass the reserve: that last rule wins.
        price = round(price / tick) * tick
        price = min(max(price, low + tick), high - tick)
        if self.role == SELLER:
            price = min(max(price, reserve), last)
        else:
            price = max(min(price, reserve), last)
        return round(price, 6)


def _number_in(value: object, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _is_offer(action: Action | None) -> bool:
    return action is not None and action.kind is ActionKind.OFFER and action.price is not None


def _tick(span: float) -> float:
    """A round price step of about a twentieth of the range: 0.5 for $10-$20, 50 for $500-$2000."""
    raw = span / 20
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns
