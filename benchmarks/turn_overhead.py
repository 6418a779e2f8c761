"""Per-turn framework overhead: rule-based games, store on, no model calls.

Everything a turn costs besides the model itself: building the role's view, the rule-based
negotiator, the moderator's parse, the game's ruling, LangGraph's routing, and the SQLite
commit. Reported three ways in one run, so the machine's noise hits all of them alike:
  episode      play_episode with no store (graph + agents + parser)
  stored       the full `haggler.play` path with the store on (the number the README quotes)
  agents only  the negotiators' decisions and parsing, with no graph and no store

    python benchmarks/turn_overhead.py [--games 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from haggler.agents.actions import parse_action
from haggler.agents.base import PublicMessage, RoleView
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.games.base import TurnState
from haggler.games.episode import play_episode
from haggler.games.registry import make_game
from haggler.run.play import play
from haggler.store import Store

# The built-in tactics only: a plug-in package installed beside haggler (examples/plugins is,
# by README's test command) must not change what the figure measures.
BUILT_IN = [name for name in TACTICS.names() if TACTICS.get(name).__module__.startswith("haggler.")]
TACTIC_PAIRS = [(s, b) for s in BUILT_IN for b in BUILT_IN]


def _players(index: int) -> dict[str, RuleNegotiator]:
    seller, buyer = TACTIC_PAIRS[index % len(TACTIC_PAIRS)]
    return {
        "seller": RuleNegotiator("seller", TACTICS.get(seller)(), seed=index),
        "buyer": RuleNegotiator("buyer", TACTICS.get(buyer)(), seed=index),
    }


async def episodes_without_store(games: int) -> tuple[float, int]:
    game = make_game("balloon")
    turns = 0
    started = time.perf_counter()
    for index in range(games):
        result = await play_episode(game, _players(index))
        turns += sum(not t.scripted for t in result.turns)
    return time.perf_counter() - started, turns


async def games_with_store(games: int, db: Path) -> tuple[float, int]:
    turns = 0
    with Store(db) as store:
        run_id = store.start_run("benchmark")
        started = time.perf_counter()
        for index in range(games):
            seller, buyer = TACTIC_PAIRS[index % len(TACTIC_PAIRS)]
            spec = {"roles": {"seller": f"rule:{seller}", "buyer": f"rule:{buyer}"}, "seed": index}
            played = await play(spec, store=store, run_id=run_id)
            turns += sum(not t.scripted for t in played.result.turns)
        return time.perf_counter() - started, turns


async def agents_only(games: int) -> tuple[float, int]:
    # The same decisions without LangGraph or the store: a floor for the per-turn cost.
    game = make_game("balloon")
    turns = 0
    started = time.perf_counter()
    for index in range(games):
        players = _players(index)
        public = list(game.opening())
        table = game.new_table()
        speaker = game.first_speaker()
        for turn in range(game.max_turns):
            view = RoleView(
                speaker, game.brief(speaker), tuple(public), game.facts, turn, game.max_turns
            )
            reply = await players[speaker].respond(view)
            action = parse_action(reply.text)
            assert action is not None
            step = game.apply(table, speaker, action)
            public.append(PublicMessage(speaker, reply.text, action))
            turns += 1
            if step.outcome:
                break
            speaker = game.next_speaker(TurnState(turn + 1, speaker, tuple(public), table))
    return time.perf_counter() - started, turns


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    results: dict[str, list[float]] = {"agents only": [], "episode": [], "stored": []}
    turns_seen = 0
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(episodes_without_store(5))  # compile the graph, warm imports
        for repeat in range(args.repeats):
            for name, bench in (
                ("agents only", lambda: agents_only(args.games)),
                ("episode", lambda: episodes_without_store(args.games)),
                ("stored", lambda r=repeat: games_with_store(args.games, Path(tmp) / f"b{r}.db")),
            ):
                seconds, turns = asyncio.run(bench())
                results[name].append(seconds / turns * 1000)
                turns_seen = turns

    print(
        f"{args.games} balloon games x {args.repeats} repeats, ~{turns_seen / args.games:.1f} generated turns a game"
    )
    print(f"{'path':<12} {'median ms/turn':>15} {'min':>8} {'max':>8}")
    for name, values in results.items():
        print(
            f"{name:<12} {statistics.median(values):>15.3f} {min(values):>8.3f} {max(values):>8.3f}"
        )
    stored = statistics.median(results["stored"])
    floor = statistics.median(results["agents only"])
    print(
        f"stored / agents-only ratio: {stored / floor:.1f}x; target: stored < 2 ms/turn -> {'met' if stored < 2 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
