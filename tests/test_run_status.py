"""Runs that tell the truth: exit statuses that say whether the work is done, every match
accounted for, SIGTERM handled as Ctrl-C, and interrupted or failed work continued."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.evals import round_metrics
from haggler.store import Store
from haggler.tournament.running import run_tournament
from haggler.tournament.schedule import expand
from haggler.tournament.spec import check_tournament_spec, load_tournament_spec
from tests.fakes.llm_server import Delay, FakeLLMServer, RecordedRequest, Status
from tests.fakes.negotiating_llm import negotiate

KEY = "sk-test-status-0123456789"
ENV = os.environ | {"OPENAI_API_KEY": KEY}
FAST_RETRY = "retry: {attempts: 2, initial_wait: 0.01, max_wait: 0.02, timeout_s: 2}\n"
SUMMARY = re.compile(
    r"(\d+) matches: (\d+) already played, (\d+) played now, (?:(\d+) played by another "
    r"process, )?(\d+) failed, (\d+) not started"
)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def flat(text: str) -> str:
    """`text` on one line: the terminal's wrapping undone."""
    return re.sub(r"\s+", " ", text)


def counts(output: str) -> dict[str, int]:
    """The tournament's summary line, as numbers."""
    found = SUMMARY.search(flat(output))
    assert found, output
    total, already, now, other, failed, not_started = found.groups()
    return {
        "matches": int(total),
        "already": int(already),
        "now": int(now),
        "other": int(other or 0),
        "failed": int(failed),
        "not_started": int(not_started),
    }


def accounted(summary: dict[str, int]) -> bool:
    parts = ("already", "now", "other", "failed", "not_started")
    return sum(summary[p] for p in parts) == summary["matches"]


def tournament_spec(tmp_path: Path, base: str, *, name: str = "status", extra: str = "") -> Path:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(
        f"name: {name}\n"
        "players:\n"
        f"  - {{name: llm, model: openai/model-a, api_base: '{base}'}}\n"
        "  - {name: boulware, model: 'rule:boulware'}\n"
        "  - {name: linear, model: 'rule:linear'}\n"
        "repetitions: 2\n"
        "concurrency: 4\n" + FAST_RETRY + extra
    )
    return spec


def flaky(rate: float) -> Callable[[RecordedRequest], Any]:
    import random

    rng = random.Random(3)
    return lambda request: Status(500) if rng.random() < rate else negotiate(request)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- exit statuses of a tournament ------------------------------------------------------------


def test_a_tournament_with_failed_matches_exits_1_and_a_rerun_finishes_it_with_0(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = flaky(0.6)
    spec = tournament_spec(tmp_path, fake_llm_server.openai_base)
    db = tmp_path / "h.db"
    first = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(db)])
    assert first.exit_code == 1, first.output
    summary = counts(first.output)
    assert summary["failed"] > 0 and accounted(summary)
    assert f"of 12 matches are not played yet; play them with: haggler tournament {spec}" in (
        flat(first.output)
    )
    fake_llm_server.responder = negotiate
    second = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(db)])
    assert second.exit_code == 0, second.output
    again = counts(second.output)
    assert again["already"] == summary["now"] and again["failed"] == 0 and accounted(again)


