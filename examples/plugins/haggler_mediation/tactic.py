"""A concession tactic that listens to a mediator.

It concedes along a time-dependent curve (as `rule:linear` does, with `exponent`) and then
moves `pull` of the way towards the mediator's latest suggestion, when that suggestion asks
more of it than the curve does; the negotiator never lets it pass its reserve. Registered as
`rule:toward-mediator` through the `haggler.tactics` entry-point group: haggler calls
`TowardMediator(**params)` with the spec's params.
"""

from __future__ import annotations

from haggler.agents.tactics import Position, Tactic, TimeDependent

__all__ = ["TowardMediator"]


class TowardMediator(Tactic):
    name = "toward-mediator"

    def __init__(self, exponent: float = 1.0, pull: float = 0.5) -> None:
        if not (isinstance(pull, int | float) and 0 <= pull <= 1):
            raise ValueError(f"pull must be a number from 0 to 1, got {pull!r}")
        self.curve = TimeDependent(exponent, "toward-mediator")
        self.pull = float(pull)

    def next_offer(self, position: Position) -> float:
        offer = self.curve.next_offer(position)
        if position.suggestions:
            # Values are in the negotiator's own direction: more is better for it.
            suggested = max(position.suggestions[-1], position.reserve)
            if suggested < offer:
                offer += self.pull * (suggested - offer)
        return offer

    def describe(self) -> str:
        return f"{self.name}(exponent={self.curve.exponent:g}, pull={self.pull:g})"

    def firmer(self, factor: float) -> TowardMediator:
        firmer = TowardMediator(self.curve.exponent / factor, self.pull)
        return firmer
