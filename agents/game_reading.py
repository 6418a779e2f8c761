"""What the rule critic reads in a finished bargaining game, and in the games before it.

Everything is read from the coached player's side and in its own direction (a concession is a
move towards the rival, whichever role): the player's and the rival's concessions step by
step, how the rival answered the player's moves (the rival's pattern), how much of the game's
time was used, who accepted or walked away, and where the price fell in the range. Earlier
games come from the player's own recollection (`GameReview.history`): their outcomes and
prices, no transcript.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haggler.agents.actions import ActionKind
from haggler.agents.base import PublicMessage

__all__ = ["GameReading", "PastGame", "read_game"]

# A rival that answers each move of the player with the same move (within this share of the
# range) on at least this share of the player's moves, over at least this many moves.
_MIRROR_TOLERANCE = 0.02
_MIRROR_SHARE = 0.85
_MIRROR_MOVES = 3


@dataclass(frozen=True, slots=True)
class PastGame:
    """An earlier game the coached player remembers, as its critic may read it."""

    outcome: str
    price: float | None
    round: int | None = None


@dataclass(frozen=True, slots=True)
class GameReading:
    own_steps: tuple[float, ...]
    rival_steps: tuple[float, ...]
    # "mirror" (answers each move with the same move), "holds_firm" (gives ground late),
    # "concedes_early", "steady", or "unknown" (too few moves to tell).
    rival_pattern: str
    # Share of the game's turns used when it ended (0-1).
    time_used: float
    # Who ended it: "player", "rival" or None; and how ("accept", "walk_away").
    ended_by: str | None
    ending: str | None
    # The price as a share of the range, in the player's favour (1: the player's opening).
    share: float | None
    span: float

    @property
    def own_given(self) -> float:
        return sum(s for s in self.own_steps if s > 0)

    @property
    def rival_given(self) -> float:
        return sum(s for s in self.rival_steps if s > 0)

    @property
    def first_step(self) -> float:
        return self.own_steps[0] if self.own_steps else 0.0


def read_game(
    role: str, public: Sequence[PublicMessage], facts: Mapping[str, Any], price: float | None
) -> GameReading:
    """Read one game from `role`'s side."""
    low, high = float(facts["buyer_opening"]), float(facts["seller_opening"])
    span = high - low
    sign = 1.0 if role == "seller" else -1.0
    own = _offers(public, role, rival=False)
    theirs = _offers(public, role, rival=True)
    # Concessions in each side's own direction: giving ground is positive.
    own_steps = tuple(sign * (a - b) for a, b in zip(own, own[1:], strict=False))
    rival_steps = tuple(sign * (b - a) for a, b in zip(theirs, theirs[1:], strict=False))
    max_turns = facts.get("max_turns")
    spoken = sum(1 for m in public if not m.scripted)
    known = isinstance(max_turns, int | float) and max_turns > 0
    time_used = min(1.0, spoken / float(max_turns)) if known else 1.0
    ended_by, ending = None, None
    last = public[-1] if public else None
    ends = (ActionKind.ACCEPT, ActionKind.WALK_AWAY)
    if last is not None and last.action is not None and last.action.kind in ends:
        ended_by = "player" if last.speaker == role else "rival"
        ending = "accept" if last.action.kind is ActionKind.ACCEPT else "walk_away"
    share = None
    if price is not None and span > 0:
        share = (price - low) / span if role == "seller" else (high - price) / span
    return GameReading(
        own_steps=own_steps,
        rival_steps=rival_steps,
        rival_pattern=_pattern(own_steps, rival_steps, span),
        time_used=time_used,
        ended_by=ended_by,
        ending=ending,
        share=share,
        span=span,
    )


def _offers(public: Sequence[PublicMessage], role: str, *, rival: bool) -> list[float]:
    return [
        m.action.price
        for m in public
        if m.action is not None
        and m.action.kind is ActionKind.OFFER
        and m.action.price is not None
        and ((m.speaker != role) if rival else (m.speaker == role))
    ]


def _pattern(own: tuple[float, ...], rival: tuple[float, ...], span: float) -> str:
    """How the rival moved, as the player's coach would describe it."""
    if len(rival) < _MIRROR_MOVES:
        return "unknown"
    tolerance = _MIRROR_TOLERANCE * span
    # The rival's k-th move answers the player's k-th move (the player speaks first).
    pairs = list(zip(own, rival, strict=False))
    if len(pairs) > _MIRROR_MOVES:
        # The last answer is often cut short by the rival's walk-away price or the deadline.
        pairs = pairs[:-1]
    answered = [abs(mine - theirs) <= tolerance for mine, theirs in pairs if mine or theirs]
    if len(answered) >= _MIRROR_MOVES and sum(answered) >= _MIRROR_SHARE * len(answered):
        return "mirror"
    total = sum(s for s in rival if s > 0)
    if total <= 0:
        return "holds_firm"
    half = len(rival) // 2
    early = sum(s for s in rival[:half] if s > 0) / total
    if early <= 0.3:
        return "holds_firm"
    if early >= 0.65:
        return "concedes_early"
    return "steady"
