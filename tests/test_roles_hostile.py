"""Plug-in roles written badly, as a hostile or careless third party would: a factory that
raises, a player that raises or answers with something other than a `Reply`. Each is a
one-line error (exit 2) or a game outcome, never a traceback."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haggler.agents import Player, Reply, RoleView
from haggler.agents.roles import make_player
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TimeDependent
from haggler.cli import app
from haggler.errors import ConfigError, PlayerError, TransientModelError
from haggler.games.check import check_role
from haggler.games.episode import play_episode
from haggler.games.registry import make_game


class Broken(Player):
    """A buyer whose `respond` misbehaves in the way `kind` says."""

    def __init__(self, role: str, kind: str) -> None:
        self.role, self.kind, self.label = role, kind, f"broken-{kind}"

    async def respond(self, view: RoleView) -> Any:
        if self.kind == "raises":
            raise RuntimeError("the plug-in tripped")
        if self.kind == "transient":
            raise TransientModelError("the provider is down", model="fake/model")
        if self.kind == "none":
            return None
        if self.kind == "str":
            return "[OFFER $12]"
        return Reply(12345)  # type: ignore[arg-type]


def _players(buyer: Player) -> dict[str, Player]:
    return {"seller": RuleNegotiator("seller", TimeDependent(0.5)), "buyer": buyer}


@pytest.mark.parametrize("kind", ["none", "str", "int-text"])
async def test_a_player_that_answers_no_reply_ends_the_game_invalid(kind: str) -> None:
    result = await play_episode(make_game("balloon"), _players(Broken("buyer", kind)))
    assert result.outcome.kind == "invalid"
    assert result.outcome.by == "buyer"
    assert result.outcome.reason == "player_error"
    last = result.turns[-1]
    assert last.speaker == "buyer" and not last.accepted
    assert isinstance(last.text, str) and last.error
    assert "buyer" in last.error


async def test_a_player_that_raises_fails_the_game_in_one_line() -> None:
    with pytest.raises(PlayerError) as caught:
        await play_episode(make_game("balloon"), _players(Broken("buyer", "raises")))
    assert str(caught.value) == (
        "the buyer's player (broken-raises) raised RuntimeError: the plug-in tripped"
    )
    assert caught.value.model == "broken-raises"


async def test_a_model_failure_still_stops_the_episode_for_the_run_to_handle() -> None:
    # A provider that is down is the run's to retry or report, not the player's loss.
    with pytest.raises(TransientModelError):
        await play_episode(make_game("balloon"), _players(Broken("buyer", "transient")))


def test_a_factory_that_raises_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        make_player(f"{__name__}:exploding_factory", "buyer")
    message = str(caught.value)
    assert "\n" not in message
    assert "exploding_factory" in message and "RuntimeError: it blew up" in message


def exploding_factory(role: str) -> Player:
    raise RuntimeError("it blew up")


def test_a_factory_that_raises_is_one_line_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shaky.py").write_text(
        textwrap.dedent(
            """
            def seller(role, seed=0):
                raise RuntimeError("factory exploded")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shaky", raising=False)
    spec = tmp_path / "p.yaml"
    spec.write_text('roles:\n  seller: "shaky:seller"\n')
    result = CliRunner().invoke(app, ["play", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "factory exploded" in result.output


def test_an_error_naming_a_reference_is_shown_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `nomod:Anchor` must not become "nomod⚓" (rich reads :anchor: as an emoji code).
    spec = tmp_path / "p.yaml"
    spec.write_text('roles:\n  seller: "nomod:Anchor"\n')
    result = CliRunner().invoke(app, ["play", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2, result.output
    assert "nomod:Anchor" in result.output


async def test_a_party_called_moderator_plays() -> None:
    # The episode's own moderator must not take the name of a party of a plug-in game.
    from haggler.games.multi_issue import BUS_ROUTE, MultiIssueGame, MultiIssueRules

    rules = BUS_ROUTE.model_dump()
    rules["parties"][1]["name"] = "moderator"
    game = MultiIssueGame(MultiIssueRules.model_validate(rules))
    players = {role: make_player("rule:linear", role, seat=game.seat(role)) for role in game.roles}
    result = await play_episode(game, players)
    assert result.outcome.kind in ("deal", "no_deal")
    assert any(turn.speaker == "moderator" for turn in result.turns)


@pytest.mark.parametrize(
    "text",
    [
        "[PROPOSE R1 F2 Q1 S1]",
        "[PROPOSE route=R1, fare=F2, frequency=Q1, subsidy=S1]",
        "[PROPOSE route: R1, fare: F2, frequency: Q1, subsidy: S1]",
        "[PROPOSE route = R1; fare = F2; frequency = Q1; subsidy = S1]",
    ],
)
def test_a_package_reads_with_or_without_its_issues_named(text: str) -> None:
    # The reader's docstring promises "route=A2" and "route: A2" say the same as "A2".
    game = make_game("multi-issue")
    action = game.vocabulary.parse(text)
    assert action is not None, text
    assert action.terms == {"route": "R1", "fare": "F2", "frequency": "Q1", "subsidy": "S1"}


@pytest.mark.parametrize(
    "text",
    ["[PROPOSE R1 R2 F2 Q1 S1]", "[PROPOSE fare: R1 F2 Q1 S1 X9]", "[PROPOSE route: route:]"],
)
def test_a_package_that_names_an_unknown_option_or_an_issue_twice_is_unreadable(
    text: str,
) -> None:
    assert make_game("multi-issue").vocabulary.parse(text) is None


# -- what a role may see stays what it remembers ---------------------------------------------


def _caucus_game() -> Any:
    """mediated-balloon where the buyer never sees the mediator's suggestions (they are a
    caucus with the seller)."""
    from haggler_mediation.game import MediatedBargainingGame

    from haggler.games import BALLOON, BargainingRules

    class Caucus(MediatedBargainingGame):
        def may_see(self, role: str, message: Any) -> bool:
            return not (role == "buyer" and message.speaker == "mediator")

    return Caucus(BargainingRules.model_validate(BALLOON.model_dump()), name="caucus-balloon")


@pytest.mark.usefixtures("example_plugins")
async def test_a_role_remembers_only_what_the_game_let_it_see() -> None:
    from haggler.games.remembered import remembered_game

    game = _caucus_game()
    players = {
        role: make_player(game.default_players[role], role, seat=game.seat(role))
        for role in game.roles
    }
    result = await play_episode(game, players)
    assert any(m.speaker == "mediator" for m in result.public)
    content, turns = remembered_game(result, "buyer", game)
    assert "SUGGEST" not in content and "mediator:" not in content
    assert len(turns) == sum(m.speaker != "mediator" for m in result.public)
    seller_content, seller_turns = remembered_game(result, "seller", game)
    assert "SUGGEST" in seller_content and len(seller_turns) == len(result.public)


@pytest.mark.usefixtures("example_plugins")
async def test_self_play_keeps_hidden_messages_out_of_a_coached_role_s_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import haggler
    from haggler.games.registry import GAMES
    from haggler.store import Store

    monkeypatch.setitem(GAMES._factories, "caucus-balloon", lambda **rules: _caucus_game())
    spec = {
        "game": "caucus-balloon",
        "coached": "buyer",
        "critic": "rule",
        "rounds": 2,
        "lineages": 1,
        "feedback": ["ai"],
    }
    with Store(tmp_path / "h.db") as store:
        await haggler.selfplay(spec, store=store)
    with sqlite3.connect(tmp_path / "h.db") as db:
        texts = [row[0] for row in db.execute("SELECT content FROM memory_items")]
    assert texts and any("buyer (you):" in text for text in texts)
    assert not any("SUGGEST" in text for text in texts)


def test_a_role_that_raises_is_one_line_from_play_and_a_failed_match_in_a_tournament(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(f'roles:\n  buyer: {{model: "{__name__}:raising_buyer"}}\n')
    db = str(tmp_path / "h.db")
    result = CliRunner().invoke(app, ["play", str(spec), "--db", db])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "the buyer's player (raising) raised RuntimeError: my bug" in result.output
    tour = tmp_path / "t.yaml"
    tour.write_text(
        "name: t\nplayers:\n"
        '  - {name: a, model: "rule:linear"}\n  - {name: b, model: "rule:boulware"}\n'
        f'games: [{{game: balloon, roles: {{buyer: "{__name__}:raising_buyer"}}}}]\n'
    )
    result = CliRunner().invoke(app, ["tournament", str(tour), "--db", db])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert "failed" in result.output


class _Raising(Player):
    def __init__(self, role: str) -> None:
        self.role, self.label = role, "raising"

    async def respond(self, view: RoleView) -> Reply:
        raise RuntimeError("my bug")


def raising_buyer(role: str) -> Player:
    return _Raising(role)


async def test_check_role_says_in_an_assertion_that_the_role_raised() -> None:
    # check_role's verdicts are AssertionErrors with a message (its docstring's promise).
    with pytest.raises(AssertionError, match=r"the buyer's player \(raising\) raised RuntimeError"):
        await check_role(raising_buyer, make_game("balloon"), roles=["buyer"], episodes=1)


@pytest.mark.usefixtures("example_plugins")
async def test_a_fixed_mediator_is_listed_after_every_rated_player(tmp_path: Path) -> None:
    # The mediator is counted, not rated: its prior ordinal (0) must not rank it above rated
    # players whose ordinal fell below 0.
    from haggler.evals.leaderboard import leaderboard
    from haggler.store import Store
    from haggler.tournament import run_tournament
    from haggler.tournament.spec import check_tournament_spec

    spec = check_tournament_spec(
        {
            "name": "mediated",
            "players": [
                {"name": "firm", "model": "rule:boulware"},
                {"name": "listener", "model": "rule:toward-mediator"},
                {"name": "lin", "model": "rule:linear"},
            ],
            "games": [
                {"game": "mediated-balloon", "roles": {"mediator": "role:split-the-difference"}}
            ],
            "repetitions": 2,
        }
    )
    with Store(tmp_path / "h.db") as store:
        await run_tournament(spec, store=store)
        rows = leaderboard(store, "tour-mediated")
    assert [row.player for row in rows][-1] == "split-the-difference"
    assert min(row.ordinal for row in rows[:-1]) < 0, "the case this test is about"


def test_an_option_labelled_minimum_is_refused_in_one_line(tmp_path: Path) -> None:
    # Its score and the party's minimum would share one private value of the brief: the rule
    # party would score the option at its minimum.
    import yaml

    from haggler.games.multi_issue import BUS_ROUTE

    rules = BUS_ROUTE.model_dump()
    rules["issues"]["fare"]["minimum"] = rules["issues"]["fare"].pop("F1")
    for party in rules["parties"]:
        party["scores"]["fare"]["minimum"] = party["scores"]["fare"].pop("F1")
    spec = tmp_path / "m.yaml"
    spec.write_text(yaml.safe_dump({"game": "multi-issue", "rules": rules}))
    result = CliRunner().invoke(app, ["play", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2, result.output
    assert "an option cannot be labelled 'minimum'" in result.output


@pytest.mark.parametrize(
    ("source", "said"),
    [("def f(:\n", "SyntaxError"), ("raise RuntimeError('import boom')\n", "import boom")],
)
def test_a_module_that_fails_as_it_is_imported_is_one_line(
    source: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "brokenmod.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "brokenmod", raising=False)
    spec = tmp_path / "p.yaml"
    spec.write_text('roles:\n  seller: "brokenmod:seller"\n')
    result = CliRunner().invoke(app, ["play", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2, result.output
    assert "brokenmod failed as it was imported" in result.output and said in result.output
    assert "Traceback" not in result.output


def test_a_tournament_whose_casts_explode_is_refused_before_it_is_laid_out() -> None:
    # Six parties from twelve players in every order is 665,280 casts; five repetitions make
    # 3.3 million matches. Refused at once, not after filling memory with them.
    from haggler.errors import SpecError
    from haggler.games.multi_issue import BUS_ROUTE
    from haggler.tournament.spec import check_tournament_spec

    rules = BUS_ROUTE.model_dump()
    template = rules["parties"][0]
    rules["parties"] = [{**template, "name": f"p{i}"} for i in range(6)]
    spec = {
        "name": "huge",
        "players": [{"name": f"r{i}", "model": "rule:linear"} for i in range(12)],
        "games": [{"game": "multi-issue", "rules": rules}],
        "repetitions": 5,
    }
    with pytest.raises(SpecError) as caught:
        check_tournament_spec(spec, source="t.yaml")
    assert caught.value.field == "games.0"
    assert "makes 3,326,400 matches" in str(caught.value)
