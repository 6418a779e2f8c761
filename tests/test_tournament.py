"""Tournaments: every match played once, resumable after a crash, within a budget, through a
flaky provider, and the same on Ray as locally."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.evals import leaderboard, spend_by_game_and_role
from haggler.store import Store
from haggler.tournament.matches import expand
from haggler.tournament.running import run_tournament, tournament_run_id
from haggler.tournament.spec import check_tournament_spec
from tests.fakes.llm_server import Cut, Delay, FakeLLMServer, RecordedRequest, Status
from tests.fakes.negotiating_llm import negotiate

RULES = [
    {"name": "boulware", "model": "rule:boulware"},
    {"name": "linear", "model": "rule:linear"},
    {"name": "tft", "model": "rule:tit-for-tat"},
]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-tournament-0123456789")


def finished_ids(db: Path, run_id: str) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT match_id FROM episodes WHERE run_id = ? AND status = 'finished'", (run_id,)
        ).fetchall()
    return [r[0] for r in rows]


def finished_ids_so_far(db: Path, run_id: str) -> list[str]:
    """`finished_ids` of a store another process may still be creating (its schema half-built)."""
    try:
        return finished_ids(db, run_id)
    except sqlite3.OperationalError:
        return []


async def test_a_round_robin_plays_every_match_once_and_a_rerun_plays_nothing(
    tmp_path: Path,
) -> None:
    spec = check_tournament_spec(
        {"name": "rr", "players": RULES, "games": ["balloon", "diamond"], "repetitions": 2}
    )
    jobs = expand(spec)
    assert len(jobs) == 3 * 2 * 2 * 2, "3 players: 6 ordered pairings x 2 games x 2 repetitions"
    assert len({j.id for j in jobs}) == len(jobs)
    with Store(tmp_path / "h.db") as store:
        first = await run_tournament(spec, store=store)
        again = await run_tournament(spec, store=store)
    assert (first.finished, first.failed) == (len(jobs), 0)
    assert (again.skipped_as_done, again.finished) == (len(jobs), 0)
    ids = finished_ids(tmp_path / "h.db", first.run_id)
    assert sorted(ids) == sorted(j.id for j in jobs)


def test_match_ids_are_stable_and_change_with_what_decides_a_game() -> None:
    spec = {"name": "ids", "players": RULES}
    same = [j.id for j in expand(check_tournament_spec(spec))]
    assert same == [j.id for j in expand(check_tournament_spec(spec))]
    tuned = [dict(p) for p in RULES]
    tuned[0]["params"] = {"exponent": 0.2}
    changed = {j.id for j in expand(check_tournament_spec(spec | {"players": tuned}))}
    untouched = {
        j.id for j in expand(check_tournament_spec(spec)) if "boulware" not in (j.seller, j.buyer)
    }
    assert untouched <= changed, "matches without the edited player keep their ids"
    assert len(changed - set(same)) == 4, "the edited player's 4 matches are new"


def outcomes(db: Path, run_id: str) -> list[tuple[str, str, float | None]]:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT match_id, outcome_kind, price FROM episodes "
            "WHERE run_id = ? AND status = 'finished' ORDER BY match_id",
            (run_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def flaky(rate: float, seed: int = 7):  # type: ignore[no-untyped-def]
    """A responder that fails `rate` of calls in every way a provider fails."""
    rng = random.Random(seed)
    failures = [
        Status(429, headers={"retry-after": "0"}),
        Status(500),
        Status(503),
        Delay(3.0),
        Cut(),
    ]

    def respond(request: RecordedRequest) -> Any:
        if rng.random() < rate:
            return rng.choice(failures)
        return negotiate(request)

    return respond


async def test_a_flaky_provider_still_yields_every_game_once_with_retries_counted(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = flaky(0.2)
    players = [
        {"name": "a", "model": "openai/model-a", "api_base": fake_llm_server.openai_base},
        {"name": "b", "model": "openai/model-b", "api_base": fake_llm_server.openai_base},
        {"name": "boulware", "model": "rule:boulware"},
    ]
    spec = check_tournament_spec(
        {
            "name": "flaky",
            "players": players,
            "concurrency": 6,
            "retry": {"attempts": 10, "initial_wait": 0.01, "max_wait": 0.05, "timeout_s": 1.0},
        }
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        episodes = store.episodes(run.run_id)
        retries = sum(t.retries for e in episodes for t in store.episode(e.id).transcript)
        counted = sum(r.retries for r in spend_by_game_and_role(store, run.run_id))
    assert (run.finished, run.failed) == (6, 0), run.errors
    assert sorted(finished_ids(tmp_path / "h.db", run.run_id)) == sorted(j.id for j in expand(spec))
    assert retries > 0, "a 20% failure rate must have cost retries"
    assert counted == retries, "the report counts every retry"


def test_killed_mid_tournament_then_rerun_gives_exactly_the_uninterrupted_set(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    # Every model call takes 50 ms, so the tournament is still running when it is killed.
    fake_llm_server.responder = lambda request: Delay(0.05, then=negotiate(request))
    spec_file = tmp_path / "t.yaml"
    spec_file.write_text(
        "name: crash\n"
        "players:\n"
        f"  - {{name: a, model: openai/model-a, api_base: '{fake_llm_server.openai_base}'}}\n"
        "  - {name: boulware, model: 'rule:boulware'}\n"
        "  - {name: linear, model: 'rule:linear'}\n"
        "repetitions: 4\n"
        "concurrency: 3\n"
    )
    db = tmp_path / "h.db"
    env = os.environ | {"OPENAI_API_KEY": "sk-test-tournament-0123456789"}
    command = [sys.executable, "-m", "haggler.cli", "tournament", str(spec_file), "--db", str(db)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if db.exists() and len(finished_ids_so_far(db, "tour-crash")) >= 4:
                break
            if process.poll() is not None:
                pytest.fail("the tournament ended before it could be killed")
            time.sleep(0.05)
        else:
            pytest.fail("no match finished in time")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    partial = finished_ids(db, "tour-crash")
    assert 4 <= len(partial) < 24

    result = CliRunner().invoke(app, ["tournament", str(spec_file), "--db", str(db)], env=env)
    assert result.exit_code == 0, result.output
    assert f"{len(partial)} already played" in result.output
    from haggler.tournament.spec import load_tournament_spec

    expected = sorted(j.id for j in expand(load_tournament_spec(spec_file)))
    after = finished_ids(db, "tour-crash")
    assert sorted(after) == expected, "the union must hold every match of the spec"
    assert len(after) == len(expected), "no game stored twice"

    # And the same games as a run that was never interrupted: same matches, same outcomes.
    clean = tmp_path / "clean.db"
    uninterrupted = CliRunner().invoke(
        app, ["tournament", str(spec_file), "--db", str(clean)], env=env
    )
    assert uninterrupted.exit_code == 0, uninterrupted.output
    assert outcomes(db, "tour-crash") == outcomes(clean, "tour-crash")


async def test_the_budget_stops_new_matches_and_says_so(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    players = [
        {"name": "mini", "model": "openai/gpt-4o-mini", "api_base": fake_llm_server.openai_base},
        *RULES[:2],
    ]
    spec = check_tournament_spec(
        {
            "name": "thrifty",
            "players": players,
            "repetitions": 5,
            "budget_usd": 0.0001,
            "concurrency": 1,
        }
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        spent = store.run_cost(run.run_id)
        by_role = spend_by_game_and_role(store, run.run_id)
    assert run.stopped is not None and "budget reached" in run.stopped
    assert sum(r.cost_usd for r in by_role) == pytest.approx(spent), "the two cuts of one bill"
    assert {r.role for r in by_role if r.cost_usd > 0} <= {"seller", "buyer"}
    assert run.not_started > 0 and run.finished < len(expand(spec))
    assert spent >= 0.0001
    assert run.spent_usd == pytest.approx(spent)


async def test_ray_stores_the_same_games_as_the_local_executor(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    spec = check_tournament_spec({"name": "same", "players": RULES, "repetitions": 2})
    outcomes = {}
    for executor in ("local", "ray"):
        with Store(tmp_path / f"{executor}.db") as store:
            run = await run_tournament(spec, store=store, executor=executor)
            assert (run.finished, run.failed) == (12, 0)
            outcomes[executor] = sorted(
                (
                    e.match_id,
                    e.outcome.kind if e.outcome else None,
                    e.outcome.price if e.outcome else None,
                    e.turns,
                )
                for e in store.episodes(run.run_id)
            )
    assert outcomes["local"] == outcomes["ray"]


BAD = {
    "unknown_opponent.yaml": (
        "name: t\nplayers: [{name: a, model: 'rule:linear'}, {name: b, model: 'rule:linear'}]\n"
        "schedule: {kind: vs_fixed, opponents: [zed]}\n",
        "schedule.opponents.0: no player named 'zed'",
    ),
    "zero_repetitions.yaml": (
        "name: t\nplayers: [{name: a, model: 'rule:linear'}, {name: b, model: 'rule:linear'}]\n"
        "repetitions: 0\n",
        "repetitions: Input should be greater than or equal to 1",
    ),
    "duplicate_names.yaml": (
        "name: t\nplayers: [{name: a, model: 'rule:linear'}, {name: a, model: 'rule:boulware'}]\n",
        "players.1.name: player 'a' is named twice",
    ),
    "negative_budget.yaml": (
        "name: t\nplayers: [{name: a, model: 'rule:linear'}, {name: b, model: 'rule:linear'}]\n"
        "budget_usd: -5\n",
        "budget_usd: Input should be greater than or equal to 0",
    ),
    "one_player.yaml": ("name: t\nplayers: [{name: a, model: 'rule:linear'}]\n", "players"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_tournament_specs_get_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    content, expected = BAD[name]
    spec = tmp_path / name
    spec.write_text(content)
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and message.startswith(f"error: {spec}: ")
    assert expected in message


def test_the_cli_ranks_players_and_writes_a_csv(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: cli\nplayers: [{name: boulware, model: 'rule:boulware'}, {name: conceder, model: 'rule:conceder'}]\n"
        "repetitions: 3\n"
    )
    db = str(tmp_path / "h.db")
    played = CliRunner().invoke(app, ["tournament", str(spec), "--db", db])
    assert played.exit_code == 0, played.output
    assert "6 played now" in played.output
    board = CliRunner().invoke(
        app,
        [
            "leaderboard",
            tournament_run_id(check_tournament_spec({"name": "cli", "players": RULES[:2]})),
            "--db",
            db,
            "--csv",
            str(tmp_path / "lb.csv"),
        ],
    )
    assert board.exit_code == 0, board.output
    lines = (tmp_path / "lb.csv").read_text().splitlines()
    assert lines[1].startswith("boulware,"), "Boulware out-haggles a conceder"


def test_an_edited_spec_under_the_same_name_ranks_only_its_own_matches(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: a\nplayers: [{name: x, model: 'rule:boulware'}, {name: y, model: 'rule:linear'}]\n"
    )
    assert CliRunner().invoke(app, ["tournament", str(spec), "--db", db]).exit_code == 0
    spec.write_text(
        "name: a\nplayers: [{name: x, model: 'rule:boulware'}, {name: z, model: 'rule:conceder'}]\n"
    )
    assert CliRunner().invoke(app, ["tournament", str(spec), "--db", db]).exit_code == 0
    board = CliRunner().invoke(
        app, ["leaderboard", "tour-a", "--db", db, "--csv", str(tmp_path / "lb.csv")]
    )
    assert board.exit_code == 0, board.output
    rows = {
        line.split(",")[0]: line.split(",")[1]
        for line in (tmp_path / "lb.csv").read_text().splitlines()[1:]
    }
    assert rows == {"x": "2", "z": "2"}, "y's games belong to the earlier spec"


async def test_a_selfplay_schedule_plays_coached_lineages_against_every_rival(
    tmp_path: Path,
) -> None:
    spec = check_tournament_spec(
        {
            "name": "coached",
            "players": RULES,
            "schedule": {"kind": "selfplay", "rounds": 3, "feedback": "ai", "coached": "seller"},
        }
    )
    jobs = expand(spec)
    assert len(jobs) == 6 and all(j.lineage is not None for j in jobs)
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        again = await run_tournament(spec, store=store)
        lineages = store.lineages(run.run_id)
        episodes = store.episodes(run.run_id)
        critiques = store.critiques(run_id=run.run_id)
        rows = {r.player: r for r in leaderboard(store, run.run_id)}
    assert (run.finished, run.failed, again.finished, again.skipped_as_done) == (6, 0, 0, 6)
    assert len(lineages) == 6 and all(
        lin.status == "finished" and lin.rounds_played == 3 for lin in lineages
    )
    assert len(episodes) == 18 and {e.round for e in episodes} == {1, 2, 3}
    assert all(e.roles["seller"].player in {j.seller for j in jobs} for e in episodes)
    assert len(critiques) == 18 and all(c.role == "seller" for c in critiques)
    assert set(rows) == {p["name"] for p in RULES}
    # Each player was coached as seller in 2 lineages of 3 rounds and rival buyer in 2 more.
    assert all((row.as_seller, row.as_buyer) == (6, 6) for row in rows.values())


async def test_a_broken_lineage_is_stored_failed_and_replayed_whole_on_rerun(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    fake_llm_server.script(Status(400, "this request upset the provider"))
    players = [
        {"name": "a", "model": "openai/model-a", "api_base": fake_llm_server.openai_base},
        {"name": "boulware", "model": "rule:boulware"},
    ]
    spec = check_tournament_spec(
        {
            "name": "broken",
            "players": players,
            "schedule": {"kind": "selfplay", "rounds": 2, "feedback": "constant"},
            "concurrency": 1,
        }
    )
    with Store(tmp_path / "h.db") as store:
        first = await run_tournament(spec, store=store)
        second = await run_tournament(spec, store=store)
        lineages = store.lineages(first.run_id)
    assert (first.finished, first.failed) == (1, 1)
    assert (second.skipped_as_done, second.finished) == (1, 1)
    assert sorted(lin.status for lin in lineages) == ["failed", "finished", "finished"]
    expected = sorted(game for job in expand(spec) for game in job.game_ids())
    assert sorted(finished_ids(tmp_path / "h.db", first.run_id)) == expected
