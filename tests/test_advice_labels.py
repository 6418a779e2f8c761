"""The advice reader scored against hand-labelled sentences, as README reports it.

tests/data/advice_labels.yaml is the development set (the lexicon was built with it in view);
tests/data/advice_labels_heldout.yaml was written after the reader was built and is never
tuned on. `python benchmarks/advice_reading.py` prints the full table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.advice_scoring import CATEGORIES, DATA, LABELS, load_labels, score

HELDOUT = DATA / "advice_labels_heldout.yaml"


@pytest.mark.parametrize("path", [LABELS, HELDOUT], ids=["dev", "heldout"])
def test_the_labelled_sets_are_well_formed(path: Path) -> None:
    items = load_labels(path)
    assert len({item.id for item in items}) == len(items)
    assert {item.category for item in items} == set(CATEGORIES)
    assert {item.role for item in items} == {"seller", "buyer"}


def test_together_the_sets_hold_at_least_150_sentences_with_a_held_out_part() -> None:
    dev, heldout = load_labels(LABELS), load_labels(HELDOUT)
    assert len(dev) + len(heldout) >= 150 and len(heldout) >= 60
    assert {item.text for item in dev}.isdisjoint(item.text for item in heldout)


def test_the_development_set_is_read_right() -> None:
    scores = score(load_labels(LABELS))
    assert scores["all"].accuracy >= 0.99, "\n".join(scores["all"].wrong)


def test_the_held_out_set_is_read_right_nine_lever_directions_in_ten() -> None:
    scores = score(load_labels(HELDOUT))
    assert scores["all"].accuracy >= 0.90, "\n".join(scores["all"].wrong)
    # Nothing that cannot be used is taken for advice.
    assert scores["irrelevant"].accuracy == 1.0, "\n".join(scores["irrelevant"].wrong)


@pytest.mark.parametrize("path", [LABELS, HELDOUT], ids=["dev", "heldout"])
def test_no_sentence_with_a_negation_is_read_backwards(path: Path) -> None:
    items = load_labels(path)
    negated = [item for item in items if item.negated]
    assert len(negated) >= 20
    scores = score(items)
    assert scores["all"].negated_backwards == 0, "\n".join(scores["all"].wrong)
    assert scores["negation"].backwards == 0


def test_readme_shows_the_accuracy_the_sets_give() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    dev, heldout = score(load_labels(LABELS))["all"], score(load_labels(HELDOUT))["all"]
    assert (
        f"| development | all six | {dev.sentences} | {dev.accuracy:.1%} | {dev.recall:.1%} | "
        f"{dev.backwards} ({dev.negated_backwards}) |" in readme
    )
    assert (
        f"| held out | all | {heldout.sentences} | **{heldout.accuracy:.1%}** | "
        f"{heldout.recall:.1%} | {heldout.backwards} (**{heldout.negated_backwards}**) |" in readme
    )
    held = score(load_labels(HELDOUT))
    for category in CATEGORIES:
        s = held[category]
        assert f"| held out | {category}" in readme, category
        assert f"| {s.sentences} | {s.accuracy:.1%} |" in readme, category


def test_the_benchmark_prints_both_tables() -> None:
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "advice_reading.py"
    out = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, check=True)
    assert "advice_labels.yaml (173 sentences)" in out.stdout
    assert "advice_labels_heldout.yaml (74 sentences)" in out.stdout
