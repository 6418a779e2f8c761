"""What remembering, recalling and forgetting cost as an agent's memory grows.

Builds a store-backed memory of N items (default 100,000): 10 counterparts, each with its own
lineages of 5 rounds; every round is a game (about 600 characters) and the critic's advice on
it (about 200); a game links the items of its lineage that were in its player's context.
Then measures, median (min-max) over repeats:

  insert      ms per item remembered, for the first and the last 10% of the build: equal if
              remembering is linear in the items held
  context     building the next prompt's recollection under a 2,000-token budget
  context in  the same within the environment of a counterpart met in the first round only
  load        `AgentMemory.load` of the whole memory from the store (what `haggler forget`
              does before planning)
  forget      `AgentMemory.forget` of a last-round game (the game and its advice: 2 items)
  trajectory  a forget request for one game, through the request engine, audit and
              physical erasure (WAL checkpointed and truncated) included
  environment a forget request for one counterpart: a tenth of the memory, erasure included

With `--baseline-tree DIR` (a checkout of an earlier haggler) the same memory is built and the
common operations (insert, context, forget) are measured there too, in the same run, so both
see the same machine:

    python benchmarks/memory_scale.py [--items 100000] [--repeats 7] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

COUNTERPARTS = 10
ROUNDS = 5
EPISODE = (
    "seller (you): This is a good balloon and its price is $20. [OFFER $20]\n"
    "buyer: Would you sell it for $10? [OFFER $10]\n"
    "seller (you): I could come down to $18.50 for you. [OFFER $18.50]\n"
    "buyer: That is still too much; I can go to $12. [OFFER $12]\n"
    "seller (you): Let us say $16, a fair price. [OFFER $16]\n"
    "buyer: Fine, $16 it is. [ACCEPT $16]\n"
    "Result: deal at $16."
)
ADVICE = (
    "1. You conceded more than the buyer did; hold firm and make the buyer move first.\n"
    "2. Concede in smaller steps.\n"
    "3. The deal landed on the buyer's side of the range; aim higher."
)


def _build(store: Any, items: int) -> tuple[Any, list[float], list[list[str]], list[str]]:
    """The memory, ms per item for each tenth of the build, each lineage's game ids (for
    forgetting one), and each item's counterpart."""
    from haggler.memory import AgentMemory, Environment

    memory = AgentMemory("bench/seller", store)
    lineages = max(1, items // (2 * ROUNDS * COUNTERPARTS))
    tenth = max(1, items // 10)
    per_tenth: list[float] = []
    started = time.perf_counter()
    made = 0
    games: list[list[str]] = []
    counterparts: list[str] = []
    # A counterpart met once, at the start: what a context within its environment steps over.
    once = memory.remember_episode(EPISODE, Environment("balloon", "balloon", "rule:met-once"))
    memory.remember_feedback(ADVICE, once.env, about=[once])
    for lineage in range(lineages):
        for c in range(COUNTERPARTS):
            env = Environment("balloon", "balloon", f"rule:rival-{c}")
            context: list[Any] = []
            ids = []
            for number in range(1, ROUNDS + 1):
                episode_id = f"ep-{lineage}-{c}-{number}"
                try:
                    game = memory.remember_episode(
                        EPISODE, env, episode_id=episode_id, round=number, context=context
                    )
                except TypeError:  # an older haggler: no provenance of the context
                    game = memory.remember_episode(
                        EPISODE, env, episode_id=episode_id, round=number
                    )
                advice = memory.remember_feedback(ADVICE, env, about=[game], round=number)
                context = [game, advice]
                ids.append(game.id)
                counterparts.append(env.counterpart or "")
                made += 2
                if made % tenth < 2:
                    now = time.perf_counter()
                    per_tenth.append((now - started) * 1000 / tenth)
                    started = now
            games.append(ids)
    return memory, per_tenth, games, counterparts


def _median(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def _timed(action: Callable[[], Any], repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return _median(samples)


def measure(items: int, repeats: int, common_only: bool) -> dict[str, Any]:
    from haggler.memory import Environment, build_context
    from haggler.store import Store

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "m.db") as store:
        memory, per_tenth, games, _ = _build(store, items)
        results["items"] = len(memory)
        results["insert_first_tenth_ms"] = per_tenth[0]
        results["insert_last_tenth_ms"] = per_tenth[-1]
        results["context_ms"] = _timed(lambda: build_context(memory, budget_tokens=2000), repeats)
        once = Environment("balloon", "balloon", "rule:met-once")
        results["context_in_ms"] = _timed(
            lambda: build_context(memory, budget_tokens=2000, env=once), repeats
        )
        last_rounds = iter([lineage[-1] for lineage in games])
        results["forget_ms"] = _timed(lambda: memory.forget(next(last_rounds)), repeats)
        if common_only:
            return results

        from haggler.memory import AgentMemory
        from haggler.memory.forgetting import EnvironmentRequest, TrajectoryRequest, forget

        results["load_ms"] = _timed(lambda: AgentMemory.load(store, memory.owner), 3)

        owners = {memory.owner: memory}
        firsts = iter([lineage[-2] for lineage in games[repeats:]])

        def one_game() -> None:
            episode_id = memory.get(next(firsts)).episode_id
            asyncio.run(forget(TrajectoryRequest(episode=episode_id), store=store, memories=owners))

        results["trajectory_ms"] = _timed(one_game, repeats)
        before = len(memory)
        started = time.perf_counter()
        done = asyncio.run(
            forget(EnvironmentRequest(counterpart="rule:rival-3"), store=store, memories=owners)
        )
        results["environment_s"] = time.perf_counter() - started
        results["environment_removed"] = before - len(memory)
        results["environment_erased"] = done.erased
    return results


def _overlay(tree: Path) -> Path:
    """A folder where `import haggler` finds the checkout `tree`, with its top-level packages
    (agents, games, memory, evals) mapped under haggler as an install would."""
    root = Path(tempfile.mkdtemp(prefix="haggler-baseline-"))
    package = root / "haggler"
    package.mkdir()
    for entry in (tree / "haggler").iterdir():
        (package / entry.name).symlink_to(entry)
    for name in ("agents", "games", "memory", "evals"):
        if not (package / name).exists():
            (package / name).symlink_to(tree / name)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--common-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    results = {"this tree": measure(args.items, args.repeats, args.common_only)}
    if args.baseline_tree is not None:
        env = os.environ | {"PYTHONPATH": str(_overlay(args.baseline_tree.resolve()))}
        out = subprocess.run(
            [sys.executable, __file__, "--items", str(args.items),
             "--repeats", str(args.repeats), "--common-only", "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        results["baseline"] = json.loads(out.stdout)["this tree"]
    if args.json:
        print(json.dumps(results))
        return
    for name, found in results.items():
        print(f"== {name}: {found['items']} items")
        print(
            f"  insert      {found['insert_first_tenth_ms']:.3f} ms/item (first tenth), "
            f"{found['insert_last_tenth_ms']:.3f} ms/item (last tenth)"
        )
        for key, label in (
            ("context_ms", "context"),
            ("context_in_ms", "context in"),
            ("forget_ms", "forget"),
            ("load_ms", "load"),
            ("trajectory_ms", "trajectory"),
        ):
            if key in found:
                m = found[key]
                print(f"  {label:<11} {m['median']:.2f} ms ({m['min']:.2f}-{m['max']:.2f})")
        if "environment_s" in found:
            print(
                f"  environment {found['environment_s']:.2f} s for {found['environment_removed']} "
                f"items removed, erased: {found['environment_erased']}"
            )


if __name__ == "__main__":
    main()
