"""Latency-bound throughput: a tournament of hosted models vs a plain asyncio + openai script.

A fake OpenAI-compatible server (benchmarks/fake_server_process.py, a process of its own, so
its threads stay off this process's GIL) answers every call after --latency seconds,
negotiating from the prompt. Hosted players (--models, api_base at the server) play a round
robin of about --games balloon matches at --concurrency, with the rule moderator and a
throwaway store. The same calls are then made five more ways, giving six paths; the first
three are the plain-script baselines, like for like with haggler in more and more of how they
call:

  plain openai     AsyncOpenAI(max_retries=0).chat.completions.create on the SDK's default
                   httpx transport: the typed call a script would write
  plain aiohttp    the same typed call on the SDK's aiohttp transport, haggler's transport
  plain post       the SDK's low-level `post` of the same JSON body on the aiohttp transport:
                   exactly the request haggler's backend makes, and nothing else (the leanest)
  litellm          litellm.acompletion with the arguments LiteLLMBackend passes it (for
                   comparison: haggler calls openai/ models through the openai SDK directly)
  haggler backend  the backend open_backend gives the model, .complete (its HTTP path, retry
                   policy, pricing, accounting)
  tournament       haggler.tournament.running.run_tournament: executor, LangGraph, agents,
                   parser, store

The target is the tournament within 1.2x of the leanest baseline's wall time.

Every path makes the same calls with the same dependency structure: each game's calls in
sequence, each awaiting the previous one, --concurrency games at a time. The prompts are
rebuilt from the tournament's stored turns (the role's brief, then the public conversation),
so they match the tournament's to within a sentence. The server counts the calls it answers;
the tournament's count from its stored turns is checked against it. Rounds alternate the
paths, so the shared machine's noise hits all of them alike.

The client's CPU time per call, rung by rung, splits haggler's overhead: haggler's backend
over the plain SDK call (negative where its HTTP path is the leaner), the store (its
whole-game commits, timed in place) and the rest of the tournament (LangGraph, agents, parser,
per-match set-up, garbage collection); litellm's cost over the SDK is shown beside it.
--profile-games N adds a cProfile of an N-game tournament: CPU time by package, the time of
builtins and of other modules charged to the package that called them.

    python benchmarks/tournament_throughput.py [--games 500] [--concurrency 64] [--latency 0.05]
        [--rounds 3] [--models openai/model-a,openai/model-b] [--profile-games 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from haggler.llm.base import Message
from haggler.llm.providers import open_backend
from haggler.store import EpisodeRecord, Store
from haggler.tournament.running import run_tournament
from haggler.tournament.spec import TournamentSpec, check_tournament_spec

REPO = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).with_name("fake_server_process.py")
STATS_MODEL = "__stats__"  # asks the server for its call count
MAX_TOKENS = 256  # what haggler's LLM negotiator asks for
TIMEOUT_S = 60.0  # haggler's default per-call timeout
BASELINES = ("plain openai", "plain aiohttp", "plain post")
PATHS = (*BASELINES, "litellm", "haggler backend", "tournament")

Chat = list[dict[str, str]]
Game = list[tuple[str, Chat]]  # a game's calls in order: (model, messages)
CallFn = Callable[[str, Chat], Awaitable[Any]]
ProfileStats = dict[tuple[str, int, str], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Timing:
    wall_s: float
    cpu_s: float  # this process's CPU time, all threads
    calls: int
    store_s: float = 0.0


@contextlib.contextmanager
def fake_server(latency: float) -> Iterator[str]:
    """The fake server in its own process; yields its OpenAI base URL."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


async def served_calls(client: openai.AsyncOpenAI) -> int:
    """Completions the server has answered so far."""
    reply = await client.chat.completions.create(
        model=STATS_MODEL, messages=[{"role": "user", "content": "count"}]
    )
    return int(json.loads(reply.choices[0].message.content or "")["calls"])


def tournament_spec(
    name: str, url: str, models: list[str], games: int, concurrency: int
) -> TournamentSpec:
    """A round robin of `models` at `url`, repeated to make about `games` matches."""
    pairings = len(models) * (len(models) - 1)
    return check_tournament_spec(
        {
            "name": name,
            "players": [{"name": m.partition("/")[2], "model": m, "api_base": url} for m in models],
            "games": ["balloon"],
            "schedule": "round_robin",
            "repetitions": max(1, round(games / pairings)),
            "concurrency": concurrency,
            "moderator": "rule",
        }
    )


