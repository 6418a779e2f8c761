"""The bargaining game: its rules, how it rules on actions, its scores, briefs and conformance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from haggler.agents.actions import ACTION_HELP, Action, ActionKind, parse_action
from haggler.agents.base import Brief, PublicMessage
from haggler.agents.prices import find_prices
from haggler.errors import ConfigError, SpecError
from haggler.games.bargaining import BALLOON, DIAMOND, BargainingGame, BargainingRules
from haggler.games.base import Step, TurnState
from haggler.games.check import check_game
from haggler.games.outcome import Outcome
from haggler.games.registry import GAMES, make_game

OFFER, ACCEPT, REJECT, WALK = (
    ActionKind.OFFER,
    ActionKind.ACCEPT,
    ActionKind.REJECT,
    ActionKind.WALK_AWAY,
)
SECRETS = {"seller_cost": 8.37, "buyer_budget": 17.63}


def _prices(text: str) -> list[float]:
    return [m.value for m in find_prices(text)]


# --- rules ---------------------------------------------------------------------------------


def test_balloon_defaults_are_the_papers() -> None:
    game = make_game("balloon")
    assert isinstance(game, BargainingGame)
    assert game.name == "balloon"
    assert game.rules == BALLOON
    assert (BALLOON.item, BALLOON.seller_cost, BALLOON.seller_opening) == ("balloon", 8, 20)
    assert (BALLOON.buyer_opening, BALLOON.max_exchanges, BALLOON.buyer_budget) == (10, 10, None)
    assert game.max_turns == 20
    assert game.roles == ("seller", "buyer")


def test_diamond_defaults() -> None:
    game = make_game("diamond")
    assert game.name == "diamond"
    assert game.rules == DIAMOND
    r = DIAMOND
    assert (r.item, r.seller_cost, r.seller_opening, r.buyer_opening) == ("diamond", 50, 2000, 500)


def test_params_override_the_variants_defaults() -> None:
    game = make_game("diamond", {"max_exchanges": 3, "buyer_budget": 1500})
    assert game.max_turns == 6
    assert game.rules.seller_opening == 2000, "the diamond's own prices stay"
    assert game.rules.buyer_budget == 1500
    assert game.settings() == game.rules.model_dump()
    assert game.settings()["item"] == "diamond"


def test_registry_names_both_variants() -> None:
    assert {"balloon", "diamond"} <= set(GAMES.names())


def test_unknown_game_name_is_a_config_error_listing_known_games() -> None:
    with pytest.raises(ConfigError, match="unknown game 'chess'.*balloon, diamond"):
        make_game("chess")


@pytest.mark.parametrize(
    ("name", "params", "field", "words"),
    [
        (
            "balloon",
            {"buyer_opening": 20},
            "rules.buyer_opening",
            ["buyer_opening (20)", "seller_opening (20)"],
        ),
        ("balloon", {"buyer_opening": 25}, "rules.buyer_opening", ["buyer_opening (25)", "below"]),
        (
            "diamond",
            {"seller_opening": 400},
            "rules.buyer_opening",
            ["buyer_opening (500)", "seller_opening"],
        ),
        (
            "balloon",
            {"seller_cost": 20},
            "rules.seller_cost",
            ["seller_cost (20)", "seller_opening (20)"],
        ),
        ("balloon", {"seller_cost": 30}, "rules.seller_cost", ["seller_cost (30)", "never profit"]),
        ("balloon", {"max_exchanges": 0}, "rules.max_exchanges", ["greater than or equal to 1"]),
        ("balloon", {"max_exchanges": 1001}, "rules.max_exchanges", ["1000"]),
        ("balloon", {"max_exchanges": 2.5}, "rules.max_exchanges", ["integer"]),
        ("balloon", {"seller_cost": -1}, "rules.seller_cost", ["greater than or equal to 0"]),
        ("balloon", {"seller_opening": 0}, "rules.seller_opening", ["greater than 0"]),
        ("balloon", {"buyer_budget": 0}, "rules.buyer_budget", ["greater than 0"]),
        ("balloon", {"item": ""}, "rules.item", ["at least 1 character"]),
        ("balloon", {"colour": "red"}, "rules.colour", ["unknown field", "seller_cost"]),
        ("diamond", {"max_exchange": 5}, "rules.max_exchange", ["unknown field", "max_exchanges"]),
    ],
)
def test_bad_rules_are_a_spec_error_naming_the_field(
    name: str, params: dict[str, Any], field: str, words: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        make_game(name, params, source="spec.yaml")
    error = caught.value
    assert error.field == field
    assert error.source == "spec.yaml"
    message = str(error)
    assert message.startswith(f"spec.yaml: {field}: "), message
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"
    assert "Value error" not in message, "pydantic's prefix should be stripped"


def test_cross_field_errors_name_the_offending_field() -> None:
    with pytest.raises(SpecError) as caught:
        make_game("balloon", {"buyer_opening": 25})
    assert caught.value.field == "rules.buyer_opening"


@pytest.mark.parametrize("budget", [5, 10])
def test_a_budget_that_no_valid_deal_can_respect_is_refused(budget: float) -> None:
    with pytest.raises(SpecError, match="buyer_budget"):
        make_game("balloon", {"buyer_budget": budget})


def test_rules_are_frozen() -> None:
    with pytest.raises(ValidationError):
        BALLOON.seller_cost = 1  # type: ignore[misc]


def test_rules_validate_directly_too() -> None:
    with pytest.raises(ValidationError, match="buyer_opening"):
        BargainingRules(buyer_opening=30)
    assert BargainingRules(seller_cost=0, buyer_opening=0).buyer_opening == 0


# --- apply ---------------------------------------------------------------------------------


@pytest.fixture
def game() -> BargainingGame:
    return BargainingGame()


def test_table_starts_with_both_openings(game: BargainingGame) -> None:
    table = game.new_table()
    assert table.offers == {"seller": 20.0, "buyer": 10.0}
    assert game.new_table() is not table, "each episode gets its own table"


def test_offer_updates_the_speakers_standing_offer(game: BargainingGame) -> None:
    table = game.new_table()
    assert game.apply(table, "seller", Action(OFFER, 18.0)) == Step()
    assert table.offers == {"seller": 18.0, "buyer": 10.0}
    assert game.apply(table, "buyer", Action(OFFER, 12.5)) == Step()
    assert table.offers == {"seller": 18.0, "buyer": 12.5}


@pytest.mark.parametrize("price", [None, -1.0])
def test_offer_without_a_usable_price_asks_for_a_retry(game: BargainingGame, price: Any) -> None:
    table = game.new_table()
    step = game.apply(table, "buyer", Action(OFFER, price))
    assert step.outcome is None
    assert step.error is not None and "[OFFER $15]" in step.error
    assert table.offers["buyer"] == 10.0, "a refused offer leaves the table alone"


@pytest.mark.parametrize("price", [float("nan"), float("inf")])
def test_offer_with_a_non_finite_price_asks_for_a_retry(game: BargainingGame, price: float) -> None:
    table = game.new_table()
    step = game.apply(table, "buyer", Action(OFFER, price))
    assert step.error is not None
    assert table.offers["buyer"] == 10.0


def test_reject_changes_nothing(game: BargainingGame) -> None:
    table = game.new_table()
    game.apply(table, "seller", Action(OFFER, 17.0))
    assert game.apply(table, "buyer", Action(REJECT)) == Step()
    assert table.offers == {"seller": 17.0, "buyer": 10.0}


@pytest.mark.parametrize("role", ["seller", "buyer"])
def test_walk_away_ends_without_a_deal(game: BargainingGame, role: str) -> None:
    step = game.apply(game.new_table(), role, Action(WALK))
    assert step.error is None
    assert step.outcome == Outcome("no_deal", "walk_away", None, role)


def test_accept_without_a_price_takes_the_other_sides_latest_offer(game: BargainingGame) -> None:
    table = game.new_table()
    game.apply(table, "seller", Action(OFFER, 18.0))
    game.apply(table, "buyer", Action(OFFER, 12.0))
    game.apply(table, "seller", Action(OFFER, 16.0))
    step = game.apply(table, "buyer", Action(ACCEPT))
    assert step == Step(outcome=Outcome.deal(16.0, by="buyer"))

    table = game.new_table()
    game.apply(table, "buyer", Action(OFFER, 14.5))
    assert game.apply(table, "seller", Action(ACCEPT)).outcome == Outcome.deal(14.5, "seller")


def test_accept_with_the_same_price_within_half_a_cent(game: BargainingGame) -> None:
    table = game.new_table()
    game.apply(table, "seller", Action(OFFER, 15.0))
    step = game.apply(table, "buyer", Action(ACCEPT, 15.004))
    assert step.outcome == Outcome.deal(15.0, by="buyer"), "the deal is at the offered price"


@pytest.mark.parametrize("accepted", [14.0, 15.01, 16.0])
def test_accept_with_another_price_asks_for_a_retry_naming_the_standing_price(
    game: BargainingGame, accepted: float
) -> None:
    table = game.new_table()
    game.apply(table, "seller", Action(OFFER, 15.0))
    step = game.apply(table, "buyer", Action(ACCEPT, accepted))
    assert step.outcome is None
    assert step.error is not None
    assert "$15" in step.error and "seller" in step.error, step.error
    assert f"${accepted:g}" in step.error, step.error
    assert table.offers == {"seller": 15.0, "buyer": 10.0}


def test_accepting_ones_own_offer_is_refused(game: BargainingGame) -> None:
    table = game.new_table()
    game.apply(table, "seller", Action(OFFER, 16.0))
    step = game.apply(table, "seller", Action(ACCEPT, 16.0))
    assert step.outcome is None and step.error is not None
    assert "$10" in step.error, "the seller is told the buyer's standing price"


@pytest.mark.parametrize(
    ("role", "price"),
    [("seller", 10.0), ("buyer", 20.0)],
)
def test_accepting_an_opening_price_is_invalid(
    game: BargainingGame, role: str, price: float
) -> None:
    # Deals stand only strictly between the openings, as in the paper.
    step = game.apply(game.new_table(), role, Action(ACCEPT))
    assert step.error is None
    assert step.outcome == Outcome.invalid("price_out_of_range", by=role, price=price)
    step = game.apply(game.new_table(), role, Action(ACCEPT, price))
    assert step.outcome == Outcome.invalid("price_out_of_range", by=role, price=price)


@pytest.mark.parametrize("price", [25.0, 9.0, 0.0])
def test_accepting_an_offer_outside_the_openings_is_invalid(
    game: BargainingGame, price: float
) -> None:
    table = game.new_table()
    game.apply(table, "buyer", Action(OFFER, price))
    step = game.apply(table, "seller", Action(ACCEPT))
    assert step.outcome is not None and step.outcome.kind == "invalid"
    assert step.outcome.reason == "price_out_of_range" and step.outcome.price == price


@pytest.mark.parametrize("price", [10.01, 19.99])
def test_accepting_just_inside_the_openings_is_a_deal(game: BargainingGame, price: float) -> None:
    table = game.new_table()
    game.apply(table, "buyer", Action(OFFER, price))
    assert game.apply(table, "seller", Action(ACCEPT, price)).outcome == Outcome.deal(
        price, "seller"
    )


def test_turn_limit_is_no_deal(game: BargainingGame) -> None:
    assert game.at_turn_limit(game.new_table()) == Outcome.no_deal("turn_limit")


def test_turn_order(game: BargainingGame) -> None:
    # Read from the episode's state: the sides alternate, the seller first.
    assert game.first_speaker() == "seller"
    table = game.new_table()
    after = [game.next_speaker(TurnState(t, None, (), table)) for t in range(1, 5)]
    assert after == ["buyer", "seller", "buyer", "seller"]
    start = TurnState(0, None, (), table)
    assert game.turns_left("seller", start) == game.turns_left("buyer", start) == 10
    assert game.turns_left("buyer", TurnState(19, "seller", (), table)) == 1
    assert game.turns_left("seller", TurnState(19, "seller", (), table)) == 0


# --- scores and outcomes -------------------------------------------------------------------


def test_scores_of_a_deal() -> None:
    assert BargainingGame().score(Outcome.deal(15.0, "buyer")) == {"seller": 7.0, "buyer": 5.0}
    diamond = make_game("diamond")
    assert diamond.score(Outcome.deal(1200.0, "seller")) == {"seller": 1150.0, "buyer": 800.0}


def test_buyer_scores_against_its_budget_when_it_has_one() -> None:
    game = make_game("balloon", {"buyer_budget": 18})
    assert game.score(Outcome.deal(15.0, "buyer")) == {"seller": 7.0, "buyer": 3.0}


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.no_deal("walk_away", by="buyer"),
        Outcome.no_deal("turn_limit"),
        Outcome.invalid("price_out_of_range", by="seller", price=10.0),
        Outcome.invalid("unreadable", by="buyer"),
    ],
)
def test_no_deal_and_invalid_score_zero(outcome: Outcome) -> None:
    assert BargainingGame().score(outcome) == {"seller": 0.0, "buyer": 0.0}


def test_outcome_descriptions_and_dicts() -> None:
    assert Outcome.deal(15.5, "buyer").describe() == "deal at $15.50 (buyer accepted)"
    assert Outcome.no_deal("walk_away", "seller").describe() == "no deal: walk away by seller"
    assert Outcome.no_deal("turn_limit").describe() == "no deal: turn limit"
    invalid = Outcome.invalid("price_out_of_range", "seller", 10.0)
    assert invalid.describe() == "invalid: price out of range at $10 by seller"
    assert invalid.as_dict() == {
        "kind": "invalid",
        "reason": "price_out_of_range",
        "price": 10.0,
        "by": "seller",
    }
    assert Outcome.deal(15.0, "buyer").reason == "accepted"


# --- briefs, facts and the scripted opening -------------------------------------------------


def test_seller_brief_holds_its_cost_and_the_buyer_brief_never_does() -> None:
    game = BargainingGame()
    seller, buyer = game.brief("seller"), game.brief("buyer")
    assert seller.role == "seller" and buyer.role == "buyer"
    assert seller.private == {"cost": 8.0}
    assert 8.0 in _prices(seller.text)
    assert buyer.private == {}
    assert 8.0 not in _prices(buyer.text), buyer.text
    assert "cost" not in buyer.text.lower()
    assert "cannot pay" not in buyer.text, "the paper's buyer has no budget"


def test_briefs_state_the_game_and_the_action_tags() -> None:
    game = make_game("diamond")
    for role in game.roles:
        text = game.brief(role).text
        assert "diamond" in text
        assert {2000.0, 500.0} <= set(_prices(text)), text
        assert ACTION_HELP in text


def test_unusual_secrets_reach_only_their_owners_brief() -> None:
    game = make_game("balloon", SECRETS)
    seller, buyer = game.brief("seller"), game.brief("buyer")
    assert "$8.37" in seller.text and "17.63" not in seller.text
    assert "$17.63" in buyer.text and "8.37" not in buyer.text
    assert "cannot pay more than $17.63" in buyer.text
    assert seller.private == {"cost": 8.37}
    assert buyer.private == {"budget": 17.63}
    public = " ".join(str(v) for v in game.facts.values())
    public += " ".join(m.text for m in game.opening())
    assert "8.37" not in public and "17.63" not in public


def test_facts_are_public_prices_only() -> None:
    game = make_game("balloon", SECRETS)
    assert dict(game.facts) == {
        "item": "balloon",
        "seller_opening": 20.0,
        "buyer_opening": 10.0,
        "max_turns": 20,
    }


def test_unknown_role_has_no_brief() -> None:
    with pytest.raises(KeyError, match="moderator"):
        BargainingGame().brief("moderator")


@pytest.mark.parametrize("name", ["balloon", "diamond"])
def test_opening_is_the_scripted_ask_and_bid(name: str) -> None:
    game = make_game(name)
    ask, bid = game.opening()
    assert (ask.speaker, bid.speaker) == ("seller", "buyer")
    assert ask.scripted and bid.scripted
    assert ask.action == Action(OFFER, game.rules.seller_opening)
    assert bid.action == Action(OFFER, game.rules.buyer_opening)
    # The text says what the action says, so a reader (or a model) sees the same prices.
    assert parse_action(ask.text) == ask.action
    assert parse_action(bid.text) == bid.action


def test_large_prices_are_written_so_they_read_back() -> None:
    game = make_game(
        "balloon", {"seller_opening": 1_250_000, "buyer_opening": 1_000_000, "seller_cost": 10}
    )
    ask, _ = game.opening()
    assert parse_action(ask.text) == ask.action, ask.text
    assert 1_250_000 in _prices(game.brief("seller").text)


# --- conformance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("balloon", {}),
        ("balloon", SECRETS),
        ("balloon", {"buyer_budget": 15, "max_exchanges": 2}),
        ("balloon", {"seller_opening": 0.2, "buyer_opening": 0.1, "seller_cost": 0.03}),
        ("diamond", {"seller_cost": 77, "buyer_budget": 1234}),
    ],
)
def test_check_game_passes(name: str, params: dict[str, Any]) -> None:
    check_game(make_game(name, params), trials=50)


def test_check_game_passes_for_the_diamond() -> None:
    check_game(make_game("diamond"), trials=50)


def test_the_diamond_buyer_brief_really_holds_no_cost() -> None:
    # What check_game means to check, done with the price reader instead of substrings.
    buyer = make_game("diamond").brief("buyer")
    assert 50.0 not in _prices(buyer.text), buyer.text


class _Rigged(BargainingGame):
    """A bargaining game with the unusual secrets, for subclasses that break one rule."""

    def __init__(self) -> None:
        super().__init__(BargainingRules(**SECRETS))


class _LeakyBuyerBrief(_Rigged):
    def brief(self, role: str) -> Brief:
        brief = super().brief(role)
        if role == "buyer":
            return Brief("buyer", brief.text + " The seller paid $8.37 for it.", brief.private)
        return brief


class _LeakySellerBrief(_Rigged):
    def brief(self, role: str) -> Brief:
        brief = super().brief(role)
        if role == "seller":
            return Brief("seller", brief.text + " The buyer has $17.63.", brief.private)
        return brief


class _LeakyFacts(_Rigged):
    @property
    def facts(self) -> Mapping[str, Any]:
        return {**super().facts, "seller_cost": self.rules.seller_cost}


class _LeakyOpening(_Rigged):
    def opening(self) -> list[PublicMessage]:
        ask, bid = super().opening()
        return [ask, PublicMessage("buyer", bid.text + " My budget is $17.63.", bid.action, True)]


class _WrongBriefRole(_Rigged):
    def brief(self, role: str) -> Brief:
        brief = super().brief(role)
        return Brief("seller", brief.text, brief.private)


class _EmptyBrief(_Rigged):
    def brief(self, role: str) -> Brief:
        return Brief(role, "  ", {})


class _EndsAndRetries(_Rigged):
    def apply(self, table: Any, role: str, action: Action) -> Step:
        step = super().apply(table, role, action)
        if step.outcome is not None:
            return Step(outcome=step.outcome, error="try again")
        return step


class _ScoresOneRole(_Rigged):
    def score(self, outcome: Outcome) -> dict[str, float]:
        return {"seller": super().score(outcome)["seller"]}


class _NoTurns(_Rigged):
    @property
    def max_turns(self) -> int:
        return 0


class _StrangerOpens(_Rigged):
    def opening(self) -> list[PublicMessage]:
        return [PublicMessage("auctioneer", "Let's start. [OFFER $20]", None, True)]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (_LeakyBuyerBrief, r"seller's private cost \(8\.37\) appears in the brief of buyer"),
        (_LeakySellerBrief, r"buyer's private budget \(17\.63\) appears in the brief of seller"),
        (_LeakyFacts, r"seller's private cost is in the public facts"),
        (_LeakyOpening, r"buyer's private budget is in the opening"),
        (_WrongBriefRole, r"brief for 'buyer' says it is for 'seller'"),
        (_EmptyBrief, r"the brief of 'seller' is empty"),
        (_EndsAndRetries, r"both ends the game and asks for a retry"),
        (_ScoresOneRole, r"miss roles"),
        (_NoTurns, r"max_turns must be at least 1, got 0"),
        (_StrangerOpens, r"opening by unknown role 'auctioneer'"),
    ],
)
def test_check_game_catches_a_broken_game(broken: type[BargainingGame], message: str) -> None:
    game = broken()
    with pytest.raises(AssertionError, match=message):
        check_game(game, trials=50)
