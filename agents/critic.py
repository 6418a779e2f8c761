"""Critics coach one player between rounds: at most three generic suggestions per game.

A critic reads the finished game from the coached player's side: its own brief (it coaches that
player, so it may know the player's cost) and the whole public conversation, the rival's final
accepting message included (the seed paper's critic never saw it). It never sees the rival's
brief. Suggestions name no specific price and propose no extra products or services.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haggler.agents.actions import ActionKind
from haggler.agents.base import Brief, PublicMessage
from haggler.agents.prices import find_prices, format_price
from haggler.llm.base import Backend, Completion, Message

__all__ = ["Critic", "Feedback", "GameReview", "LLMCritic", "RuleCritic"]

MAX_SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class GameReview:
    """What a critic may read about one finished game."""

    role: str
    brief: Brief
    public: tuple[PublicMessage, ...]
    facts: Mapping[str, Any]
    # "deal", "no_deal" or "invalid", its reason, and the price of a deal.
    outcome: str
    reason: str
    price: float | None


@dataclass(frozen=True, slots=True)
class Feedback:
    suggestions: tuple[str, ...]
    completion: Completion | None = None

    @property
    def text(self) -> str:
        return "\n".join(f"{i}. {s}" for i, s in enumerate(self.suggestions, 1))


class Critic(ABC):
    label: str

    @abstractmethod
    async def critique(self, review: GameReview) -> Feedback:
        """Up to three suggestions for `review.role`'s next game."""


# --- the offline critic ---------------------------------------------------------------------


def _offers(
    public: Sequence[PublicMessage], speaker: str | None, other: bool = False
) -> list[float]:
    return [
        m.action.price
        for m in public
        if m.action is not None
        and m.action.kind is ActionKind.OFFER
        and m.action.price is not None
        and ((m.speaker != speaker) if other else (m.speaker == speaker))
    ]


class RuleCritic(Critic):
    """Reads the facts of a bargaining game and writes advice as plain sentences.

    It looks at the player's opening counter-offer, the size and count of its concessions,
    who conceded more, and where the final price fell in the range; the advice uses the
    words that rule-based negotiators (and people) understand.
    """

    label = "rule"

    async def critique(self, review: GameReview) -> Feedback:
        seller = review.role == "seller"
        rival = "buyer" if seller else "seller"
        low, high = float(review.facts["buyer_opening"]), float(review.facts["seller_opening"])
        span = high - low
        own = _offers(review.public, review.role)
        theirs = _offers(review.public, review.role, other=True)
        # Concessions measured in the player's own direction (giving ground is positive).
        sign = 1.0 if seller else -1.0
        own_steps = [sign * (a - b) for a, b in zip(own, own[1:], strict=False)]
        own_given = sum(s for s in own_steps if s > 0)
        their_given = sum(
            s for s in (sign * (b - a) for a, b in zip(theirs, theirs[1:], strict=False)) if s > 0
        )
        moves = [s for s in own_steps if s > 0]

        advice: list[str] = []
        if review.outcome == "invalid":
            advice.append("End every message with one clear action tag so your moves count.")
        if review.outcome != "deal":
            advice.append(
                "You lost the deal; be more flexible near the end and concede a little more "
                "when time runs short."
            )
            return Feedback(tuple(advice[:MAX_SUGGESTIONS]))

        if own_given > their_given:
            advice.append(
                f"You conceded more than the {rival} did; hold firm and make the {rival} move first."
            )
        if moves and moves[0] > 0.1 * span:
            opener = "open higher" if seller else "open lower"
            advice.append(f"Your first counter-offer gave away too much; {opener} next time.")
        if moves and sum(moves) / len(moves) > 0.06 * span:
            advice.append("Concede in smaller steps.")
        price = review.price if review.price is not None else (low + high) / 2
        share = (price - low) / span if seller else (high - price) / span
        if share < 0.6:
            aim = (
                "aim higher and set a higher walk-away price"
                if seller
                else "aim lower and set a lower walk-away price"
            )
            advice.append(f"The deal landed on the {rival}'s side of the range; {aim}.")
        if not advice:
            advice.append("A strong result; keep opening firmly and concede slowly.")
        return Feedback(tuple(advice[:MAX_SUGGESTIONS]))


# --- the LLM critic -------------------------------------------------------------------------

_INSTRUCTIONS = """You coach a negotiator between games. Below is the player's brief, the \
whole game it just played, and how it ended. Give exactly three short suggestions that would \
help the {role} get a better outcome next time. Keep them general: name no specific price or \
number, and do not suggest offering extra products or services. Answer as a numbered list \
(1., 2., 3.) and nothing else."""

_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*(.+?)\s*$")


def parse_suggestions(text: str) -> tuple[str, ...]:
    """At most three suggestions from a critic's answer; any that names a price is dropped.

    Numbered or bulleted items are the suggestions, a line that continues one belongs to it;
    an answer with no list at all counts each non-empty line.
    """
    items: list[str] = []
    listed = False
    for line in text.splitlines():
        if match := _NUMBERED.match(line):
            if not listed:
                # Lines before the list are a preamble ("Here are my suggestions:").
                items = []
            items.append(match.group(1))
            listed = True
        elif line.strip() and listed and items:
            items[-1] = f"{items[-1]} {line.strip()}"
        elif line.strip() and not listed:
            items.append(line.strip())
    kept = [item for item in items if not any(p.marked for p in find_prices(item))]
    return tuple(kept[:MAX_SUGGESTIONS])


class LLMCritic(Critic):
    def __init__(self, backend: Backend, *, params: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.params = {"max_tokens": 300} | dict(params or {})
        self.label = backend.model

    async def critique(self, review: GameReview) -> Feedback:
        transcript = "\n".join(f"{m.speaker}: {m.text}" for m in review.public)
        ending = (
            f"a deal at {format_price(review.price)}"
            if review.outcome == "deal" and review.price is not None
            else f"{review.outcome.replace('_', ' ')} ({review.reason.replace('_', ' ')})"
        )
        user = (
            f"The player is the {review.role}. Its brief:\n{review.brief.text}\n\n"
            f"The game:\n{transcript}\n\nIt ended in {ending}."
        )
        completion = await self.backend.complete(
            [Message("system", _INSTRUCTIONS.format(role=review.role)), Message("user", user)],
            **self.params,
        )
        return Feedback(parse_suggestions(completion.text), completion)
