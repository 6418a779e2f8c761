"""How rule-based negotiators take advice: a coach's plain sentences become parameter changes.

The critic's words are the only channel. Each sentence is matched against a few cue families
(hold firm, aim higher, be flexible, …) and every match nudges the negotiator's tactic: firmer
concessions (a more Boulware exponent, a smaller tit-for-tat mirror) or a more ambitious
walk-away price. Advice accumulates over rounds, in the order it was given, so forgetting a
piece of advice from memory undoes exactly its effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Adjustment", "read_advice"]


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Accumulated effect of advice: `firmness` multiplies patience, `ambition` moves the reserve."""

    firmness: float = 1.0
    # Shift of the reserve share, in the negotiator's own direction (more is more ambitious).
    ambition: float = 0.0

    def then(self, firmness: float = 1.0, ambition: float = 0.0) -> Adjustment:
        return Adjustment(self.firmness * firmness, self.ambition + ambition)


_FIRM = re.compile(
    r"smaller (?:steps|concessions)|concede (?:more )?slowly|concede less|hold (?:firm|your ground)|"
    r"be patient|don'?t (?:rush|concede (?:too )?quickly|cave)|make (?:the \w+|them) move first|"
    r"stand firm|firmer",
    re.IGNORECASE,
)
_OPEN_AMBITIOUS = {
    "seller": re.compile(
        r"open higher|start (?:with a )?high(?:er)?|counter higher", re.IGNORECASE
    ),
    "buyer": re.compile(r"open lower|start (?:with a )?low(?:er)?|counter lower", re.IGNORECASE),
}
_AIM = {
    "seller": re.compile(
        r"aim higher|higher walk-?away|ask for more|(?:sell|price) higher|raise your (?:price|target|walk-?away)",
        re.IGNORECASE,
    ),
    "buyer": re.compile(
        r"aim lower|lower walk-?away|offer less|pay less|(?:buy|price) lower|lower your (?:price|target|walk-?away)",
        re.IGNORECASE,
    ),
}
_FLEXIBLE = re.compile(
    r"more flexible|concede (?:a bit |a little )?more(?! slowly)|don'?t lose the deal|"
    r"close the deal|meet (?:them|the \w+) (?:halfway|in the middle)|compromise",
    re.IGNORECASE,
)
# "Don't compromise" and "never concede more than the buyer" counsel firmness, not flexibility.
_NEGATION = re.compile(r"\b(?:don'?t|do not|never|avoid|no need to|stop)\b", re.IGNORECASE)

# Effect sizes per matched sentence: large enough that a few rounds of advice show, small enough
# that one round does not turn a linear negotiator into a wall.
_FIRM_STEP = 1.5
_OPEN_STEP = 1.25
_AIM_STEP = 0.08
_FLEX_FIRMNESS = 0.8
_FLEX_AMBITION = -0.06


def read_advice(texts: Iterable[str], role: str) -> Adjustment:
    """The combined effect on `role` of every piece of advice in `texts`, oldest first."""
    adjustment = Adjustment()
    for text in texts:
        for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
            if not sentence.strip():
                continue
            flexible = _FLEXIBLE.search(sentence)
            if flexible and not _NEGATION.search(sentence[: flexible.start()]):
                adjustment = adjustment.then(_FLEX_FIRMNESS, _FLEX_AMBITION)
                continue
            if flexible or _FIRM.search(sentence):
                adjustment = adjustment.then(firmness=_FIRM_STEP)
            if role in _OPEN_AMBITIOUS and _OPEN_AMBITIOUS[role].search(sentence):
                adjustment = adjustment.then(firmness=_OPEN_STEP)
            if role in _AIM and _AIM[role].search(sentence):
                adjustment = adjustment.then(ambition=_AIM_STEP)
    return adjustment
