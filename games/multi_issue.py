"""A multi-issue negotiation of several parties, in the spirit of the LLM-Deliberation
benchmark (Abdelnabi et al., 2023): the parties settle a package, one option for every issue.

Each party scores every option privately (its best package is worth 100 points to it) and has
a minimum it must reach: a package worth less than that to it is worse than no deal. Parties
speak in turn, each `rounds` times. A turn proposes a package (`[PROPOSE R1 F2 Q2 S2]`),
backs the proposal on the table (`[ACCEPT]`) or withdraws its backing (`[REJECT]`); a new
proposal clears every backing but its author's. The package is agreed once `needed` parties
back it (every party, by default), the `veto` parties among them.

A party's score is its share of its own room above its minimum: (worth - minimum) / (best -
minimum), 1 for its best package, 0 without a deal, below 0 for a package worth less than its
minimum. The default scenario (`BUS_ROUTE`) is a town's new bus route: the council, the
operator and the residents settle its route, fare, frequency and subsidy.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from haggler.agents.actions import Action, ActionKind
from haggler.agents.base import Brief, PublicMessage
from haggler.agents.vocabulary import ActionType, Vocabulary, propose
from haggler.games.base import Game, Step
from haggler.games.outcome import Outcome

__all__ = ["BUS_ROUTE", "MultiIssueGame", "MultiIssueRules", "Party"]

# Enough packages for any table a person would write; the rule players score them all.
_MAX_PACKAGES = 100_000
_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class Party(BaseModel):
    """One party: its private scores (issue -> option -> points) and its minimum."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    scores: dict[str, dict[str, float]]
    minimum: float = Field(gt=0, allow_inf_nan=False)


