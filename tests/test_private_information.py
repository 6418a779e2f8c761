"""A role's private brief never reaches another role's model, over many games and settings.

Everything the fake server receives is recorded, so the check covers the whole request a
provider would see (system prompt, messages, parameters), not only what haggler meant to send.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from haggler import play
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest
from tests.fakes.negotiating_llm import negotiate

GAMES = 24


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-private-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-private-0123456789")


def _secret(rng: random.Random, low: float, high: float) -> float:
    # Two decimals that no negotiation price in these games will hit by chance.
    return round(rng.uniform(low, high), 2) + 0.007


def _requests_by(server: FakeLLMServer) -> dict[str, list[RecordedRequest]]:
    by_model: dict[str, list[RecordedRequest]] = {}
    for request in server.requests:
        by_model.setdefault(str(request.model), []).append(request)
    return by_model


async def test_private_values_never_reach_the_other_roles_model(
    fake_llm_server: FakeLLMServer,
) -> None:
    # Some messages go untagged, so the moderator's model reads them and is checked too.
    untagged = random.Random(7)
    fake_llm_server.responder = lambda request: negotiate(request, tagged=untagged.random() < 0.7)
    rng = random.Random(2023)
    settings = []
    for index in range(GAMES):
        cost = _secret(rng, 1, 9)
        budget = _secret(rng, 12, 19)
        settings.append((cost, budget))
        seller = {"model": "openai/seller-model", "api_base": fake_llm_server.openai_base}
        buyer = {"model": "anthropic/buyer-model", "api_base": fake_llm_server.url}
        # Every other game pits one model against a rule-based rival, the rest model vs model.
        if index % 3 == 1:
            seller = {"model": "rule:tit-for-tat"}
        elif index % 3 == 2:
            buyer = {"model": "rule:conceder"}
        spec = {
            "rules": {"seller_cost": cost, "buyer_budget": budget},
            "roles": {"seller": seller, "buyer": buyer},
            "moderator": {
                "model": "openai/moderator-model",
                "api_base": fake_llm_server.openai_base,
            },
            "seed": index,
        }
        await play(spec)

    by_model = _requests_by(fake_llm_server)
    assert by_model.get("seller-model") and by_model.get("buyer-model")
    assert by_model.get("moderator-model"), "untagged messages should have reached the moderator"
    for cost, budget in settings:
        cost_text, budget_text = f"{cost:g}", f"{budget:g}"
        for request in by_model["buyer-model"]:
            body = json.dumps(request.json)
            assert cost_text not in body, "the seller's cost reached the buyer's model"
            assert "It cost you" not in body
        for request in by_model["seller-model"]:
            body = json.dumps(request.json)
            assert budget_text not in body, "the buyer's budget reached the seller's model"
            assert "cannot pay more than" not in body
        for request in by_model["moderator-model"]:
            body = json.dumps(request.json)
            assert cost_text not in body and budget_text not in body

    # And each model did receive its own brief: the check above is not vacuous.
    seller_bodies = " ".join(json.dumps(r.json) for r in by_model["seller-model"])
    buyer_bodies = " ".join(json.dumps(r.json) for r in by_model["buyer-model"])
    assert any(f"{cost:g}" in seller_bodies for cost, _ in settings)
    assert any(f"{budget:g}" in buyer_bodies for _, budget in settings)


async def test_concurrent_games_keep_their_briefs_apart(fake_llm_server: FakeLLMServer) -> None:
    # Many games at once on one server: a brief must not bleed into another game's requests.
    fake_llm_server.responder = negotiate
    costs = [round(1 + i * 0.37, 2) + 0.003 for i in range(8)]
    specs = [
        {
            "rules": {"seller_cost": cost},
            "roles": {
                "seller": {"model": f"openai/seller-{i}", "api_base": fake_llm_server.openai_base},
                "buyer": {"model": f"openai/buyer-{i}", "api_base": fake_llm_server.openai_base},
            },
        }
        for i, cost in enumerate(costs)
    ]
    await asyncio.gather(*(play(spec) for spec in specs))
    by_model = _requests_by(fake_llm_server)
    for i, cost in enumerate(costs):
        for request in by_model[f"buyer-{i}"]:
            assert not any(f"{c:g}" in json.dumps(request.json) for c in costs)
        for request in by_model[f"seller-{i}"]:
            body = json.dumps(request.json)
            assert f"{cost:g}" in body
            assert not any(f"{c:g}" in body for c in costs if c != cost)
