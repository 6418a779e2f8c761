"""Framework overhead of the tournament executors: rule-based games, local asyncio vs Ray.

The same round robin of the four rule-based tactics on balloon (about --games matches, no
model calls, store on) is played by the local executor and by the Ray executor on this
machine, rounds alternating so the machine's noise hits both alike. Reported: games per
second and milliseconds per generated turn (wall time over the turns the negotiators made,
as in benchmarks/turn_overhead.py), the median of --rounds, and the ratio Ray / local.

Ray's start-up is timed on its own and left out: `ray.init` (as RayExecutor calls it) before
any timing, then a warm-up run in which each worker imports haggler and compiles the graph.
The local executor gets the same warm-up run.

    python benchmarks/executor_overhead.py [--games 300] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray

from haggler.agents.tactics import TACTICS
from haggler.store import Store
from haggler.tournament.running import run_tournament
from haggler.tournament.spec import TournamentSpec, check_tournament_spec

EXECUTORS = ("local", "ray")


def tournament_spec(games: int, concurrency: int) -> TournamentSpec:
    """A round robin of every tactic on balloon, repeated to make about `games` matches."""
    tactics = TACTICS.names()
    pairings = len(tactics) * (len(tactics) - 1)
    return check_tournament_spec(
        {
            "name": "executors",
            "players": [{"name": t, "model": f"rule:{t}"} for t in tactics],
            "games": ["balloon"],
            "repetitions": max(1, round(games / pairings)),
            "concurrency": concurrency,
        }
    )


async def play(spec: TournamentSpec, executor: str, db: Path) -> tuple[float, int, int]:
    """Run `spec` on `executor` into a fresh store: (wall seconds, matches, generated turns)."""
    with Store(db) as store:
        started = time.perf_counter()
        run = await run_tournament(spec, store=store, executor=executor)
        seconds = time.perf_counter() - started
        if run.failed or run.finished != run.matches:
            raise SystemExit(f"{executor}: not every match finished: {run}")
        turns = sum(
            not turn.scripted
            for episode in store.episodes(run.run_id)
            for turn in store.episode(episode.id).transcript
        )
    return seconds, run.matches, turns


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    spec = tournament_spec(args.games, args.concurrency)
    warm_spec = tournament_spec(4 * (os.cpu_count() or 1), args.concurrency)

    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - started
    seconds: dict[str, list[float]] = {name: [] for name in EXECUTORS}
    warm_up: dict[str, tuple[float, int, int]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in EXECUTORS:
                warm_up[name] = asyncio.run(play(warm_spec, name, Path(tmp) / f"warm-{name}.db"))
            for round_ in range(args.rounds):
                for name in EXECUTORS:
                    db = Path(tmp) / f"{name}-{round_}.db"
                    wall, matches, turns = asyncio.run(play(spec, name, db))
                    seconds[name].append(wall)
    finally:
        ray.shutdown()

    print(
        f"{matches} rule-based balloon matches ({len(TACTICS.names())} tactics, round robin), "
        f"{turns} generated turns ({turns / matches:.1f} a game), concurrency "
        f"{args.concurrency}, {os.cpu_count()} CPUs; medians of {args.rounds} rounds"
    )
    print(
        f"Ray start-up, not counted below: ray.init {ray_init_s:.2f} s; a first run of "
        f"{warm_up['ray'][1]} games {warm_up['ray'][0]:.2f} s on Ray (workers starting, "
        f"importing haggler) vs {warm_up['local'][0]:.2f} s locally"
    )
    print(f"{'executor':<9} {'wall s':>7} {'min-max':>12} {'games/s':>8} {'ms/turn':>8}")
    median = {name: statistics.median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        print(
            f"{name:<9} {median[name]:>7.2f} {min(values):>5.2f}-{max(values):<6.2f} "
            f"{matches / median[name]:>8.1f} {median[name] / turns * 1000:>8.3f}"
        )
    print(f"Ray / local wall-time ratio: {median['ray'] / median['local']:.2f}x")
    print(
        f"command: python benchmarks/executor_overhead.py --games {args.games} "
        f"--rounds {args.rounds} --concurrency {args.concurrency}"
    )


if __name__ == "__main__":
    main()
