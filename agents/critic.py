"""Critics coach one player between rounds: at most three generic suggestions per game.

A critic reads the finished game from the coached player's side: its own brief (it coaches that
player, so it may know the player's cost) and the whole public conversation, the rival's final
accepting message included (the seed paper's critic never saw it), and the outcomes of the
player's earlier games as the player remembers them. It never sees the rival's brief.
Suggestions name no specific price and propose no extra products or services.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haggler.agents.base import Brief, PublicMessage
from haggler.agents.critic_wording import WORDINGS, say
from haggler.agents.game_reading import PastGame, read_game
from haggler.agents.prices import find_prices, format_price
from haggler.llm.base import Backend, Completion, Message

__all__ = ["Critic", "Feedback", "GameReview", "LLMCritic", "PastGame", "RuleCritic"]

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
    # The player's earlier games as it remembers them (its recollection), oldest first.
    history: tuple[PastGame, ...] = ()


@dataclass(frozen=True, slots=True)
class Feedback:
    suggestions: tuple[str, ...]
    completion: Completion | None = None

    @property
    def text(self) -> str:
        return "\n".join(f"{i}. {s}" for i, s in enumerate(self.suggestions, 1))


class Critic(ABC):
    label: str
    # Whether `critique` reads `GameReview.history`: the games it reads are then recorded
    # as the feedback's context, so forgetting one of them forgets what it taught.
    reads_history: bool = False

    @abstractmethod
    async def critique(self, review: GameReview) -> Feedback:
        """Up to three suggestions for `review.role`'s next game."""


# --- the offline critic ---------------------------------------------------------------------

# How much of the game's time a deal may use and still show room to hold out longer: a
# time-dependent rival keeps conceding on its own clock, so a firmer player meets it later,
# and a deal early in the game leaves that time to spare.
_ROOM_MUCH = 0.6
_ROOM = 0.85
# A first counter-offer that gives away more than this share of the range.
_BIG_FIRST_STEP = 0.1
# A deal this far (share of the range) below the player's last one "came in well short".
_FAR_BELOW = 0.15


class RuleCritic(Critic):
    """Reads what happened in a bargaining game, and in the player's earlier games, and
    advises either way.

    From the game: who ended it and how (an acceptance, a walk-away, no deal), how much of
    the game's time was used, the player's concessions against the rival's, and the rival's
    pattern: a rival that mirrors each move (tit-for-tat) is not beaten by holding back, one
    that gives ground late (Boulware) rewards patience, one that gives ground early leaves
    room to ask for more. From the player's recollection (`GameReview.history`): whether a
    game was already lost, and whether this deal came in well short of the last one.

    The trade-off between price and deal rate comes from those games, not from a fixed
    target: it pushes (firmer, more ambitious) only while deals close with time to spare and
    none has been lost; after a lost deal it says how to yield, and once a deal was lost it
    keeps what closes deals instead of pushing again. Vs a mirroring rival it never pushes.
    `wording="reworded"` says the same in other words (critic_wording.py).
    """

    label = "rule"
    reads_history = True

    def __init__(self, wording: str = "plain") -> None:
        if wording not in WORDINGS:
            raise ValueError(f"wording must be one of {', '.join(WORDINGS)}, got {wording!r}")
        self.wording = wording
        if wording != "plain":
            self.label = f"rule ({wording})"

    async def critique(self, review: GameReview) -> Feedback:
        return Feedback(tuple(self._say(k, review.role) for k in self.advise(review)))

    def _say(self, key: str, role: str) -> str:
        return say(key, role if role in ("seller", "buyer") else "seller", self.wording)

    def advise(self, review: GameReview) -> list[str]:
        """The keys of the advice (critic_wording.ADVICE) for `review`, at most three."""
        game = read_game(review.role, review.public, review.facts, review.price)
        lost_before = any(past.outcome != "deal" for past in review.history)
        advice: list[str] = []
        if review.outcome == "invalid":
            advice.append("tags")
        if review.outcome != "deal":
            advice.append("lost_again" if lost_before else "lost")
            if game.rival_pattern == "mirror":
                advice.append("mirror_lost")
            elif game.ended_by == "player" and game.ending == "walk_away":
                advice.append("walked")
            return advice[:MAX_SUGGESTIONS]

        if game.rival_pattern == "mirror":
            # Holding back only slows a rival that answers move for move, and breaks deals
            # near the deadline; yielding sooner only lowers the price it mirrors. Keep.
            return ["mirror_keep"]
        if lost_before:
            # A lost game showed where pushing breaks the deal: keep what closed this one.
            return ["keep_after_loss"]
        last = _last_deal_share(review)
        if last is not None and game.share is not None and last - game.share > _FAR_BELOW:
            return ["dropped"]

        if game.own_given > game.rival_given:
            advice.append("conceded_more")
        elif game.time_used <= _ROOM_MUCH:
            advice.append("time_much")
        elif game.time_used <= _ROOM:
            advice.append("time")
        elif game.rival_pattern == "holds_firm":
            advice.append("late_mover")
        if game.own_steps and game.first_step > _BIG_FIRST_STEP * game.span:
            advice.append("first_move")
        if game.ended_by == "player" and game.time_used <= _ROOM_MUCH:
            advice.append("aim_accepted")
        elif game.ended_by == "rival" and game.time_used <= _ROOM:
            advice.append("aim_taken")
        elif game.rival_pattern == "concedes_early":
            advice.append("aim_yielding")
        return (advice or ["good"])[:MAX_SUGGESTIONS]


def _last_deal_share(review: GameReview) -> float | None:
    """The share of the range (in the player's favour) of the newest remembered deal."""
    low, high = float(review.facts["buyer_opening"]), float(review.facts["seller_opening"])
    for past in reversed(review.history):
        if past.outcome == "deal" and past.price is not None and high > low:
            if review.role == "seller":
                return (past.price - low) / (high - low)
            return (high - past.price) / (high - low)
    return None


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
