"""Does coaching ever cost the coached seller? For every pairing of seller tactic x buyer tactic,
`haggler selfplay` with arms ai (the rule critic) and none on the same seeds, then the seller's
surplus over all lineages (a game without a deal counts 0) in the first and the last round,
each arm ± 95% t interval, the deal rate of the last round, and the AI-minus-none difference in
the last round, paired by lineage seed, ± 95% t interval.

    python benchmarks/coaching_pairings.py                       # 4 x 4 pairings, ~5 minutes
    python benchmarks/coaching_pairings.py --sellers linear --lineages 200 --rounds 5
    python benchmarks/coaching_pairings.py --markdown            # the table as README shows it

Each pairing is a real CLI run (a spec written to a temporary folder, its own store); the
numbers are read back from the store with haggler.evals, as `haggler report` reads them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from haggler.evals.selfplay import round_metrics  # noqa: E402
from haggler.evals.stats import Interval, mean_ci  # noqa: E402
from haggler.store.sqlite import Store  # noqa: E402

TACTICS = ("boulware", "linear", "conceder", "tit-for-tat")
SPEC = """game: balloon
roles:
  seller: {{model: "rule:{seller}"}}
  buyer: {{model: "rule:{buyer}"}}
coached: seller
critic: rule
rounds: {rounds}
lineages: {lineages}
feedback: [ai, none]
seed: {seed}
concurrency: 32
"""


def play(folder: Path, seller: str, buyer: str, args: argparse.Namespace) -> Path:
    spec = folder / f"{seller}-{buyer}.yaml"
    spec.write_text(SPEC.format(seller=seller, buyer=buyer, rounds=args.rounds,
                                lineages=args.lineages, seed=args.seed))  # fmt: skip
    db = folder / f"{seller}-{buyer}.db"
    command = [sys.executable, "-c", "from haggler.cli import main; main()"]
    done = subprocess.run(
        [*command, "selfplay", str(spec), "--db", str(db)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"haggler selfplay failed for {seller} x {buyer}:\n{done.stderr}")
    return db


def measure(db: Path, rounds: int) -> dict[str, object]:
    with Store(db) as store:
        run_id = store.runs()[-1].id
        rows = {(r.arm, r.round): r for r in round_metrics(store, run_id)}
        # The last round's surplus, lineage by lineage, to pair the arms seed by seed.
        seeds = {lin.id: (lin.arm, lin.seed) for lin in store.lineages(run_id)}
        last: dict[str, dict[int, float]] = {"ai": {}, "none": {}}
        for episode in store.run_episodes(run_id, transcripts=False):
            if episode.round == rounds and episode.lineage_id in seeds:
                arm, seed = seeds[episode.lineage_id]
                deal = episode.outcome is not None and episode.outcome.kind == "deal"
                last[arm][seed] = episode.scores.get("seller", 0.0) if deal else 0.0
    paired = [last["ai"].get(seed, 0.0) - last["none"].get(seed, 0.0) for seed in last["none"]]
    return {"rows": rows, "paired": mean_ci(paired)}


def show(value: Interval) -> str:
    return value.format()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sellers", default=",".join(TACTICS))
    parser.add_argument("--buyers", default=",".join(TACTICS))
    parser.add_argument("--lineages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    last = args.rounds
    head = (
        f"| seller | buyer | round 1 (both arms) | ai, round {last} | none, round {last} | deals ai / none, "
        f"round {last} | ai − none, round {last} (paired) |"
    )
    print(head if args.markdown else head.replace("|", " "))
    if args.markdown:
        print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for seller in args.sellers.split(","):
            for buyer in args.buyers.split(","):
                db = play(Path(folder), seller, buyer, args)
                result = measure(db, last)
                rows = result["rows"]
                ai, none = rows[("ai", last)], rows[("none", last)]  # type: ignore[index]
                first = rows[("none", 1)]  # type: ignore[index]
                paired = result["paired"]
                cells = [
                    seller,
                    buyer,
                    show(first.surplus_all),
                    show(ai.surplus_all),
                    show(none.surplus_all),
                    f"{ai.deal_rate_all.value:.2f} / {none.deal_rate_all.value:.2f}",
                    paired.format("+.2f"),  # type: ignore[attr-defined]
                ]
                line = "| " + " | ".join(cells) + " |"
                print(line if args.markdown else line.replace("|", " "), flush=True)


if __name__ == "__main__":
    main()
