"""Forgetting under hostile and bad input: patterns that backtrack without bound, empty ids,
agents named with LIKE's wildcards, a store with nothing in it. Each gets a clear error (or
does the right thing) and changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from haggler.errors import ConfigError
from haggler.memory import AgentMemory, Environment
from haggler.memory.forgetting import (
    PatternFact,
    StateRequest,
    parse_request,
    plan_forget,
    resolve_agents,
)
from haggler.store.sqlite import Store

HOSTILE = "seller: " + "a" * 40 + "!\nResult: no deal (walk away)."


def test_a_pattern_that_backtracks_without_bound_is_refused_in_seconds_not_hung() -> None:
    # `(a|a)+$` on a run of a's takes exponential time in Python's `re`, which cannot be
    # interrupted; a model's pattern (or a typed request from a spec) may be exactly that.
    code = f"""
import asyncio
from haggler.errors import ConfigError
from haggler.memory import AgentMemory, Environment
from haggler.memory.forgetting import PatternFact, StateRequest, forget
memory = AgentMemory("a")
memory.remember_episode({HOSTILE!r}, Environment("balloon"), round=1)
try:
    asyncio.run(forget(StateRequest(fact=PatternFact(regex="(a|a)+$")), memories={{"a": memory}}))
except ConfigError as error:
    print("refused:", error)
print("items:", len(memory))
"""
    done = bounded(code)
    assert "refused: the pattern '(a|a)+$' searched one text for over" in done.stdout
    assert "items: 1" in done.stdout


def test_an_ordinary_pattern_still_finds_what_it_names() -> None:
    memory = AgentMemory("a")
    memory.remember_episode(
        "buyer: my code is Zorblax-12, really\nResult: deal at $9.", Environment("balloon")
    )
    plan = plan_forget(
        StateRequest(fact=PatternFact(regex=r"zorblax-\d+"), mode="redact"),
        memories={"a": memory},
    )
    (rewritten,) = plan.owners[0].rewrite.values()
    assert "my code is [forgotten], really" in rewritten.content


def test_a_slow_pattern_in_a_record_purge_rolls_the_whole_request_back(tmp_path: Path) -> None:
    # The memory holds nothing slow to search; the record does, and it is scrubbed inside the
    # request's transaction.
    code = f"""
import asyncio
from haggler.errors import ConfigError
from haggler.memory import AgentMemory, Environment
from haggler.memory.forgetting import PatternFact, StateRequest, forget
from haggler.store.records import RoleRecord, TurnRecord
from haggler.store.sqlite import Store
with Store({str(tmp_path / "h.db")!r}) as store:
    run = store.start_run("selfplay", {{}})
    role = RoleRecord(model="rule:linear", brief="sell")
    game = store.start_episode(run, game="balloon", rules={{}}, roles={{"buyer": role}}, seed=1)
    store.add_turn(game, TurnRecord(index=0, speaker="buyer", text={HOSTILE!r}, started_at=0,
                                    ended_at=0))
    memory = AgentMemory("a", store)
    memory.remember_episode("seller: fine\\nResult: deal at $9.", Environment("balloon"))
    request = StateRequest(fact=PatternFact(regex="(a|a)+$"), purge_record=True)
    try:
        asyncio.run(forget(request, store=store, memories={{"a": memory}}))
    except ConfigError as error:
        print("refused:", error)
    print("audits:", len(store.forgettings()), "items:", len(AgentMemory.load(store, "a")))
    print("turn kept:", store.episode(game).transcript[0].text == {HOSTILE!r})
"""
    done = bounded(code)
    assert "refused: the pattern '(a|a)+$' searched one text for over" in done.stdout
    assert "audits: 0 items: 1" in done.stdout and "turn kept: True" in done.stdout


def bounded(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run in a fresh interpreter that may take a minute at most (a search in Python's
    `re` cannot be interrupted in-process)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    "data",
    [
        {"level": "trajectory", "episode": ""},
        {"level": "trajectory", "lineage": ""},
        {"level": "state", "fact": {"kind": "name", "name": "x"}, "scope": {"episode": ""}},
        {"level": "state", "fact": {"kind": "name", "name": "x"}, "scope": {"game": ""}},
        {"level": "state", "fact": {"kind": "name", "name": "x"}, "said_by": ""},
        {"level": "environment", "game": "balloon", "tag": ""},
    ],
)
def test_an_empty_id_or_name_is_refused_not_read_as_a_prefix_of_everything(data: dict) -> None:
    # An empty id is a prefix of every id: with one game in the store it named that game.
    with pytest.raises(ValidationError):
        parse_request(data)


def test_agents_named_with_like_wildcards_are_found_literally(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        for owner in ("shop%/seller", "shop_x/seller", "shopx/seller"):
            AgentMemory(owner, store).remember_episode("a game", Environment("balloon"))
        assert resolve_agents(["shop%"], store=store, memories={}) == ["shop%/seller"]
        assert store.memory_owners("shop_") == ["shop_x/seller"]
        with pytest.raises(ConfigError, match="list them with `haggler memory`"):
            resolve_agents(["shop_"], store=store, memories={})


def test_memory_on_a_store_without_memory_says_so_and_is_no_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from haggler.cli import app

    with Store(tmp_path / "h.db"):
        pass
    result = CliRunner().invoke(app, ["memory", "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 0, result.output
    assert "no agent holds memory" in result.output


def test_a_store_that_cannot_be_written_is_a_store_error_and_memory_stays_as_it_was(
    tmp_path: Path,
) -> None:
    import asyncio

    from haggler.errors import StoreError
    from haggler.memory.forgetting import PhraseFact, forget

    with Store(tmp_path / "h.db") as store:
        AgentMemory("a", store).remember_episode("buyer: my code Z-7", Environment("balloon"))
    with Store(tmp_path / "h.db", read_only=True) as store:
        memory = AgentMemory.load(store, "a")
        request = StateRequest(fact=PhraseFact(text="code Z-7"))
        with pytest.raises(StoreError, match="h.db"):
            asyncio.run(forget(request, store=store, memories={"a": memory}))
        assert len(memory) == 1