class TimedStore(Store):
    """A Store that adds up the time its whole-game commits take."""

    commit_s = 0.0

    def add_episode(self, *args: Any, **kwargs: Any) -> str | None:
        started = time.perf_counter()
        try:
            return super().add_episode(*args, **kwargs)
        finally:
            self.commit_s += time.perf_counter() - started


def calls_of(record: EpisodeRecord) -> Game:
    """The model calls a stored game made, in order, with prompts rebuilt from its turns."""
    calls: Game = []
    public: list[tuple[str, str]] = []
    for turn in record.transcript:
        if not turn.scripted and turn.model is not None:
            chat = [{"role": "system", "content": record.roles[turn.speaker].brief}]
            chat += [
                {"role": "assistant" if speaker == turn.speaker else "user", "content": text}
                for speaker, text in public
            ]
            if len(chat) > 1 and chat[1]["role"] == "assistant":
                chat.insert(1, {"role": "user", "content": "The negotiation begins."})
            if chat[-1]["role"] == "assistant":
                chat.append({"role": "user", "content": "Your turn."})
            calls += [(turn.model, chat)] * (1 + turn.retries)
        if turn.accepted:
            public.append((turn.speaker, turn.text))
    return calls


def stored_games(store: Store, run_id: str) -> list[Game]:
    return [calls_of(store.episode(e.id)) for e in store.episodes(run_id)]


async def play_tournament(spec: TournamentSpec, db: Path) -> tuple[Timing, list[Game]]:
    """Run `spec` into a fresh store at `db`: its timing, and the calls each game made."""
    store = TimedStore(db)
    with store:
        wall, cpu = time.perf_counter(), time.process_time()
        run = await run_tournament(spec, store=store)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if run.failed or run.finished != run.matches:
            raise SystemExit(f"tournament {spec.name} did not play every match: {run}")
        games = stored_games(store, run.run_id)
        return Timing(wall, cpu, sum(map(len, games)), store.commit_s), games


async def play_calls(games: list[Game], concurrency: int, call: CallFn) -> Timing:
    """Each game's calls in sequence, `concurrency` games at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def play(game: Game) -> None:
        async with slots:
            for model, chat in game:
                await call(model, chat)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(play(game) for game in games))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timing(wall, cpu, sum(map(len, games)))


def call_paths(url: str, models: list[str]) -> tuple[dict[str, CallFn], list[Any]]:
    """One model call five ways: the openai SDK's typed call on httpx and on aiohttp, its
    low-level post on aiohttp, litellm, haggler's backend; and the clients to close."""
    import litellm  # here, once LITELLM_LOCAL_MODEL_COST_MAP is set: no price list download

    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    aio = openai.AsyncOpenAI(
        base_url=url, api_key="x", max_retries=0, http_client=openai.DefaultAioHttpClient()
    )
    backends = {m: open_backend(m, api_base=url, timeout_s=TIMEOUT_S) for m in models}

    async def plain(model: str, chat: Chat) -> Any:
        return await client.chat.completions.create(
            model=model.partition("/")[2],
            messages=chat,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            timeout=TIMEOUT_S,
        )

    async def plain_aiohttp(model: str, chat: Chat) -> Any:
        return await aio.chat.completions.create(
            model=model.partition("/")[2],
            messages=chat,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            timeout=TIMEOUT_S,
        )

    async def plain_post(model: str, chat: Chat) -> Any:
        body = {"model": model.partition("/")[2], "messages": chat, "max_tokens": MAX_TOKENS}
        text = await aio.post(
            "/chat/completions", cast_to=str, body=body, options={"timeout": TIMEOUT_S}
        )
        return json.loads(text)

    async def via_litellm(model: str, chat: Chat) -> Any:
        # The arguments haggler's LiteLLMBackend passes.
        return await litellm.acompletion(
            model=model,
            messages=chat,
            api_base=url,
            api_key="x",
            timeout=TIMEOUT_S,
            num_retries=0,
            max_retries=0,
            drop_params=True,
            max_tokens=MAX_TOKENS,
        )

    async def via_backend(model: str, chat: Chat) -> Any:
        messages = [Message(m["role"], m["content"]) for m in chat]  # type: ignore[arg-type]
        return await backends[model].complete(messages, max_tokens=MAX_TOKENS)

    paths = {
        "plain openai": plain,
        "plain aiohttp": plain_aiohttp,
        "plain post": plain_post,
        "litellm": via_litellm,
        "haggler backend": via_backend,
    }
    return paths, [client, aio, *backends.values()]


# -- the profile ---------------------------------------------------------------------------

