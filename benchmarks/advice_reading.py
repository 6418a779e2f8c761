"""How well rule-based negotiators read advice: accuracy of the advice reader over hand-labelled
sentences written apart from the rule critic's own: tests/data/advice_labels.yaml (the
development set the lexicon was built on) and tests/data/advice_labels_heldout.yaml (written
after the reader was built, never tuned on).

Prints, per set and per category (paraphrase, negation, mixed, hedged, conditional,
irrelevant): lever directions right (four levers a sentence), the levers that should move and
did (recall), sentences read wholly right, and levers read backwards (and of those, in
sentences holding a negation).

    python benchmarks/advice_reading.py              # the table
    python benchmarks/advice_reading.py --misses     # and every sentence read wrong
    python benchmarks/advice_reading.py --explain "Don't hold firm near the end." --role seller
    python benchmarks/advice_reading.py --selfplay 200   # does a rewording teach the same?

--selfplay plays the offline experiment of examples/selfplay_offline.yaml (a linear seller
coached against fresh linear buyers, the same seeds in every arm) with arms: no feedback, the
rule critic in its own words and reworded (RuleCritic(wording="reworded")), and the human
suggestions of examples/human_feedback.txt and of human_feedback_reworded.txt (the same lines
in other words). It prints the mean deal price by round and the seller's surplus over all
lineages in the last round; if the players learn from meaning, each rewording matches its
original number for number. (The CLI's critic spec has no wording option, so this runs the
same lineages through the Python API.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from haggler.agents.advice import explain_advice  # noqa: E402
from haggler.agents.critic import RuleCritic  # noqa: E402
from haggler.evals.stats import mean_ci  # noqa: E402
from haggler.games.registry import make_game  # noqa: E402
from haggler.games.selfplay import (  # noqa: E402
    AIFeedback,
    FeedbackSource,
    HumanFeedback,
    Lineage,
    NoFeedback,
    SelfPlaySetup,
    play_lineage,
)
from haggler.memory import AgentMemory  # noqa: E402
from haggler.run.cast import Cast  # noqa: E402
from haggler.run.experiment import lineage_seed  # noqa: E402
from haggler.run.spec import load_selfplay_spec  # noqa: E402
from tests.fakes.advice_scoring import (  # noqa: E402
    CATEGORIES,
    DATA,
    LABELS,
    Score,
    load_labels,
    score,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HELDOUT = DATA / "advice_labels_heldout.yaml"


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


def _pool(name: str) -> list[str]:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


async def _arm(source: FeedbackSource, lineages: int) -> list[list[float | None]]:
    spec = load_selfplay_spec(EXAMPLES / "selfplay_offline.yaml")
    game = make_game(spec.game, spec.rules)
    cast = Cast(spec, game)
    setup = SelfPlaySetup(game=game, make_players=cast.players, moderator=cast.moderator,
                          feedback=source)  # fmt: skip
    prices = []
    for index in range(lineages):
        lineage = Lineage(
            arm=source.kind, coached=("seller",), seed=lineage_seed(spec, index),
            rounds=spec.rounds, memories={"seller": AgentMemory(f"{source.label}/{index}")},
            memory_budget=spec.memory_budget, counters={"seller": cast.token_counter("seller")},
        )  # fmt: skip
        result = await play_lineage(lineage, setup)
        prices.append([r.outcome.price if r.outcome.kind == "deal" else None
                       for r in result.rounds])  # fmt: skip
    await cast.aclose()
    return prices


def selfplay_by_wording(lineages: int) -> None:
    arms: list[tuple[str, FeedbackSource]] = [
        ("none", NoFeedback()),
        ("ai, rule critic", AIFeedback(RuleCritic())),
        ("ai, rule critic reworded", AIFeedback(RuleCritic("reworded"))),
        ("human suggestions", HumanFeedback(_pool("human_feedback.txt"))),
        ("human suggestions reworded", HumanFeedback(_pool("human_feedback_reworded.txt"))),
    ]
    print(f"\nlinear seller vs linear buyers, {lineages} lineages, same seeds in every arm")
    print(f"{'arm':28} {'round 1':>13} {'round 2':>13} {'round 3':>13} {'surplus r3 (all)':>17}")
    for label, source in arms:
        prices = asyncio.run(_arm(source, lineages))
        cells = []
        for k in range(len(prices[0])):
            cells.append(mean_ci([p[k] for p in prices if p[k] is not None]).format())
        surplus = mean_ci([(p[-1] - 8.0) if p[-1] is not None else 0.0 for p in prices])
        print(f"{label:28} " + " ".join(f"{c:>13}" for c in cells) + f" {surplus.format():>17}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, nargs="+", default=[LABELS, HELDOUT],
                        help="labelled YAML files (default: the development and held-out sets)")  # fmt: skip
    parser.add_argument("--misses", action="store_true", help="list the sentences read wrong")
    parser.add_argument("--explain", help="explain the reading of this advice and stop")
    parser.add_argument("--role", default="seller", choices=["seller", "buyer"])
    parser.add_argument("--selfplay", type=int, metavar="LINEAGES",
                        help="also play the wording arms of the offline experiment")  # fmt: skip
    args = parser.parse_args()
    if args.explain:
        print(explain_advice([args.explain], args.role))
        return
    for path in args.labels:
        items = load_labels(path)
        scores = score(items)
        print(table(f"\n{path.name} ({len(items)} sentences)", scores))
        if args.misses:
            for line in scores["all"].wrong:
                print(f"  miss: {line}")
    if args.selfplay:
        selfplay_by_wording(args.selfplay)


if __name__ == "__main__":
    main()
