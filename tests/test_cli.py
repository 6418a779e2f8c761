"""The CLI: a game with no key and no network, stored games shown and exported, and bad input
answered in one line with exit status 2, nothing lost from the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.store import Store

runner = CliRunner()


def haggler(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_play_with_no_arguments_plays_the_offline_default(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    result = haggler("play", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "This is a good balloon and its price is $20." in result.output
    assert "Would you sell it for $10?" in result.output
    assert any(word in result.output for word in ("Deal at $", "No deal"))
    with Store(db) as store:
        (episode,) = store.episodes()
        assert episode.status == "finished"
        assert episode.roles["seller"].model == "rule:boulware"


def test_flags_choose_models_and_seed(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    args = ["play", "--db", db, "--seller", "rule:conceder", "--buyer", "rule:tit-for-tat"]
    first = haggler(*args, "--seed", "7", "--quiet")
    second = haggler(*args, "--seed", "7", "--quiet")
    assert first.exit_code == second.exit_code == 0
    with Store(db) as store:
        a, b = store.episodes()
        texts = [[t.text for t in store.episode(e.id).transcript] for e in (a, b)]
    assert a.roles["buyer"].model == "rule:tit-for-tat"
    assert a.seed == 7
    assert texts[0] == texts[1], "the same seed must replay the same game"


def test_play_reads_a_yaml_spec(tmp_path: Path) -> None:
    spec = tmp_path / "game.yaml"
    spec.write_text(
        "game: diamond\n"
        "rules: {max_exchanges: 4}\n"
        "roles:\n"
        "  seller: {model: 'rule:linear', params: {plain_text: true}}\n"
        "  buyer: 'rule:conceder'\n"
        "seed: 11\n"
    )
    db = tmp_path / "h.db"
    result = haggler("play", str(spec), "--db", str(db))
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        episode = store.episode(store.resolve_episode(None))
    assert episode.game == "diamond"
    assert episode.rules["max_exchanges"] == 4
    assert sum(not t.scripted for t in episode.transcript) <= 8
    seller_texts = [t.text for t in episode.transcript if t.speaker == "seller" and not t.scripted]
    assert seller_texts and not any("[" in text for text in seller_texts)


def test_show_list_and_export(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    haggler("play", "--db", db, "--seed", "1", "-q")
    haggler("play", "--db", db, "--seed", "2", "-q")
    with Store(db) as store:
        first, second = store.episodes()
    latest = haggler("show", "--db", db)
    assert latest.exit_code == 0
    assert second.id in latest.output
    by_prefix = haggler("show", first.id[:-1], "--db", db, "--briefs")
    assert first.id in by_prefix.output
    assert "private to seller" in by_prefix.output and "It cost you $8" in by_prefix.output
    listing = haggler("show", "--list", "--run", second.run_id, "--db", db, env={"COLUMNS": "120"})
    assert listing.exit_code == 0 and "rule:boulware" in listing.output
    assert second.id in listing.output, "ids are listed whole, ready to copy"

    out = tmp_path / "run.jsonl"
    exported = haggler("export", first.run_id, "-o", str(out), "--db", db)
    assert exported.exit_code == 0, exported.output
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["id"] == first.id


def test_the_store_path_comes_from_haggler_db(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = haggler("play", "-q", env={"HAGGLER_DB": str(db)})
    assert result.exit_code == 0
    assert db.exists()


BAD_SPECS = {
    "malformed.yaml": ("roles: {seller: [", "line"),
    "unknown_field.yaml": ("colour: red\n", "colour: unknown field"),
    "bad_range.yaml": (
        "rules: {buyer_opening: 30}\n",
        "rules.buyer_opening: buyer_opening (30) must be below",
    ),
    "bad_prefix.yaml": ("roles: {seller: 'foo/bar'}\n", "roles.seller.model: model 'foo/bar'"),
    "bad_role.yaml": ("roles: {sellr: 'rule:linear'}\n", "roles.sellr"),
    "bad_tactic.yaml": ("roles: {seller: 'rule:stubborn'}\n", "unknown tactic 'stubborn'"),
    "bad_param.yaml": (
        "roles: {seller: {model: 'rule:boulware', params: {exponnent: 2}}}\n",
        "roles.seller.params: unknown parameter 'exponnent'",
    ),
    "not_a_mapping.yaml": ("- just\n- a list\n", "top level must be a mapping"),
    "bad_param_value.yaml": (
        "roles: {seller: {model: 'rule:boulware', params: {exponent: -1}}}\n",
        "roles.seller.params.exponent: exponent must be a positive number",
    ),
    "nan_param.yaml": (
        "roles: {buyer: {model: 'rule:linear', params: {reserve_share: .nan}}}\n",
        "roles.buyer.params.reserve_share",
    ),
    "not_a_bool.yaml": (
        "roles: {buyer: {model: 'rule:linear', params: {plain_text: 'no'}}}\n",
        "plain_text must be true or false",
    ),
    "huge_seed.yaml": ("seed: 99999999999999999999999\n", "seed: Input should be less than"),
    "endless_integer.yaml": ("seed: " + "1" * 5000 + "\n", "a value cannot be read"),
    "key_in_env_field.yaml": (
        "roles: {seller: {model: openai/gpt-4o, api_key_env: sk-proj-AbCdEf0123456789xyz}}\n",
        "must name an environment variable",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_bad_specs_get_one_line_exit_2_and_leave_the_store_alone(tmp_path: Path, name: str) -> None:
    db = str(tmp_path / "h.db")
    assert haggler("play", "--db", db, "-q").exit_code == 0
    content, expected = BAD_SPECS[name]
    spec = tmp_path / name
    spec.write_text(content)
    result = haggler("play", str(spec), "--db", db)
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message, f"expected one line, got:\n{message}"
    assert message.startswith(f"error: {spec}: ")
    assert expected in message
    assert "Traceback" not in message
    assert "AbCdEf0123456789" not in message, "a key pasted into a spec must not be echoed"
    with Store(db) as store:
        assert len(store.episodes()) == 1
        assert len(store.runs()) == 1


def test_missing_files_and_stores(tmp_path: Path) -> None:
    missing = haggler("play", str(tmp_path / "nope.yaml"), "--db", str(tmp_path / "h.db"))
    assert missing.exit_code == 2
    assert "nope.yaml: file not found" in missing.output
    no_store = haggler("show", "--db", str(tmp_path / "absent.db"))
    assert no_store.exit_code == 2 and "no such file" in no_store.output
    directory = haggler("play", "--db", str(tmp_path))
    assert directory.exit_code == 2 and "is a directory" in directory.output


def test_a_missing_api_key_is_named_before_any_call(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    result = haggler(
        "play",
        "--seller",
        "anthropic/claude-x",
        "--db",
        str(tmp_path / "h.db"),
        env=env | {"ANTHROPIC_API_KEY": ""},
    )
    assert result.exit_code == 2
    assert "ANTHROPIC_API_KEY" in result.output
    with Store(tmp_path / "h.db") as store:
        assert store.episodes() == [], "no game starts when a key is missing"


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    # The real entry point in a fresh process: what a user's shell sees.
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "haggler.cli",
            "play",
            "--seller",
            "openai/gpt-4o",
            "--db",
            str(tmp_path / "h.db"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "error: model 'openai/gpt-4o' needs an API key: set the environment variable OPENAI_API_KEY"
    ]


def test_a_bad_model_flag_is_blamed_on_the_flag(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text("seed: 3\n")
    result = haggler("play", str(spec), "--seller", "foo/bar", "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 2
    assert result.output.startswith("error: --seller: ")


def test_a_closed_stdout_stops_the_printing_not_the_game(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    shell = f"{sys.executable} -m haggler.cli play --db {db} | head -1"
    process = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=120)
    assert process.stdout.count("\n") == 1
    with Store(db) as store:
        (episode,) = store.episodes()
    assert episode.status == "finished", episode.error


# --- what a new user hits first --------------------------------------------------------------

SELFPLAY_SPEC = (
    "roles: {seller: 'rule:linear', buyer: 'rule:linear'}\n"
    "critic: rule\nrounds: 2\nlineages: 3\nfeedback: [ai, none]\n"
)
TOURNAMENT_SPEC = (
    "name: small\ngames: [balloon]\nrepetitions: 1\n"
    "players:\n  - {name: lin, model: 'rule:linear'}\n  - {name: con, model: 'rule:conceder'}\n"
)


@pytest.mark.parametrize("command", ["play", "selfplay", "tournament"])
@pytest.mark.parametrize("content", ["", "\n  \n", "# a spec, one day\n", "---\n"])
def test_an_empty_spec_file_is_refused_not_played(
    tmp_path: Path, command: str, content: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(content)
    db = tmp_path / "h.db"
    result = haggler(command, str(spec), "--db", str(db))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"error: {spec}: the file is empty (or holds only comments); write the spec in it"
    )
    assert not db.exists(), "nothing is played, so no store is made"


def test_an_explicitly_empty_mapping_still_asks_for_the_defaults(tmp_path: Path) -> None:
    spec = tmp_path / "defaults.yaml"
    spec.write_text("{}\n")
    result = haggler("play", str(spec), "--db", str(tmp_path / "h.db"), "-q")
    assert result.exit_code == 0, result.output


@pytest.fixture
def one_run(tmp_path: Path) -> str:
    """A store holding one game; its path."""
    db = str(tmp_path / "h.db")
    assert haggler("play", "--db", db, "-q").exit_code == 0
    return db


@pytest.mark.parametrize("name", ["games.csv", "games.json", "games.txt", "report.HTML5"])
def test_export_refuses_a_file_kind_it_does_not_write(
    tmp_path: Path, one_run: str, name: str
) -> None:
    db = one_run
    target = tmp_path / name
    result = haggler("export", "-o", str(target), "--db", db)
    assert result.exit_code == 2
    suffix = target.suffix.lower()
    assert result.output.strip() == (
        f"error: -o {target}: cannot write a {suffix} file; use .jsonl (JSON lines, also "
        ".json-lines or no suffix) or .html (a report)"
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("games.jsonl", "jsonl"),
        ("games.JSONL", "jsonl"),
        ("games.json-lines", "jsonl"),
        ("games", "jsonl"),
        ("games.html", "html"),
        ("games.htm", "html"),
    ],
)
def test_export_writes_what_the_suffix_says(
    tmp_path: Path, one_run: str, name: str, kind: str
) -> None:
    db = one_run
    target = tmp_path / name
    result = haggler("export", "-o", str(target), "--db", db)
    assert result.exit_code == 0, result.output
    text = target.read_text()
    if kind == "jsonl":
        (line,) = text.splitlines()
        assert json.loads(line)["schema"] == "haggler.episode/1"
    else:
        assert text.lstrip().lower().startswith("<!doctype html>")


def test_the_selfplay_progress_counts_games_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from haggler.cli import playing

    # A terminal, as a person's: the bar is drawn (and, being transient, erased at the end).
    screen = io.StringIO()
    monkeypatch.setattr(playing, "err", Console(file=screen, force_terminal=True, width=200))
    spec = tmp_path / "sp.yaml"
    spec.write_text(SELFPLAY_SPEC)
    result = haggler("selfplay", str(spec), "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 0, result.output
    drawn = screen.getvalue()
    # 2 arms x 3 lineages x 2 rounds: twelve games, one per round of each lineage.
    assert "games played" in drawn and "12/12" in drawn
    assert "rounds" not in drawn
    with Store(tmp_path / "h.db") as store:
        assert len(store.episodes()) == 12


def _without_keys() -> dict[str, str]:
    keys = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY")
    return {k: v for k, v in os.environ.items() if k not in keys}


def test_every_missing_key_of_a_game_is_named_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    result = haggler(
        "play",
        "--seller",
        "openai/gpt-4o",
        "--buyer",
        "anthropic/claude-x",
        "--moderator",
        "openai/gpt-4o-mini",
        "--db",
        str(db),
        env=_without_keys() | {"ANTHROPIC_API_KEY": ""},
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: API keys missing: set OPENAI_API_KEY for seller (openai/gpt-4o), moderator "
        "(openai/gpt-4o-mini); set ANTHROPIC_API_KEY for buyer (anthropic/claude-x)"
    )
    with Store(db) as store:
        assert store.episodes() == []


def test_selfplay_names_the_critics_missing_key_with_the_players(tmp_path: Path) -> None:
    spec = tmp_path / "sp.yaml"
    spec.write_text(
        "roles: {seller: openai/gpt-4o, buyer: 'rule:linear'}\n"
        "critic: {model: groq/llama-3.1-8b-instant, api_key_env: COACH_KEY}\n"
    )
    env = _without_keys() | {"COACH_KEY": ""}
    result = haggler("selfplay", str(spec), "--db", str(tmp_path / "h.db"), env=env)
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: API keys missing: set OPENAI_API_KEY for seller (openai/gpt-4o); "
        "set COACH_KEY for critic (groq/llama-3.1-8b-instant)"
    )


def test_a_tournament_names_every_players_missing_key_before_any_match(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: keys\ngames: [balloon]\nmoderator: openai/gpt-4o-mini\nplayers:\n"
        "  - {name: gpt, model: openai/gpt-4o}\n"
        "  - {name: claude, model: anthropic/claude-x}\n"
        "  - {name: tactic, model: 'rule:boulware'}\n"
        "  - {name: mini, model: openai/gpt-4o-mini}\n"
    )
    db = tmp_path / "h.db"
    result = haggler("tournament", str(spec), "--db", str(db), env=_without_keys())
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {spec}: players: API keys missing: set OPENAI_API_KEY for players.0 gpt "
        "(openai/gpt-4o), moderator (openai/gpt-4o-mini), players.3 mini (openai/gpt-4o-mini); "
        "set ANTHROPIC_API_KEY for players.1 claude (anthropic/claude-x)"
    )
    with Store(db) as store:
        assert store.runs() == [], "no match starts, no run is made"


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = haggler("--version")
    assert result.exit_code == 0
    assert result.output == f"haggler {version('haggler')}\n"
    assert "--version" in haggler("--help").output


# --- haggler runs ----------------------------------------------------------------------------


def test_runs_lists_every_run_of_the_store(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    assert haggler("play", "--db", str(db), "-q").exit_code == 0
    spec = tmp_path / "sp.yaml"
    spec.write_text(SELFPLAY_SPEC)
    assert haggler("selfplay", str(spec), "--db", str(db)).exit_code == 0
    tour = tmp_path / "t.yaml"
    tour.write_text(TOURNAMENT_SPEC)
    assert haggler("tournament", str(tour), "--db", str(db)).exit_code == 0
    with Store(db) as store:
        play_run, selfplay_run, tour_run = (run.id for run in store.runs())

    listed = haggler("runs", "--db", str(db), env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    rows = {line.split("│")[1].strip(): line for line in listed.output.splitlines() if "│" in line}
    assert set(rows) == {play_run, selfplay_run, tour_run}
    cells = {run: [c.strip() for c in line.split("│")[2:-1]] for run, line in rows.items()}
    assert cells[play_run][:4] == ["play", "1 game", "finished", "$0.0000"]
    assert cells[selfplay_run][:4] == ["selfplay", "12 games, 6/6 lineages", "finished", "$0.0000"]
    assert cells[tour_run][:4] == ["tournament", "2 games, 2/2 matches", "finished", "$0.0000"]

    as_json = haggler("runs", "--json", "--db", str(db))
    assert as_json.exit_code == 0
    runs = {run["id"]: run for run in json.loads(as_json.output)}
    assert list(runs) == [play_run, selfplay_run, tour_run], "oldest first"
    assert runs[selfplay_run]["kind"] == "selfplay"
    assert runs[selfplay_run]["games"] == 12
    assert sum(runs[selfplay_run]["outcomes"].values()) == 12
    assert (runs[selfplay_run]["lineages"], runs[selfplay_run]["lineages_planned"]) == (6, 6)
    assert (runs[tour_run]["matches"], runs[tour_run]["matches_planned"]) == (2, 2)
    assert runs[play_run]["lineages"] is None and runs[play_run]["matches"] is None
    for run in runs.values():
        assert run["status"] == "finished" and run["spend_usd"] == 0.0
        assert run["created_at"] <= run["last_activity_at"]
        assert run["created_at"].endswith("+00:00")

    latest = json.loads(haggler("runs", "--json", "--limit", "1", "--db", str(db)).output)
    assert [run["id"] for run in latest] == [tour_run]


def test_runs_of_an_empty_store_and_of_no_store(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    Store(db).close()
    empty = haggler("runs", "--db", str(db))
    assert empty.exit_code == 0
    assert empty.output.strip() == f"store {db} holds no runs yet; run `haggler play` first"
    assert json.loads(haggler("runs", "--json", "--db", str(db)).output) == []

    absent = tmp_path / "absent.db"
    missing = haggler("runs", "--db", str(absent))
    assert missing.exit_code == 2
    assert missing.output.strip() == (
        f"error: store {absent}: no such file; play a game first or pass --db"
    )
    assert not absent.exists()
    bad_limit = haggler("runs", "--limit", "0", "--db", str(db))
    assert bad_limit.exit_code == 2
    assert bad_limit.output.strip() == "error: --limit 0: give a number of runs, 1 or more"


def _game(outcome: str | None, *, cost: float = 0.0, match_id: str | None = None) -> dict[str, Any]:
    """A stored game's fields: finished with `outcome`, or failed when it is None."""
    from haggler.store.records import OutcomeRecord, RoleRecord, TurnRecord

    now = time.time()
    return {
        "game": "balloon",
        "rules": {},
        "roles": {"seller": RoleRecord(model="openai/gpt-4o", brief="b")},
        "seed": 0,
        "turns": [
            TurnRecord(
                index=0, speaker="seller", text="hi", started_at=now, ended_at=now, cost_usd=cost
            )
        ],
        "outcome": None if outcome is None else OutcomeRecord(kind=outcome, reason="accepted"),
        "scores": {},
        "error": None if outcome else "model gone",
        "match_id": match_id,
    }


