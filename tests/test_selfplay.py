"""Self-play with in-context feedback, end to end: the learning effect offline, what the
coached player's prompt holds, and a hosted run with critic and moderator on other providers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haggler.agents.prices import format_price
from haggler.evals import round_metrics
from haggler.run.experiment import selfplay
from haggler.run.spec import load_selfplay_spec
from haggler.store import Store
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.negotiating_llm import negotiate

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "selfplay_offline.yaml"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-selfplay-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-selfplay-0123456789")


async def test_ai_feedback_raises_the_coached_sellers_price_and_no_feedback_stays_flat(
    tmp_path: Path,
) -> None:
    spec = load_selfplay_spec(EXAMPLE).model_copy(
        update={"lineages": 60, "feedback": ["ai", "none"]}
    )
    with Store(tmp_path / "h.db") as store:
        run = await selfplay(spec, store=store)
        rows = {(r.arm, r.round): r for r in round_metrics(store, run.run_id)}

    ai_first, ai_last = rows["ai", 1].price, rows["ai", 3].price
    assert ai_last.low > ai_first.high, (
        f"AI feedback should lift the price: {ai_first} -> {ai_last}"
    )
    flat_first, flat_last = rows["none", 1].price, rows["none", 3].price
    assert flat_last.low <= flat_first.high and flat_first.low <= flat_last.high, (
        f"without feedback the price should stay put: {flat_first} -> {flat_last}"
    )
    # The arms start from the same games: round 1 is played before any feedback.
    assert ai_first.value == pytest.approx(flat_first.value)


async def test_the_round_k_prompt_holds_earlier_games_and_advice_but_not_the_rivals_brief(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    budget = 17.37
    spec = {
        "rules": {"buyer_budget": budget},
        "roles": {
            "seller": {"model": "openai/seller-llm", "api_base": fake_llm_server.openai_base},
            "buyer": {"model": "rule:linear"},
        },
        "critic": "rule",
        "rounds": 3,
        "lineages": 1,
    }
    with Store(tmp_path / "h.db") as store:
        run = await selfplay(spec, store=store)
        episodes = sorted(store.episodes(run.run_id), key=lambda e: e.round or 0)
        transcripts = [store.episode(e.id).transcript for e in episodes]
        (owner,) = store.memory_owners()
        advice = [m.content for m in store.memory(owner) if m.kind == "feedback"]

    assert [e.round for e in episodes] == [1, 2, 3]
    assert len(advice) == 3
    round_3 = [
        r for r in fake_llm_server.requests if "Round 2, your game" in r.messages[0]["content"]
    ]
    assert round_3, "no round-3 request carried the memory of round 2"
    system = round_3[0].messages[0]["content"]
    for earlier in transcripts[:2]:
        for turn in earlier:
            if turn.accepted:
                assert turn.text in system, f"round-3 prompt lacks {turn.text!r}"
    for words in advice[:2]:
        assert words in system
    # The price to beat is the latest deal of rounds 1 and 2, if there was one.
    deals = [e.outcome.price for e in episodes[:2] if e.outcome and e.outcome.kind == "deal"]
    if deals:
        assert f"for more than {format_price(deals[-1])}" in system
    else:
        assert "for more than $" not in system, "no deal yet, no price to beat"
    everything = json.dumps([r.json for r in fake_llm_server.requests])
    assert f"{budget:g}" not in everything, "the buyer's budget reached the seller's model"
    assert "cannot pay more than" not in everything


async def test_a_hosted_selfplay_run_with_critic_and_moderator_on_other_providers(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = lambda request: negotiate(
        request, tagged=len(request.messages) % 3 != 0
    )
    spec = {
        "roles": {
            "seller": {"model": "openai/gpt-4o-mini", "api_base": fake_llm_server.openai_base},
            "buyer": {"model": "anthropic/claude-buyer", "api_base": fake_llm_server.url},
        },
        "critic": {"model": "anthropic/claude-critic", "api_base": fake_llm_server.url},
        "moderator": {"model": "openai/gpt-moderator", "api_base": fake_llm_server.openai_base},
        "rounds": 2,
        "lineages": 2,
        "feedback": ["ai", "none"],
    }
    with Store(tmp_path / "h.db") as store:
        run = await selfplay(spec, store=store)
        lineages = store.lineages(run.run_id)
        feedback = [
            item
            for owner in store.memory_owners()
            for item in store.memory(owner)
            if item.kind == "feedback"
        ]
        episodes = store.episodes(run.run_id)
        rows = {(r.arm, r.round): r for r in round_metrics(store, run.run_id)}
        critiques = store.critiques(run_id=run.run_id)
        last_words = [
            [t.text for t in store.episode(e.id).transcript if t.accepted][-1]
            for e in episodes
            if e.arm == "ai"
        ]

    assert not run.failures
    assert len(lineages) == 4 and all(lin.status == "finished" for lin in lineages)
    assert len(episodes) == 8 and all(e.status == "finished" for e in episodes)
    assert len(feedback) == 4, "one critique per round of each AI-arm lineage"
    assert all("anthropic/claude-critic" in item.meta["source"] for item in feedback)
    assert all(item.meta["tokens"] == 330 for item in feedback)
    # The critic's calls are on the run's bill, and logged apart from the agents' memory.
    assert len(critiques) == 4 and all(c.model == "anthropic/claude-critic" for c in critiques)
    assert rows["ai", 1].tokens - rows["none", 1].tokens == 2 * 330
    critic_calls = [r for r in fake_llm_server.requests if r.model == "claude-critic"]
    moderator_calls = [r for r in fake_llm_server.requests if r.model == "gpt-moderator"]
    assert len(critic_calls) == 4 and all(r.api == "anthropic" for r in critic_calls)
    assert moderator_calls and all(r.api == "openai" for r in moderator_calls)
    # The critic read each whole game, its last message included (the paper's critic did not).
    critic_prompts = " ".join(call.last_user_text for call in critic_calls)
    for words in last_words:
        assert words in critic_prompts


async def test_a_named_agent_continues_its_rounds_and_its_price_to_beat(tmp_path: Path) -> None:
    from haggler.memory import AgentMemory, build_context
    from haggler.run.experiment import memory_owner

    spec = load_selfplay_spec(EXAMPLE).model_copy(
        update={"lineages": 1, "rounds": 2, "feedback": ["ai"], "agent": "alice"}
    )
    with Store(tmp_path / "h.db") as store:
        first = await selfplay(spec, store=store)
        second = await selfplay(spec, store=store)
        owner = memory_owner(spec, second.run_id, "ai", 0, "seller")
        memory = AgentMemory.load(store, owner)
    episodes = memory.items(kind="episode")
    assert [e.round for e in episodes] == [1, 2, 3, 4], "session two goes on from round 3"
    text = build_context(memory, budget_tokens=100_000).text
    for label in ("Round 1, your game", "Round 4, your game"):
        assert text.count(label) == 1
    assert first.run_id != second.run_id
