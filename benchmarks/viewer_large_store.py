"""How fast the viewer answers on a large store: 10,000-game runs, pages timed over HTTP.

Builds (once; reused when --store exists) a store holding a 10,000-game self-play run (the
paper's four feedback arms, 3 rounds) and a 10,000-game offline tournament (the four tactics,
round robin on balloon and diamond), all real rule-based games. Then starts the viewer on a
free loopback port in this process and times, over HTTP with urllib:

- the run page, cold: the first request after the run's results (the self-play chart, the
  tournament leaderboard) were dropped from memory: the first response (which waits for them
  up to 0.4 s, then comes without them), and the time until a reloaded page holds them;
- the run page, warm: the same page again;
- a filtered game list (outcome, player and role, text search), page 1 and a later page;
- one game page;
- the static HTML report of the whole run (`haggler export RUN -o run.html`), for scale.

Each is the median of --repeats. Target (issue 5): the run page and a filtered list under 1 s.

    python benchmarks/viewer_large_store.py [--games 10000] [--store /tmp/viewer-bench.db]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from haggler.run.experiment import selfplay
from haggler.run.spec import check_selfplay_spec
from haggler.store import Store
from haggler.tournament.running import run_tournament
from haggler.tournament.spec import check_tournament_spec
from haggler.view import data as view_data
from haggler.view import make_server, write_report

ARMS = ["ai", "none", "constant", "human"]
TACTICS = ["boulware", "linear", "conceder", "tit-for-tat"]


def build(path: Path, games: int) -> None:
    human = path.with_suffix(".feedback.txt")
    human.write_text("Open high and concede slowly.\nHold firm near your walk-away price.\n")
    lineages = math.ceil(games / (3 * len(ARMS)))
    spec = check_selfplay_spec(
        {
            "game": "balloon",
            "roles": {"seller": {"model": "rule:linear"}, "buyer": {"model": "rule:linear"}},
            "coached": "seller",
            "critic": "rule",
            "rounds": 3,
            "lineages": lineages,
            "feedback": ARMS,
            "human_feedback": str(human),
            "concurrency": 32,
            "seed": 0,
        },
        source="benchmark",
        base=path.parent,
    )
    pairings = len(TACTICS) * (len(TACTICS) - 1) * 2  # both roles, two games
    tournament = check_tournament_spec(
        {
            "name": "bench",
            "players": [{"name": t, "model": f"rule:{t}"} for t in TACTICS],
            "games": ["balloon", "diamond"],
            "schedule": "round_robin",
            "repetitions": math.ceil(games / pairings),
            "seed": 0,
            "concurrency": 32,
        },
        source="benchmark",
    )
    with Store(path) as store:
        started = time.perf_counter()
        asyncio.run(selfplay(spec, store=store))
        asyncio.run(run_tournament(tournament, store=store))
        print(f"built {path} in {time.perf_counter() - started:.0f} s")


def fetch(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        response.read()
        assert response.status == 200, url
    return time.perf_counter() - started


def fetch_until_complete(url: str) -> float:
    """Time until the page holds its results, reloading as a browser does when told to."""
    started = time.perf_counter()
    while True:
        with urllib.request.urlopen(url) as response:
            if b"Computing the " not in response.read():
                return time.perf_counter() - started
        time.sleep(0.05)


def timed(
    label: str, url: str, repeats: int, *, cold: bool = False, complete: bool = False
) -> None:
    """Median time to fetch `url`; `cold` drops the viewer's computed results first;
    `complete` waits until the page holds them."""
    times = []
    for _ in range(repeats):
        if cold:
            view_data.forget_results()
        times.append(fetch_until_complete(url) if complete else fetch(url))
        if cold:
            fetch_until_complete(url)  # untimed: no computation left running into the next
    print(
        f"  {label:<46} {statistics.median(times) * 1000:8.1f} ms"
        f"   (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=10_000)
    parser.add_argument(
        "--store", type=Path, default=Path(tempfile.gettempdir()) / "viewer-bench.db"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not args.store.exists():
        build(args.store, args.games)
    server = make_server(args.store, port=0)
    server.start_in_background()
    time.sleep(3)  # the results worker starts and imports, as it does when `haggler view` starts
    base = server.url.rstrip("/")
    with Store(args.store) as store:
        runs = store.runs()
        for run in runs:
            games = store.count_episodes(run.id)
            player = store.run_facets(run.id).players[0]
            print(f"{run.kind} run {run.id}: {games:,} games")
            page = f"{base}/run/{run.id}"
            filtered = f"{page}?outcome=deal&player={player}&role=seller&text=price"
            timed("run page, cold: first response", page, args.repeats, cold=True)
            timed(
                "run page, cold: until chart / leaderboard in",
                page,
                args.repeats,
                cold=True,
                complete=True,
            )
            timed("run page, warm", page, args.repeats)
            timed("filtered list (outcome, player, role, text)", filtered, args.repeats)
            timed("filtered list, page 5", filtered + "&page=5", args.repeats)
            timed("filtered list, cold", filtered, args.repeats, cold=True)
            last = store.find_episodes(run.id, limit=1, latest_first=True)[0].id
            timed("game page", f"{base}/game/{last}", args.repeats)
            out = args.store.with_suffix(f".{run.kind}.html")
            started = time.perf_counter()
            write_report(store, run.id, out)
            print(
                f"  {'static report (every game, one file)':<46} "
                f"{(time.perf_counter() - started) * 1000:8.1f} ms   "
                f"({out.stat().st_size / 1e6:.1f} MB)"
            )
    server.shutdown()


if __name__ == "__main__":
    main()
