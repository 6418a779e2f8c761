"""Reading prices and actions out of negotiators' messages, and the LLM moderator's verdicts."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from haggler.agents.actions import (
    ACTION_HELP,
    Action,
    ActionKind,
    format_action,
    has_tag,
    parse_action,
    parse_tag,
    read_free_text,
)
from haggler.agents.base import PublicMessage
from haggler.agents.moderator import LLMModerator, RuleModerator, Verdict, parse_verdict
from haggler.agents.prices import MAX_PRICE, find_prices, format_price, parse_price, words_to_number
from haggler.games.bargaining import BargainingGame
from haggler.llm.base import Backend, Completion, Message

OFFER, ACCEPT, REJECT, WALK = (
    ActionKind.OFFER,
    ActionKind.ACCEPT,
    ActionKind.REJECT,
    ActionKind.WALK_AWAY,
)


# --- single price mentions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "marked"),
    [
        ("$15", 15.0, True),
        ("$ 15", 15.0, True),
        ("15 dollars", 15.0, True),
        ("15 bucks", 15.0, True),
        ("fifteen", 15.0, False),
        ("fifteen dollars", 15.0, True),
        ("twenty-five", 25.0, False),
        ("twenty five dollars", 25.0, True),
        ("one hundred and twenty dollars", 120.0, True),
        ("two thousand dollars", 2000.0, True),
        ("15.50", 15.5, False),
        ("$15.50", 15.5, True),
        ("$.50", 0.5, True),
        ("$1,250", 1250.0, True),
        ("$2,000.50", 2000.5, True),
        ("1,250 dollars", 1250.0, True),
        ("$1,050,000", 1_050_000.0, True),
        ("USD 12", 12.0, True),
        ("12 USD", 12.0, True),
        ("usd12", 12.0, True),
    ],
)
def test_single_price_mention_is_read_with_its_value_and_marking(
    text: str, value: float, marked: bool
) -> None:
    mentions = find_prices(text)
    assert [(m.value, m.marked) for m in mentions] == [(value, marked)], text
    assert parse_price(text) == value
    # The span points at the mention itself.
    only = mentions[0]
    assert text[only.start : only.end].strip(), (text, only)


@pytest.mark.parametrize(
    "text",
    ["", "hello", "no one would pay that", "It is 15%", "version v2.0", "$", "$abc", "one"],
)
def test_text_without_a_price_has_none(text: str) -> None:
    assert find_prices(text) == [], text
    assert parse_price(text) is None


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("zero", 0.0),
        ("nineteen", 19.0),
        ("twenty-five", 25.0),
        ("Ninety Nine", 99.0),
        ("one hundred", 100.0),
        ("hundred", 100.0),
        ("one hundred and twenty-five", 125.0),
        ("two thousand five hundred", 2500.0),
        ("three thousand and one", 3001.0),
    ],
)
def test_words_to_number(words: str, value: float) -> None:
    assert words_to_number(words) == value


@pytest.mark.parametrize("words", ["", "  ", "fifteen apples", "dozen", "and"])
def test_words_to_number_refuses_what_is_not_a_number(words: str) -> None:
    assert words_to_number(words) is None


# --- several numbers in one message --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offer"),
    [
        ("I paid $8 for it, so $15 is fair", 15.0),
        ("You said $18, but I can do $15", 15.0),
        ("You said $18, but I can do $15. That's already a bargain.", 15.0),
        ("How about $14? You asked $18 earlier.", 14.0),
        ("I've had it 3 years, how about 14?", 14.0),
        ("had it 3 years, how about 14?", 14.0),
        ("I've had it for 3 years and I want $15 for it", 15.0),
        ("In 2 days the price goes up, but today 15 dollars", 15.0),
    ],
)
def test_offer_in_a_message_with_several_numbers(text: str, offer: float) -> None:
    action = parse_action(text)
    assert action == Action(OFFER, offer, source="text"), text


def test_bare_numbers_are_ignored_when_a_money_marked_one_exists() -> None:
    mentions = find_prices("We met 3 times and I have 2 kids, so $15 it is, or 16")
    assert [m.value for m in mentions] == [15.0]
    assert all(m.marked for m in mentions)


def test_bare_numbers_count_when_nothing_is_marked() -> None:
    mentions = find_prices("I've had it 3 years, how about 14?")
    assert [(m.value, m.marked) for m in mentions] == [(3.0, False), (14.0, False)]


def test_mentions_come_in_order_with_their_spans() -> None:
    text = "I paid $8 for it, so $15 is fair"
    mentions = find_prices(text)
    assert [text[m.start : m.end] for m in mentions] == ["$8", "$15"]
    assert mentions[0].end <= mentions[1].start


# --- action tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[OFFER $15]", Action(OFFER, 15.0)),
        ("[OFFER 15]", Action(OFFER, 15.0)),
        ("[ OFFER $15 ]", Action(OFFER, 15.0)),
        ("[offer fifteen dollars]", Action(OFFER, 15.0)),
        ("[OFFER twenty-five]", Action(OFFER, 25.0)),
        ("[OFFER $1,250.75]", Action(OFFER, 1250.75)),
        ("[OFFER USD 12]", Action(OFFER, 12.0)),
        ("[ACCEPT]", Action(ACCEPT, None)),
        ("[ACCEPT $15.50]", Action(ACCEPT, 15.5)),
        ("[accept fifteen]", Action(ACCEPT, 15.0)),
        ("[REJECT]", Action(REJECT)),
        ("[REJECT $12]", Action(REJECT)),
        ("[WALK AWAY]", Action(WALK)),
        ("[walk-away]", Action(WALK)),
        ("[Walk_Away]", Action(WALK)),
        ("[walkaway]", Action(WALK)),
    ],
)
def test_tag_is_read(text: str, expected: Action) -> None:
    assert has_tag(text)
    assert parse_tag(text) == expected
    assert parse_action(text) == expected
    assert parse_action(text).source == "tag"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[OFFER $15] no wait [OFFER $16]", Action(OFFER, 16.0)),
        ("[OFFER $15] fine then [ACCEPT]", Action(ACCEPT)),
        ("[ACCEPT] hmm, actually [REJECT]", Action(REJECT)),
        ("[REJECT] I'm done. [WALK AWAY]", Action(WALK)),
    ],
)
def test_last_tag_wins(text: str, expected: Action) -> None:
    assert parse_action(text) == expected


@pytest.mark.parametrize(
    "text", ["[OFFER]", "[offer  ]", "How about $15? [OFFER]", "[OFFER $15] then [OFFER]"]
)
def test_offer_tag_without_a_price_reads_as_nothing(text: str) -> None:
    # An unreadable tag is not rescued by the prose around it: the speaker is asked to fix it.
    assert has_tag(text)
    assert parse_tag(text) is None
    assert parse_action(text) is None


def test_tag_wins_over_free_text_cues_and_quoted_prices() -> None:
    assert parse_action("I'll walk away unless... [OFFER $15]") == Action(OFFER, 15.0)
    assert parse_action("You said $18. [OFFER $15]") == Action(OFFER, 15.0)
    assert parse_action("Deal! [REJECT]") == Action(REJECT)


def test_text_that_only_looks_like_a_tag_is_free_text() -> None:
    for text in ("[OFFERING $15]", "[OFFER $15"):
        assert not has_tag(text), text
        assert parse_action(text) == Action(OFFER, 15.0, source="text")


def test_action_help_names_every_tag_and_every_tag_in_it_parses() -> None:
    for tag, kind in [
        ("[OFFER $X]", OFFER),
        ("[ACCEPT $X]", ACCEPT),
        ("[REJECT]", REJECT),
        ("[WALK AWAY]", WALK),
    ]:
        assert tag in ACTION_HELP
        parsed = parse_action(tag.replace("$X", "$15"))
        assert parsed is not None and parsed.kind is kind, tag


# --- free text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Deal!", Action(ACCEPT, None, "text")),
        ("deal", Action(ACCEPT, None, "text")),
        ("I accept.", Action(ACCEPT, None, "text")),
        ("I accept $15", Action(ACCEPT, 15.0, "text")),
        ("It's a deal at $15.", Action(ACCEPT, 15.0, "text")),
        ("Great, we have a deal!", Action(ACCEPT, None, "text")),
        ("Agreed, $15.", Action(ACCEPT, 15.0, "text")),
        ("Fine, I'll take it.", Action(ACCEPT, None, "text")),
        ("Deal, I'll take it for fifteen dollars.", Action(ACCEPT, 15.0, "text")),
        ("I'll walk away.", Action(WALK, None, "text")),
        ("We're too far apart; I'm walking away.", Action(WALK, None, "text")),
        ("That's too much. Goodbye.", Action(WALK, None, "text")),
        ("I'm out.", Action(WALK, None, "text")),
        ("I'll pass.", Action(WALK, None, "text")),
        ("No deal.", Action(REJECT, None, "text")),
        ("That's too high for me.", Action(REJECT, None, "text")),
        ("That's not acceptable.", Action(REJECT, None, "text")),
        ("No deal, I can't accept that.", Action(REJECT, None, "text")),
        ("Would you take $12?", Action(OFFER, 12.0, "text")),
        ("How about fifteen dollars?", Action(OFFER, 15.0, "text")),
    ],
)
def test_free_text_cues(text: str, expected: Action) -> None:
    assert not has_tag(text)
    assert read_free_text(text) == expected
    assert parse_action(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "Hello there!",
        "ok",
        "Hmm, let me think about it.",
        "<div class='x'><p>Nice weather</p></div>",
        "🎈 ¿Qué tal? 価格は高すぎる",
        "asdkjh qweoiu zxcmn",
    ],
)
def test_free_text_without_an_action_reads_as_nothing(text: str) -> None:
    assert parse_action(text) is None


def test_walk_away_cue_wins_over_a_price() -> None:
    assert parse_action("$25? I'll walk away.") == Action(WALK, None, "text")


def test_reject_cue_blocks_an_acceptance_cue() -> None:
    # "no deal" contains "deal", which alone would read as an acceptance.
    assert parse_action("No deal at that price.") == Action(REJECT, None, "text")


@pytest.mark.parametrize("text", ["I can't accept $18.", "$18 is too much for me."])
def test_rejecting_a_quoted_price_is_not_an_offer_of_it(text: str) -> None:
    action = parse_action(text)
    assert action is None or action.kind is not OFFER, action


def test_a_conditional_threat_with_a_counter_offer_is_an_offer() -> None:
    action = parse_action("If you don't come down I'll walk away. How about $18?")
    assert action == Action(OFFER, 18.0, "text")


def test_talking_about_past_sales_is_not_an_acceptance() -> None:
    action = parse_action("I've sold many of these; $18 is fair.")
    assert action is not None and action.kind is OFFER, action


@pytest.mark.parametrize("text", ["fifteen fifty", "nineteen ninety-nine"])
def test_spoken_dollars_and_cents_are_not_summed(text: str) -> None:
    assert parse_price(text) in (None, 15.5, 19.99), parse_price(text)


def test_accept_tag_with_an_unreadable_price_is_not_a_bare_accept() -> None:
    assert parse_action("[ACCEPT $abc]") is None


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "start"),
    [
        (Action(OFFER, 15.0), "[OFFER $15"),
        (Action(OFFER, 15.5), "[OFFER $15.5"),
        (Action(ACCEPT, 15.0), "[ACCEPT $15"),
        (Action(ACCEPT), "[ACCEPT]"),
        (Action(REJECT), "[REJECT]"),
        (Action(WALK), "[WALK AWAY]"),
    ],
)
def test_format_action(action: Action, start: str) -> None:
    tag = format_action(action)
    assert tag.startswith(start) and tag.endswith("]"), tag
    assert parse_action(tag) == action


def test_action_as_dict() -> None:
    assert Action(OFFER, 15.0, "text").as_dict() == {
        "kind": "offer",
        "price": 15.0,
        "source": "text",
    }


cents = st.integers(min_value=1, max_value=999_999)  # $0.01 .. $9,999.99


@settings(max_examples=300, deadline=None)
@given(cents=cents, kind=st.sampled_from([OFFER, ACCEPT]))
def test_format_action_round_trips_prices_below_ten_thousand(cents: int, kind: ActionKind) -> None:
    price = cents / 100
    tag = format_action(Action(kind, price))
    assert parse_action(tag) == Action(kind, price), tag


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(min_value=1, max_value=100_000_000))
@example(cents=100_000_000)
@example(cents=1_234_567)
def test_format_action_round_trips_any_price_up_to_a_million(cents: int) -> None:
    price = cents / 100
    tag = format_action(Action(OFFER, price))
    assert parse_action(tag) == Action(OFFER, price), tag


def _check_action(action: Action | None) -> None:
    if action is None:
        return
    assert isinstance(action.kind, ActionKind)
    assert action.source in ("tag", "text")
    if action.price is not None:
        assert math.isfinite(action.price) and 0 <= action.price <= MAX_PRICE, action
    if action.kind is OFFER:
        assert action.price is not None, "an offer always carries its price"
    if action.kind in (REJECT, WALK):
        assert action.price is None, action


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_action_never_raises_on_arbitrary_text(text: str) -> None:
    _check_action(parse_action(text))
    for mention in find_prices(text):
        assert 0 <= mention.start < mention.end <= len(text)


_PIECES = st.sampled_from(
    [
        "$", "USD", "dollars", "bucks", "[", "]", "[OFFER", "[ACCEPT", "[REJECT]", "[WALK AWAY]",
        "offer", "accept", "deal", "no deal", "walk away", "how about", "I can do", "and", "-",
        ",", ".", " ", "one", "fifteen", "twenty", "hundred", "thousand", "0", "15", "1,250",
        ".5", "%", "9,99", "١٥", "１５",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=25).map(" ".join))
def test_parse_action_never_raises_on_negotiation_like_text(text: str) -> None:
    _check_action(parse_action(text))


def test_a_long_repetitive_reply_is_read_quickly() -> None:
    _read_in_subprocess("'one ' * 25_000", seconds=2)


def test_a_long_run_of_unclosed_tags_is_read_quickly() -> None:
    _read_in_subprocess("'[offer ' * 14_000", seconds=2)


def _read_in_subprocess(expression: str, *, seconds: float) -> None:
    # A runaway regex cannot be interrupted in-process, so the read runs in a child we can kill.
    code = textwrap.dedent(
        f"""
        from haggler.agents.actions import parse_action
        parse_action({expression})
        """
    )
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parse_action({expression}) took more than {seconds} s")


def test_a_long_reply_of_prose_is_read_quickly_in_process() -> None:
    text = ("lorem ipsum dolor sit amet " * 4000)[:100_000]
    assert parse_action(text) is None
    assert parse_action(text + " [OFFER $15]") == Action(OFFER, 15.0)


# --- the LLM moderator's verdicts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ('{"action": "accept", "price": 15}', Verdict(action="accept", price=15.0)),
        (
            '{"reasoning": "names 16", "action": "offer", "price": 16}',
            Verdict(reasoning="names 16", action="offer", price=16.0),
        ),
        (
            'The buyer leaves.\n{"reasoning": "r", "action": "walk_away", "price": null}',
            Verdict(reasoning="r", action="walk_away"),
        ),
        ('```json\n{"action": "none"}\n```', Verdict(action="none")),
        ('{"action": "reject", "price": null}', Verdict(action="reject")),
    ],
)
def test_well_formed_verdict_is_accepted(answer: str, verdict: Verdict) -> None:
    assert parse_verdict(answer) == verdict


@pytest.mark.parametrize(
    "answer",
    [
        "yes",
        "Yes",
        "Yes, deal",
        "YES! They agreed on $15.",
        "The answer is yes, a deal at $15.",
        "action: accept, price: 15",
        "",
        '{"action": "accept", "price": 15, "deal": true}',  # extra key
        '{"action": "yes"}',
        '{"action": "ACCEPT", "price": 15}',
        '{"price": 15}',  # no action
        '{"action": "accept", "price": "fifteen"}',
        '{"action": "accept", "price": 15',  # truncated
        '{"action": "accept"} and also {"action": "reject"}',
        "[1, 2, 3]",
    ],
)
def test_anything_but_one_well_formed_verdict_is_no_verdict(answer: str) -> None:
    assert parse_verdict(answer) is None


@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity"])
def test_verdict_with_a_non_finite_price_is_refused(price: str) -> None:
    assert parse_verdict(f'{{"action": "offer", "price": {price}}}') is None


def test_verdict_with_a_boolean_price_is_refused() -> None:
    assert parse_verdict('{"action": "accept", "price": true}') is None


class _CannedBackend(Backend):
    """A model that gives one fixed answer and counts how often it was asked."""

    def __init__(self, answer: str) -> None:
        super().__init__("fake/moderator")
        self.answer = answer
        self.calls: list[list[Message]] = []

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        self.calls.append(messages)
        return Completion(self.answer, self.model)


RECENT = (
    PublicMessage("seller", "It's $20. [OFFER $20]"),
    PublicMessage("buyer", "Would you sell it for $10? [OFFER $10]"),
    PublicMessage("seller", "How about $16?"),
    PublicMessage("buyer", "I could do $12."),
    PublicMessage("seller", "Make it $14."),
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"action": "offer", "price": 13}', Action(OFFER, 13.0, "moderator")),
        ('{"action": "accept", "price": 14}', Action(ACCEPT, 14.0, "moderator")),
        ('{"action": "accept", "price": null}', Action(ACCEPT, None, "moderator")),
        ('{"action": "reject", "price": 14}', Action(REJECT, None, "moderator")),
        ('{"action": "walk_away", "price": null}', Action(WALK, None, "moderator")),
        ('{"action": "offer", "price": null}', None),
        ('{"action": "none", "price": null}', None),
    ],
)
async def test_llm_moderator_turns_a_verdict_into_an_action(
    answer: str, expected: Action | None
) -> None:
    backend = _CannedBackend(answer)
    reading = await LLMModerator(backend).read(RECENT, "buyer", "Hmm, thirteen?")
    assert reading.action == expected
    assert reading.unreadable_verdict is None
    assert reading.completion is not None and reading.completion.text == answer


@pytest.mark.parametrize("answer", ["yes", "Yes, deal", "They reached a deal at $14."])
async def test_llm_moderator_answer_that_is_not_a_verdict_is_no_action(answer: str) -> None:
    reading = await LLMModerator(_CannedBackend(answer)).read(RECENT, "buyer", "Deal at $14!")
    assert reading.action is None
    assert reading.unreadable_verdict == answer


async def test_llm_moderator_reads_the_last_four_messages_and_skips_tagged_ones() -> None:
    backend = _CannedBackend('{"action": "offer", "price": 13}')
    moderator = LLMModerator(backend)
    tagged = await moderator.read(RECENT, "buyer", "Fine. [ACCEPT $14]")
    assert tagged.action == Action(ACCEPT, 14.0) and tagged.completion is None
    assert backend.calls == [], "a tagged message needs no model call"

    await moderator.read(RECENT, "buyer", "Hmm, thirteen?")
    (messages,) = backend.calls
    transcript = messages[-1].content
    # The window is the three latest public messages plus the one being judged.
    assert transcript.splitlines() == [
        "seller: How about $16?",
        "buyer: I could do $12.",
        "seller: Make it $14.",
        "buyer: Hmm, thirteen?",
    ]
    assert messages[0].role == "system" and "JSON" in messages[0].content


async def test_rule_moderator_reads_tags_and_free_text() -> None:
    moderator = RuleModerator()
    assert (await moderator.read(RECENT, "buyer", "[OFFER $13]")).action == Action(OFFER, 13.0)
    assert (await moderator.read(RECENT, "buyer", "Deal!")).action == Action(ACCEPT, None, "text")
    reading = await moderator.read(RECENT, "buyer", "[OFFER]")
    assert reading.action is None and reading.completion is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Let's not say goodbye yet; $14?", (ActionKind.OFFER, 14.0)),
        ("I won't walk away yet. How about $13?", (ActionKind.OFFER, 13.0)),
        ("I'm not accepting $18.", (ActionKind.REJECT, None)),
        ("It's sold at $15? No way, $13.", (ActionKind.REJECT, None)),
        ("Deal? $15", (ActionKind.OFFER, 15.0)),
        ("[OFFER $-5]", None),
        (
            "[OFFER $15, which honestly is the lowest price I could imagine for such a balloon]",
            (ActionKind.OFFER, 15.0),
        ),
        ("hundred " * 155, None),
    ],
)
def test_review_cases_read_as_a_person_would(
    text: str, expected: tuple[ActionKind, float | None] | None
) -> None:
    action = parse_action(text)
    if expected is None:
        assert action is None or action.kind is not ActionKind.ACCEPT
    else:
        assert action is not None and (action.kind, action.price) == expected


def test_a_tag_followed_by_a_long_tail_is_still_seen_and_read_alike() -> None:
    text = "[OFFER $15] " + "and some rambling words " * 200
    assert has_tag(text) == (parse_action(text) is not None and parse_action(text).source == "tag")


# --- numbers read whole or not at all (issue 14.2) -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[OFFER $1e308]",
        "[ACCEPT $1.5e3]",
        "[OFFER $2E+2]",
        "[OFFER $.5e3]",
        "[ACCEPT $1,250e3]",
        "[OFFER 1e3 dollars]",
        "[OFFER $" + "9" * 150 + "]",
        "[OFFER $" + "9" * 150 + ".5]",
        "[OFFER $1000000000001]",
        "[OFFER $15,5]",
    ],
)
def test_a_tag_whose_number_cannot_be_read_whole_is_unreadable(text: str) -> None:
    # These were read as $1, $1.50, $2, $0.50, $1 and infinity.
    assert has_tag(text)
    assert parse_action(text) is None, text


@pytest.mark.parametrize(
    "text",
    ["I'd pay 1e3 for it.", "Maybe $1e-3?", "I offer 2.5E2", "-5 is my offer", "$15,5 then"],
)
def test_free_text_in_e_notation_or_signed_names_no_price(text: str) -> None:
    assert find_prices(text) == [], text


def test_a_price_of_four_hundred_digits_is_no_price() -> None:
    # float() reads it as infinity, which crashed `play`'s rendering and reached the store.
    assert find_prices("$" + "9" * 400) == []
    assert find_prices("9" * 400 + " dollars") == []
    assert parse_action("Take it: " + "9" * 400 + " dollars") is None


@pytest.mark.parametrize(
    ("text", "price"),
    [
        ("[OFFER $15e]", 15.0),  # a letter after the number is no exponent
        ("[OFFER $1,250.50]", 1250.5),
        ("[OFFER $999,999,999,999]", 999_999_999_999.0),
        ("[OFFER $15.]", 15.0),
        ("How about $15, or $16?", 16.0),
    ],
)
def test_numbers_next_to_exponent_like_text_are_still_read(text: str, price: float) -> None:
    assert parse_price(text) == price


@settings(max_examples=200, deadline=None)
@given(
    mantissa=st.from_regex(r"\A(?:\d{1,4}(?:\.\d{1,3})?|\.\d{1,3})\Z"),
    exponent=st.from_regex(r"\A[eE][+-]?\d{1,3}\Z"),
    kind=st.sampled_from(["OFFER", "ACCEPT"]),
)
def test_e_notation_is_never_misread(mantissa: str, exponent: str, kind: str) -> None:
    text = f"[{kind} ${mantissa}{exponent}]"
    assert parse_action(text) is None, text
    assert find_prices(f"I could do {mantissa}{exponent} dollars.") == []


@settings(max_examples=200, deadline=None)
@given(digits=st.integers(min_value=1, max_value=600), lead=st.integers(min_value=1, max_value=9))
def test_a_long_number_is_read_exactly_or_not_at_all(digits: int, lead: int) -> None:
    number = str(lead) + "0" * (digits - 1)
    mentions = find_prices(f"${number}")
    if int(number) <= MAX_PRICE:
        assert [m.value for m in mentions] == [float(number)]
    else:
        assert mentions == []


@pytest.mark.parametrize(
    ("price", "written"),
    [
        (math.inf, "$inf"),
        (-math.inf, "$-inf"),
        (math.nan, "$nan"),
        (1e308, "$1e+308"),
        (MAX_PRICE, "$1,000,000,000,000"),
    ],
)
def test_format_price_writes_any_float(price: float, written: str) -> None:
    assert format_price(price) == written
    assert parse_price(written) in (None, MAX_PRICE)


# --- a price the game can rule on (games/bargaining.py) ------------------------------------


@pytest.mark.parametrize("price", [math.inf, math.nan, -0.01, 2000.01, 1e308])
def test_an_offer_out_of_the_games_range_cannot_stand(price: float) -> None:
    game = BargainingGame()
    table = game.new_table()
    step = game.apply(table, "buyer", Action(OFFER, price, source="moderator"))
    assert step.outcome is None and step.error is not None
    assert "no price for a balloon" in step.error and "$2,000" in step.error, step.error
    assert table.offers["buyer"] == 10.0, "the refused offer is not on the table"


@pytest.mark.parametrize("price", [0.0, 9.0, 25.0, 2000.0])
def test_an_offer_in_the_games_range_stands_even_outside_the_openings(price: float) -> None:
    game = BargainingGame()
    table = game.new_table()
    assert game.apply(table, "buyer", Action(OFFER, price)).error is None
    assert table.offers["buyer"] == price


async def test_a_moderators_absurd_price_is_told_back_not_ruled_on() -> None:
    reading = await LLMModerator(_CannedBackend('{"action": "offer", "price": 1e308}')).read(
        RECENT, "buyer", "A gazillion, then."
    )
    assert reading.action == Action(OFFER, 1e308, "moderator")
    step = BargainingGame().apply(BargainingGame().new_table(), "buyer", reading.action)
    assert step.error is not None and "$1e+308" in step.error
