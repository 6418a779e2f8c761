"""Scoring the advice reader against hand-labelled sentences (tests/data/advice_labels*.yaml).

Every sentence is labelled with a direction (+, -, or 0) on each of the four levers; the
reader's direction on a lever is the sign of the strength it reads. Reported per category and
split: lever directions right (four per sentence), the levers that should move and did so the
right way (recall), sentences read wholly right, and levers read backwards (the opposite of
the label), counted apart for sentences that hold a negation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from haggler.agents.advice_reader import LEVERS, read_sentence

__all__ = ["LABELS", "Labelled", "Score", "load_labels", "score"]

DATA = Path(__file__).resolve().parent.parent / "data"
LABELS = DATA / "advice_labels.yaml"
CATEGORIES = ("paraphrase", "negation", "mixed", "hedged", "conditional", "irrelevant")
_NEGATION = re.compile(
    r"\b(?:not|no|never|avoid|stop|don'?t|doesn'?t|didn'?t|shouldn'?t|won'?t|without|"
    r"neither|nor|refuse|rather than|instead of)\b|n't\b",
    re.IGNORECASE,
)
_EXPECT = re.compile(r"^(firmness|ambition|opening|deadline)([+-])$")


@dataclass(frozen=True)
class Labelled:
    id: str
    role: str
    category: str
    split: str
    text: str
    expect: dict[str, int]

    @property
    def negated(self) -> bool:
        return bool(_NEGATION.search(self.text))


def load_labels(path: Path = LABELS) -> list[Labelled]:
    """The labelled sentences of `path`; ValueError naming the item and field if one is bad."""
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    out = []
    for number, raw in enumerate(items):
        where = f"{path.name}: item {number} ({raw.get('id', '?')})"
        if raw.get("role") not in ("seller", "buyer"):
            raise ValueError(f"{where}: role must be seller or buyer, got {raw.get('role')!r}")
        if raw.get("cat") not in CATEGORIES:
            raise ValueError(f"{where}: cat must be one of {CATEGORIES}, got {raw.get('cat')!r}")
        expect: dict[str, int] = dict.fromkeys(LEVERS, 0)
        words = str(raw.get("expect", "")).split()
        if words != ["none"]:
            for word in words:
                match = _EXPECT.match(word)
                if match is None:
                    raise ValueError(f"{where}: expect {word!r} is not LEVER+ or LEVER-")
                expect[match.group(1)] = 1 if match.group(2) == "+" else -1
        out.append(
            Labelled(raw["id"], raw["role"], raw["cat"], raw["split"], raw["text"], expect)
        )
    return out


@dataclass
class Score:
    sentences: int = 0
    levers: int = 0
    levers_right: int = 0
    moved: int = 0
    moved_right: int = 0
    sentences_right: int = 0
    backwards: int = 0
    negated_backwards: int = 0
    wrong: list[str] = field(default_factory=list)

    def add(self, item: Labelled, read: dict[str, int]) -> None:
        self.sentences += 1
        whole = True
        for lever in LEVERS:
            want, got = item.expect[lever], read[lever]
            self.levers += 1
            self.levers_right += want == got
            if want:
                self.moved += 1
                self.moved_right += want == got
            if want and got == -want:
                self.backwards += 1
                self.negated_backwards += item.negated
            whole = whole and want == got
        self.sentences_right += whole
        if not whole:
            self.wrong.append(f"{item.id} [{item.role}] {item.text!r}: want "
                              f"{_show(item.expect)}, read {_show(read)}")  # fmt: skip

    @property
    def accuracy(self) -> float:
        return self.levers_right / self.levers if self.levers else 1.0

    @property
    def recall(self) -> float:
        return self.moved_right / self.moved if self.moved else 1.0

    @property
    def exact(self) -> float:
        return self.sentences_right / self.sentences if self.sentences else 1.0


def _show(directions: dict[str, int]) -> str:
    moved = [f"{k}{'+' if v > 0 else '-'}" for k, v in directions.items() if v]
    return " ".join(moved) or "none"


def directions(item: Labelled) -> dict[str, int]:
    reading = read_sentence(item.text, item.role)
    return {
        lever: (reading.effects.get(lever, 0) > 0) - (reading.effects.get(lever, 0) < 0)
        for lever in LEVERS
    }


def score(items: Iterable[Labelled], by: Sequence[str] = ("category",)) -> dict[str, Score]:
    """Scores keyed by "all" and by each value of the `by` attributes."""
    scores: dict[str, Score] = {"all": Score()}
    for item in items:
        read = directions(item)
        scores["all"].add(item, read)
        for attribute in by:
            scores.setdefault(str(getattr(item, attribute)), Score()).add(item, read)
    return scores
