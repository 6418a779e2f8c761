"""How rule-based negotiators take advice: a coach's plain sentences become tactic changes.

The coach's words are the only channel. Each sentence is read for its meaning over four
levers (`advice_reader` says how: a hand-built lexicon with inflections, clauses, negation
scope, hedges, intensifiers and conditions), and every sentence moves each lever by a signed
strength: 1 for plain advice, 1.5 intensified ("much more slowly"), half for hedged ("maybe"),
diminished ("a little") or conditional advice the negotiator cannot check ("when the buyer
pushes"). Strengths add up over the advice, oldest first, so forgetting a piece of advice from
memory undoes exactly its effect.

| lever    | + means                                           | effect of strength s          |
|----------|---------------------------------------------------|-------------------------------|
| firmness | concede more slowly, in smaller steps             | tactic 1.5**s times as patient |
| ambition | a walk-away price better for the player           | walk-away moved 0.08*s of the range |
| opening  | a first counter-offer nearer its own opening      | first concession times 0.7**s |
| deadline | yield more at the very end rather than lose it    | in its last two turns, walk-away moved 0.06*s of the range towards the rival |

A lever at - moves the other way by the same amounts, so "be more flexible" undoes "hold
firm" exactly. What could not be used (small talk, advice about the rival, advice ambiguous
for the role) is ignored, and `Adjustment.explain()` says so, sentence by sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from haggler.agents.advice_reader import LEVERS, SentenceReading, read_sentence, sentences_of
from haggler.agents.tactics import Position, Tactic

__all__ = ["LEVERS", "Adjustment", "SentenceReading", "explain_advice", "read_advice"]

# Effect sizes per unit of strength: large enough that a few rounds of advice show, small
# enough that one round does not turn a linear negotiator into a wall.
FIRMNESS_STEP = 1.5
AMBITION_STEP = 0.08
OPENING_STEP = 0.7
DEADLINE_STEP = 0.06
# The reserve share never passes this: a negotiator always leaves the rival some room.
MAX_SHARE = 0.95


@dataclass(frozen=True, slots=True)
class Adjustment:
    """The accumulated effect of advice on one negotiator.

    `firmness` multiplies its tactic's patience, `ambition` shifts its walk-away price (as a
    share of the range, in its own favour), `opening` multiplies its first concession, and
    `deadline` is the share of the range it gives up in its last two turns rather than walk
    away. `readings` say what each sentence gave (not part of equality).
    """

    firmness: float = 1.0
    ambition: float = 0.0
    opening: float = 1.0
    deadline: float = 0.0
    strengths: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    readings: tuple[SentenceReading, ...] = field(default=(), compare=False, repr=False)

    def tactic(self, tactic: Tactic) -> Tactic:
        """`tactic` with the advice's firmness and opening applied."""
        adjusted = tactic.firmer(self.firmness)
        if self.opening != 1.0:
            adjusted = FirstConcession(adjusted, self.opening)
        return adjusted

    def reserve_share(self, share: float, *, final: bool = False) -> float:
        """Where the walk-away price sits (a share of the range from the rival's opening)
        once the advice is taken; `final` in the negotiator's last two turns."""
        moved = share + self.ambition - (self.deadline if final else 0.0)
        return min(MAX_SHARE, max(0.0, moved))

    def explain(self) -> str:
        """What was taken from each sentence, and the resulting tactic changes."""
        lines = [reading.explain() for reading in self.readings]
        lines.append(
            f"=> firmness x{self.firmness:.3g}, ambition {self.ambition:+.3g}, "
            f"opening x{self.opening:.3g}, deadline {self.deadline:+.3g}"
        )
        return "\n".join(lines)


class FirstConcession(Tactic):
    """A tactic whose first concession is scaled by `scale` (< 1: a firmer opening)."""

    def __init__(self, inner: Tactic, scale: float) -> None:
        self.inner = inner
        self.scale = scale
        self.name = inner.name

    def next_offer(self, position: Position) -> float:
        offer = self.inner.next_offer(position)
        if len(position.own_offers) <= 1:
            start = position.own_offers[-1] if position.own_offers else position.opening
            offer = max(position.reserve, start - (start - offer) * self.scale)
        return offer

    def describe(self) -> str:
        return f"{self.inner.describe()}, first concession x{self.scale:.3g}"

    def firmer(self, factor: float) -> Tactic:
        return FirstConcession(self.inner.firmer(factor), self.scale)


def read_advice(texts: Iterable[str], role: str) -> Adjustment:
    """The combined effect on `role` ("seller" or "buyer") of every piece of advice in
    `texts`, oldest first."""
    if role not in ("seller", "buyer"):
        raise ValueError(f"advice is read by a seller or a buyer, not {role!r}")
    strengths = dict.fromkeys(LEVERS, 0.0)
    readings = []
    for text in texts:
        for sentence in sentences_of(text):
            reading = read_sentence(sentence, role)
            readings.append(reading)
            for lever, value in reading.effects.items():
                strengths[lever] += value
    return Adjustment(
        firmness=FIRMNESS_STEP ** strengths["firmness"],
        ambition=AMBITION_STEP * strengths["ambition"],
        opening=OPENING_STEP ** strengths["opening"],
        deadline=DEADLINE_STEP * strengths["deadline"],
        strengths={k: v for k, v in strengths.items() if v},
        readings=tuple(readings),
    )


def explain_advice(texts: Iterable[str], role: str) -> str:
    """`read_advice(texts, role).explain()`: for tests and for debugging a learner."""
    return read_advice(texts, role).explain()
