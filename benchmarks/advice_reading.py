"""How well rule-based negotiators read advice: accuracy of the advice reader over hand-labelled
sentences (tests/data/advice_labels.yaml, written apart from the rule critic's own sentences).

Prints, per split (dev, heldout) and per category (paraphrase, negation, mixed, hedged,
conditional, irrelevant): lever directions right (four levers a sentence), the levers that
should move and did (recall), sentences read wholly right, and levers read backwards (and of
those, in sentences holding a negation).

    python benchmarks/advice_reading.py              # the table
    python benchmarks/advice_reading.py --misses     # and every sentence read wrong
    python benchmarks/advice_reading.py --explain "Don't hold firm near the end." --role seller
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from haggler.agents.advice import explain_advice  # noqa: E402
from tests.fakes.advice_scoring import CATEGORIES, LABELS, Score, load_labels, score  # noqa: E402


def table(title: str, scores: dict[str, Score]) -> str:
    head = (
        f"{'':13} {'sentences':>9} {'levers right':>13} {'recall':>7} {'exact':>6} "
        f"{'backwards':>9} {'of which negated':>16}"
    )
    lines = [title, head]
    for key in [*CATEGORIES, "all"]:
        if key not in scores:
            continue
        s = scores[key]
        lines.append(
            f"{key:13} {s.sentences:>9} {s.accuracy:>12.1%} {s.recall:>7.1%} {s.exact:>6.1%} "
            f"{s.backwards:>9} {s.negated_backwards:>16}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS, help="a labelled YAML file")
    parser.add_argument("--misses", action="store_true", help="list the sentences read wrong")
    parser.add_argument("--explain", help="explain the reading of this advice and stop")
    parser.add_argument("--role", default="seller", choices=["seller", "buyer"])
    args = parser.parse_args()
    if args.explain:
        print(explain_advice([args.explain], args.role))
        return
    items = load_labels(args.labels)
    splits = sorted({item.split for item in items})
    for split in splits:
        chosen = [item for item in items if item.split == split]
        scores = score(chosen)
        print(table(f"\n{args.labels.name}, {split} ({len(chosen)} sentences)", scores))
        if args.misses:
            for line in scores["all"].wrong:
                print(f"  miss: {line}")
    print(table(f"\n{args.labels.name}, all splits ({len(items)} sentences)", score(items)))


if __name__ == "__main__":
    main()
