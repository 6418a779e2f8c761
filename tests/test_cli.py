"""The CLI: a game with no key and no network, stored games shown and exported, and bad input
answered in one line with exit status 2, nothing lost from the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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

    from haggler import cli

    # A terminal, as a person's: the bar is drawn (and, being transient, erased at the end).
    screen = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=screen, force_terminal=True, width=200))
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

