"""How rule-based negotiators read advice: meaning rather than phrases.

The reader (haggler.agents.advice) turns sentences into moves of four levers. These tests pin
what it must understand — paraphrase, negation, hedges, conditions, mixed advice, advice it
cannot use — and what the levers do to a negotiator's play. The labelled sets are scored in
test_advice_labels.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from haggler.agents.actions import Action, ActionKind
from haggler.agents.advice import (
    Adjustment,
    FirstConcession,
    explain_advice,
    read_advice,
)
from haggler.agents.advice_reader import read_sentence
from haggler.agents.base import PublicMessage, RoleMemory, RoleView
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS, Position
from haggler.games.base import Game
from haggler.games.registry import make_game

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def strengths(text: str, role: str = "seller") -> dict[str, float]:
    return read_advice([text], role).strengths


def direction(text: str, lever: str, role: str = "seller") -> int:
    value = strengths(text, role).get(lever, 0.0)
    return (value > 0) - (value < 0)


# --- paraphrase: the issue's sentences, and others with the same meaning -----------------------


@pytest.mark.parametrize(
    ("text", "role", "lever", "way"),
    [
        ("Lower your price more gradually.", "seller", "firmness", 1),
        ("Insist on more money.", "seller", "ambition", 1),
        ("Concede in smaller steps.", "seller", "firmness", 1),
        ("Trim your price in smaller amounts each time.", "seller", "firmness", 1),
        ("Raise your offer in tiny increments.", "buyer", "firmness", 1),
        ("You caved too fast.", "seller", "firmness", 1),
        ("Come down faster.", "seller", "firmness", -1),
        ("Make bigger concessions each turn.", "buyer", "firmness", -1),
        ("Set your sights higher.", "seller", "ambition", 1),
        ("Pay less next time.", "buyer", "ambition", 1),
        ("Accept a lower final price.", "seller", "ambition", -1),
        ("Be willing to pay a bit more.", "buyer", "ambition", -1),
        ("Anchor higher.", "seller", "opening", 1),
        ("Start closer to the seller's price.", "buyer", "opening", -1),
        ("Make the buyer move first.", "seller", "firmness", 1),
        ("Near the end, take what you can get.", "seller", "deadline", 1),
    ],
)
def test_paraphrases_move_the_lever_their_meaning_names(
    text: str, role: str, lever: str, way: int
) -> None:
    reading = read_sentence(text, role)
    assert direction(text, lever, role) == way, reading.explain()
    # ...and nothing else.
    assert set(reading.effects) == {lever}, reading.explain()


def test_inflections_are_folded_onto_one_concept() -> None:
    for text in ("Concede slowly.", "Conceding slowly pays.", "Make slower concessions."):
        assert direction(text, "firmness") == 1, text
    for text in ("Be greedy.", "Be greedier.", "Show more ambition."):
        assert direction(text, "ambition") == 1, text


# --- negation ---------------------------------------------------------------------------------

# Advice with a clear direction, each read un-negated and negated: a negation is never read
# the way its advice points (the issue: "don't hold firm ..." made the seller firmer).
BASES = [
    "concede quickly", "hold firm", "be patient", "be flexible", "compromise", "aim higher",
    "open higher", "set a higher walk-away price", "lower your price gradually",
    "insist on more money", "give ground slowly", "rush", "cave in", "give in", "be greedy",
    "settle for less", "accept a lower price", "meet the buyer halfway",
    "concede in smaller steps", "make big concessions", "drop your price fast", "be stubborn",
    "hold out", "close the deal", "walk away", "lose the deal", "start high", "be modest",
    "take your time", "make the buyer move first", "raise your target",
    "lower your expectations", "sell cheaply", "hurry", "give away much", "concede more",
    "be more flexible near the end", "hold firm near the end", "push harder", "ask for more",
    "demand a better price", "expect less", "be tougher", "soften your stance", "budge",
    "yield", "back down", "split the difference", "go below your floor", "undercut yourself",
    "keep your price high", "stick to your guns", "concede late", "move up quickly",
    "raise your offer fast", "pay more", "spend less", "pay the asking price",
    "accept the first offer", "be bold in your opening",
]  # fmt: skip
NEGATIONS = ["Don't ", "Never ", "Do not ", "You shouldn't ", "There's no need to ", "Avoid trying to "]


@pytest.mark.parametrize("role", ["seller", "buyer"])
def test_no_negation_is_read_the_way_its_advice_points(role: str) -> None:
    backwards = []
    read_something = 0
    for base in BASES:
        plain = strengths(base.capitalize() + ".", role)
        read_something += bool(plain)
        for negation in NEGATIONS:
            negated = strengths(f"{negation}{base}.", role)
            for lever, value in plain.items():
                if negated.get(lever, 0.0) * value > 0:
                    backwards.append(f"{negation}{base}: {plain} -> {negated}")
    assert backwards == []
    assert read_something >= len(BASES) - 3  # the check is not vacuous


def test_the_issues_negation_makes_the_seller_yield_at_the_end_not_firmer() -> None:
    text = "Don't hold firm when the buyer is about to leave."
    adjustment = read_advice([text], "seller")
    assert adjustment.firmness == 1.0 and adjustment.deadline > 0, adjustment.explain()
    assert "negated" in adjustment.explain()


@pytest.mark.parametrize(
    ("text", "lever", "way"),
    [
        ("Don't concede so quickly.", "firmness", 1),
        ("Don't be so stubborn.", "firmness", -1),
        ("Stop giving in so easily.", "firmness", 1),
        ("Don't settle for so little.", "ambition", 1),
        ("There's no need to be so greedy.", "ambition", -1),
        ("Don't be afraid to hold firm.", "firmness", 1),  # two negations cancel
        ("Don't hesitate to make larger concessions.", "firmness", -1),
        ("Don't refuse to compromise.", "firmness", -1),
        ("Avoid making concessions early on.", "firmness", 1),
    ],
)
def test_negations_flip_what_they_scope(text: str, lever: str, way: int) -> None:
    assert direction(text, lever) == way, read_sentence(text, "seller").explain()


def test_a_negated_increase_means_keep_it_where_it_is() -> None:
    for text in (
        "Don't aim any higher than last time.",
        "No need to push any harder.",
        "Don't lower your walk-away price.",
    ):
        reading = read_sentence(text, "seller")
        assert reading.effects == {}, reading.explain()
        assert "keep" in reading.explain()


# --- hedges, intensifiers, conditions, mixed advice -------------------------------------------


def test_hedges_and_diminishers_halve_a_sentence_and_intensifiers_raise_it() -> None:
    plain = strengths("Concede more slowly.")["firmness"]
    assert plain == 1.0
    assert strengths("Maybe concede more slowly.")["firmness"] == 0.5
    assert strengths("You might consider conceding more slowly.")["firmness"] == 0.5
    assert strengths("It wouldn't hurt to concede more slowly.")["firmness"] == 0.5
    assert strengths("Concede a little more slowly.")["firmness"] == 0.5
    assert strengths("Concede much more slowly.")["firmness"] == 1.5


def test_a_condition_about_the_end_moves_only_the_deadline_lever() -> None:
    for text in (
        "When the buyer is about to leave, give a little ground.",
        "If time is running out, accept a slightly lower price.",
        "In the final turns, be more flexible.",
    ):
        reading = read_sentence(text, "seller")
        assert set(reading.effects) == {"deadline"} and reading.effects["deadline"] > 0, (
            reading.explain()
        )
    # "In the closing turns, stand firm": hold out even then.
    assert direction("In the closing turns, stand firm.", "deadline") == -1
    # "Unless time is nearly up, hold your ground": firm, but yield at the very end.
    both = strengths("Unless time is nearly up, hold your ground.")
    assert both["firmness"] > 0 and both["deadline"] > 0


def test_other_conditions_count_half_and_their_own_words_are_not_advice() -> None:
    reading = read_sentence("When the buyer pushes, hold firm.", "seller")
    assert reading.effects == {"firmness": 0.5}, reading.explain()
    assert "not tracked" in reading.explain()
    # The condition's words ("the buyer won't budge") say nothing about the player's firmness.
    assert strengths("If the buyer won't budge, lower your walk-away price a little.") == {
        "ambition": -0.25  # half for the condition, half for "a little"
    }


def test_mixed_advice_moves_each_lever_it_names() -> None:
    assert strengths("Open higher and come down in smaller steps.") == {
        "firmness": 1.0,
        "opening": 1.0,
    }
    assert strengths("Be patient, but lower your expectations a little.") == {
        "firmness": 1.0,
        "ambition": -0.5,
    }
    assert strengths("Concede faster but keep your walk-away where it is.") == {"firmness": -1.0}


def test_cues_that_agree_in_one_sentence_count_once() -> None:
    # Three ways of saying "be firmer" in one sentence are one piece of advice.
    text = "You conceded more than the buyer did; hold firm and make the buyer move first."
    assert strengths(text) == {"firmness": 1.0}


# --- advice it cannot use ---------------------------------------------------------------------


def test_advice_it_cannot_use_is_ignored_and_says_so() -> None:
    for text in (
        "Be polite to the buyer.",
        "End every message with one clear action tag so your moves count.",
        "Nice game. Try to do better than last round.",
        "Don't mention your costs.",
    ):
        adjustment = read_advice([text], "seller")
        assert adjustment == Adjustment(), adjustment.explain()
        assert "ignored" in adjustment.explain()


def test_what_the_rival_did_is_an_observation_not_advice() -> None:
    reading = read_sentence("The buyer conceded quickly and held firm at the end.", "seller")
    assert reading.effects == {}
    assert "about the buyer" in reading.explain()


def test_aim_higher_reads_both_ways_for_a_buyer_and_is_not_taken() -> None:
    reading = read_sentence("Aim higher next time.", "buyer")
    assert reading.effects == {}
    assert "both ways" in reading.explain()


def test_only_sellers_and_buyers_read_advice() -> None:
    with pytest.raises(ValueError, match="seller or a buyer"):
        read_advice(["Hold firm."], "moderator")


def test_the_explanation_names_each_sentence_and_its_levers() -> None:
    text = explain_advice(
        ["1. Maybe concede more slowly.\n2. Don't settle for so little.\n3. Smile."], "seller"
    )
    lines = text.splitlines()
    assert lines[0].startswith("'Maybe concede more slowly.': firmness +0.50")
    assert any("hedged" in line for line in lines)
    assert any("settle for so little" in line and "ambition +1.00" in line for line in lines)
    assert any("negated by 'not'" in line for line in lines)
    assert "'Smile.': ignored, no tactic lever in it" in lines
    assert lines[-1].startswith("=> firmness x1.22, ambition +0.08")


def test_hostile_text_is_read_without_error() -> None:
    for text in ("", "\x00\x1b[31m", "not " * 500, "§end §hedge", "don't " * 50 + "hold firm"):
        read_advice([text], "seller").explain()


# --- accumulation ------------------------------------------------------------------------------


def test_opposite_advice_undoes_exactly() -> None:
    firm = read_advice(["Hold firm.", "Set a higher walk-away price."], "seller")
    undone = read_advice(
        ["Hold firm.", "Set a higher walk-away price.", "Be more flexible."], "seller"
    )
    assert firm.firmness == 1.5 and firm.ambition == pytest.approx(0.08)
    assert undone.firmness == 1.0 and undone.ambition == pytest.approx(0.0)


# --- the levers in play ------------------------------------------------------------------------


@pytest.fixture
def balloon() -> Game:
    return make_game("balloon", {})


def test_the_opening_lever_scales_the_first_concession_only() -> None:
    linear = TACTICS.get("linear")()
    first = Position(opening=20.0, reserve=12.0, progress=0.1, own_offers=(20.0,), rival_offers=())
    later = Position(20.0, 12.0, 0.5, own_offers=(20.0, 19.0), rival_offers=(10.0, 11.0))
    firmer = FirstConcession(linear, 0.5)
    assert 20.0 - firmer.next_offer(first) == pytest.approx((20.0 - linear.next_offer(first)) / 2)
    assert firmer.next_offer(later) == linear.next_offer(later)
    # "Open higher" reaches a negotiator as exactly that.
    tactic = read_advice(["Open higher."], "seller").tactic(linear)
    assert 20.0 - tactic.next_offer(first) == pytest.approx(0.7 * (20.0 - linear.next_offer(first)))


def _last_turn(game: Game, standing: float, memory: RoleMemory | None) -> Action:
    """A seller's decision at its last turn, the buyer's standing offer at `standing`."""
    public = list(game.opening())
    price_high, price_low = 19.5, 10.5
    for k in range(9):
        public.append(PublicMessage("seller", "", Action(ActionKind.OFFER, price_high - k * 0.5)))
        buyer = standing if k == 8 else price_low + k * 0.25
        public.append(PublicMessage("buyer", "", Action(ActionKind.OFFER, buyer)))
    seller = RuleNegotiator("seller", TACTICS.get("linear")(), jitter=0.0, reserve_share=0.5)
    view = RoleView(
        role="seller",
        brief=game.brief("seller"),
        public=tuple(public),
        facts=game.facts,
        turn=18,
        max_turns=game.max_turns,
        memory=memory,
    )
    return seller.decide(view)


def test_the_deadline_lever_takes_a_deal_at_the_end_rather_than_walk_away(balloon: Game) -> None:
    # Its walk-away price is $15; the buyer stands at $14.50 when the seller's last turn comes.
    assert _last_turn(balloon, 14.5, None).kind is ActionKind.WALK_AWAY
    told = RoleMemory(advice=("Near the end, don't let a small gap kill the deal.",))
    assert _last_turn(balloon, 14.5, told) == Action(ActionKind.ACCEPT, 14.5)
    # ...and holding out at the end does the opposite.
    hold = RoleMemory(advice=("In the closing turns, stand firm.",))
    assert _last_turn(balloon, 15.0, None).kind is ActionKind.ACCEPT
    assert _last_turn(balloon, 15.0, hold).kind is ActionKind.WALK_AWAY


def test_the_human_suggestions_in_other_words_read_line_for_line_the_same() -> None:
    def lines(name: str) -> list[str]:
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]

    original, reworded = lines("human_feedback.txt"), lines("human_feedback_reworded.txt")
    assert len(original) == len(reworded) == 10
    moved = 0
    for first, second in zip(original, reworded, strict=True):
        assert strengths(first) == strengths(second), (first, second)
        moved += bool(strengths(first))
    assert moved >= 6
    # Other words: no two lines share a phrase of three words.
    for first, second in zip(original, reworded, strict=True):
        a, b = first.lower().split(), second.lower().split()
        shared = {tuple(a[i : i + 3]) for i in range(len(a) - 2)} & {
            tuple(b[i : i + 3]) for i in range(len(b) - 2)
        }
        assert not shared, (first, second)


def test_the_docs_explanation_example_is_what_it_prints() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "selfplay.md").read_text()
    block = docs.split("$ python benchmarks/advice_reading.py --explain ", 1)[1].split("```")[0]
    command, printed = block.split("\n", 1)
    text = command.split('"')[1]
    assert explain_advice([text], "seller") == printed.strip()
