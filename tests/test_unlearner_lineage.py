"""A lineage that forgets by words between rounds, read by the rule-based unlearner and by a
model through the fake server; and the recency index fix that playing on after forgetting
needed (a removed item was returned as the newest one)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from haggler.agents.critic import RuleCritic
from haggler.agents.moderator import RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.agents.unlearner import LLMUnlearner, Unlearner
from haggler.games.registry import make_game
from haggler.games.selfplay import AIFeedback, Lineage, ScheduledForget, SelfPlaySetup, play_lineage
from haggler.llm import RetryPolicy, open_backend
from haggler.memory import AgentMemory, Environment
from haggler.memory.recency import RecencyIndex
from haggler.store import Store
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.unlearning_model import RuleBrain


def test_the_recency_index_never_returns_a_removed_item() -> None:
    index = RecencyIndex()
    for key in "abcd":
        index.add(key, 10)
    index.remove("d")
    index.remove("b")

    assert list(index.newest_first()) == ["c", "a"]
    assert index.older(None, math.inf) == "c"
    assert index.older("c", math.inf) == "a"
    assert index.older("a", math.inf) is None


def test_the_newest_episode_after_forgetting_the_newest_is_the_one_before() -> None:
    memory = AgentMemory("solo/seller")
    env = Environment("balloon", "balloon")
    first = memory.remember_episode("seller (you): $20\nResult: deal at $15.", env, round=1)
    second = memory.remember_episode("seller (you): $19\nResult: deal at $16.", env, round=2)

    memory.forget(second.id)

    assert [item.id for item in memory.newest("episode", env)] == [first.id]


async def _forgetting_lineage(tmp_path: Path, words: str, unlearner: Unlearner | None):  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "h.db")
    memory = AgentMemory("solo/seller", store)
    lineage = Lineage(
        arm="ai",
        coached=("seller",),
        seed=5,
        rounds=3,
        memories={"seller": memory},
        forgetting=[ScheduledForget(after_round=2, request=words, unlearner=unlearner)],
    )
    setup = SelfPlaySetup(
        game=make_game("balloon"),
        make_players=lambda seed: {
            role: RuleNegotiator(role, TACTICS.get("linear")(), seed=seed)
            for role in ("seller", "buyer")
        },
        moderator=RuleModerator(),
        feedback=AIFeedback(RuleCritic()),
        store=store,
        run_id=store.start_run("selfplay", {}),
    )
    result = await play_lineage(lineage, setup)
    return store, memory, result


async def test_a_lineage_forgets_round_one_by_words_and_plays_on(tmp_path: Path) -> None:
    store, memory, result = await _forgetting_lineage(tmp_path, "forget round 1", None)
    with store:
        round_one = store.lineage_rounds(str(result.lineage_id))[1]

    assert len(result.rounds) == 3 and len(result.forgotten) == 1
    assert round_one not in {item.episode_id for item in memory}
    # Exact mode: round 2 was played with round 1 in its context, so it went too.
    assert [item.round for item in memory.items(kind="episode")] == [3]


async def test_a_lineage_forgets_by_words_read_by_a_model(
    tmp_path: Path, fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-unlearner-0123456789")
    fake_llm_server.responder = RuleBrain()
    backend = open_backend(
        "openai/gpt-4o-mini",
        api_base=fake_llm_server.openai_base,
        retry_policy=RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0.0),
    )
    unlearner = LLMUnlearner(backend)

    store, memory, result = await _forgetting_lineage(tmp_path, "forget the last round", unlearner)
    with store:
        rounds = store.lineage_rounds(str(result.lineage_id))

    assert fake_llm_server.responder.heard == ["forget the last round"]
    [request] = fake_llm_server.requests
    assert request.model == "gpt-4o-mini" and request.api == "openai"
    # After round 2, the last round was round 2; round 1 and round 3 stay.
    kept = {item.episode_id for item in memory}
    assert rounds[2] not in kept and {rounds[1], rounds[3]} <= kept
    assert unlearner.spent.calls == 1
    await backend.aclose()
