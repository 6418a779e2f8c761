"""Roles as plug-ins, games of several parties, and the multi-issue game, offline.

The worked plug-in package (a mediator, a tactic, a three-party game through entry points) is
tested in test_plugin_package.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import haggler
from haggler.agents import Player, Reply, Requirements, RoleView
from haggler.agents.roles import ROLES, make_player
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TimeDependent
from haggler.cli import app
from haggler.errors import ConfigError, SpecError
from haggler.evals.leaderboard import leaderboard
from haggler.games import BALLOON, BargainingGame, BargainingRules
from haggler.games.base import Brief
from haggler.games.check import check_game, check_role
from haggler.games.registry import make_game
from haggler.run.spec import check_play_spec
from haggler.store import Store
from haggler.tournament import run_tournament
from haggler.tournament.spec import check_tournament_spec
from haggler.view import write_report


def haggler_cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


# -- the `payoff` case: a private value under a name the rule negotiator does not know --------


class PayoffGame(BargainingGame):
    """The balloon game whose seller's floor is a private value called `payoff`."""

    def brief(self, role: str) -> Brief:
        brief = super().brief(role)
        if role == "seller":
            return Brief("seller", brief.text, {"payoff": self.rules.seller_cost})
        return brief


def payoff_game() -> PayoffGame:
    # A floor above the rule seller's own default reserve: ignoring it sells below it.
    rules = BargainingRules.model_validate(BALLOON.model_dump() | {"seller_cost": 16})
    return PayoffGame(rules, name="payoff-balloon")


class Oblivious(RuleNegotiator):
    """A rule negotiator that claims to fit every seat: it ignores what it does not know."""

    requires = Requirements()


def test_the_rule_negotiator_refuses_a_private_value_it_would_ignore() -> None:
    game = payoff_game()
    player = make_player("rule:linear", "seller", seat=game.seat("seller"))
    reason = player.cannot_play(game.seat("seller"))
    assert reason is not None and "'payoff'" in reason and "cost" in reason
    assert make_player("rule:linear", "buyer").cannot_play(game.seat("buyer")) is None


async def test_check_role_catches_a_role_that_ignores_a_private_value() -> None:
    game = payoff_game()
    # The rule negotiator says it cannot play that seat; asked to, the check says why.
    with pytest.raises(AssertionError, match="cannot play the seller: .*'payoff'"):
        await check_role(
            lambda role: RuleNegotiator(role, TimeDependent(1.0)), game, roles=["seller"]
        )
    with pytest.raises(AssertionError, match="below no deal"):
        await check_role(
            lambda role: Oblivious(role, TimeDependent(1.0)), game, roles=["seller"], episodes=2
        )
    # Where its floor is named as it expects, it passes.
    await check_role(lambda role: Oblivious(role, TimeDependent(1.0)), make_game("balloon"))


def test_check_game_catches_default_players_that_cannot_play_it() -> None:
    with pytest.raises(AssertionError, match="its default seller .*'payoff'"):
        check_game(payoff_game(), trials=5)


def test_a_spec_casting_a_player_where_it_would_ignore_a_private_value_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from haggler.games.registry import GAMES

    monkeypatch.setitem(GAMES._factories, "payoff-balloon", lambda **_: payoff_game())
    with pytest.raises(SpecError) as caught:
        check_play_spec({"game": "payoff-balloon"}, source="g.yaml")
    message = str(caught.value)
    assert "\n" not in message and caught.value.field == "roles.seller"
    assert "rule:boulware (the default) cannot play the seller of payoff-balloon" in message


# -- a role that breaks the turn order -----------------------------------------------------


class Grabby(Player):
    """A party that makes an offer where the game knows only package proposals."""

    def __init__(self, role: str) -> None:
        self.role, self.label = role, "grabby"

    async def respond(self, view: RoleView) -> Reply:
        return Reply("Sold, I say. [OFFER $5]")


async def test_check_role_catches_a_party_taking_actions_it_may_not() -> None:
    game = make_game("multi-issue", {"rounds": 2})
    with pytest.raises(AssertionError, match="did not stand"):
        await check_role(Grabby, game, roles=["operator"], episodes=1)


# -- references, the registry and player objects ---------------------------------------------


