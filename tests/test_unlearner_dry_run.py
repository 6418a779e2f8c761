"""The dry run: a plan shown to people before it is carried out, with counts that are the
plan's, samples of what goes and how kept items will read, what happens to the record, and
whatever a model wrote shown inert."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Iterator

import pytest

from haggler.agents.unlearner import RuleUnlearner
from haggler.memory import AgentMemory, Environment
from haggler.memory.forgetting import (
    EnvironmentRequest,
    NameFact,
    PhraseFact,
    Scope,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
    load_scope,
    plan_forget,
)
from haggler.memory.forgetting.dry_run import describe_plan, describe_request, inert
from tests.fakes.unlearning_world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = asyncio.run(build_world(tmp_path_factory.mktemp("world") / "w.db"))
    yield built
    built.store.close()


async def dry_run(world: World, words: str, **kw: object) -> tuple[str, object]:
    plan = await RuleUnlearner().plan(
        world.words(words), memories=world.memories, store=world.store, **kw
    )
    scope = load_scope(plan.request, store=world.store, memories=world.memories)
    planned = plan_forget(plan.request, memories=scope, store=world.store)
    return describe_plan(planned, scope), planned


async def test_an_exact_plan_shows_its_counts_per_agent_with_samples(world: World) -> None:
    before = {owner: len(memory) for owner, memory in world.memories.items()}

    text, plan = await dry_run(world, "forget $14")

    counts = plan.counts()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert lines[0] == "Dry run: nothing changes until the plan is carried out."
    assert lines[1] == "Request: forget the value $14 for 4 agents (state level, exact mode)."
    assert lines[2] == (
        f"It hits {counts['hit']} item(s) of {counts['agents']} agent(s); it would delete "
        f"{counts['deleted']}, redact 0 and re-derive 0."
    )
    for owner in plan.owners:  # type: ignore[attr-defined]
        if owner.touched:
            assert (
                f"{owner.owner}: {len(owner.hits)} hit; delete {len(owner.delete)}, redact 0, "
                "re-derive 0"
            ) in lines
    assert "1 other agent(s) in scope: nothing hit." in lines
    assert any(line.startswith("  delete    episode  round 1 balloon ep-") for line in lines)
    assert any("(made under its influence)" in line for line in lines)
    assert any(line.startswith("  … and ") and line.endswith(" more to delete") for line in lines)
    assert lines[-1] == "Record: left as it is (ask to purge the record to scrub it too)."
    assert {owner: len(memory) for owner, memory in world.memories.items()} == before


async def test_a_redaction_shows_how_the_kept_item_will_read_not_what_goes(world: World) -> None:
    text, _ = await dry_run(
        world, f"forget what the buyer in game {world.episodes['C', 1]} told you about its budget",
        mode="redact",
    )  # fmt: skip

    redactions = [line for line in text.splitlines() if line.startswith("  redact")]
    assert redactions and all("[forgotten]" in line for line in redactions)
    assert any("My [forgotten]. I can offer $11." in line for line in redactions)
    assert "budget is $14" not in text, "the dry run must not spread what it forgets"


async def test_the_record_purge_is_described(world: World) -> None:
    episode, lineage = world.episodes["A", 1], world.lineages["B"]

    deleted, _ = await dry_run(world, f"forget game {episode} and purge the record")
    assert (
        f"Record: delete 1 game(s) with their turns and critiques, leaving a tombstone: {episode}"
        in deleted
    )
    blanked, _ = await dry_run(world, f"forget game {episode} and purge the record", mode="redact")
    assert "Record: blank every text of 1 game(s), keeping their prices and outcomes" in blanked
    turns, _ = await dry_run(world, f"forget turns 3-5 of game {episode} and purge the record")
    assert f"Record: blank turns 3-5 of 1 game(s): {episode}" in turns
    scrubbed, _ = await dry_run(world, "forget $600 for every agent and purge the record")
    assert (
        "Record: scrub the fact from the turns and critiques of every game of the store."
        in scrubbed
    )
    several, _ = await dry_run(
        world, f"forget rounds 1 to 3 of lineage {lineage} and purge the record"
    )
    assert "Record: delete 3 game(s)" in several and ", … (" not in several
    many, _ = await dry_run(world, "forget the diamond game and purge the record")
    assert "delete 3 game(s)" in many


async def test_rederive_and_an_empty_plan(world: World) -> None:
    text, _ = await dry_run(world, f"forget game {world.episodes['A', 1]}", mode="rederive")
    assert "re-derive" in text and "(its critic re-run on the game as it will stand)" in text

    empty, plan = await dry_run(world, "forget $99")
    assert plan.is_empty()  # type: ignore[attr-defined]
    assert (
        "Nothing in the memory of the 4 agent(s) in scope matches: no item would change." in empty
    )


def test_model_text_is_shown_inert() -> None:
    memory = AgentMemory("evil/seller")
    hostile = (
        "seller (you): \x1b[2J\x1b]0;owned\x07 \u202egnp.exe\r\n\x00 \ud800 deal $14 \u2028 end"
    )
    env = Environment("balloon", "balloon", "rule:x\x1b[31m")
    memory.remember_episode(
        hostile + "\nResult: deal at $14.", env, episode_id="ep-\x1b[1m", round=1
    )
    request = StateRequest(fact=ValueFact(value=14), scope=Scope(agents=("evil/seller",)))

    text = describe_plan(
        plan_forget(request, memories={"evil/seller": memory}), {"evil/seller": memory}
    )

    for char in text:
        assert char == "\n" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), (
            repr(char)
        )
    assert "\\x1b[2J" in text and "\\u202e" in text and "\\ud800" in text
    text.encode("utf-8")


def test_inert_cuts_and_escapes() -> None:
    assert inert("a\nb\tc", 60) == "a\\nb\\tc"
    assert inert("x" * 100, 10) == "x" * 9 + "…"
    assert inert("\u200b\u2066") == "\\u200b\\u2066"


def test_each_request_reads_as_one_line() -> None:
    agents = Scope(agents=("shop/A/seller",))
    assert describe_request(StateRequest(fact=PhraseFact(text="my final offer"), scope=agents)) == (
        'forget the phrase "my final offer" for agent shop/A/seller (state level, exact mode)'
    )
    assert (
        describe_request(
            StateRequest(fact=NameFact(name="Bertha"), said_by="buyer", scope=Scope(episode="ep-1"))
        )
        == 'forget the name "Bertha" said by the buyer in game ep-1 for every agent (state level, exact mode)'
    )
    assert describe_request(TrajectoryRequest(episode="ep-1", turns=(3, 5), mode="redact")) == (
        "forget turns 3-5 of game ep-1 for every agent (trajectory level, redact mode)"
    )
    assert describe_request(
        TrajectoryRequest(lineage="lin-1", rounds=(1, 2), purge_record=True)
    ) == (
        "forget rounds 1, 2 of lineage lin-1 for every agent (trajectory level, exact mode; the "
        "record purged too)"
    )
    assert describe_request(
        EnvironmentRequest(
            game="diamond", counterpart="rule:tit-for-tat", scope=Scope(game="diamond")
        )
    ) == (
        "forget everything from game diamond, counterpart rule:tit-for-tat in diamond games for "
        "every agent (environment level, exact mode)"
    )
