"""A tournament on a self-play schedule: its leaderboard, its coached players' gains, and a
report per game (balloon and diamond prices never share a mean), in the CLI and the viewer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.evals import coaching, leaderboard, round_metrics
from haggler.games.registry import make_game
from haggler.store import Store
from haggler.tournament.running import run_tournament
from haggler.tournament.schedule import current_match_ids, expand
from haggler.tournament.spec import check_tournament_spec, load_tournament_spec

SPEC = """\
name: coached-two-games
players:
  - {name: boulware, model: "rule:boulware"}
  - {name: linear, model: "rule:linear"}
  - {name: tft, model: "rule:tit-for-tat"}
games: [balloon, diamond]
schedule: {kind: selfplay, rounds: 3, feedback: ai, coached: seller}
repetitions: 2
"""
PLAYERS = {"boulware", "linear", "tft"}
# Each game's zone: every price of a table must lie in its own game's zone.
ZONES = {"balloon": (10.0, 20.0), "diamond": (500.0, 2000.0)}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("coached")
    spec, db = folder / "t.yaml", folder / "h.db"
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(db)])
    return spec, db, result.output + f"\n[exit {result.exit_code}]"


def test_the_tournament_exits_0_with_its_leaderboard_and_coached_gains(
    played: tuple[Path, Path, str],
) -> None:
    _, _, output = played
    assert output.endswith("[exit 0]"), output
    assert "holds no tournament games" not in output
    assert "Tournament leaderboard" in output
    assert "Coached players: before and after feedback" in output
    for player in PLAYERS:
        assert re.search(rf"\b{player}\b.*\b\d+ \(\d+/\d+\)", output), f"no row for {player}"


def test_the_leaderboard_ranks_every_round_and_the_coaching_table_every_coached_player(
    played: tuple[Path, Path, str],
) -> None:
    spec_path, db, _ = played
    spec = load_tournament_spec(spec_path)
    with Store(db) as store:
        run = store.resolve_run("tour-coached-two-games")
        current = current_match_ids(next(r for r in store.runs() if r.id == run).spec)
        rows = {r.player: r for r in leaderboard(store, run, match_ids=current)}
        gains = coaching(store, run, match_ids=current)
    # 2 games x 2 repetitions x 2 rivals = 8 lineages coached as seller, 3 rounds each, and
    # as many games as the rival buyer.
    assert set(rows) == PLAYERS
    assert all((r.as_seller, r.as_buyer, r.games) == (24, 24, 48) for r in rows.values())
    assert len(expand(spec)) == 24
    assert {g.player for g in gains} == PLAYERS
    assert all(g.lineages == 8 and g.last_round == 3 and g.coached == "seller" for g in gains)
    for gain in gains:
        assert 0 <= gain.first_share.value <= 1 and 0 <= gain.last_share.value <= 1
        assert gain.gain.value == pytest.approx(gain.last_share.value - gain.first_share.value)
    ordered = [g.gain.value for g in gains]
    assert ordered == sorted(ordered, reverse=True), "the largest gain first"


def test_the_report_gives_a_table_per_game_and_never_averages_their_prices(
    played: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, db, _ = played
    plot = tmp_path / "rounds.svg"
    result = CliRunner().invoke(
        app, ["report", "tour-coached-two-games", "--db", str(db), "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    balloon = text.index("Deal price before and after feedback: balloon")
    diamond = text.index("Deal price before and after feedback: diamond")
    for start, end, game in ((balloon, diamond, "balloon"), (diamond, len(text), "diamond")):
        low, high = ZONES[game]
        summary = [
            line.split("│")
            for line in text[start:end].splitlines()
            if re.match(r"│ (boulware|linear|tft) ", line)
        ]
        assert sorted(cells[1].strip() for cells in summary) == sorted(PLAYERS)
        for cells in summary:
            assert cells[4].strip() == "4", "2 repetitions x 2 rivals"
            prices = [float(cells[k].split("±")[0]) for k in (5, 7, 9) if "±" in cells[k]]
            assert prices and all(low <= p <= high for p in prices), (game, cells)
    assert "609" not in text and "611.62" not in text, "no mean across games"
    assert (tmp_path / "rounds-balloon.svg").exists() and (tmp_path / "rounds-diamond.svg").exists()
    assert not plot.exists(), "a plot per game, none of both"


def test_round_metrics_are_per_game_and_coached_player(played: tuple[Path, Path, str]) -> None:
    _, db, _ = played
    with Store(db) as store:
        rows = round_metrics(store, "tour-coached-two-games")
    assert {(r.game, r.player) for r in rows} == {(g, p) for g in ZONES for p in PLAYERS}
    for row in rows:
        low, high = ZONES[row.game]
        assert row.lineages == 4 and row.coached == "seller" and row.arm == "ai"
        assert row.price.n == 0 or low <= row.price.value <= high


def test_the_viewer_gets_the_leaderboard_of_such_a_run(played: tuple[Path, Path, str]) -> None:
    from haggler.view.data import run_overview

    _, db, _ = played
    with Store(db) as store:
        overview = run_overview(store, "tour-coached-two-games", wait_s=None)
    assert overview.results is not None and overview.results.error is None
    assert {row.player for row in overview.results.leaderboard} == PLAYERS


async def test_one_game_under_two_sets_of_rules_gets_two_tables(tmp_path: Path) -> None:
    spec = check_tournament_spec(
        {
            "name": "variants",
            "players": [
                {"name": "boulware", "model": "rule:boulware"},
                {"name": "linear", "model": "rule:linear"},
            ],
            "games": ["balloon", {"game": "balloon", "rules": {"max_exchanges": 4}}],
            "schedule": {"kind": "selfplay", "rounds": 2},
        }
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        rows = round_metrics(store, run.run_id)
    assert {r.game for r in rows} == {"balloon (max_exchanges=10)", "balloon (max_exchanges=4)"}


async def test_a_lineage_played_again_after_it_failed_counts_once(tmp_path: Path) -> None:
    spec = check_tournament_spec(
        {
            "name": "again",
            "players": [
                {"name": "boulware", "model": "rule:boulware"},
                {"name": "linear", "model": "rule:linear"},
            ],
            "schedule": {"kind": "selfplay", "rounds": 2, "feedback": "none"},
        }
    )
    (job, _) = expand(spec)
    with Store(tmp_path / "h.db") as store:
        run_id = "tour-again"
        store.ensure_run(run_id, "tournament", spec.model_dump(mode="json"))
        # An earlier attempt at the first lineage that failed in its first round.
        from haggler.store.records import RoleRecord

        roles = {
            "seller": RoleRecord(model="rule:boulware", player="boulware", brief="b"),
            "buyer": RoleRecord(model="rule:linear", player="linear", brief="b"),
        }
        store.add_lineage(
            run_id,
            arm="none",
            coached="seller",
            seed=int(job.play_spec["seed"]),
            games=[
                {
                    "game": "balloon",
                    "rules": make_game("balloon", {}).settings(),
                    "roles": roles,
                    "seed": int(job.play_spec["seed"]),
                    "turns": [],
                    "outcome": None,
                    "scores": {},
                    "error": "the provider fell over",
                    "match_id": job.game_ids()[0],
                }
            ],
        )
        await run_tournament(spec, store=store)
        rows = round_metrics(store, run_id)
        gains = {g.player: g for g in coaching(store, run_id)}
    boulware = [r for r in rows if r.player == "boulware"]
    assert [r.lineages for r in boulware] == [1, 1], "the failed attempt is no lineage"
    assert boulware[0].failed == 1, "but its failed game is counted"
    assert boulware[0].games == 1 and boulware[0].alive == 1
    assert gains["boulware"].lineages == 1


async def test_an_edited_spec_reports_only_its_own_lineages(tmp_path: Path) -> None:
    players = [
        {"name": "boulware", "model": "rule:boulware"},
        {"name": "linear", "model": "rule:linear"},
    ]
    first = check_tournament_spec(
        {"name": "edit", "players": players, "schedule": {"kind": "selfplay", "rounds": 2}}
    )
    edited = check_tournament_spec(
        {
            "name": "edit",
            "players": [players[0], {"name": "conceder", "model": "rule:conceder"}],
            "schedule": {"kind": "selfplay", "rounds": 2},
        }
    )
    db = tmp_path / "h.db"
    with Store(db) as store:
        await run_tournament(first, store=store)
        await run_tournament(edited, store=store)
    result = CliRunner().invoke(app, ["report", "tour-edit", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "conceder" in result.output and "linear" not in result.output