# Top-level modules whose own time is reported as theirs; any other module's (the standard
# library, pydantic, aiohttp, ...) and every builtin's is charged to whoever called it.
_HTTP_CLIENTS = ("httpx", "httpx2", "httpcore", "httpcore2", "h11", "anyio", "aiohttp", "yarl")
_LIBRARIES = {
    "litellm": "litellm",
    "openai": "openai SDK",
    **dict.fromkeys(_HTTP_CLIENTS, "HTTP client (httpx, aiohttp)"),
    **dict.fromkeys(("langgraph", "langchain_core"), "langgraph"),
    "tenacity": "tenacity",
    "asyncio": "asyncio event loop",
}
_LIBRARY_ROOTS = {"site-packages", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
_OURS = {
    "store": "haggler store",
    "agents": "haggler agents + parser",
    "games": "haggler games + episode graph",
    "haggler": "haggler core (backend, cast, executor)",
}
IDLE = "idle"


def _package(filename: str, function: str) -> str | None:
    """The bucket a profiled function's own time goes to; None: charge its callers."""
    if filename == "~":
        return IDLE if "poll" in function else None
    path = Path(filename).resolve()
    if path.is_relative_to(REPO):
        parts = path.relative_to(REPO).parts
        return _OURS["store"] if parts[:2] == ("haggler", "store") else _OURS.get(parts[0])
    # The first folder (or module) under site-packages or the standard library.
    anchors = [i for i, part in enumerate(path.parts) if part in _LIBRARY_ROOTS]
    return _LIBRARIES.get(path.parts[anchors[-1] + 1].removesuffix(".py")) if anchors else None


def _shares(
    key: tuple[str, int, str],
    stats: ProfileStats,
    memo: dict[tuple[str, int, str], dict[str, float]],
    seen: frozenset[tuple[str, int, str]] = frozenset(),
) -> dict[str, float]:
    """Which buckets `key`'s own time goes to, as fractions: its own, or its callers'."""
    if key in memo:
        return memo[key]
    package = _package(key[0], key[2])
    callers = {c: row[2] for c, row in stats[key][4].items() if c in stats and c not in seen}
    total = sum(callers.values())
    shares: dict[str, float] = defaultdict(float)
    if package is not None or not total:
        shares[package or "unattributed"] = 1.0
    else:
        for caller, own in callers.items():
            for bucket, share in _shares(caller, stats, memo, seen | {key}).items():
                shares[bucket] += share * own / total
    memo[key] = shares
    return shares


async def profile_by_package(spec: TournamentSpec, db: Path) -> tuple[dict[str, float], int]:
    """CPU seconds of a tournament under cProfile, by package; and the calls it made."""
    profiler = cProfile.Profile()
    with Store(db) as store:
        profiler.enable()
        try:
            run = await run_tournament(spec, store=store)
        finally:
            profiler.disable()
        calls = sum(map(len, stored_games(store, run.run_id)))
    stats: ProfileStats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    memo: dict[tuple[str, int, str], dict[str, float]] = {}
    seconds: dict[str, float] = defaultdict(float)
    for key, row in stats.items():
        for bucket, share in _shares(key, stats, memo).items():
            seconds[bucket] += row[2] * share
    seconds.pop(IDLE, None)
    return dict(seconds), calls


# -- running and reporting -----------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05, help="server reply delay, s")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of the six paths")
    parser.add_argument(
        "--models",
        default="openai/model-a,openai/model-b",
        help="comma-separated openai/ models, the players (unpriced names by default)",
    )
    parser.add_argument("--profile-games", type=int, default=0, help="also profile this many")
    args = parser.parse_args()
    models = args.models.split(",")
    if len(models) < 2 or not all(m.startswith("openai/") for m in models):
        parser.error("--models needs two or more openai/ models: the plain path uses the SDK")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    results: dict[str, list[Timing]] = {path: [] for path in PATHS}
    profile: tuple[dict[str, float], int] | None = None
    with fake_server(args.latency) as url, tempfile.TemporaryDirectory() as tmp:

        async def bench() -> int:
            nonlocal profile
            spec = tournament_spec("throughput", url, models, args.games, args.concurrency)
            counter = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
            paths, clients = call_paths(url, models)
            # Warm every path up: imports, the compiled graph, connection pools.
            warm = tournament_spec("warm-up", url, models, args.concurrency, args.concurrency)
            _, warm_games = await play_tournament(warm, Path(tmp) / "warm.db")
            for call in paths.values():
                await play_calls(warm_games, args.concurrency, call)
            for round_ in range(args.rounds):
                before = await served_calls(counter)
                timing, games = await play_tournament(spec, Path(tmp) / f"round{round_}.db")
                served = await served_calls(counter) - before
                if served != timing.calls:
                    raise SystemExit(
                        f"the server answered {served} calls, the turns say {timing.calls}"
                    )
                results["tournament"].append(timing)
                for name, call in paths.items():
                    results[name].append(await play_calls(games, args.concurrency, call))
            if args.profile_games:
                profiled = tournament_spec(
                    "profiled", url, models, args.profile_games, args.concurrency
                )
                profile = await profile_by_package(profiled, Path(tmp) / "profiled.db")
            for client in clients:
                await (client.aclose() if hasattr(client, "aclose") else client.close())
            return len(games)

        matches = asyncio.run(bench())

    report(args, matches, results, profile)


def report(
    args: argparse.Namespace,
    matches: int,
    results: dict[str, list[Timing]],
    profile: tuple[dict[str, float], int] | None,
) -> None:
    calls = results["tournament"][0].calls
    wall = {name: statistics.median(t.wall_s for t in runs) for name, runs in results.items()}
    cpu_ms = {
        name: statistics.median(t.cpu_s / t.calls * 1000 for t in runs)
        for name, runs in results.items()
    }
    store_ms = statistics.median(t.store_s / t.calls * 1000 for t in results["tournament"])
    print(
        f"{matches} balloon matches ({args.models}), {calls / matches:.1f} calls a game, "
        f"{calls} calls; server latency {args.latency * 1000:g} ms, concurrency "
        f"{args.concurrency}; medians of {args.rounds} rounds"
    )
    floor = calls * args.latency / args.concurrency
    print(f"latency-bound floor (calls x latency / concurrency): {floor:.2f} s\n")
    leanest = min(BASELINES, key=wall.__getitem__)
    print(
        f"{'path':<16} {'wall s':>7} {'min-max':>12} {'calls/s':>8} {'x leanest':>10} "
        f"{'CPU ms/call':>12} {'CPU busy':>9}"
    )
    for name, runs in results.items():
        walls = [t.wall_s for t in runs]
        busy = statistics.median(t.cpu_s / t.wall_s for t in runs)
        print(
            f"{name:<16} {wall[name]:>7.2f} {min(walls):>5.2f}-{max(walls):<6.2f} "
            f"{calls / wall[name]:>8.0f} {wall[name] / wall[leanest]:>9.2f}x "
            f"{cpu_ms[name]:>12.3f} {busy:>9.0%}"
        )
    for baseline in BASELINES:
        ratios = [
            t.wall_s / b.wall_s
            for t, b in zip(results["tournament"], results[baseline], strict=True)
        ]
        print(
            f"tournament / {baseline}: {statistics.median(ratios):.2f}x "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
        )
    ratio = wall["tournament"] / wall[leanest]
    print(
        f"against the leanest baseline ({leanest}): {ratio:.2f}x; target <= 1.2x -> "
        f"{'met' if ratio <= 1.2 else 'MISSED'}"
    )
    print("\nclient CPU per call, where the tournament's goes (ms):")
    split = {
        "the SDK's low-level post on aiohttp (plain post)": cpu_ms["plain post"],
        "haggler backend over that same call": cpu_ms["haggler backend"] - cpu_ms["plain post"],
        "store (whole-game commits)": store_ms,
        "LangGraph + agents + parser + match set-up": cpu_ms["tournament"]
        - cpu_ms["haggler backend"]
        - store_ms,
    }
    for part, ms in split.items():
        print(f"  {part:<50} {ms:>7.3f}  {ms / cpu_ms['tournament']:>4.0%}")
    print(f"  {'the tournament, all of it':<50} {cpu_ms['tournament']:>7.3f}")
    litellm_ms = cpu_ms["litellm"] - cpu_ms["plain openai"]
    print(f"  {'(litellm over the openai SDK, not on this path)':<50} {litellm_ms:>7.3f}")
    if profile is not None:
        seconds, profiled_calls = profile
        total = sum(seconds.values())
        print(
            f"\ncProfile of a {args.profile_games}-game tournament: CPU ms per call by package, "
            f"builtins and other modules charged to their caller (the profiler inflates all of it):"
        )
        for package, spent in sorted(seconds.items(), key=lambda kv: -kv[1]):
            print(f"  {package:<50} {spent / profiled_calls * 1000:>7.3f}  {spent / total:>4.0%}")
    print(
        f"\ncommand: python benchmarks/tournament_throughput.py --games {args.games} "
        f"--concurrency {args.concurrency} --latency {args.latency:g} --rounds {args.rounds} "
        f"--models {args.models}"
        + (f" --profile-games {args.profile_games}" if args.profile_games else "")
    )


if __name__ == "__main__":
    main()