class MultiIssueRules(BaseModel):
    """The configurable facts of a multi-issue negotiation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str = Field(min_length=1)
    # Issue -> its options, label -> what it means (labels unique across issues).
    issues: dict[str, dict[str, str]] = Field(min_length=1)
    parties: list[Party] = Field(min_length=2, max_length=12)
    # Turns each party takes before the game ends without a deal.
    rounds: int = Field(6, ge=1, le=100, strict=True)
    # Backings that agree a package (the proposer's included); None: every party.
    needed: int | None = Field(None, ge=1)
    # Parties whose backing every deal needs.
    veto: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> MultiIssueRules:
        labels = [label for options in self.issues.values() for label in options]
        propose(self._options())  # labels: unique, readable
        if any(not options for options in self.issues.values()):
            raise ValueError("every issue needs at least one option")
        packages = 1
        for options in self.issues.values():
            packages *= len(options)
        if packages > _MAX_PACKAGES:
            raise ValueError(
                f"the issues make {packages:,} packages; keep it under {_MAX_PACKAGES:,}"
            )
        names = [party.name for party in self.parties]
        if len(set(names)) != len(names):
            raise ValueError(f"parties must have distinct names, got {names}")
        for party in self.parties:
            for issue, options in self.issues.items():
                scored = party.scores.get(issue)
                if scored is None or set(scored) != set(options):
                    raise ValueError(
                        f"party {party.name!r} must score every option of {issue!r} "
                        f"({', '.join(options)})"
                    )
                for label, points in scored.items():
                    if not (points == points and 0 <= points <= 100):  # NaN fails the first
                        raise ValueError(f"{party.name}'s score of {label} must be 0 to 100")
            extra = sorted(set(party.scores) - set(self.issues))
            if extra:
                raise ValueError(f"party {party.name!r} scores unknown issue {extra[0]!r}")
            best = sum(max(party.scores[issue].values()) for issue in self.issues)
            if abs(best - 100) > 1e-6:
                raise ValueError(
                    f"party {party.name!r}'s best package is worth {best:g} points; scale its "
                    f"scores so that it is worth 100"
                )
            if party.minimum >= best:
                raise ValueError(f"party {party.name!r}'s minimum must be below {best:g}")
        if len(set(labels)) != len(labels):
            raise ValueError("option labels must be unique across issues")
        if any(label.casefold() == "minimum" for label in labels):
            # A brief's private values are its option scores by label, and its `minimum`.
            raise ValueError("an option cannot be labelled 'minimum'; rename it")
        if self.needed is not None and self.needed > len(self.parties):
            raise ValueError(f"needed ({self.needed}) is more than the {len(names)} parties")
        for vetoer in self.veto:
            if vetoer not in names:
                raise ValueError(f"veto names {vetoer!r}, who is no party ({', '.join(names)})")
        if not any(
            all(_worth(party, package) >= party.minimum for party in self.parties)
            for package in self.packages()
        ):
            raise ValueError(
                "no package reaches every party's minimum: the game cannot be won; lower a "
                "minimum or change the scores"
            )
        return self

    def _options(self) -> dict[str, tuple[str, ...]]:
        return {issue: tuple(options) for issue, options in self.issues.items()}

    def packages(self) -> list[dict[str, str]]:
        """Every package: one option for every issue."""
        issues = list(self.issues)
        return [
            dict(zip(issues, choice, strict=True))
            for choice in itertools.product(*(list(self.issues[i]) for i in issues))
        ]


def _worth(party: Party, package: Mapping[str, str]) -> float:
    return sum(party.scores[issue][label] for issue, label in package.items())


BUS_ROUTE = MultiIssueRules(
    topic="the town's new bus route to the hospital",
    issues={
        "route": {
            "R1": "through the town centre",
            "R2": "along the ring road",
            "R3": "through the new estate",
        },
        "fare": {"F1": "a one-dollar fare", "F2": "a two-dollar fare", "F3": "a three-dollar fare"},
        "frequency": {
            "Q1": "a bus every ten minutes",
            "Q2": "a bus every twenty minutes",
            "Q3": "a bus every half hour",
        },
        "subsidy": {
            "S1": "no subsidy from the town",
            "S2": "the town pays half the running costs",
            "S3": "the town pays all the running costs",
        },
    },
    parties=[
        Party(
            name="council",
            scores={
                "route": {"R1": 16, "R2": 6, "R3": 31},
                "fare": {"F1": 9, "F2": 19, "F3": 14},
                "frequency": {"Q1": 21, "Q2": 17, "Q3": 4},
                "subsidy": {"S1": 29, "S2": 13, "S3": 1},
            },
            minimum=57,
        ),
        Party(
            name="operator",
            scores={
                "route": {"R1": 11, "R2": 22, "R3": 2},
                "fare": {"F1": 4, "F2": 17, "F3": 28},
                "frequency": {"Q1": 1, "Q2": 12, "Q3": 23},
                "subsidy": {"S1": 0, "S2": 19, "S3": 27},
            },
            minimum=46,
        ),
        Party(
            name="residents",
            scores={
                "route": {"R1": 26, "R2": 5, "R3": 24},
                "fare": {"F1": 36, "F2": 19, "F3": 2},
                "frequency": {"Q1": 33, "Q2": 21, "Q3": 7},
                "subsidy": {"S1": 0, "S2": 4, "S3": 5},
            },
            minimum=52,
        ),
    ],
)


@dataclass(slots=True)
class _Table:
    # The package on the table, who proposed it, and who backs it now.
    standing: dict[str, str] | None = None
    by: str | None = None
    backers: set[str] = field(default_factory=set)


class MultiIssueGame(Game):
    """Several parties settle one option for every issue (see the module's docstring)."""

    def __init__(self, rules: MultiIssueRules = BUS_ROUTE, *, name: str = "multi-issue") -> None:
        self.rules = rules
        self.name = name
        self.roles = tuple(party.name for party in rules.parties)
        self._parties = {party.name: party for party in rules.parties}
        self._proposal = propose(rules._options())
        self._vocabulary = Vocabulary(
            [
                self._proposal,
                ActionType(
                    ActionKind.ACCEPT.value,
                    "ACCEPT",
                    "nothing",
                    "to back the proposal on the table",
                ),
                ActionType(
                    ActionKind.REJECT.value,
                    "REJECT",
                    "nothing",
                    "to withdraw your backing without a new proposal",
                ),
            ]
        )

    @property
    def needed(self) -> int:
        return self.rules.needed or len(self.roles)

    @property
    def max_turns(self) -> int:
        return self.rules.rounds * len(self.roles)

    @property
    def facts(self) -> Mapping[str, Any]:
        r = self.rules
        return {
            "topic": r.topic,
            "issues": {issue: list(options) for issue, options in r.issues.items()},
            "options": {
                label: text for options in r.issues.values() for label, text in options.items()
            },
            "parties": list(self.roles),
            "needed": self.needed,
            "veto": list(r.veto),
            "max_turns": self.max_turns,
        }

    def settings(self) -> dict[str, Any]:
        return self.rules.model_dump()

    @property
    def default_players(self) -> Mapping[str, str]:
        return {role: "rule:linear" for role in self.roles}

    def actions(self, role: str) -> Vocabulary:
        return self._vocabulary

    def brief(self, role: str) -> Brief:
        party = self._parties.get(role)
        if party is None:
            raise KeyError(f"{self.name} has parties {self.roles}, not {role!r}")
        r = self.rules
        others = [name for name in self.roles if name != role]
        lines = []
        for issue, options in r.issues.items():
            scored = ", ".join(
                f"{label} ({text}) {party.scores[issue][label]:g} points"
                for label, text in options.items()
            )
            lines.append(f"{issue}: {scored}.")
        who = (
            f"every party ({', '.join(self.roles)})"
            if self.needed == len(self.roles)
            else (f"{self.needed} of the {len(self.roles)} parties")
        )
        veto = f" The {' and the '.join(r.veto)} must be among them." if r.veto else ""
        return Brief(
            role,
            f"You are the {role} in a negotiation about {r.topic} with the "
            f"{' and the '.join(others)}. The parties must agree one option for every issue. "
            f"Your private scores, which you keep to yourself: {' '.join(lines)} A package is "
            f"worth to you the sum of your scores of its options; your best is worth 100. "
            f"Never agree to a package worth less than {party.minimum:g} points to you: no deal "
            f"is better than that. A proposal is agreed once {who} back it.{veto} Speak in one "
            f"or two short sentences per turn. {self._vocabulary.help()}",
            {
                **{
                    label: float(points)
                    for issue in r.issues
                    for label, points in party.scores[issue].items()
                },
                "minimum": float(party.minimum),
            },
        )

    def opening(self) -> list[PublicMessage]:
        return []

    def new_table(self) -> _Table:
        return _Table()

    def apply(self, table: _Table, role: str, action: Action) -> Step:
        if action.kind == self._proposal.kind:
            terms = dict(action.terms or {})
            missing = [issue for issue in self.rules.issues if issue not in terms]
            if missing:
                options = ", ".join(self.rules.issues[missing[0]])
                return Step(
                    error=(
                        f"a proposal names one option for every issue; it lacks {missing[0]} "
                        f"({options})"
                    )
                )
            table.standing, table.by, table.backers = terms, role, {role}
            return self._agreed(table, role)
        if action.kind is ActionKind.ACCEPT:
            if table.standing is None:
                return Step(
                    error=f"there is no proposal on the table to back; make one, e.g. "
                    f"{self._proposal.example}"
                )
            table.backers.add(role)
            return self._agreed(table, role)
        if action.kind is ActionKind.REJECT:
            table.backers.discard(role)
            return Step()
        return Step(error=f"{self.name} has no rule for {action.name}")

    def _agreed(self, table: _Table, role: str) -> Step:
        if len(table.backers) >= self.needed and set(self.rules.veto) <= table.backers:
            return Step(outcome=Outcome.deal(None, by=role, terms=table.standing))
        return Step()

    def at_turn_limit(self, table: _Table) -> Outcome:
        return Outcome.no_deal("turn_limit")

    def score(self, outcome: Outcome) -> dict[str, float]:
        if outcome.kind != "deal" or not outcome.terms:
            return {role: 0.0 for role in self.roles}
        scores = {}
        for role, party in self._parties.items():
            # Every party's best package is worth 100 (the rules check it).
            worth = _worth(party, {i: outcome.terms[i] for i in self.rules.issues})
            scores[role] = round((worth - party.minimum) / (100 - party.minimum), 6)
        return scores

    def worth(self, role: str, package: Mapping[str, str]) -> float:
        """What `package` is worth to `role`, in its own points."""
        return _worth(self._parties[role], package)
