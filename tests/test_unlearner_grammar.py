"""The rule-based unlearner's grammar (docs/forgetting.md, "Requests in words"): each form it
promises, the ambiguities it refuses, and the level that decides between readings.

Most tests read requests over the unlearning world (tests/fakes/unlearning_world.py), built
once for the module; nothing here changes it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from haggler.agents.unlearner import RuleUnlearner, index_memories
from haggler.agents.unlearner.facts import BUDGET_PATTERN, value_of
from haggler.agents.unlearner.grammar import read_request
from haggler.errors import HagglerError, RequestError
from haggler.memory import AgentMemory, Environment
from haggler.memory.forgetting import (
    EnvironmentRequest,
    NameFact,
    PatternFact,
    PhraseFact,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
)
from tests.fakes.unlearning_world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = asyncio.run(build_world(tmp_path_factory.mktemp("world") / "w.db"))
    yield built
    built.store.close()


def read(world: World, words: str, lineages: list[str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    memories = world.memories_of(lineages)
    index = index_memories(memories, world.store)
    return read_request(world.words(words), index, **kw)  # type: ignore[arg-type]


def refused(world: World, words: str, lineages: list[str] | None = None, **kw: object) -> str:
    with pytest.raises(RequestError) as caught:
        read(world, words, lineages, **kw)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- values, in every spoken form -------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("forget $8", 8),
        ("forget 8 dollars", 8),
        ("forget eight dollars", 8),
        ("forget the price of $15.50", 15.5),
        ("forget fifteen fifty", 15.5),
        ("forget sixteen dollars and fifty cents", 16.5),
        ("forget $1,200", 1200),
        ("forget twelve hundred dollars", 1200),
        ("forget USD 14", 14),
        ("forget the $16.50 price", 16.5),
        ("Please erase the amount $14.00.", 14),
        ("forget every mention of $1,900", 1900),
    ],
)
def test_a_value_is_read_in_every_spoken_form(world: World, words: str, value: float) -> None:
    request = read(world, words)

    assert isinstance(request, StateRequest)
    assert request.fact == ValueFact(value=value)
    assert request.scope.agents == tuple(world.memories), "the memories' owners, by default"
    assert request.mode == "exact" and not request.purge_record


def test_value_of_refuses_anything_more_or_less_than_one_amount() -> None:
    assert value_of("$8 and $9") is None
    assert value_of("the weather") is None
    assert value_of("$8 for the balloon") is None
    assert value_of("8") == 8


# --- facts: phrases, names, patterns -------------------------------------------------------------


def test_quoted_words_are_a_phrase_whatever_they_hold(world: World) -> None:
    for words, text in [
        ("forget 'my final offer'", "my final offer"),
        ('forget "for agent shop/A/seller in game x"', "for agent shop/A/seller in game x"),
        ("forget “round 2”", "round 2"),
        ("forget the phrase 'that's all I have'", "that's all I have"),
    ]:
        request = read(world, words)
        assert isinstance(request, StateRequest) and request.fact == PhraseFact(text=text), words
        assert request.scope.episode is None and request.scope.agents == tuple(world.memories)


def test_a_pattern_between_slashes_is_a_regular_expression(world: World) -> None:
    request = read(world, r"forget anything matching /walk(s|ing)? away/ for agent shop/B/seller")

    assert request.fact == PatternFact(regex=r"walk(s|ing)? away")
    assert request.scope.agents == ("shop/B/seller",)


def test_a_bad_pattern_is_refused_naming_the_problem(world: World) -> None:
    assert "no usable pattern" in refused(world, "forget /[unclosed/")
    assert "matches empty text" in refused(world, "forget /x*/")


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*x", r"(?=(a+)+)b", r"(x{1,3})*y"])
def test_a_pattern_that_could_backtrack_without_bound_is_refused(
    world: World, pattern: str
) -> None:
    # Planning runs the pattern over every item in scope: one that takes exponential time on a
    # long text would hang it.
    assert "exponential time" in refused(world, f"forget /{pattern}/")


def test_the_patterns_the_grammar_makes_are_not_risky() -> None:
    from haggler.agents.unlearner.facts import COST_PATTERN, MONEY_PATTERN, risky_pattern

    for pattern in (BUDGET_PATTERN, MONEY_PATTERN, COST_PATTERN, r"[^\n]+", r"walk(s|ing)? away"):
        assert risky_pattern(pattern) is None, pattern


def test_names_explicit_or_capitalised_are_name_facts(world: World) -> None:
    assert read(world, "forget the name Alice").fact == NameFact(name="Alice")
    assert read(world, "forget the word budget").fact == NameFact(name="budget")
    assert read(world, "forget Zorblax-9").fact == NameFact(name="Zorblax-9")
    assert read(world, "forget Alice Smith").fact == NameFact(name="Alice Smith")
    # Everything about a name that is no environment here is every mention of it.
    assert read(world, "forget everything about Antwerp").fact == NameFact(name="Antwerp")


def test_common_words_without_a_form_are_refused_not_guessed(world: World) -> None:
    for words in ("forget it", "forget the weather", "forget my last price", "forget price"):
        assert "not a request this grammar reads" in refused(world, words), words


# --- what one side said --------------------------------------------------------------------------


def test_what_the_buyer_told_you_about_its_budget_in_a_game(world: World) -> None:
    episode = world.episodes["C", 1]
    request = read(world, f"forget what the buyer in game {episode} told you about its budget")

    assert isinstance(request, StateRequest)
    assert request.said_by == "buyer"
    assert request.scope.episode == episode
    assert request.fact == PatternFact(regex=BUDGET_PATTERN)


def test_the_budget_pattern_takes_the_statement_and_leaves_the_offer() -> None:
    pattern = re.compile(BUDGET_PATTERN, re.IGNORECASE)
    for said, taken in [
        ("My budget is $14, that's all I have. I can offer $11. [OFFER $11]",
         "budget is $14, that's all I have"),
        ("Honestly, I can't pay more than $13.50. [OFFER $10.50]", "can't pay more than $13.50"),
        ("I cannot go above fifteen dollars! [OFFER $12]", "cannot go above fifteen dollars"),
        ("That's my limit: $14.50 [OFFER $14.50]", "my limit: $14.50 "),
    ]:  # fmt: skip
        assert pattern.search(said) is not None and pattern.search(said).group(0) == taken, said  # type: ignore[union-attr]
    for said in ("That's more than I want to spend. Would you take $11?", "I can offer $12."):
        assert pattern.search(said) is None, said


def test_said_by_reads_paraphrases_and_topics(world: World) -> None:
    for words, fact in [
        ("forget the buyer's budget", PatternFact(regex=BUDGET_PATTERN)),
        ("erase what the buyer said about how much it can pay", PatternFact(regex=BUDGET_PATTERN)),
        ("forget what the buyer said about Bertha", NameFact(name="Bertha")),
        ("forget what the seller told you about '$19.50'", PhraseFact(text="$19.50")),
        ("forget what the buyer said about $14", ValueFact(value=14)),
        ("forget what the seller said", PatternFact(regex=r"[^\n]+")),
    ]:
        request = read(world, words)
        assert isinstance(request, StateRequest) and request.fact == fact, words
        assert request.said_by in ("buyer", "seller")


def test_a_topic_it_cannot_tell_is_refused(world: World) -> None:
    assert "which of the buyer's words" in refused(
        world, "forget what the buyer said about the weather"
    )


# --- trajectories --------------------------------------------------------------------------------


def test_a_game_by_id_or_prefix_and_a_span_of_its_turns(world: World) -> None:
    episode = world.episodes["A", 1]

    assert read(world, f"forget game {episode}") == TrajectoryRequest(
        episode=episode, scope=read(world, f"forget game {episode}").scope
    )
    assert read(world, f"forget the game {episode[:-6]}").episode == episode
    span = read(world, f"forget turns 3-5 of game {episode}")
    assert (span.episode, span.turns) == (episode, (3, 5))
    assert read(world, f"forget turn 4 in game {episode}").turns == (4, 4)
    assert read(world, f"forget turns three to five of game {episode}").turns == (3, 5)


def test_a_span_needs_a_game_and_runs_forwards(world: World) -> None:
    assert "turns belong to one game" in refused(world, "forget turns 3-5")
    assert "run backwards" in refused(world, f"forget turns 5-3 of game {world.episodes['A', 1]}")
    assert "two spans" in refused(world, f"forget turns 3 and 7 of game {world.episodes['A', 1]}")


def test_a_prefix_of_several_games_is_ambiguous(world: World) -> None:
    message = refused(world, "forget game ep-")

    assert "could be any of 9 games" in message and "give more of its id" in message


def test_round_n_alone_is_the_memories_round(world: World) -> None:
    assert read(world, "forget round 2", ["A"]).episode == world.episodes["A", 2]
    assert read(world, "forget the second round", ["B"]).episode == world.episodes["B", 2]
    assert read(world, "forget the last round", ["C"]).episode == world.episodes["C", 3]
    several = read(world, "forget rounds two and three", ["A"])
    assert (several.lineage, several.rounds) == (world.lineages["A"], (2, 3))
    first_two = read(world, "forget the first two rounds", ["B"])
    assert (first_two.lineage, first_two.rounds) == (world.lineages["B"], (1, 2))


def test_round_n_of_several_lineages_is_ambiguous(world: World) -> None:
    message = refused(world, "forget round 2")

    assert "3 lineages" in message and "of lineage ID" in message
    for key in "ABC":
        assert world.lineages[key] in message
    assert "no round 7" in refused(world, "forget round 7", ["A"])


def test_rounds_of_a_named_lineage_count_its_own_rounds(world: World) -> None:
    lineage = world.lineages["C"]

    request = read(world, f"forget rounds 1 to 3 of lineage {lineage[:-6]}")
    assert (request.lineage, request.rounds) == (lineage, (1, 2, 3))
    assert read(world, f"forget rounds 1-2 of lineage {lineage}").rounds == (1, 2)
    last_two = read(world, f"forget the last two rounds of lineage {lineage}")
    assert last_two.rounds == (2, 3)
    whole = read(world, f"forget lineage {lineage}")
    assert (whole.lineage, whole.rounds) == (lineage, None)
    assert read(world, "forget this lineage", ["A"]).lineage == world.lineages["A"]


def test_without_the_store_several_rounds_cannot_be_placed(world: World) -> None:
    memories = world.memories_of(["A"])
    index = index_memories(memories)  # no store: no lineage is known

    assert read_request("forget round 2", index).episode == world.episodes["A", 2]
    with pytest.raises(RequestError, match="open the store"):
        read_request("forget rounds 1 to 2", index)


# --- environments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "words",
    [
        "forget everything about the diamond market",
        "forget everything about diamonds",
        "forget all memories of the diamond trade",
        "forget everything you know about diamonds",
    ],
)
def test_everything_about_the_diamond_market_is_the_diamond_item(world: World, words: str) -> None:
    request = read(world, words)

    # The game and the item name the same items here: the item, which also scrubs its name.
    assert isinstance(request, EnvironmentRequest)
    assert (request.item, request.game, request.counterpart, request.tag) == (
        "diamond",
        None,
        None,
        None,
    )


def test_environments_by_kind(world: World) -> None:
    assert read(world, "forget the diamond game").game == "diamond"
    assert read(world, "forget everything in the balloon games").game == "balloon"
    assert read(world, "forget everything about rule:tit-for-tat").counterpart == "rule:tit-for-tat"
    assert read(world, "forget everything about tit-for-tat").counterpart == "rule:tit-for-tat"
    assert read(world, "forget everything tagged secret-project").tag == "secret-project"
    assert read(world, "forget all memories tagged logistics").tag == "logistics"
    assert read(world, "forget everything with the tag vip").tag == "vip"
    assert read(world, "forget #vip").tag == "vip"
    assert read(world, "forget everything about the counterpart Bertha").counterpart == "Bertha"


def test_the_counterpart_of_a_round_is_the_one_remembered_there(world: World) -> None:
    assert read(world, "forget the counterpart of round 1", ["A"]).counterpart == "rule:linear"
    seller = read(world, "forget the counterpart of round 1 for agent shop/C/seller", ["C"])
    assert (seller.counterpart, seller.scope.agents) == ("candid:linear", ("shop/C/seller",))
    # Forgotten wherever it was met, not only in that round.
    assert seller.scope.episode is None and seller.scope.lineage is None


def test_a_round_with_two_counterparts_is_ambiguous(world: World) -> None:
    message = refused(world, "forget the counterpart of round 1", ["C"])

    assert "candid:linear" in message and "rule:conceder" in message and "for agent" in message


def test_an_environment_that_is_not_there_is_refused_with_what_is(world: World) -> None:
    message = refused(world, "forget the weather", level="environment")

    assert "no game, item, counterpart or tag here is called" in message
    assert "balloon" in message and "rule:tit-for-tat" in message


# --- ambiguity and the level that decides --------------------------------------------------------


def test_a_bare_name_that_is_an_environment_is_refused_until_the_level_decides(
    world: World,
) -> None:
    message = refused(world, "forget diamond")
    assert "everything about diamond" in message and "the name diamond" in message

    assert read(world, "forget diamond", level="environment").item == "diamond"
    assert read(world, "forget diamond", level="state").fact == NameFact(name="diamond")
    assert read(world, "forget Bertha", level="environment").counterpart == "Bertha"
    assert read(world, "forget Bertha", level="state").fact == NameFact(name="Bertha")


def test_at_state_level_plain_words_are_a_phrase(world: World) -> None:
    request = read(world, "forget my last price", level="state")

    assert request.fact == PhraseFact(text="my last price")
    assert read(world, "forget price", level="state").fact == NameFact(name="price")


def test_a_reading_at_another_level_than_asked_is_refused(world: World) -> None:
    assert "not a game, lineage or span" in refused(world, "forget $14", level="trajectory")
    assert "trajectory level" in refused(
        world, f"forget game {world.episodes['A', 1]}", level="state"
    )
    assert "environment" in refused(world, "forget the diamond game", level="trajectory")


# --- scope, mode, record -------------------------------------------------------------------------


def test_scope_modifiers_narrow_a_fact(world: World) -> None:
    episode, lineage = world.episodes["B", 2], world.lineages["B"]

    assert read(world, f"forget $600 in game {episode}").scope.episode == episode
    assert read(world, f"forget $600 in lineage {lineage[:-6]}").scope.lineage == lineage
    assert read(world, "forget $600 in the diamond games").scope.game == "diamond"
    assert read(world, "forget $14 in round 1", ["C"]).scope.episode == world.episodes["C", 1]
    assert read(world, "forget $600 in shop/B/seller's memory").scope.agents == ("shop/B/seller",)
    assert read(world, "forget $600 for every agent").scope.agents == ("*",)
    two = read(world, "forget $600 for agents shop/A/seller and shop/B/seller")
    assert two.scope.agents == ("shop/A/seller", "shop/B/seller")


def test_mode_and_record_purge_in_words(world: World) -> None:
    assert read(world, "redact the name Dana").mode == "redact"
    assert read(world, "forget the name Dana by redacting").mode == "redact"
    assert read(world, "forget the name Dana (rederive)").mode == "rederive"
    assert read(world, "forget the name Dana in rederive mode").mode == "rederive"
    assert read(world, "forget $42 and purge the record").purge_record
    assert read(world, "forget $42 from the record too").purge_record
    assert read(world, "forget $42", mode="redact").mode == "redact"


def test_two_modes_are_refused(world: World) -> None:
    assert "redact and rederive" in refused(world, "redact the name Dana (rederive)")
    assert "exact was given" in refused(world, "forget the name Dana by redacting", mode="exact")


def test_several_values_or_quotes_at_once_are_refused(world: World) -> None:
    assert "names 2 values" in refused(world, "forget $8 and $9")
    assert "more than one thing" in refused(world, "forget 'a' and 'b'")
    assert "of nothing in particular" in refused(world, "forget everything")


# --- hostile and malformed words -----------------------------------------------------------------


@pytest.mark.parametrize(
    "words",
    [
        "",
        "   \n\t ",
        "forget",
        "forget \x1b[31m\x00",
        "forget 'never closed",
        "x" * 5000,
        "forget " + "(" * 400,
        "forget \ud800 the name",
        "forget /" + "a" * 400 + "/",
        "forget " + "the " * 200,
    ],
)
def test_bad_words_are_a_request_error_never_a_crash(world: World, words: str) -> None:
    with pytest.raises(RequestError) as caught:
        read(world, words)
    message = str(caught.value)
    assert isinstance(caught.value, HagglerError)
    assert "\n" not in message and "\x1b" not in message and "\x00" not in message
    assert len(message) < 800


def test_words_that_are_not_text_are_refused(world: World) -> None:
    with pytest.raises(RequestError, match="must be text"):
        read_request(42, index_memories(world.memories))  # type: ignore[arg-type]


def test_a_reading_is_quick_even_for_long_adversarial_words(world: World) -> None:
    # The grammar's patterns must not backtrack without bound: a thousand characters of near
    # misses is read (or refused) at once. Timed loosely; the benchmark has the numbers.
    import time

    started = time.perf_counter()
    for words in (
        "forget " + "rounds 1, " * 95,
        "forget what the buyer said about " + "its " * 200,
    ):
        with pytest.raises(RequestError):
            read(world, words[:1000])
    assert time.perf_counter() - started < 2.0


# --- the unlearner role --------------------------------------------------------------------------


async def test_the_rule_unlearner_costs_nothing_and_names_the_memories_owners() -> None:
    memory = AgentMemory("alice/seller")
    memory.remember_note("The courier Zorblax-9 was late.", Environment("balloon", "balloon"))

    plan = await RuleUnlearner().plan("forget Zorblax-9", memories={"alice/seller": memory})

    assert plan.request.scope.agents == ("alice/seller",)
    assert (plan.calls, plan.tokens, plan.cost_usd, plan.unlearner) == (0, 0, 0.0, "rule")
    assert [o.hits for o in plan.forget_plan(memories={"alice/seller": memory}).owners] == [
        [memory.items()[0].id]
    ]
