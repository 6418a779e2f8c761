"""Games against hosted models, through litellm and the real SDK clients, on a fake server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haggler import Store, play
from haggler.cli import app
from tests.fakes.llm_server import FakeLLMServer, Status, Text
from tests.fakes.negotiating_llm import negotiate

KEY = "sk-test-hosted-0123456789"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY.replace("sk-test", "sk-ant-test"))


def hosted(model: str, server: FakeLLMServer, **extra: object) -> dict[str, object]:
    base = server.openai_base if model.startswith("openai/") else server.url
    return {"model": model, "api_base": base} | extra


async def test_two_hosted_models_play_a_game_and_every_turn_is_accounted(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    spec = {
        "roles": {
            "seller": hosted("openai/gpt-4o-mini", fake_llm_server, params={"temperature": 0.7}),
            "buyer": hosted("anthropic/claude-3-5-haiku-20241022", fake_llm_server),
        }
    }
    with Store(tmp_path / "h.db") as store:
        played = await play(spec, store=store)
        episode = store.episode(played.episode_id)

    assert played.result.outcome.kind == "deal", played.result.outcome
    assert 10 < (played.result.outcome.price or 0) < 20
    generated = [t for t in episode.transcript if not t.scripted]
    assert {t.model for t in generated} == {
        "openai/gpt-4o-mini",
        "anthropic/claude-3-5-haiku-20241022",
    }
    assert all(t.prompt_tokens > 0 and t.completion_tokens == 12 for t in generated)
    assert all(t.latency_s > 0 for t in generated)
    seller_costs = [t.cost_usd for t in generated if t.speaker == "seller"]
    assert all(cost > 0 for cost in seller_costs), "gpt-4o-mini has a price in litellm's map"
    apis = {r.api for r in fake_llm_server.requests}
    assert apis == {"openai", "anthropic"}
    openai_request = next(r for r in fake_llm_server.requests if r.api == "openai")
    assert openai_request.json["temperature"] == 0.7
    assert openai_request.headers["authorization"] == f"Bearer {KEY}"


async def test_a_model_that_never_writes_an_action_loses_the_game(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.responder = lambda request: Text("Hmm, balloons are lovely things.")
    spec = {"roles": {"buyer": hosted("openai/gpt-fake", fake_llm_server)}, "invalid_allowance": 2}
    played = await play(spec)
    outcome = played.result.outcome
    assert (outcome.kind, outcome.reason, outcome.by) == ("invalid", "unreadable", "buyer")
    rejected = [t for t in played.result.turns if not t.accepted]
    assert len(rejected) == 3 and all(t.speaker == "buyer" and t.error for t in rejected)
    # After each rejection the model was told why, privately, in its next prompt.
    corrected = [
        r for r in fake_llm_server.requests if "Moderator, to you only" in r.last_user_text
    ]
    assert len(corrected) == 2


async def test_an_llm_moderator_reads_untagged_messages_with_a_strict_verdict(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = lambda request: negotiate(request, tagged=False)
    spec = {
        "roles": {
            "seller": {"model": "rule:linear", "params": {"plain_text": True}},
            "buyer": hosted("openai/gpt-fake", fake_llm_server),
        },
        "moderator": hosted("anthropic/claude-moderator", fake_llm_server),
    }
    with Store(tmp_path / "h.db") as store:
        played = await play(spec, store=store)
        episode = store.episode(played.episode_id)
    assert played.result.outcome.kind == "deal"
    generated = [t for t in episode.transcript if not t.scripted]
    assert all(t.action is not None and t.action.source == "moderator" for t in generated)
    assert all(
        t.moderation and t.moderation.model == "anthropic/claude-moderator" for t in generated
    )
    assert all(t.moderation.prompt_tokens == 120 for t in generated if t.moderation)


async def test_a_moderator_answer_that_is_not_a_verdict_is_no_deal_found(
    fake_llm_server: FakeLLMServer,
) -> None:
    # The seed paper's code took any answer containing "yes" as a deal; here it is no verdict.
    fake_llm_server.responder = lambda request: Text("Yes, a deal was reached.")
    spec = {
        "roles": {"buyer": {"model": "rule:linear", "params": {"plain_text": True}}},
        "moderator": hosted("openai/gpt-moderator", fake_llm_server),
        "invalid_allowance": 0,
    }
    played = await play(spec)
    assert played.result.outcome.kind == "invalid"
    (turn,) = [t for t in played.result.turns if t.speaker == "buyer" and not t.scripted]
    assert not turn.accepted and turn.action is None
    assert turn.moderation and turn.moderation.unreadable_verdict == "Yes, a deal was reached."


async def test_rate_limits_and_server_errors_mid_game_are_retried(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.responder = negotiate
    fake_llm_server.script(Status(429, headers={"retry-after": "0"}), Status(503))
    spec = {
        "roles": {"seller": hosted("openai/gpt-fake", fake_llm_server)},
        "retry": {"attempts": 3, "initial_wait": 0.01, "max_wait": 0.05},
    }
    played = await play(spec)
    assert played.result.outcome.kind in ("deal", "no_deal")
    first = next(t for t in played.result.turns if not t.scripted)
    assert first.retries == 2


def test_the_cli_plays_a_hosted_model_named_in_a_spec(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    spec = tmp_path / "hosted.yaml"
    spec.write_text(
        f"roles:\n  buyer: {{model: openai/gpt-fake, api_base: '{fake_llm_server.openai_base}'}}\n"
    )
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, ["play", str(spec), "--db", str(db)], env=dict(os.environ))
    assert result.exit_code == 0, result.output
    assert "tok," in result.output, "hosted turns show their tokens and latency"
    for path in tmp_path.iterdir():
        assert KEY.encode() not in path.read_bytes(), f"the API key reached {path.name}"
    assert KEY not in result.output
