"""Concession tactics from the automated-negotiation literature, for rule-based negotiators.

Time-dependent tactics (Faratin, Sierra and Jennings, 1998) move from the opening price to the
reserve price as time runs out: offer(t) = open + (reserve - open) * t ** (1 / exponent), with t
the share of the negotiator's turns used. exponent < 1 is Boulware (holds firm, concedes late),
1 is linear, > 1 is a conceder. Tit-for-tat mirrors the rival's last concession instead.

Tactics work in the negotiator's own direction: prices are handled by `RuleNegotiator`, which
flips signs for buyers, so a tactic only ever concedes "downwards" from its opening.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

from haggler.registry import Registry

__all__ = ["TACTICS", "Position", "Tactic", "TimeDependent", "TitForTat"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a negotiator stands, in its own direction: larger is better for it."""

    opening: float
    reserve: float
    # Share of its own turns used, counting the one about to be taken: (0, 1].
    progress: float
    own_offers: tuple[float, ...]
    rival_offers: tuple[float, ...]
    # Prices a third party (a mediator) suggested, oldest first; the built-in tactics leave
    # them aside, a plug-in tactic may move towards them.
    suggestions: tuple[float, ...] = ()


class Tactic(ABC):
    name: str

    @abstractmethod
    def next_offer(self, position: Position) -> float:
        """The next offer, between `position.reserve` and `position.opening`."""

    def describe(self) -> str:
        return self.name

    def firmer(self, factor: float) -> Tactic:
        """This tactic made `factor` times more patient (factor < 1: more yielding)."""
        return self


class TimeDependent(Tactic):
    def __init__(self, exponent: float, name: str = "time-dependent") -> None:
        if not _positive_number(exponent):
            raise ValueError(f"exponent must be a positive number, got {exponent!r}")
        self.exponent = exponent
        self.name = name

    def next_offer(self, position: Position) -> float:
        share = min(1.0, max(0.0, position.progress)) ** (1.0 / self.exponent)
        return position.opening + (position.reserve - position.opening) * share

    def describe(self) -> str:
        return f"{self.name}(exponent={self.exponent:g})"

    def firmer(self, factor: float) -> TimeDependent:
        # A smaller exponent holds the opening longer: Boulware is the firm end of the family.
        return TimeDependent(self.exponent / factor, self.name)


class TitForTat(Tactic):
    """Relative tit-for-tat: concede as much as the rival conceded in its last move."""

    name = "tit-for-tat"

    def __init__(self, mirror: float = 1.0, first_step: float = 0.05) -> None:
        if not _positive_number(mirror):
            raise ValueError(f"mirror must be a positive number, got {mirror!r}")
        if not (_positive_number(first_step) and first_step <= 1):
            raise ValueError(f"first_step must be a number in (0, 1], got {first_step!r}")
        self.mirror = mirror
        # The opening concession, as a share of the distance from opening to reserve.
        self.first_step = first_step

    def next_offer(self, position: Position) -> float:
        last = position.own_offers[-1] if position.own_offers else position.opening
        rivals = position.rival_offers
        if len(rivals) >= 2:
            # The rival's concession is the move *towards* us: its offers rise in our terms.
            step = max(0.0, rivals[-1] - rivals[-2]) * self.mirror
        else:
            step = (position.opening - position.reserve) * self.first_step
        return max(position.reserve, last - step)

    def describe(self) -> str:
        return f"{self.name}(mirror={self.mirror:g})"

    def firmer(self, factor: float) -> TitForTat:
        return TitForTat(self.mirror / factor, self.first_step / factor)


def _positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


TACTICS: Registry = Registry("tactic", "haggler.tactics")
TACTICS.register("boulware")(lambda exponent=0.3: TimeDependent(exponent, "boulware"))
TACTICS.register("linear")(lambda exponent=1.0: TimeDependent(exponent, "linear"))
TACTICS.register("conceder")(lambda exponent=3.0: TimeDependent(exponent, "conceder"))
TACTICS.register("tit-for-tat")(lambda mirror=1.0, first_step=0.05: TitForTat(mirror, first_step))
