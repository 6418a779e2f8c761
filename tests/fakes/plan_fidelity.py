"""Plan fidelity: how closely an unlearner's plans select the items hand-labelled requests
should hit (tests/data/forget_requests.yaml over the world of `unlearning_world`).

Each request is read by the unlearner, planned with `plan_forget`, and the union of its
owners' hits compared with the label. Precision and recall are micro-averaged over the items
of the requests that should be planned; a request whose hits equal its label (and whose mode
and purge are as labelled) is an exact match, and so is a correct refusal. Refusals are
counted apart: those that should be refused and were, and those wrongly refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from haggler.agents.unlearner import Unlearner
from haggler.errors import ConfigError, RequestError, StoreError
from haggler.memory.forgetting import load_scope, plan_forget
from tests.fakes.unlearning_world import Key, World

__all__ = ["CASES", "Case", "Fidelity", "Outcome", "load_cases", "score"]

CASES = Path(__file__).resolve().parent.parent / "data" / "forget_requests.yaml"
LEVELS = ("state", "trajectory", "environment")


@dataclass(frozen=True)
class Case:
    words: str
    level: str
    hits: tuple[Mapping[str, Any], ...] = ()
    refuse: bool = False
    memories: tuple[str, ...] | None = None
    given_level: str | None = None
    mode: str | None = None
    purge: bool | None = None


@dataclass
class Outcome:
    case: Case
    words: str
    expected: set[Key]
    got: set[Key] = field(default_factory=set)
    refused: str | None = None  # the error's message, when the unlearner refused
    wrong: list[str] = field(default_factory=list)  # mode or purge not as labelled

    @property
    def exact(self) -> bool:
        if self.case.refuse:
            return self.refused is not None
        return self.refused is None and self.got == self.expected and not self.wrong


@dataclass
class Row:
    level: str
    cases: int = 0
    true_hits: int = 0
    selected: int = 0
    labelled: int = 0
    exact: int = 0
    should_refuse: int = 0
    refused_rightly: int = 0
    refused_wrongly: int = 0

    @property
    def precision(self) -> float:
        return self.true_hits / self.selected if self.selected else 1.0

    @property
    def recall(self) -> float:
        return self.true_hits / self.labelled if self.labelled else 1.0

    @property
    def exact_rate(self) -> float:
        return self.exact / self.cases if self.cases else 1.0


@dataclass
class Fidelity:
    outcomes: list[Outcome]
    rows: dict[str, Row]

    def table(self, title: str) -> str:
        lines = [
            title,
            f"{'level':<12} {'requests':>8} {'precision':>9} {'recall':>7} {'exact':>6} "
            f"{'refused rightly':>16} {'refused wrongly':>16}",
        ]
        for row in self.rows.values():
            lines.append(
                f"{row.level:<12} {row.cases:>8} {row.precision:>9.3f} {row.recall:>7.3f} "
                f"{row.exact_rate:>6.3f} {row.refused_rightly:>8}/{row.should_refuse:<7} "
                f"{row.refused_wrongly:>16}"
            )
        return "\n".join(lines)

    def misses(self) -> list[str]:
        """One line per request not matched exactly: what was wrong."""
        out = []
        for o in self.outcomes:
            if o.exact:
                continue
            if o.refused is not None:
                out.append(f"{o.words!r}: refused: {o.refused}")
            elif o.case.refuse:
                out.append(f"{o.words!r}: should be refused, hit {len(o.got)} items")
            else:
                extra, missing = len(o.got - o.expected), len(o.expected - o.got)
                out.append(f"{o.words!r}: {extra} extra, {missing} missing {o.wrong}")
        return out


def load_cases(path: Path = CASES) -> list[Case]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for entry in raw:
        cases.append(
            Case(
                words=str(entry["words"]),
                level=str(entry["level"]),
                hits=tuple(entry.get("hits") or ()),
                refuse=bool(entry.get("refuse", False)),
                memories=tuple(entry["memories"]) if entry.get("memories") else None,
                given_level=entry.get("given_level"),
                mode=entry.get("mode"),
                purge=entry.get("purge"),
            )
        )
    return cases


async def score(unlearner: Unlearner, world: World, cases: Iterable[Case]) -> Fidelity:
    outcomes = [await _run(unlearner, world, case) for case in cases]
    rows = {level: Row(level) for level in (*LEVELS, "all")}
    for outcome in outcomes:
        for row in (rows[outcome.case.level], rows["all"]):
            _count(row, outcome)
    return Fidelity(outcomes, rows)


async def _run(unlearner: Unlearner, world: World, case: Case) -> Outcome:
    words = world.words(case.words)
    expected = set().union(*(world.select(label) for label in case.hits)) if case.hits else set()
    outcome = Outcome(case, words, expected)
    memories = world.memories_of(case.memories)
    try:
        plan = await unlearner.plan(
            words,
            memories=memories,
            store=world.store,
            level=case.given_level,  # type: ignore[arg-type]
        )
    except RequestError as error:
        outcome.refused = str(error)
        return outcome
    request = plan.request
    try:
        scope = load_scope(request, store=world.store, memories=memories)
        planned = plan_forget(request, memories=scope, store=world.store)
    except (ConfigError, StoreError) as error:
        # A request that names what is not there selects nothing; it is no refusal.
        outcome.wrong.append(f"planning failed: {error}")
        return outcome
    outcome.got = {(o.owner, i) for o in planned.owners for i in o.hits}
    if case.mode is not None and request.mode != case.mode:
        outcome.wrong.append(f"mode {request.mode}, not {case.mode}")
    if case.purge is not None and request.purge_record != case.purge:
        outcome.wrong.append(f"purge_record {request.purge_record}")
    return outcome


def _count(row: Row, outcome: Outcome) -> None:
    row.cases += 1
    row.exact += outcome.exact
    if outcome.case.refuse:
        row.should_refuse += 1
        row.refused_rightly += outcome.refused is not None
        return
    if outcome.refused is not None:
        row.refused_wrongly += 1
    row.true_hits += len(outcome.got & outcome.expected)
    row.selected += len(outcome.got)
    row.labelled += len(outcome.expected)
