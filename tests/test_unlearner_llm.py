"""The LLM unlearner through the real openai SDK path against the fake server: strict JSON
(a fence tolerated), validation with the request models, retries that tell the model what was
wrong, refusal after N, and no crash on any reply. Its prompt holds ids and tags, never what
the memories say."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from haggler.agents.unlearner import LLMUnlearner
from haggler.agents.unlearner.llm import answer_schema
from haggler.errors import ModelAuthError, RequestError
from haggler.llm import RetryPolicy, open_backend
from haggler.llm.base import Backend
from haggler.memory import AgentMemory, Environment
from haggler.memory.forgetting import PhraseFact, StateRequest, TrajectoryRequest, ValueFact
from tests.fakes.llm_server import FakeLLMServer, Garbage, Status, Text

KEY = "sk-test-unlearner-0123456789"
FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0.0)
SECRETS = ("Springfield", "Zorblax", "budget is $14", "$42")


@pytest.fixture
def memories() -> dict[str, AgentMemory]:
    """Two agents that remember games and notes holding secrets."""
    seller, buyer = AgentMemory("shop/seller"), AgentMemory("shop/buyer")
    env = Environment("balloon", "balloon", "rule:linear")
    for memory, me in ((seller, "seller"), (buyer, "buyer")):
        mine = " (you)" if me == "buyer" else ""
        game = memory.remember_episode(
            f"seller: $20 [OFFER $20]\nbuyer{mine}: My budget is $14. [OFFER $10]\n"
            "Result: deal at $14.",
            env,
            episode_id="ep-20260101-000000-aaaa1111",
            round=1,
        )
        memory.remember_feedback("1. Concede in smaller steps.", env, about=[game], round=1)
    seller.remember_note(
        "Alice from Springfield paid $42; the courier Zorblax-9 was late.",
        Environment("balloon", "balloon"),
        tags=["vip"],
    )
    return {"shop/seller": seller, "shop/buyer": buyer}


@pytest.fixture
def backend(fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield open_backend(
        "openai/gpt-4o-mini", api_base=fake_llm_server.openai_base, retry_policy=FAST
    )


def answer(request: dict[str, object]) -> str:
    return json.dumps({"request": request})


VALUE_14 = answer({"level": "state", "fact": {"kind": "value", "value": 14}})


async def test_a_reply_becomes_the_request_with_its_cost(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(Text(VALUE_14, prompt_tokens=1000, completion_tokens=20))

    plan = await LLMUnlearner(backend).plan("forget fourteen dollars", memories=memories)

    assert isinstance(plan.request, StateRequest) and plan.request.fact == ValueFact(value=14)
    # Scope left out by the model: the memories' owners, not every agent of a store.
    assert plan.request.scope.agents == ("shop/seller", "shop/buyer")
    assert (plan.calls, plan.tokens, plan.attempts) == (1, 1020, 1)
    assert plan.cost_usd > 0 and plan.unlearner == "openai/gpt-4o-mini"
    [sent] = fake_llm_server.requests
    assert sent.model == "gpt-4o-mini" and sent.api == "openai"
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_the_prompt_holds_the_schema_the_index_and_the_words_never_the_content(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(answer({"level": "trajectory", "episode": "ep-20260101"}))

    plan = await LLMUnlearner(backend).plan("forget game ep-20260101", memories=memories)

    assert plan.request.episode == "ep-20260101-000000-aaaa1111", "a prefix is made whole"
    system, user = (m["content"] for m in fake_llm_server.requests[0].messages)
    assert json.dumps(answer_schema(), separators=(",", ":")) in system
    for level in ("StateRequest", "TrajectoryRequest", "EnvironmentRequest"):
        assert level in system
    prompt = json.loads(user)
    assert prompt["words"] == "forget game ep-20260101"
    assert prompt["index"]["agents"] == ["shop/seller", "shop/buyer"]
    assert prompt["index"]["played"][0]["id"] == "ep-20260101-000000-aaaa1111"
    assert prompt["index"]["tags"] == {"vip": 1}
    assert set(prompt["index"]["speakers"]) == {"seller", "buyer"}
    for secret in SECRETS:
        assert secret not in system + user, f"{secret!r} reached the unlearner's model"


async def test_a_fenced_reply_is_read(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(f"```json\n{VALUE_14}\n```")

    plan = await LLMUnlearner(backend).plan("forget $14", memories=memories)

    assert plan.request.fact == ValueFact(value=14) and plan.attempts == 1


async def test_an_unusable_reply_is_refused_with_the_reason_and_asked_again(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(
        "Sure! I'll forget that for you.",
        answer({"level": "state", "fact": {"kind": "value", "value": -3}}),
        f"Here it is: {VALUE_14}",
        VALUE_14,
    )
    unlearner = LLMUnlearner(backend, attempts=4)

    plan = await unlearner.plan("forget $14", memories=memories)

    assert plan.request.fact == ValueFact(value=14)
    assert (plan.calls, plan.attempts, unlearner.spent.retries) == (4, 4, 3)
    second, third, fourth = fake_llm_server.requests[1:]
    assert second.messages[-2] == {
        "role": "assistant",
        "content": "Sure! I'll forget that for you.",
    }
    assert "cannot be used: the reply is not JSON" in second.messages[-1]["content"]
    assert "request.state.fact.value.value" in third.messages[-1]["content"]
    assert "finite amount, 0 or more" in third.messages[-1]["content"]
    assert "not JSON" in fourth.messages[-1]["content"]


async def test_a_pattern_that_could_hang_planning_is_sent_back(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(
        answer({"level": "state", "fact": {"kind": "pattern", "regex": "(a+)+$"}}),
        answer({"level": "state", "fact": {"kind": "pattern", "regex": "a+$"}}),
    )

    plan = await LLMUnlearner(backend).plan("forget runs of a", memories=memories)

    assert plan.request.fact.regex == "a+$" and plan.attempts == 2  # type: ignore[union-attr]
    told = fake_llm_server.requests[1].messages[-1]["content"]
    assert "request.fact.regex" in told and "exponential time" in told


async def test_after_n_unusable_replies_the_words_are_refused(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(*["[1, 2, 3]"] * 3)
    unlearner = LLMUnlearner(backend, attempts=3)

    with pytest.raises(RequestError) as caught:
        await unlearner.plan("forget $14", memories=memories)

    message = str(caught.value)
    assert message.startswith('forget request "forget $14": openai/gpt-4o-mini gave no usable')
    assert "in 3 replies" in message and "JSON list, not an object" in message
    assert "rule-based unlearner" in message and "\n" not in message and KEY not in message
    assert unlearner.spent.calls == 3 and len(fake_llm_server.requests) == 3


async def test_a_model_that_finds_the_words_unclear_refuses_them_at_once(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(json.dumps({"unclear": "round 2 of which lineage?\x1b[2J\u202e"}))

    with pytest.raises(RequestError) as caught:
        await LLMUnlearner(backend).plan("forget round 2", memories=memories)

    message = str(caught.value)
    assert "round 2 of which lineage?" in message
    assert "\x1b" not in message and "\u202e" not in message and "\\x1b" in message
    assert len(fake_llm_server.requests) == 1


async def test_the_level_asked_for_is_held_and_the_mode_given_wins(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(
        VALUE_14,
        answer({"level": "trajectory", "episode": "ep-20260101-000000-aaaa1111", "mode": "exact"}),
    )

    plan = await LLMUnlearner(backend).plan(
        "forget the first game", memories=memories, level="trajectory", mode="redact"
    )

    assert isinstance(plan.request, TrajectoryRequest) and plan.request.mode == "redact"
    assert 'must be at level "trajectory"' in fake_llm_server.requests[1].messages[-1]["content"]
    assert json.loads(fake_llm_server.requests[0].messages[1]["content"])["level"] == "trajectory"


async def test_agents_the_model_names_are_kept(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(
        answer({"level": "environment", "tag": "vip", "scope": {"agents": ["shop/seller"]}})
    )

    plan = await LLMUnlearner(backend).plan(
        "forget everything tagged vip for agent shop/seller", memories=memories
    )

    assert plan.request.scope.agents == ("shop/seller",)
    [owner] = [o for o in plan.forget_plan(memories=memories).owners if o.hits]
    assert owner.owner == "shop/seller"


HOSTILE = [
    "",
    "   ",
    "x" * 1_000_000,
    "[" * 100_000,
    '{"request": ' * 5000,
    "\x00\x1b[31m{}",
    "{}",
    "null",
    '"a string"',
    json.dumps({"request": {"level": "state"}, "extra": {"\ud800" * 50: 1}}),
    json.dumps({"request": {"level": "nonsense"}}),
    json.dumps({"request": {"level": "trajectory", "episode": "a", "lineage": "b"}}),
    json.dumps({"unclear": ""}),
    json.dumps({"request": {"level": "state", "fact": {"kind": "pattern", "regex": "("}}}),
    json.dumps({"request": {"level": "state", "fact": {"kind": "value", "value": 1e999}}}),
    '{"request": {"level": "state", "fact": {"kind": "value", "value": NaN}}}',
    "```json\n[]\n```",
    "\ud800\udfff\ud800 lone surrogates, sent raw",
]


@pytest.mark.parametrize("reply", HOSTILE, ids=range(len(HOSTILE)))
async def test_no_reply_crashes_the_unlearner(
    fake_llm_server: FakeLLMServer,
    backend: Backend,
    memories: dict[str, AgentMemory],
    reply: str,
) -> None:
    fake_llm_server.script(*[reply] * 2)

    with pytest.raises(RequestError) as caught:
        await LLMUnlearner(backend, attempts=2).plan("forget $14", memories=memories)

    message = str(caught.value)
    assert "\n" not in message and "\x00" not in message and "\x1b" not in message
    assert len(message) < 1000
    # What the model was told about its reply is short and valid text, whatever it sent.
    told = fake_llm_server.requests[1].messages[-1]["content"]
    echoed = fake_llm_server.requests[1].messages[-2]["content"]
    assert len(told) < 1500 and len(echoed) < 2100
    (told + echoed).encode("utf-8")


async def test_a_reply_holding_unpaired_surrogates_is_asked_again(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(
        answer({"level": "state", "fact": {"kind": "phrase", "text": "\ud800x"}}),
        answer({"level": "state", "fact": {"kind": "phrase", "text": "x"}}),
    )

    plan = await LLMUnlearner(backend).plan("forget 'x'", memories=memories)

    assert plan.request.fact == PhraseFact(text="x") and plan.attempts == 2
    told = fake_llm_server.requests[1].messages[-1]["content"]
    assert "request.state.fact.phrase.text" in told and "unicode" in told
    fake_llm_server.requests[1].messages[-2]["content"].encode("utf-8")


async def test_garbage_from_the_server_is_retried_by_the_backend_not_the_unlearner(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(Garbage(), VALUE_14)

    plan = await LLMUnlearner(backend).plan("forget $14", memories=memories)

    assert plan.calls == 1 and plan.request.fact == ValueFact(value=14)


async def test_a_refused_key_is_the_backends_error_not_a_request_error(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    fake_llm_server.script(Status(401, "bad key"))

    with pytest.raises(ModelAuthError) as caught:
        await LLMUnlearner(backend).plan("forget $14", memories=memories)

    assert KEY not in str(caught.value)


async def test_bad_words_are_refused_before_any_call(
    fake_llm_server: FakeLLMServer, backend: Backend, memories: dict[str, AgentMemory]
) -> None:
    for words in ("", "x" * 5000):
        with pytest.raises(RequestError):
            await LLMUnlearner(backend).plan(words, memories=memories)

    assert fake_llm_server.requests == []


def test_attempts_must_be_one_or_more(backend: Backend) -> None:
    with pytest.raises(ValueError, match="attempts"):
        LLMUnlearner(backend, attempts=0)