def test_a_reference_that_cannot_be_imported_is_one_line() -> None:
    with pytest.raises(SpecError) as caught:
        check_play_spec({"roles": {"seller": "no_such_pkg.roles:Seller"}}, source="p.yaml")
    assert caught.value.field == "roles.seller.model"
    assert "module no_such_pkg.roles cannot be imported" in str(caught.value)


def test_a_registered_role_plays_from_a_spec_and_takes_its_params(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def firm_seller(role: str, seed: int, exponent: float = 0.5) -> Player:
        return RuleNegotiator(role, TimeDependent(exponent), seed=seed, label="firm")

    monkeypatch.setitem(ROLES._factories, "firm", firm_seller)
    played = haggler.play_sync(
        {"roles": {"seller": {"model": "role:firm", "params": {"exponent": 0.4}}}}
    )
    assert played.result.outcome.kind in ("deal", "no_deal")
    with pytest.raises(SpecError) as caught:
        check_play_spec({"roles": {"seller": {"model": "role:firm", "params": {"speed": 1}}}})
    assert caught.value.field == "roles.seller.params"
    assert "unknown parameter 'speed' for role:firm; it takes exponent" in str(caught.value)


def test_a_player_object_plays_in_python_and_is_checked(tmp_path: Path) -> None:
    seller = RuleNegotiator("seller", TimeDependent(0.5), label="mine")
    with Store(tmp_path / "h.db") as store:
        played = haggler.play_sync({"seed": 1}, store=store, players={"seller": seller})
        episode = store.episode(played.episode_id)
    assert episode.roles["seller"].model == "mine"
    with pytest.raises(ConfigError, match="players: balloon has no role 'mediator'"):
        haggler.play_sync({}, players={"mediator": seller})


# -- the multi-issue game ------------------------------------------------------------------


def test_multi_issue_passes_the_checks() -> None:
    game = make_game("multi-issue")
    assert len(game.roles) == 3
    check_game(game, trials=30)


async def test_rule_parties_pass_check_role_and_never_go_below_their_minimum() -> None:
    game = make_game("multi-issue")

    def party(role: str) -> Player:
        return make_player("rule:conceder", role, seat=game.seat(role))

    await check_role(party, game, episodes=3)


def test_multi_issue_plays_from_the_cli_and_shows(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    played = haggler_cli("play", "--game", "multi-issue", "--db", db)
    assert played.exit_code == 0, played.output
    assert "[PROPOSE" in played.output and "Deal on route" in played.output
    shown = haggler_cli("show", "--db", db)
    assert shown.exit_code == 0 and "residents" in shown.output and "⟨propose" in shown.output


def test_a_bad_multi_issue_rule_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "g.yaml"
    spec.write_text("game: multi-issue\nrules: {rounds: 0}\n")
    result = haggler_cli("play", str(spec), "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "rules.rounds" in result.output


async def test_a_multi_issue_tournament_rates_every_party_and_shows_in_the_viewer(
    tmp_path: Path,
) -> None:
    spec = check_tournament_spec(
        {
            "name": "bus",
            "players": [
                {"name": "slow", "model": "rule:boulware"},
                {"name": "even", "model": "rule:linear"},
                {"name": "quick", "model": "rule:conceder"},
            ],
            "games": [{"game": "multi-issue", "rules": {"rounds": 4}}],
        }
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        assert (run.matches, run.finished, run.failed) == (6, 6, 0)
        rows = {row.player: row for row in leaderboard(store, run.run_id, bootstrap=20)}
        assert set(rows) == {"slow", "even", "quick"}
        for row in rows.values():
            assert row.games == 6
            assert all(f"{r} 2 (ord" in row.by_role for r in ("council", "operator", "residents"))
        assert write_report(store, run.run_id, tmp_path / "bus.html") == 6
    page = (tmp_path / "bus.html").read_text()
    assert "PROPOSE" in page and "council" in page


def test_a_game_the_schedule_cannot_cast_is_refused_before_it_starts(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: two\nplayers: [{name: a, model: 'rule:linear'}, {name: b, model: 'rule:boulware'}]\n"
        "games: [multi-issue]\n"
    )
    db = tmp_path / "h.db"
    result = haggler_cli("tournament", str(spec), "--db", str(db))
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message
    assert "games.0: multi-issue has 3 roles to cast in each match" in message
    assert not db.exists() or Store(db).runs() == []
