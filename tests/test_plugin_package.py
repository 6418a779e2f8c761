"""The worked plug-in package (examples/plugins), installed and reached through its entry
points only: a mediator written in one file plays in `haggler play`, self-play and a
tournament of a three-party game, from YAML and from Python, and shows in `show` and the
viewer.

It needs `pip install -e examples/plugins` (README's test command does it). CI sets
HAGGLER_REQUIRE_PLUGINS=1, and there (or wherever CI=true) a missing package fails these
tests rather than skipping them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import haggler
from haggler.agents import Reply, RoleView
from haggler.agents.roles import ROLES
from haggler.agents.tactics import TACTICS
from haggler.cli import app
from haggler.evals.leaderboard import leaderboard
from haggler.games.check import check_game, check_role
from haggler.games.registry import GAMES, make_game
from haggler.store import Store
from haggler.tournament import run_tournament
from haggler.tournament.spec import check_tournament_spec
from haggler.view import write_report

pytestmark = pytest.mark.usefixtures("example_plugins")


def haggler_cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_its_entry_points_are_found_by_name() -> None:
    assert "mediated-balloon" in GAMES.names() and "split-the-difference" in ROLES.names()
    assert TACTICS.get("toward-mediator").__module__ == "haggler_mediation.tactic"
    game = make_game("mediated-balloon", {"max_exchanges": 6})
    assert game.roles == ("seller", "buyer", "mediator") and game.max_turns == 24


def test_the_game_and_the_mediator_pass_the_checks() -> None:
    game = make_game("mediated-balloon")
    check_game(game, trials=30)


async def test_the_mediator_passes_check_role_and_a_grabby_one_does_not() -> None:
    from haggler_mediation.mediator import SplitTheDifference

    game = make_game("mediated-balloon")
    await check_role(SplitTheDifference, game, episodes=2)

    class Grabby(SplitTheDifference):
        async def respond(self, view: RoleView) -> Reply:
            return Reply("I accept for them. [ACCEPT $15]")

    with pytest.raises(AssertionError, match="the mediator cannot accept"):
        await check_role(Grabby, game, episodes=1)


def test_it_plays_offline_from_the_cli_and_shows_the_mediator(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    played = haggler_cli("play", "--game", "mediated-balloon", "--db", db)
    assert played.exit_code == 0, played.output
    assert "[SUGGEST $" in played.output and "⟨suggest $" in played.output
    shown = haggler_cli("show", "--db", db)
    assert shown.exit_code == 0 and "mediator" in shown.output and "⟨suggest" in shown.output
    report = tmp_path / "r.html"
    assert haggler_cli("export", "--db", db, "-o", str(report)).exit_code == 0
    page = report.read_text()
    assert "SUGGEST" in page and "split-the-difference" in page


def test_it_plays_from_yaml_by_reference(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "game: mediated-balloon\n"
        "roles:\n"
        "  mediator: {model: 'haggler_mediation.mediator:SplitTheDifference', params: {lean: 0.5}}\n"
        "  buyer: {model: 'rule:toward-mediator', params: {pull: 0.8}}\n"
    )
    played = haggler_cli("play", str(spec), "--db", str(tmp_path / "h.db"), "-q")
    assert played.exit_code == 0, played.output
    spec.write_text(
        "game: mediated-balloon\nroles: {mediator: {model: 'role:split-the-difference', "
        "params: {lean: 3}}}\n"
    )
    refused = haggler_cli("play", str(spec), "--db", str(tmp_path / "h.db"))
    assert refused.exit_code == 2
    assert refused.output.strip().endswith(
        "roles.mediator.params.lean: lean must be a number from -1 to 1, got 3"
    )


def test_it_plays_from_python_as_a_class_or_an_object(tmp_path: Path) -> None:
    from haggler_mediation.mediator import SplitTheDifference

    with Store(tmp_path / "h.db") as store:
        by_class = haggler.play_sync(
            {"game": "mediated-balloon", "roles": {"mediator": SplitTheDifference}}, store=store
        )
        by_object = haggler.play_sync(
            {"game": "mediated-balloon"},
            store=store,
            players={"mediator": SplitTheDifference("mediator", lean=-0.5)},
        )
        roles = store.episode(by_object.episode_id).roles
    assert by_class.result.outcome.kind == "deal"
    assert roles["mediator"].model == "split-the-difference(-0.5)"
    assert [t.speaker for t in by_class.result.turns[2:6]] == [
        "seller", "mediator", "buyer", "mediator"
    ]  # fmt: skip


async def test_selfplay_coaches_a_side_with_the_mediator_at_the_table(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        run = await haggler.selfplay(
            {
                "game": "mediated-balloon",
                "coached": "seller",
                "rounds": 2,
                "lineages": 2,
                "feedback": ["ai", "none"],
            },
            store=store,
        )
        assert run.failed == 0
        games = store.run_episodes(run.run_id, transcripts=True)
    assert len(games) == 8
    assert all(any(t.speaker == "mediator" for t in g.transcript) for g in games)


def test_a_mediator_that_is_no_player_is_refused_in_one_line() -> None:
    class NotAPlayer:
        def __init__(self, role: str) -> None:
            self.role = role

    with pytest.raises(haggler.HagglerError, match="is no Player"):
        haggler.play_sync({"game": "mediated-balloon"}, players={"mediator": NotAPlayer})  # type: ignore[dict-item]


async def test_a_tournament_casts_the_mediator_and_rates_the_sides(tmp_path: Path) -> None:
    spec = check_tournament_spec(
        {
            "name": "mediated",
            "players": [
                {"name": "firm", "model": "rule:boulware"},
                {"name": "listener", "model": "rule:toward-mediator"},
                {"name": "even", "model": "rule:linear"},
            ],
            "games": [
                {"game": "mediated-balloon", "roles": {"mediator": "role:split-the-difference"}}
            ],
        }
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        assert (run.matches, run.finished, run.failed) == (6, 6, 0)
        ranked = leaderboard(store, run.run_id, bootstrap=10)
        rows = {row.player: row for row in ranked}
        assert set(rows) == {"firm", "listener", "even", "split-the-difference"}
        # The fixed mediator is not rated (nobody competes with it): listed after the sides,
        # whatever their ordinals, never ranked among them by the prior's ordinal of 0.
        assert ranked[-1].player == "split-the-difference"
        assert min(row.ordinal for row in ranked[:-1]) < 0
        assert rows["firm"].as_seller == rows["firm"].as_buyer == 2
        assert rows["split-the-difference"].by_role.startswith("mediator 6")
        assert write_report(store, run.run_id, tmp_path / "t.html") == 6


def test_a_tournament_without_the_mediator_cast_is_refused_before_it_starts(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: short\nplayers: [{name: a, model: 'rule:linear'}, {name: b, model: 'rule:boulware'}]\n"
        "games: [mediated-balloon]\n"
    )
    result = haggler_cli("tournament", str(spec), "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and "games.0: mediated-balloon has 3 roles to cast" in message
    assert "games.0.roles" in message