def test_runs_tell_running_interrupted_incomplete_failed_and_empty_apart(tmp_path: Path) -> None:
    from haggler.cli.run_summary import STALE_AFTER_S, summarize_runs
    from haggler.store.records import RoleRecord
    from haggler.tournament.schedule import expand
    from haggler.tournament.spec import TournamentSpec

    db = tmp_path / "h.db"
    tour = tmp_path / "t.yaml"
    tour.write_text(TOURNAMENT_SPEC)
    assert haggler("tournament", str(tour), "--db", str(db)).exit_code == 0
    with Store(db) as store:
        (tour_run,) = (run.id for run in store.runs())
        # The spec grows by a player: its rerun has 4 matches more to play.
        grown = store.runs()[0].spec
        grown["players"].append({"name": "boul", "model": "rule:boulware"})
        store.ensure_run(tour_run, "tournament", grown)
        jobs = expand(TournamentSpec.model_validate(grown))
        finished = store.finished_matches(tour_run)
        unplayed = [job for job in jobs if job.id not in finished]

        empty = store.start_run("play", {})
        in_flight = store.start_run("play", {})
        store.start_episode(
            in_flight,
            game="balloon",
            rules={},
            roles={"seller": RoleRecord(model="m", brief="")},
            seed=0,
        )
        failed = store.start_run("play", {})
        store.add_episode(failed, **_game(None, cost=0.0125))
        partial = store.start_run("selfplay", {"lineages": 2, "feedback": ["ai", "none"]})
        for _ in range(3):
            store.add_lineage(
                partial,
                arm="ai",
                coached="seller",
                seed=0,
                games=[_game("deal", cost=0.5), _game("deal")],
            )
        between = store.start_run("selfplay", {"lineages": 1, "feedback": ["ai"]})
        store.start_lineage(between, arm="ai", coached="seller", seed=0, rounds_planned=3)
        broken = store.start_run("selfplay", {"lineages": 1, "feedback": ["ai"]})
        store.add_lineage(
            broken, arm="ai", coached="seller", seed=0, games=[_game("deal"), _game(None)]
        )

        now = time.time()
        fresh = {s.id: s for s in summarize_runs(store, now=now)}
        later = {s.id: s for s in summarize_runs(store, now=now + STALE_AFTER_S + 60)}
        # A failed attempt at a match not yet played again.
        store.add_episode(tour_run, **_game(None, match_id=unplayed[0].id))
        failing = {s.id: s for s in summarize_runs(store, now=now + STALE_AFTER_S + 60)}

    def seen(runs: dict[str, Any], run: str) -> tuple[str, str]:
        return runs[run].status, runs[run].detail

    assert seen(fresh, empty) == ("empty", "no game stored")
    assert seen(fresh, in_flight) == ("running", "1 game in flight")
    assert seen(later, in_flight) == ("interrupted", "nothing stored for 16 min")
    assert seen(fresh, between) == ("running", "1 lineage in flight"), "its critic at work"
    assert seen(later, between) == ("interrupted", "nothing stored for 16 min")
    assert seen(fresh, failed) == ("failed", "its game failed")
    assert fresh[failed].spend_usd == pytest.approx(0.0125)
    assert seen(later, partial) == ("incomplete", "3 of 4 lineages played")
    assert fresh[partial].spend_usd == pytest.approx(1.5)
    assert (fresh[partial].lineages, fresh[partial].lineages_planned) == (3, 4)
    assert seen(later, broken) == ("has failures", "1 lineage failed")
    assert seen(fresh, tour_run) == ("running", "2 of 6 matches played"), "stored lately"
    assert seen(later, tour_run) == ("incomplete", "2 of 6 matches played")
    assert seen(failing, tour_run) == ("has failures", "2 of 6 matches played; 1 failed attempt")
    assert failing[tour_run].size() == "3 games, 2/6 matches"

    listed = haggler("runs", "--db", str(db), env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "failed: its game failed" in listed.output and "$0.0125" in listed.output
    assert "6 games, 3/4 lineages" in listed.output