def test_a_tournament_whose_server_is_down_exits_1(tmp_path: Path) -> None:
    spec = tournament_spec(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 1, result.output
    summary = counts(result.output)
    assert summary["failed"] == 8 and summary["now"] == 4 and accounted(summary)


def test_a_refused_key_stops_the_tournament_and_exits_1(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = lambda request: Status(401, "invalid api key")
    spec = tournament_spec(tmp_path, fake_llm_server.openai_base, extra="concurrency: 1\n")
    spec.write_text(spec.read_text().replace("concurrency: 4\n", ""))
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 1, result.output
    summary = counts(result.output)
    assert summary["failed"] >= 1 and summary["not_started"] > 0 and accounted(summary)
    assert "stopped starting matches" in result.output
    assert KEY not in result.output


def test_a_spent_budget_exits_1_and_says_how_to_go_on(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    spec = tmp_path / "b.yaml"
    spec.write_text(
        "name: thrifty\nplayers:\n"
        f"  - {{name: mini, model: openai/gpt-4o-mini, api_base: '{fake_llm_server.openai_base}'}}\n"
        "  - {name: boulware, model: 'rule:boulware'}\n"
        "repetitions: 4\nbudget_usd: 0.0001\nconcurrency: 1\n"
    )
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 1, result.output
    assert "raise budget_usd and run again" in result.output
    assert accounted(counts(result.output))


def test_a_complete_tournament_exits_0_and_its_rerun_too(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: done\nplayers: [{name: a, model: 'rule:boulware'}, {name: b, model: 'rule:linear'}]\n"
    )
    for _ in range(2):
        result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
        assert result.exit_code == 0, result.output
        assert "not played yet" not in result.output


# -- two processes on one tournament ----------------------------------------------------------

OFFLINE = """\
name: twice
players:
  - {name: boulware, model: "rule:boulware"}
  - {name: linear, model: "rule:linear"}
  - {name: conceder, model: "rule:conceder"}
  - {name: tft, model: "rule:tit-for-tat"}
games: [balloon, diamond]
repetitions: 5
concurrency: 8
"""


def test_two_processes_on_one_tournament_account_for_every_match(tmp_path: Path) -> None:
    spec, db = tmp_path / "t.yaml", tmp_path / "h.db"
    spec.write_text(OFFLINE)
    Store(db).close()  # the schema first, so the two do not race to create it
    command = [sys.executable, "-m", "haggler.cli", "tournament", str(spec), "--db", str(db)]
    processes = [
        subprocess.Popen(
            command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    matches = len(expand(load_tournament_spec(spec)))
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr
        summary = counts(stdout)
        assert summary["matches"] == matches and accounted(summary), stdout
        assert summary["failed"] == 0
    with sqlite3.connect(db) as con:
        stored = [r[0] for r in con.execute("SELECT match_id FROM episodes")]
    assert len(stored) == len(set(stored)) == matches, "every match once, none twice"


async def test_a_match_stored_first_by_another_process_is_counted_as_its(tmp_path: Path) -> None:
    spec = check_tournament_spec(
        {
            "name": "race",
            "players": [
                {"name": "boulware", "model": "rule:boulware"},
                {"name": "linear", "model": "rule:linear"},
                {"name": "conceder", "model": "rule:conceder"},
            ],
            "repetitions": 3,
        }
    )
    matches = len(expand(spec))
    # Two connections, as two processes have: both see nothing stored and play everything.
    with Store(tmp_path / "h.db") as one, Store(tmp_path / "h.db") as two:
        first, second = await asyncio.gather(
            run_tournament(spec, store=one), run_tournament(spec, store=two)
        )
    for run in (first, second):
        parts = (run.skipped_as_done, run.finished, run.by_other, run.failed, run.not_started)
        assert sum(parts) == matches, run
        assert run.complete
    assert first.finished + second.finished == matches, "each match stored once"
    assert (
        first.by_other + second.by_other == matches - first.skipped_as_done - second.skipped_as_done
    )
    assert first.by_other + second.by_other > 0


# -- exit statuses and continuing of self-play ------------------------------------------------


def selfplay_spec(
    tmp_path: Path, base: str, *, lineages: int = 4, rounds: int = 2, retry: str = FAST_RETRY
) -> Path:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "roles:\n"
        f"  seller: {{model: openai/seller-llm, api_base: '{base}'}}\n"
        "  buyer: {model: 'rule:linear'}\n"
        f"critic: rule\nrounds: {rounds}\nlineages: {lineages}\nfeedback: [ai, none]\n"
        "concurrency: 2\n" + retry
    )
    return spec


def failing(*numbers: int) -> Callable[[RecordedRequest], Any]:
    """A responder that fails the calls numbered `numbers` (from 1) and negotiates otherwise."""
    calls = itertools.count(1)
    return lambda request: Status(500) if next(calls) in numbers else negotiate(request)


def run_id_in(output: str) -> str:
    found = re.search(r"--resume (run-[0-9a-f-]+)", flat(output))
    assert found, output
    return found.group(1)


def test_failed_lineages_exit_1_and_resume_plays_only_them(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = failing(5, 30)
    no_retry = FAST_RETRY.replace("attempts: 2", "attempts: 1")
    spec = selfplay_spec(tmp_path, fake_llm_server.openai_base, lineages=6, retry=no_retry)
    db = tmp_path / "h.db"
    first = CliRunner().invoke(app, ["selfplay", str(spec), "--db", str(db)])
    assert first.exit_code == 1, first.output
    assert "lineages failed; play them again with: haggler selfplay" in flat(first.output)
    run_id = run_id_in(first.output)
    with Store(db) as store:
        done_before = {
            (lin.arm, lin.seed) for lin in store.lineages(run_id) if lin.status == "finished"
        }
        failed_before = [lin for lin in store.lineages(run_id) if lin.status == "failed"]
    assert failed_before and len(done_before) < 12

    fake_llm_server.responder = negotiate
    second = CliRunner().invoke(
        app, ["selfplay", str(spec), "--db", str(db), "--resume", run_id[:-4]]
    )
    assert second.exit_code == 0, second.output
    assert f"{len(done_before)} of 12 lineages were already played" in second.output
    with Store(db) as store:
        lineages = store.lineages(run_id)
        rows = round_metrics(store, run_id)
        memories = {
            owner: store.memory(owner) for owner in store.memory_owners() if run_id in owner
        }
    finished = [lin for lin in lineages if lin.status == "finished"]
    assert len(finished) == 12 and len({(lin.arm, lin.seed) for lin in finished}) == 12
    assert {(lin.arm, lin.seed) for lin in finished} >= done_before, "kept, not replayed"
    assert all(row.lineages == 6 and row.games == 6 for row in rows), "one lineage per plan"
    # A replayed lineage's memory holds its new games only: one per round.
    for items in memories.values():
        assert len([i for i in items if i.kind == "episode"]) == 2

    # And the run reads as one never interrupted: the same games, the same table.
    clean = tmp_path / "clean.db"
    uninterrupted = CliRunner().invoke(app, ["selfplay", str(spec), "--db", str(clean)])
    assert uninterrupted.exit_code == 0, uninterrupted.output
    with Store(clean) as store:
        (clean_run,) = store.runs()
        expected = round_metrics(store, clean_run.id)

    def table(rows: list[Any]) -> list[tuple[Any, ...]]:
        return [
            (r.arm, r.round, r.lineages, r.games, r.deals, r.price, r.deal_rate_all, r.msg_chars)
            for r in rows
        ]

    assert table(rows) == table(expected)


def test_resume_with_another_spec_is_refused_in_one_line(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    spec = selfplay_spec(tmp_path, fake_llm_server.openai_base, lineages=1, rounds=1)
    db = tmp_path / "h.db"
    first = CliRunner().invoke(app, ["selfplay", str(spec), "--db", str(db)])
    assert first.exit_code == 0, first.output
    with Store(db) as store:
        (run,) = store.runs()
    result = CliRunner().invoke(
        app, ["selfplay", str(spec), "--db", str(db), "--rounds", "3", "--resume", run.id]
    )
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and "was played with another rounds" in message


# -- SIGTERM, handled as Ctrl-C ---------------------------------------------------------------


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the command ended before {what}: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"timed out waiting for {what}")


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    # Read-only, so that polling never creates the file the command is about to make (an
    # empty file is refused as no store).
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute(query).fetchall()
    except sqlite3.OperationalError:  # the store is not there yet, or still being created
        return []


def test_sigterm_stops_selfplay_as_ctrl_c_does_and_resume_finishes_it(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = lambda request: Delay(0.05, then=negotiate(request))
    spec = selfplay_spec(tmp_path, fake_llm_server.openai_base, lineages=4, rounds=3)
    db = tmp_path / "h.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "haggler.cli", "selfplay", str(spec), "--db", str(db)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: bool(rows(db, "SELECT 1 FROM episodes WHERE status = 'finished'")),
        process,
        "a round finished",
    )
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    run_id = run_id_in(stderr)
    assert rows(db, "SELECT * FROM lineages WHERE status = 'running'") == []
    assert rows(db, "SELECT * FROM episodes WHERE status = 'running'") == []
    stopped = rows(db, "SELECT stop_reason FROM lineages WHERE status = 'failed'")
    assert stopped and all("interrupted" in reason for (reason,) in stopped)

    resumed = CliRunner().invoke(app, ["selfplay", str(spec), "--db", str(db), "--resume", run_id])
    assert resumed.exit_code == 0, resumed.output
    finished = rows(db, "SELECT arm, seed FROM lineages WHERE status = 'finished'")
    assert len(finished) == len(set(finished)) == 8


def test_sigterm_stops_a_tournament_and_says_what_is_stored(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    # The first 60 calls are answered, every later one hangs (until the server stops): some
    # matches finish, and the tournament can never end before the signal, however loaded the
    # machine is. (At concurrency 4, four matches in flight cannot hold 60 calls unfinished.)
    answered = itertools.count()
    fake_llm_server.responder = lambda request: (
        negotiate(request) if next(answered) < 60 else Delay(120, then=negotiate(request))
    )
    spec = tournament_spec(tmp_path, fake_llm_server.openai_base, extra="repetitions: 6\n")
    spec.write_text(spec.read_text().replace("repetitions: 2\n", ""))
    db = tmp_path / "h.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "haggler.cli", "tournament", str(spec), "--db", str(db)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    finished = "SELECT 1 FROM episodes WHERE status = 'finished'"
    wait_for(lambda: len(rows(db, finished)) >= 2, process, "two matches finished")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    stored = len(rows(db, finished))
    line = flat(stderr)
    assert f"interrupted by SIGTERM: {stored} of 36 matches are stored finished" in line
    assert f"play the other {36 - stored} with: haggler tournament {spec}" in line


def test_sigint_stops_a_tournament_with_130(tmp_path: Path, fake_llm_server: FakeLLMServer) -> None:
    # Every model call hangs (until the server stops), so once calls have reached the server
    # the tournament is certainly mid-run, however loaded the machine is: the signal cannot
    # come after the last match.
    fake_llm_server.responder = lambda request: Delay(120, then=negotiate(request))
    spec = tournament_spec(tmp_path, fake_llm_server.openai_base)
    db = tmp_path / "h.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "haggler.cli", "tournament", str(spec), "--db", str(db)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # All four places (concurrency 4) hold a match that waits on the model: start-up and the
    # players' preflight are long over when the signal comes.
    wait_for(lambda: len(fake_llm_server.requests) >= 4, process, "four model calls")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted:" in stderr and "by SIGTERM" not in stderr


def test_sigterm_marks_the_game_in_play_failed(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = lambda request: Delay(0.3, then=negotiate(request))
    db = tmp_path / "h.db"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "haggler.cli", "play", "--seller", "openai/seller-llm",
            "--api-base", fake_llm_server.openai_base, "--db", str(db), "--quiet",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    wait_for(lambda: len(rows(db, "SELECT 1 FROM turns")) >= 3, process, "three turns")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert rows(db, "SELECT status, error FROM episodes") == [
        ("failed", "interrupted before the game ended")
    ]
