"""A rule-based party of a multi-issue negotiation: it proposes and backs packages.

It reads its private scores from its brief (one private value per option label, and its
`minimum`) and the issues from the public facts, and concedes in its own points by a tactic of
`haggler.agents.tactics`, as the bargaining negotiator concedes in dollars: its aspiration runs
from its best package (100 points) down to its minimum. Each turn it backs the proposal on
the table when that is worth its aspiration to it (or, on its last turn, its minimum), and
otherwise proposes the package worth at least its aspiration that the others seem to like
best: options the others proposed count for them (a frequency model of their preferences, in
the spirit of the LLM-Deliberation benchmark's agents). It never proposes or backs a package
worth less than its minimum.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from haggler.agents.actions import Action, ActionKind, format_action
from haggler.agents.base import Player, Reply, RoleView
from haggler.agents.seat import Seat
from haggler.agents.tactics import Position, Tactic

__all__ = ["IssueNegotiator"]

_PROPOSE = "propose"
_MINIMUM = "minimum"
# The most packages it scores a turn; larger tables are refused (the game caps them lower).
_MAX_PACKAGES = 100_000


class IssueNegotiator(Player):
    """A party that concedes over packages by `tactic` (see the module's docstring)."""

    def __init__(
        self, role: str, tactic: Tactic, *, seed: int = 0, label: str | None = None
    ) -> None:
        self.role = role
        self.tactic = tactic
        self.label = label or f"rule:{tactic.name}"
        self._rng = random.Random(f"{seed}:{role}")

    def cannot_play(self, seat: Seat) -> str | None:
        if _PROPOSE not in seat.actions or ActionKind.ACCEPT.value not in seat.actions:
            return (
                f"it proposes and backs packages, and the {seat.role} of {seat.game} cannot "
                f"(its actions: {seat.actions.examples() or 'none'})"
            )
        issues = seat.facts.get("issues")
        if not isinstance(issues, Mapping) or not issues:
            return f"it needs the public fact issues (issue -> option labels), which {seat.game} does not give"
        labels = {str(label) for options in issues.values() for label in options}
        private = set(seat.brief.private)
        if _MINIMUM not in private:
            return f"the {seat.role}'s brief has no private value 'minimum', which it needs"
        unscored = sorted(labels - private)
        if unscored:
            return f"the {seat.role}'s brief scores no option {unscored[0]!r}, which it needs"
        ignored = sorted(private - labels - {_MINIMUM})
        if ignored:
            return (
                f"the {seat.role}'s brief holds the private value {ignored[0]!r}, which it would "
                f"ignore (it respects each option's score and minimum)"
            )
        return None

    async def respond(self, view: RoleView) -> Reply:
        action = self.decide(view)
        if action.kind == _PROPOSE:
            assert action.terms is not None
            text = f"I propose {', '.join(f'{i} {o}' for i, o in action.terms.items())}."
        elif action.kind is ActionKind.ACCEPT:
            text = self._rng.choice(["I can back that.", "That works for me.", "Agreed."])
        else:
            text = "I cannot back that."
        return Reply(f"{text} {format_action(action)}")

    def decide(self, view: RoleView) -> Action:
        issues: Mapping[str, Sequence[str]] = view.facts["issues"]
        scores = {k: float(v) for k, v in view.brief.private.items()}
        minimum = scores[_MINIMUM]
        worth = _worth_of(scores)
        proposals = [
            (m.speaker, dict(m.action.terms))
            for m in view.public
            if m.action is not None and m.action.kind == _PROPOSE and m.action.terms
        ]
        own = [worth(terms) for who, terms in proposals if who == self.role]
        others = [worth(terms) for who, terms in proposals if who != self.role]
        done = sum(1 for m in view.public if m.speaker == self.role and not m.scripted)
        mine_left = view.my_turns_left
        position = Position(
            opening=100.0,
            reserve=minimum,
            progress=(done + 1) / max(1, done + mine_left),
            own_offers=tuple(own),
            rival_offers=tuple(others),
        )
        aspiration = max(minimum, min(100.0, self.tactic.next_offer(position)))

        standing, backers = _table(view)
        if standing is not None and set(standing) == set(issues):
            value = worth(standing)
            last_turn = mine_left <= 1
            if value >= aspiration or (last_turn and value >= minimum):
                return Action(ActionKind.ACCEPT)
        package = self._package(issues, worth, aspiration, proposals)
        if standing is not None and self.role in backers and package == standing:
            return Action(ActionKind.ACCEPT)
        return Action(_PROPOSE, terms=package)

    def _package(
        self,
        issues: Mapping[str, Sequence[str]],
        worth: Any,
        aspiration: float,
        proposals: Sequence[tuple[str, dict[str, str]]],
    ) -> dict[str, str]:
        # What the others seem to want: how often each option appeared in their proposals.
        liked: Counter[str] = Counter(
            label for who, terms in proposals if who != self.role for label in terms.values()
        )
        names = list(issues)
        best: tuple[float, float, float] | None = None
        chosen: dict[str, str] = {}
        for count, labels in enumerate(itertools.product(*(issues[i] for i in names))):
            if count >= _MAX_PACKAGES:
                break
            package = dict(zip(names, labels, strict=True))
            value = worth(package)
            if value + 1e-9 < aspiration:
                continue
            # Most liked by the others, then closest to the aspiration (concede what it
            # means to), then a seeded coin: seeds spread games like a population of players.
            key = (sum(liked[label] for label in labels), -value, self._rng.random())
            if best is None or key > best:
                best, chosen = key, package
        if not chosen:
            # Rounding left nothing at the aspiration: its best package.
            chosen = {i: max(issues[i], key=lambda o: worth({i: o})) for i in names}
        return chosen


def _worth_of(scores: Mapping[str, float]) -> Any:
    def worth(package: Mapping[str, str]) -> float:
        return math.fsum(scores.get(label, 0.0) for label in package.values())

    return worth


def _table(view: RoleView) -> tuple[dict[str, str] | None, set[str]]:
    """The proposal on the table and who backs it, from the messages that stood."""
    standing: dict[str, str] | None = None
    backers: set[str] = set()
    for message in view.public:
        action = message.action
        if action is None:
            continue
        if action.kind == _PROPOSE and action.terms:
            standing, backers = dict(action.terms), {message.speaker}
        elif action.kind is ActionKind.ACCEPT and standing is not None:
            backers.add(message.speaker)
        elif action.kind is ActionKind.REJECT:
            backers.discard(message.speaker)
    return standing, backers
