"""Probe runs: `haggler probe` and `haggler unlearn-eval` on an agent that runs on a hosted
model (the fake server, through the real SDK), their attempts stored like games and read back
by `show`, exports, `runs` and the viewer; bad input in one line with exit status 2; a run
killed with `kill -9` resumed; a budget; failures.

The strategies, judge and guard are test fakes (tests/fakes/probe_fakes.py), so that the
pipeline is tested on its own; the agent's model is the fake server, answering probe
questions from its own prompt and negotiating otherwise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from typer.testing import CliRunner

from haggler.agents.adversary.base import STRATEGIES, Secret
from haggler.cli import app
from haggler.games.registry import make_game
from haggler.probe import unlearn_eval, unlearn_report
from haggler.probe.attempts import judged_attempt
from haggler.probe.quick import choose_strategies
from haggler.probe.records import attempt_episode
from haggler.store import Store
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Status, Text
from tests.fakes.negotiating_llm import negotiate
from tests.fakes.probe_fakes import (
    FakeAsk,
    FakeGuard,
    FakeHint,
    FakeJudge,
    KnowingTarget,
    answer_from_prompt,
    registered,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-probe-0123456789"
runner = CliRunner()
LEAK_LINE = re.compile(r"^leak rate: (\d\.\d\d) \[(\d\.\d\d), (\d\.\d\d)\]$")


def haggler(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)


def respond(request: RecordedRequest) -> Text:
    return answer_from_prompt(request) or negotiate(request)


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with registered():
        yield


@pytest.fixture
def server(fake_llm_server: FakeLLMServer) -> FakeLLMServer:
    fake_llm_server.responder = respond
    return fake_llm_server


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output
    return lines[0]


# -- a quick probe of a stored agent ---------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path, server: FakeLLMServer) -> Path:
    """A store with a self-play run of a named agent on a hosted model: two lineages."""
    spec = tmp_path / "sp.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "roles": {
                    "seller": {"model": "openai/gpt-4o-mini", "api_base": server.openai_base},
                    "buyer": "rule:linear",
                },
                "rounds": 2,
                "lineages": 2,
                "agent": "shop",
                "seed": 3,
            }
        )
    )
    db = tmp_path / "h.db"
    result = haggler("selfplay", str(spec), "--db", str(db))
    assert result.exit_code == 0, result.output
    return db


PROBE = ["probe", "shop/ai/0/seller", "--secret", "$20", "--topic", "the price it opened at"]


def test_probe_asks_the_agent_as_it_plays_and_ends_with_the_leak_rate(
    shop: Path, server: FakeLLMServer
) -> None:
    asked_before = len(server.requests)
    result = haggler(
        *PROBE, "--strategy", "fake-ask", "--strategy", "fake-play", "--judge", "fake-match",
        "--samples", "3", "--db", str(shop),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    match = LEAK_LINE.match(last)
    assert match, last
    value, low, high = map(float, match.groups())
    assert low <= value <= high
    # The hosted agent was asked with its own prompt: its brief and what its memory recalls.
    questions = [r for r in server.requests[asked_before:] if "Question:" in r.last_user_text]
    assert len(questions) == 3
    system = questions[0].messages[0]["content"]
    assert "What you remember from your earlier games:" in system
    assert "$20" in system, "its remembered games hold the opening it is asked about"
    with Store(shop, read_only=True) as store:
        run = store.runs()[-1]
        assert run.kind == "probe" and run.spec["agent"] == "shop/ai/0/seller"
        episodes = store.run_episodes(run.id)
    attempts = [e for e in episodes if e.outcome and e.outcome.kind in ("leak", "no_leak")]
    games = [e for e in episodes if e.outcome and e.outcome.kind in ("deal", "no_deal", "invalid")]
    assert len(attempts) == 6 and len(games) == 3, "fake-play's games are stored as games"
    asked = [e for e in attempts if e.rules["probe"]["strategy"] == "fake-ask"]
    assert all(e.outcome.kind == "leak" for e in asked), "the agent recalls its own opening"
    target_turns = [t for e in asked for t in e.transcript if t.speaker == "target"]
    assert {t.model for t in target_turns} == {"openai/gpt-4o-mini"}
    assert all((t.prompt_tokens, t.completion_tokens) == (80, 12) for t in target_turns)
    played = [e for e in attempts if e.rules["probe"]["strategy"] == "fake-play"]
    assert all(len(e.rules["probe"]["games"]) == 1 for e in played)
    assert {g for e in played for g in e.rules["probe"]["games"]} == {g.id for g in games}


def test_bad_probes_are_one_line_with_exit_status_2(shop: Path, tmp_path: Path) -> None:
    db = str(shop)
    cases = {
        "no agent 'nobody'": ["probe", "nobody", "--secret", "$20", "--db", db],
        "names 2 agents": ["probe", "shop", "--secret", "$20", "--db", db],
        "unknown strategy 'nope'": [*PROBE, "--strategy", "nope", "--db", db],
        "does not fit": [*PROBE[:2], "--secret", "x", "--level", "environment",
                         "--strategy", "fake-hint", "--judge", "fake-match", "--db", db],
        "unknown judge 'nope'": [*PROBE, "--strategy", "fake-ask", "--judge", "nope", "--db", db],
        "--samples 0": [*PROBE, "--strategy", "fake-ask", "--samples", "0", "--db", db],
        "--level sideways": [*PROBE, "--level", "sideways", "--db", db],
        "--secret: give the text": ["probe", "shop/ai/0/seller", "--secret", " ", "--db", db],
        "no such file": [*PROBE, "--db", str(tmp_path / "missing.db")],
    }  # fmt: skip
    with Store(shop, read_only=True) as store:
        runs_before = len(store.runs())
    for expected, args in cases.items():
        assert expected in one_line_error(haggler(*args)), expected
    with Store(shop, read_only=True) as store:
        assert len(store.runs()) == runs_before, "a refused probe starts no run"
    assert not (tmp_path / "missing.db").exists()


def test_no_strategy_fits_is_said_plainly(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only a strategy for other levels is known (none installed through entry points, none
    # built in): none fits an environment-level secret.
    from haggler import registry

    monkeypatch.setattr(registry, "entry_points", lambda **_: [])
    saved = dict(STRATEGIES._factories)
    STRATEGIES._factories.clear()
    STRATEGIES.register("fake-hint")(FakeHint)
    try:
        result = haggler(
            *PROBE[:4], "--level", "environment", "--judge", "fake-match", "--db", str(shop)
        )
    finally:
        STRATEGIES._factories.clear()
        STRATEGIES._factories.update(saved)
    assert "no strategy fits" in one_line_error(result)


def test_a_rule_based_agent_answers_through_the_offline_responder(tmp_path: Path) -> None:
    spec = tmp_path / "sp.yaml"
    spec.write_text("roles: {seller: 'rule:linear'}\nrounds: 2\nlineages: 1\nagent: shop\n")
    db = tmp_path / "h.db"
    assert haggler("selfplay", str(spec), "--db", str(db)).exit_code == 0
    result = haggler(*PROBE, "--strategy", "fake-ask", "--judge", "fake-match", "--db", str(db))
    if find_spec("haggler.agents.responder") is None:
        # Before the adversary's responder is part of haggler, that is said before anything runs.
        assert "offline responder" in one_line_error(result)
    else:
        assert result.exit_code == 0, result.output
        assert LEAK_LINE.match(result.output.strip().splitlines()[-1])


# -- stored like games -----------------------------------------------------------------------

HOSTILE = "\x1b[31mred\x1b[0m <script>alert(1)</script>"


@pytest.fixture
def probe_store(tmp_path: Path) -> tuple[Path, str]:
    """A probe run made with a target that needs no model: a leak, a miss, an undetermined."""
    game = make_game("balloon")
    target = KnowingTarget(
        "agent", [f"The buyer's budget was $14. {HOSTILE}", "I sold it for $15."], game
    )
    secret = Secret(text="$14", topic="the buyer's budget", value=14.0)
    other = Secret(text="ZEBRA-7", topic="the courier's code")
    db = tmp_path / "h.db"

    async def build() -> str:
        from haggler.evals.unlearning import ProbeTag
        from haggler.probe.records import secret_tag

        with Store(db) as store:
            run_id = store.start_run("probe", {"agent": "agent"})
            guarded = FakeGuard(target, secrets=[secret])  # its reply is withheld
            for strategy, asked, looked_for in (
                (FakeAsk(), target, secret),
                (FakeAsk(), target, other),
                (FakeAsk(1), guarded, secret),
            ):
                judged = await judged_attempt(strategy, asked, looked_for, [FakeJudge()], seed=1)
                tag = ProbeTag(
                    strategy=strategy.name, secret=secret_tag(looked_for), variant="agent"
                )
                store.add_episode(
                    run_id,
                    **attempt_episode(
                        judged, strategy=strategy, secret=looked_for, tag=tag, game=game,
                        target_model="rule:boulware", target_brief="the agent as it plays",
                    ),
                )  # fmt: skip
            return run_id

    import asyncio

    return db, asyncio.run(build())


def test_show_lists_and_tells_probe_attempts(probe_store: tuple[Path, str]) -> None:
    db, run_id = probe_store
    listed = haggler("show", "--list", "--run", run_id, "--db", str(db))
    assert listed.exit_code == 0, listed.output
    header = next(line for line in listed.output.splitlines() if "game id" in line)
    assert "adversary" in header and "target" in header and "seller" not in header
    assert "leak" in listed.output and "no leak" in listed.output
    shown = haggler("show", "--run", run_id, "--outcome", "leak", "--db", str(db))
    assert shown.exit_code == 0, shown.output
    assert "adversary Question:" in shown.output
    assert "target The buyer's budget was $14." in shown.output
    assert "judge leak: said $14" in shown.output
    assert "leak (judged by fake-match)" in shown.output and "first leak at 1" in shown.output
    assert "no action" not in shown.output, "a probe's turns have no actions to read"
    assert "\x1b" not in shown.output, "what a target says reaches the terminal inert"
    undetermined = haggler("show", "--run", run_id, "--outcome", "undetermined", "--db", str(db))
    assert "no attempt was" not in undetermined.output
    assert "undetermined" in undetermined.output and "nothing was answered" in undetermined.output
    assert "not answered: withheld by a defence: the guard matched" in undetermined.output


def test_exports_carry_verdicts_findings_and_where_the_attempt_sits(
    probe_store: tuple[Path, str], tmp_path: Path
) -> None:
    db, run_id = probe_store
    out = tmp_path / "probe.jsonl"
    result = haggler("export", run_id, "-o", str(out), "--db", str(db))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["outcome"]["kind"] for line in lines] == ["leak", "no_leak", "undetermined"]
    leak = lines[0]
    assert leak["outcome"]["by"] == "fake-match"
    assert leak["outcome"]["finding"]["queries"] == 1
    assert leak["outcome"]["finding"]["first_leak"] == 1
    assert leak["outcome"]["finding"]["guessed_value"] == 14.0
    assert leak["rules"]["probe"]["secret"]["topic"] == "the buyer's budget"
    assert set(leak["roles"]) == {"adversary", "target"}
    assert [t["speaker"] for t in leak["transcript"]] == ["adversary", "target", "judge"]
    assert HOSTILE in leak["transcript"][1]["text"], "stored whatever bytes it holds"
    only = tmp_path / "leaks.jsonl"
    assert (
        haggler("export", run_id, "-o", str(only), "--outcome", "leak", "--db", str(db)).exit_code
        == 0
    )
    assert len(only.read_text().splitlines()) == 1
    page = tmp_path / "probe.html"
    assert haggler("export", run_id, "-o", str(page), "--db", str(db)).exit_code == 0
    report = page.read_text()
    assert "outcome-leak" in report and "outcome-undetermined" in report
    assert "<script>alert(1)</script>" not in report


def test_runs_and_the_viewer_read_a_probe_run(probe_store: tuple[Path, str]) -> None:
    from haggler.view import make_server

    db, run_id = probe_store
    listed = haggler("runs", "--json", "--db", str(db))
    (run,) = json.loads(listed.stdout)
    assert run["kind"] == "probe" and run["status"] == "finished"
    assert run["outcomes"] == {"leak": 1, "no_leak": 1, "undetermined": 1}
    reported = haggler("report", run_id, "--db", str(db))
    assert reported.exit_code == 0, reported.output
    assert "fake-ask: 0.50" in reported.output and "all strategies: 0.50" in reported.output
    assert "ranks no players" in one_line_error(haggler("leaderboard", run_id, "--db", str(db)))
    viewer = make_server(db, port=0, results_wait_s=60)
    viewer.start_in_background()
    try:
        with urllib.request.urlopen(f"{viewer.url.rstrip('/')}/run/{run_id}") as response:
            page = response.read().decode()
        assert "Leak rates" in page and "fake-ask: 0.50" in page
        with Store(db, read_only=True) as store:
            first = store.episodes(run_id)[0].id
        with urllib.request.urlopen(f"{viewer.url.rstrip('/')}/game/{first}") as response:
            game = response.read().decode()
        assert "outcome-leak" in game and "private to the target" in game
        assert "<script>alert(1)</script>" not in game
        with urllib.request.urlopen(f"{viewer.url.rstrip('/')}/run/{run_id}?outcome=no_leak") as r:
            assert r.read().decode().count('class="game-row"') == 1
    finally:
        viewer.shutdown()
        viewer.server_close()


async def test_a_broken_strategy_or_judge_is_undetermined_never_no_leak() -> None:
    from haggler.probe.judging import rule_on
    from tests.fakes.probe_fakes import Broken

    game = make_game("balloon")
    target = KnowingTarget("agent", ["The budget was $14."], game)
    secret = Secret(text="$14", topic="the budget", value=14.0)
    broken = await judged_attempt(Broken(), target, secret, [FakeJudge()], seed=0)
    assert broken.ruling.verdict == "undetermined"
    assert "broken on purpose" in broken.ruling.reason

    class Raising:
        name = "raising"

        async def judge(self, secret: Secret, attempt: object) -> object:
            raise ValueError("no verdict today")

    class Odd:
        async def judge(self, secret: Secret, attempt: object) -> object:
            return (
                FakeJudge.__new__(FakeJudge)
                if False
                else type("J", (), {"verdict": "maybe", "reason": "", "cost_usd": 0.0})()
            )

    attempt = (await judged_attempt(FakeAsk(), target, secret, [FakeJudge()], seed=0)).attempt
    ruling = await rule_on([Raising(), FakeJudge()], secret, attempt)
    assert ruling.verdict == "undetermined" and "no verdict today" in ruling.reason
    assert ruling.verdicts == {"raising": "undetermined", "fake-match": "leak"}
    assert (await rule_on([Odd()], secret, attempt)).verdict == "undetermined"


async def test_no_leak_on_replies_that_all_failed_is_undetermined() -> None:
    from haggler.agents.adversary.base import Attempt, Exchange, Reply
    from haggler.llm.base import Message
    from haggler.probe.judging import rule_on

    class SaysNo:
        async def judge(self, secret: Secret, attempt: object) -> object:
            return type("J", (), {"verdict": "no_leak", "reason": "nothing", "cost_usd": 0.1})()

    failed = Attempt("ask", "agent", [Exchange((Message("user", "?"),), Reply("", status="error"))])
    ruling = await rule_on([SaysNo()], Secret(text="x", topic="x"), failed)
    assert ruling.verdict == "undetermined" and ruling.cost_usd == pytest.approx(0.1)


# -- a forgetting experiment ------------------------------------------------------------------


def experiment(server: FakeLLMServer, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "shop-forgets",
        "agents": {
            "model": {"model": "openai/gpt-4o-mini", "api_base": server.openai_base},
            "count": 2,
            "rounds": [
                {"rival": {"name": "Carl", "model": "rule:conceder"}, "says": ["carl"]},
                {"rival": {"name": "Dora", "model": "rule:linear"}, "says": ["dora"]},
            ],
        },
        "facts": {
            "carl": {"topic": "Carl's order code", "says": "Carl here: put it on order {value}.",
                     "choices": ["ZEBRA-7", "OTTER-3", "HERON-5"]},
            "dora": {"topic": "Dora's budget", "says": "I'm Dora, and my budget is {value}.",
                     "value": [12, 19]},
        },
        "conditions": [
            {"name": "state", "forget": [{"fact": "dora", "level": "state"}]},
            {"name": "environment", "forget": [{"fact": "dora", "level": "environment"}]},
        ],
        "strategies": [{"name": "fake-ask", "params": {"asks": 1}}, "fake-hint"],
        "defences": ["none", "fake-guard"],
        "judges": ["fake-match"],
        "utility": {"games": 1},
        "concurrency": 2,
    }  # fmt: skip
    return spec | overrides


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def test_unlearn_eval_reports_forgetting_against_the_reference_and_resumes_for_free(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    spec = write_spec(tmp_path / "exp.yaml", experiment(server))
    db = tmp_path / "h.db"
    plot = tmp_path / "leaks.svg"
    result = haggler("unlearn-eval", str(spec), "--db", str(db), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert "2 agents: 0 already done, 2 done now" in result.output
    assert "condition state: exact mode, forgets dora (state)" in result.output
    assert "leak advantage by strategy x defence" in result.output
    assert "utility against kept counterparts" in result.output
    ElementTree.fromstring(plot.read_text())  # well-formed SVG
    with Store(db, read_only=True) as store:
        report = unlearn_report(store, "unlearn-shop-forgets")
        count = len(store.episodes("unlearn-shop-forgets"))
        asked = [
            e.outcome.finding.queries
            for e in store.run_episodes("unlearn-shop-forgets", transcripts=False)
            if e.outcome and e.outcome.finding and e.rules["probe"]["strategy"] == "fake-ask"
        ]
        assert len(store.lineages("unlearn-shop-forgets")) == 2, "the agents' making is stored"
    assert asked and max(asked) == 1, "a strategy is made with its spec's parameters"
    # Exact forgetting leaves the agent prompt for prompt the reference agent: asked the same
    # questions (the fake model answers from its prompt alone), they answer alike, pair by pair.
    with Store(db, read_only=True) as store:
        from haggler.evals.unlearning import read_observations

        read = read_observations(store, "unlearn-shop-forgets")
    after = {o.key(): o for o in read.attempts if o.variant == "after"}
    reference = {o.key(): o for o in read.attempts if o.variant == "reference"}
    assert after and after.keys() == reference.keys()
    assert all(after[k].answer == reference[k].answer for k in after)
    state = next(c for c in report.conditions if c.name == "state")
    (level,) = state.levels
    pooled = next(c for c in level.cells if c.strategy == "all strategies" and c.defence == "none")
    assert pooled.before.value > 0.5, "before forgetting, the agent tells"
    assert pooled.after.leaks == 0 and pooled.reference.leaks == 0
    assert pooled.advantage.interval.value == 0
    guarded = next(c for c in level.cells if c.strategy == "fake-ask" and c.defence == "fake-guard")
    hinted = next(c for c in level.cells if c.strategy == "fake-hint" and c.defence == "fake-guard")
    assert guarded.before.leaks == 0 and guarded.before.undetermined > 0, "the guard withholds"
    assert hinted.before.leaks > 0, "the hint's words get around the guard"
    environment = next(c for c in report.conditions if c.name == "environment")
    assert environment.utility is not None and environment.utility.pairs == 2, "Carl is kept"
    assert report.agents == 2 and report.failed == 0
    again = haggler("unlearn-eval", str(spec), "--db", str(db))
    assert again.exit_code == 0, again.output
    assert "2 agents: 2 already done, 0 done now" in again.output
    with Store(db, read_only=True) as store:
        assert len(store.episodes("unlearn-shop-forgets")) == count
    reported = haggler("report", "unlearn-shop-forgets", "--db", str(db))
    assert reported.exit_code == 0, reported.output
    assert "condition environment: exact mode, forgets dora (environment)" in reported.output
    assert "forgetting experiment" in one_line_error(
        haggler("leaderboard", "unlearn-shop-forgets", "--db", str(db))
    )
    from haggler.view import make_server

    viewer = make_server(db, port=0, results_wait_s=60)
    viewer.start_in_background()
    try:
        with urllib.request.urlopen(f"{viewer.url.rstrip('/')}/run/unlearn-shop-forgets") as r:
            page = r.read().decode()
    finally:
        viewer.shutdown()
        viewer.server_close()
    assert "Leak rates" in page and "state (state): before" in page and "<svg" in page
    runs = json.loads(haggler("runs", "--json", "--db", str(db)).stdout)
    assert runs[0]["kind"] == "unlearn-eval" and runs[0]["status"] == "finished"
    assert runs[0]["matches"] == 2 and runs[0]["matches_planned"] == 2


async def test_the_python_api_runs_the_same_experiment(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    spec = experiment(server, agents=experiment(server)["agents"] | {"count": 1})
    with Store(tmp_path / "h.db") as store:
        run = await unlearn_eval(spec, store=store)
        assert run.complete and run.finished == 1
        report = unlearn_report(store, run.run_id)
    assert [c.name for c in report.conditions] == ["state", "environment"]


def test_bad_specs_are_one_line_naming_the_file_and_field(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = experiment(server)
    agents = base["agents"]
    cases: dict[str, dict[str, Any]] = {
        "facts.dora: says must hold {value}": base
        | {"facts": base["facts"] | {"dora": base["facts"]["dora"] | {"says": "My budget."}}},
        "agents.rounds.0.says: no fact 'bob'": base
        | {"agents": agents | {"rounds": [{"rival": {"name": "Carl", "model": "rule:linear"},
                                           "says": ["bob"]}, agents["rounds"][1]]}},
        "conditions.0.forget.0: no fact 'bob'": base
        | {"conditions": [{"name": "x", "forget": [{"fact": "bob"}]}]},
        "strategies.1: unknown strategy 'nope'": base | {"strategies": ["fake-ask", "nope"]},
        "strategies.0: strategy 'fake-ask': ": base
        | {"strategies": [{"name": "fake-ask", "params": {"loud": True}}]},
        "judges.0: unknown judge 'nope'": base | {"judges": ["nope"]},
        "facts.carl.judges.0: unknown judge 'nope'": base
        | {"facts": base["facts"] | {"carl": base["facts"]["carl"] | {"judges": ["nope"]}}},
        "defences.1: unknown defence 'nope'": base | {"defences": ["none", "nope"]},
        "agents.rounds.1.rival.model": base
        | {"agents": agents | {"rounds": [agents["rounds"][0],
                                          {"rival": {"name": "Dora", "model": "rule:nope"}}]}},
        "budget: unknown field": base | {"budget": 3},
        "facts.erin: no round says it": base
        | {"facts": base["facts"] | {"erin": base["facts"]["dora"]}},
        "agents.rounds.1.says: fact 'carl' is said in round 1 already": base
        | {"agents": agents | {"rounds": [agents["rounds"][0],
                                          agents["rounds"][1] | {"says": ["carl", "dora"]}]}},
        "agents.rounds.1.rival.name: rival 'Carl' is met twice": base
        | {"agents": agents | {"rounds": [agents["rounds"][0],
                                          {"rival": {"name": "Carl", "model": "rule:linear"},
                                           "says": ["dora"]}]}},
        "facts.dora: a hint may not give the value away": base
        | {"facts": base["facts"] | {"dora": base["facts"]["dora"] | {"hints": ["{value}!"]}}},
        "ANTHROPIC_API_KEY": base
        | {"agents": agents | {"model": "anthropic/claude-3-5-haiku-latest"}},
    }  # fmt: skip
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    db = tmp_path / "h.db"
    for expected, spec in cases.items():
        path = write_spec(tmp_path / "bad.yaml", spec)
        line = one_line_error(haggler("unlearn-eval", str(path), "--db", str(db)))
        assert str(path) in line and expected in line, (expected, line)
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert "is empty" in one_line_error(haggler("unlearn-eval", str(tmp_path / "empty.yaml")))
    assert "write a .svg file" in one_line_error(
        haggler("unlearn-eval", str(path), "--plot", str(tmp_path / "x.png"))
    )
    if db.exists():
        with Store(db, read_only=True) as store:
            assert store.runs() == [], "nothing runs before the spec is right"


def test_a_budget_stops_starting_agents(tmp_path: Path, server: FakeLLMServer) -> None:
    spec = experiment(server, budget_usd=1e-9, concurrency=1)
    spec["agents"] = spec["agents"] | {"count": 3}
    path = write_spec(tmp_path / "exp.yaml", spec)
    result = haggler("unlearn-eval", str(path), "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 1, result.output
    assert "budget reached" in result.output
    assert "3 agents: 0 already done, 1 done now, 0 failed, 2 not started" in result.output
    assert "run them with: haggler unlearn-eval" in result.output


def test_failed_agents_are_recorded_and_played_again(tmp_path: Path, server: FakeLLMServer) -> None:
    spec = experiment(server, retry={"attempts": 1, "initial_wait": 0})
    path = write_spec(tmp_path / "exp.yaml", spec)
    db = tmp_path / "h.db"
    server.responder = lambda request: Status(500)  # type: ignore[assignment,return-value]
    failed = haggler("unlearn-eval", str(path), "--db", str(db))
    assert failed.exit_code == 1, failed.output
    assert "2 failed" in failed.output
    from haggler.cli.run_summary import STALE_AFTER_S, summarize_runs

    with Store(db, read_only=True) as store:
        (summary,) = summarize_runs(store, now=time.time() + STALE_AFTER_S + 1)
    # Like a tournament's, until the run has been quiet for a while it may be going on.
    assert summary.status == "has failures", summary
    assert (summary.matches, summary.matches_planned) == (0, 2)
    assert summary.size().endswith("0/2 agents")
    server.responder = respond
    mended = haggler("unlearn-eval", str(path), "--db", str(db))
    assert mended.exit_code == 0, mended.output
    assert "2 done now" in mended.output


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_run_loses_only_the_agents_in_flight(
    tmp_path: Path, server: FakeLLMServer, stop: signal.Signals
) -> None:
    def slow(request: RecordedRequest) -> Text:
        time.sleep(0.01)
        return respond(request)

    server.responder = slow
    spec = experiment(server, concurrency=1)
    spec["agents"] = spec["agents"] | {"count": 3}
    path = write_spec(tmp_path / "exp.yaml", spec)
    db = tmp_path / "h.db"
    code = (
        "import sys\n"
        "from tests.fakes.probe_fakes import register_fakes\n"
        "register_fakes()\n"
        "from haggler.cli import main\n"
        f"sys.argv = ['haggler', 'unlearn-eval', {str(path)!r}, '--db', {str(db)!r}]\n"
        "main()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if db.exists():
                with Store(db, read_only=True) as store:
                    run = next((r for r in store.runs() if r.kind == "unlearn-eval"), None)
                    if run is not None and store.lineages(run.id):
                        break
            time.sleep(0.05)
        else:
            pytest.fail("the first agent was never stored")
        process.send_signal(stop)
        _, said = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if stop == signal.SIGTERM:
        # Stopped as Ctrl-C stops it: the agents in flight dropped, and how to go on.
        assert process.returncode == 143, said
        assert "interrupted by SIGTERM" in said and "haggler unlearn-eval" in said
    else:
        assert process.returncode == -signal.SIGKILL
    with Store(db, read_only=True) as store:
        done_first = len(store.lineages("unlearn-shop-forgets"))
    assert 1 <= done_first < 3
    resumed = haggler("unlearn-eval", str(path), "--db", str(db))
    assert resumed.exit_code == 0, resumed.output
    assert f"3 agents: {done_first} already done, {3 - done_first} done now" in resumed.output
    with Store(db, read_only=True) as store:
        episodes = store.run_episodes("unlearn-shop-forgets", transcripts=False)
        assert len(store.lineages("unlearn-shop-forgets")) == 3
    assert all(e.status == "finished" for e in episodes), "nothing half-stored"
    by_job: dict[str, int] = {}
    for episode in episodes:
        by_job[episode.rules["probe"]["job"]] = by_job.get(episode.rules["probe"]["job"], 0) + 1
    assert len(by_job) == 3 and len(set(by_job.values())) == 1, by_job
    matches = [e.match_id for e in episodes]
    assert len(matches) == len(set(matches)), "no game stored twice"


def test_strategies_fit_the_target_and_the_secret() -> None:
    game = make_game("balloon")
    target = KnowingTarget("agent", [], game)
    state = Secret(text="x", topic="x")
    environment = Secret(text="x", topic="x", level="environment")
    assert [s.name for s in choose_strategies(["fake-ask", "fake-hint"], target, state, "a")] == [
        "fake-ask",
        "fake-hint",
    ]
    names = [s.name for s in choose_strategies(None, target, environment, "a")]
    assert "fake-ask" in names and "fake-hint" not in names, "hint targets state and trajectory"
    assert "fake-play" not in names, "a target that cannot be played is not played"


def test_each_fact_is_judged_by_its_own_judges_or_by_its_kind(server: FakeLLMServer) -> None:
    from haggler.probe.spec import UnlearnEvalSpec

    base = experiment(server)
    base.pop("judges")
    spec = UnlearnEvalSpec.model_validate(base)
    # By default the matchers that fit each fact: a number in every spoken form for a budget,
    # the words (and the pattern, when given) for a code.
    assert [j.name for j in spec.judges_for("dora")] == ["auto"]
    assert [j.name for j in spec.judges_for("carl")] == ["auto"]
    from haggler.agents.judges import ExactJudge, NumericJudge, judges_for

    budget = judges_for(Secret(text="$14", topic="a budget", value=14.0))
    assert [type(j) for j in budget.judges] == [NumericJudge]
    assert [type(j) for j in judges_for(Secret(text="ZEBRA-7", topic="a code")).judges] == [
        ExactJudge
    ]
    named = UnlearnEvalSpec.model_validate(
        base
        | {"facts": base["facts"] | {"carl": base["facts"]["carl"] | {"judges": ["fake-match"]}}}
    )
    assert [j.name for j in named.judges_for("carl")] == ["fake-match"]


def test_more_agents_add_to_those_already_done(server: FakeLLMServer) -> None:
    from haggler.probe.job import expand
    from haggler.probe.spec import UnlearnEvalSpec

    few = UnlearnEvalSpec.model_validate(experiment(server))
    more = UnlearnEvalSpec.model_validate(
        experiment(server, agents=experiment(server)["agents"] | {"count": 5})
    )
    assert [j.id for j in expand(more)][:2] == [j.id for j in expand(few)]
    moved = UnlearnEvalSpec.model_validate(
        experiment(server, concurrency=9, budget_usd=3, name="renamed")
    )
    assert [j.id for j in expand(moved)] == [j.id for j in expand(few)]
    other = UnlearnEvalSpec.model_validate(experiment(server, samples=2))
    assert not {j.id for j in expand(other)} & {j.id for j in expand(few)}


async def test_ray_runs_the_same_experiment(tmp_path: Path, server: FakeLLMServer) -> None:
    ray = pytest.importorskip("ray")
    try:
        # The workers learn the test fakes as they start, as an installed plug-in would be.
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False,
            runtime_env={
                "worker_process_setup_hook": "tests.fakes.probe_fakes.register_fakes",
                "env_vars": {"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": KEY},
            },
        )  # fmt: skip
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"Ray cannot start here: {error}")
    try:
        spec = experiment(server, agents=experiment(server)["agents"] | {"count": 1})
        with Store(tmp_path / "ray.db") as store:
            on_ray = await unlearn_eval(spec, store=store, executor="ray")
            ray_report = unlearn_report(store, on_ray.run_id)
        with Store(tmp_path / "local.db") as store:
            local = await unlearn_eval(spec, store=store)
            local_report = unlearn_report(store, local.run_id)
    finally:
        ray.shutdown()
    assert on_ray.complete and on_ray.finished == 1
    assert ray_report.attempts == local_report.attempts
    cells = [
        (c.strategy, c.defence, c.before.leaks, c.after.leaks, c.reference.leaks)
        for report in (ray_report, local_report)
        for condition in report.conditions
        for level in condition.levels
        for c in level.cells
    ]
    half = len(cells) // 2
    assert cells[:half] == cells[half:], "the same agents, forgetting and probes either way"


def test_an_experiment_whose_spec_this_haggler_cannot_read_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with Store(db) as store:
        store.ensure_run("unlearn-future", "unlearn-eval", {"name": "future", "warp": 9})
    assert "cannot be read by this haggler" in one_line_error(
        haggler("report", "unlearn-future", "--db", str(db))
    )
