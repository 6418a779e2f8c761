"""What rule-based negotiators read in the games they remember: a rival's stated limit.

The reading rules (haggler.agents.recollection) on paraphrases, spoken prices and negations;
what a recollection yields (only the rival's lines of remembered games, newest limit first);
and the effect on a `RuleNegotiator`: its walk-away price moves to the remembered limit, read
each turn from what its memory recalls, so that forgetting the game undoes it.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haggler.agents.actions import Action, ActionKind
from haggler.agents.base import PublicMessage, RoleMemory, RoleView
from haggler.agents.phrasing import _TEMPLATES, sentence
from haggler.agents.recollection import RivalLimit, read_limits, remembered_limit
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.games.base import Game
from haggler.games.registry import make_game
from haggler.memory.transcript import render_transcript


def readings(text: str, speaker: str) -> list[tuple[float, bool]]:
    return [(s.value, s.within) for s in read_limits(text, speaker)]


# -- the reading rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my budget is $14", [(14, True)]),
        ("My budget's $14.", [(14, True)]),
        ("Between us, my budget is $17. I could pay $12 for it. [OFFER $12]", [(17, True)]),
        ("I can't go above fourteen dollars", [(14, True)]),
        ("I can\u2019t go above $14", [(14, True)]),  # a typographic apostrophe
        ("Honestly, I can't pay more than $13.50.", [(13.5, True)]),
        ("I'd never pay more than 14 bucks", [(14, True)]),
        ("The most I can pay is $15.50", [(15.5, True)]),
        ("I can go up to 14 dollars", [(14, True)]),
        ("I only have $14 on me", [(14, True)]),
        ("I have a budget of fifteen dollars", [(15, True)]),
        ("$14 is my limit", [(14, True)]),
        ("$14 tops", [(14, True)]),
        ("$14 and not a cent more", [(14, True)]),
        ("I'm not paying more, $14 is all I have", [(14, True)]),
        ("I could never pay $20", [(20, False)]),
        ("$20 is way too much for me", [(20, False)]),
        ("No way I'd pay $19", [(19, False)]),
        ("$19 is over my budget", [(19, False)]),
    ],
)
def test_a_buyer_states_its_ceiling_in_many_words(text: str, expected: list) -> None:
    assert readings(text, "buyer") == expected


@pytest.mark.parametrize(
    "text",
    [
        "my budget is not $14",
        "my budget isn't $14",
        "$14 is not my limit",
        "I never said my budget was $14",
        "It's not that I can't go above $14",
        "If my budget were $14 I would buy it",
        "Is my budget $14?",
        "Is $14 my limit?",
        "my friend's budget is $14",
        "I can go above $14",
        "I can afford $14",  # what it can pay, not the most it can
    ],
)
def test_negations_questions_and_suppositions_are_not_limits(text: str) -> None:
    assert readings(text, "buyer") == []


def test_a_clause_ends_at_a_comma_so_what_follows_is_read_on_its_own() -> None:
    assert readings("No, my budget is $14", "buyer") == [(14, True)]
    assert readings("Sure, if my budget were $14 I'd buy", "buyer") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I can't go below $12", [(12, True)]),
        ("My floor is twelve dollars.", [(12, True)]),
        ("The lowest I can go is $12.50", [(12.5, True)]),
        ("I won't take less than $13", [(13, True)]),
        ("Not a penny under $12", [(12, True)]),
        ("$12 is my bottom line", [(12, True)]),
        ("I could never sell it for $10", [(10, False)]),
        ("$11 is too low", [(11, False)]),
        ("My floor is not $12", []),
        ("I can't go that low, but I could do $15.", []),
        ("My best price right now is $15.", []),
    ],
)
def test_a_seller_states_its_floor(text: str, expected: list) -> None:
    assert readings(text, "seller") == expected


def test_what_is_read_depends_on_who_says_it() -> None:
    # A buyer's budget is no seller's floor, and a seller's floor no buyer's budget.
    assert readings("my budget is $14", "seller") == []
    assert readings("I can't go below $12", "buyer") == []
    assert readings("my budget is $14", "critic") == []
    # A role-neutral cue reads as the speaker's own side: a ceiling or a floor.
    assert readings("my limit is $14", "buyer") == [(14, True)]
    assert readings("my limit is $14", "seller") == [(14, True)]


def test_the_rule_negotiators_own_sentences_state_no_limit() -> None:
    # Rule-based players never state a limit, so self-play among them learns as it did
    # before remembered limits existed (README's offline table holds number for number).
    rng = random.Random(0)
    for (role, kind), templates in _TEMPLATES.items():
        for _ in range(4 * len(templates)):
            for price in (10.5, 12, 13.5, 14, 17.25, 19.5, 1250):
                for plain in (False, True):
                    text = sentence(role, kind, price, "balloon", rng, plain)
                    assert read_limits(text, role) == [], text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_reads_without_error(text: str) -> None:
    for speaker in ("buyer", "seller"):
        for statement in read_limits(text, speaker):
            assert 0 <= statement.start < statement.end <= len(text)


# -- reading a recollection ------------------------------------------------------------------


def game(lines: list[tuple[str, str]], me: str) -> str:
    return render_transcript(lines, me, "deal at $15")


def history(*pieces: str) -> str:
    return "\n\n".join(pieces)


def test_only_the_rivals_lines_in_remembered_games_count() -> None:
    remembered = history(
        "Round 1, your game:\n"
        + game(
            [("seller", "I can't go below $12. [OFFER $18]"), ("buyer", "My budget is $14.")],
            "seller",
        ),
        "Your coach's advice after round 1:\nThe buyer said: my budget is $5.",
        "Note: buyer: my budget is $6.",
        "Round 2, your game (summary): the buyer said my budget is $7.",
    )
    advice = ("The buyer said: my budget is $5.",)
    assert remembered_limit(remembered, "seller", advice) == RivalLimit(
        "buyer", 14.0, None, "My budget is $14."
    )
    # The seller's own floor is what a buyer who played it would learn.
    mirrored = history(
        "Round 1, your game:\n"
        + game([("seller", "I can't go below $12."), ("buyer", "My budget is $14.")], "buyer")
    )
    limit = remembered_limit(mirrored, "buyer")
    assert limit is not None and (limit.rival, limit.value) == ("seller", 12.0)


def test_a_coach_cannot_pose_as_a_remembered_game() -> None:
    forged = "Fine.\n\nRound 9, your game:\nbuyer: My budget is $3.\nResult: deal at $3."
    remembered = history(
        "Round 1, your game:\n" + game([("buyer", "How about $11?")], "seller"),
        "Your coach's advice after round 1:\n" + forged,
    )
    assert remembered_limit(remembered, "seller", (forged,)) is None


def test_the_newest_limit_wins_and_every_never_bounds_it() -> None:
    remembered = history(
        "Round 1, your game:\n" + game([("buyer", "My budget is $14.")], "seller"),
        "Round 2, your game:\n" + game([("buyer", "I could never pay $19.")], "seller"),
        "Round 3, your game:\n" + game([("buyer", "I can't pay more than $16.")], "seller"),
        "Round 4, your game:\n" + game([("buyer", "$18 is too much for me.")], "seller"),
    )
    limit = remembered_limit(remembered, "seller")
    assert limit is not None and (limit.value, limit.beyond) == (16.0, 18.0)
    assert remembered_limit("", "seller") is None
    assert remembered_limit(remembered, "critic") is None


# -- the effect on a rule-based negotiator ---------------------------------------------------

BALLOON = make_game("balloon", {})


def view(
    role: str, memory: RoleMemory | None, standing: float, turn: int, game: Game = BALLOON
) -> RoleView:
    """`role`'s view of `game` at `turn`, the rival's latest offer `standing`."""
    rival = "buyer" if role == "seller" else "seller"
    offer = PublicMessage(rival, f"[OFFER ${standing:g}]", Action(ActionKind.OFFER, standing))
    return RoleView(
        role=role,
        brief=game.brief(role),
        public=(*game.opening(), offer),
        facts=game.facts,
        turn=turn,
        max_turns=game.max_turns,
        memory=memory,
    )


def walk_away_price(
    negotiator: RuleNegotiator, memory: RoleMemory | None, game: Game = BALLOON
) -> float | None:
    """The worst price `negotiator` takes on its last turn, found by offering every price
    (None if it takes none)."""
    role = negotiator.role
    prices = [10 + 0.25 * k for k in range(1, 40)]
    last = game.max_turns - (2 if role == "seller" else 1)
    taken = [
        p
        for p in prices
        if negotiator.decide(view(role, memory, p, last, game)).kind is ActionKind.ACCEPT
    ]
    if not taken:
        return None
    return min(taken) if role == "seller" else max(taken)


def remembering(line: str, rival: str, me: str) -> RoleMemory:
    return RoleMemory(history="Round 1, your game:\n" + game([(rival, line)], me))


@pytest.mark.parametrize("tactic", ["linear", "boulware", "conceder", "tit-for-tat"])
def test_a_seller_walks_away_at_the_budget_it_remembers(tactic: str) -> None:
    seller = RuleNegotiator("seller", TACTICS.get(tactic)(), seed=3)
    fresh = walk_away_price(seller, None)
    assert fresh not in (16.0, 17.0)
    assert walk_away_price(seller, remembering("My budget is $17.", "buyer", "seller")) == 17.0
    # Rounded down to its price grid: a price such buyers can pay.
    assert walk_away_price(seller, remembering("My budget is $16.30.", "buyer", "seller")) == 16.0
    # A budget below its own reserve brings it down: as far as a deal can go, never below
    # its cost.
    assert walk_away_price(seller, remembering("My budget is $11.", "buyer", "seller")) == 11.0
    assert walk_away_price(seller, remembering("My budget is $5.", "buyer", "seller")) == 10.5
    dear = make_game("balloon", {"seller_cost": 12})
    assert (
        walk_away_price(seller, remembering("My budget is $11.", "buyer", "seller"), dear) == 12.5
    )
    # "Never $12": it will not insist on $12 or more.
    assert fresh >= 12.0
    capped = walk_away_price(seller, remembering("I could never pay $12.", "buyer", "seller"))
    assert capped == 11.5
    # Forgotten (the game gone from what it recalls): back to what it was.
    assert walk_away_price(seller, RoleMemory()) == fresh
    # Advice-only learners ignore it.
    plain = RuleNegotiator("seller", TACTICS.get(tactic)(), seed=3, remembered_limits=False)
    assert walk_away_price(plain, remembering("My budget is $17.", "buyer", "seller")) == fresh


def test_a_buyer_pays_no_more_than_the_floor_it_remembers() -> None:
    buyer = RuleNegotiator("buyer", TACTICS.get("linear")(), seed=3)
    fresh = walk_away_price(buyer, None)
    assert walk_away_price(buyer, remembering("I can't go below $12.", "seller", "buyer")) == 12.0
    assert walk_away_price(buyer, remembering("My floor is $12.20.", "seller", "buyer")) == 12.5
    assert walk_away_price(buyer, RoleMemory()) == fresh
    # Its own budget still binds.
    tight = make_game("balloon", {"buyer_budget": 13})
    assert (
        walk_away_price(buyer, remembering("I can't go below $16.", "seller", "buyer"), tight)
        == 13.0
    )
    # "Never $18": it offers more than that when it has to.
    assert fresh < 18.5
    assert (
        walk_away_price(buyer, remembering("I could never sell it for $18.", "seller", "buyer"))
        == 18.5
    )


def test_remembered_limits_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="remembered_limits must be true or false"):
        RuleNegotiator("seller", TACTICS.get("linear")(), remembered_limits="yes")  # type: ignore[arg-type]
