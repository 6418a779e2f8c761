"""A role's private brief never reaches another role's model, over many games and settings.

Everything the fake server receives is recorded, so the check covers the whole request a
provider would see (system prompt, messages, parameters), not only what haggler meant to send.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from haggler import play
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Text
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


# --- everything a provider receives, in self-play, tournaments and the grid ----------------------
#
# Each request is told apart by what it is for, read from its own content: a move of the seller
# or the buyer (its system prompt opens with that role's brief), a critic's advice to one of
# them (the critic reads exactly one player's brief), or the moderator's reading. A request of
# no known purpose fails the test, so nothing reaches a provider unchecked.

PURPOSES = ("seller", "buyer", "critic:seller", "critic:buyer", "moderator")
SELLING, BUYING = "You are selling a", "You want to buy a"


def purpose_of(request: RecordedRequest) -> str:
    messages = request.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    body = "\n".join(m["content"] for m in messages)
    if system.startswith("You moderate"):
        return "moderator"
    if system.startswith("You coach"):
        selling, buying = SELLING in body, BUYING in body
        assert selling != buying, f"a critic's request must hold one player's brief: {body!r}"
        return "critic:seller" if selling else "critic:buyer"
    if system.startswith(SELLING):
        return "seller"
    if system.startswith(BUYING):
        return "buyer"
    raise AssertionError(f"a request of unknown purpose reached the provider: {system[:120]!r}")


def advice_code(value: float) -> str:
    """A word only an echoing critic writes, from the private value it read in a brief."""
    return "ZX" + f"{value:g}".replace(".", "")


def echoing_critic(secrets: list[tuple[float, float]], untagged: random.Random) -> Any:
    """Negotiates like a model; as a critic, writes into its advice a code for every private
    value it finds in its prompt (no `$`, so the advice keeps it), so that advice carries the
    coached player's secret into that player's memory, where only it may read it."""

    def answer(request: RecordedRequest) -> Text:
        system = request.messages[0]["content"] if request.messages else ""
        if system.startswith("You coach"):
            body = json.dumps(request.json)
            codes = [
                advice_code(value) for pair in secrets for value in pair if f"{value:g}" in body
            ]
            return Text(
                f"1. Remember {' '.join(codes) or 'nothing'}.\n2. Concede in smaller steps.\n"
                "3. Hold firm.",
                prompt_tokens=300,
                completion_tokens=30,
            )
        return negotiate(request, tagged=untagged.random() < 0.7)

    return answer


def assert_private(requests: list[RecordedRequest], secrets: list[tuple[float, float]]) -> None:
    """No request made for one side holds the other side's private value, its brief's words
    or advice drawn from it; the moderator's hold none. And the check is not vacuous: every
    purpose was seen, each side's requests did hold its own values."""
    seen: dict[str, list[str]] = {purpose: [] for purpose in PURPOSES}
    for request in requests:
        purpose = purpose_of(request)
        body = json.dumps(request.json)
        seen[purpose].append(body)
        for cost, budget in secrets:
            sellers = (f"{cost:g}", advice_code(cost), "It cost you")
            buyers = (f"{budget:g}", advice_code(budget), "cannot pay more than")
            if purpose in ("buyer", "critic:buyer", "moderator"):
                for words in sellers:
                    assert words not in body, f"the seller's {words!r} reached the {purpose}"
            if purpose in ("seller", "critic:seller", "moderator"):
                for words in buyers:
                    assert words not in body, f"the buyer's {words!r} reached the {purpose}"
    for purpose, bodies in seen.items():
        assert bodies, f"no request for the {purpose}: the check would be vacuous"
    for side, index in (("seller", 0), ("buyer", 1)):
        own = " ".join(seen[side] + seen[f"critic:{side}"])
        assert any(f"{pair[index]:g}" in own for pair in secrets), side


def assert_advice_remembered(
    requests: list[RecordedRequest], secrets: list[tuple[float, float]], side: str
) -> None:
    """The echoing critic's advice to `side` reached `side`'s own later prompts (its memory)."""
    index = 0 if side == "seller" else 1
    moves = " ".join(json.dumps(r.json) for r in requests if purpose_of(r) == side)
    assert any(advice_code(pair[index]) in moves for pair in secrets), (
        f"the {side}'s advice never came back in its own prompts: its memory is not exercised"
    )


def random_secrets(count: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(_secret(rng, 1, 9), _secret(rng, 12, 19)) for _ in range(count)]


async def test_selfplay_with_both_roles_coached_keeps_briefs_and_advice_to_their_role(
    tmp_path: Any, fake_llm_server: FakeLLMServer
) -> None:
    from haggler.run.experiment import selfplay
    from haggler.store import Store

    secrets = random_secrets(3, 11)
    fake_llm_server.responder = echoing_critic(secrets, random.Random(5))
    with Store(tmp_path / "h.db") as store:
        for index, (cost, budget) in enumerate(secrets):
            spec = {
                "rules": {"seller_cost": cost, "buyer_budget": budget},
                "roles": {
                    "seller": {
                        "model": "openai/seller-model",
                        "api_base": fake_llm_server.openai_base,
                    },
                    "buyer": {"model": "anthropic/buyer-model", "api_base": fake_llm_server.url},
                },
                "moderator": {
                    "model": "openai/moderator-model",
                    "api_base": fake_llm_server.openai_base,
                },
                # Both coached; the critic of each is its own model (the paper's choice), and
                # in every other run one shared critic model coaches both.
                "critic": None
                if index % 2 == 0
                else {"model": "anthropic/critic-model", "api_base": fake_llm_server.url},
                "coached": "both",
                "rounds": 3,
                "lineages": 2,
                "feedback": ["ai", "constant"],
                "seed": index,
            }
            run = await selfplay(spec, store=store)
            assert not run.failures
    requests = fake_llm_server.requests
    assert_private(requests, secrets)
    assert_advice_remembered(requests, secrets, "seller")
    assert_advice_remembered(requests, secrets, "buyer")
    assert any(r.model == "critic-model" for r in requests)


async def test_a_tournament_on_a_selfplay_schedule_keeps_briefs_to_their_role(
    tmp_path: Any, fake_llm_server: FakeLLMServer
) -> None:
    from haggler.store import Store
    from haggler.tournament.running import run_tournament
    from haggler.tournament.spec import check_tournament_spec

    secrets = random_secrets(2, 12)
    fake_llm_server.responder = echoing_critic(secrets, random.Random(6))
    spec = check_tournament_spec(
        {
            "name": "private",
            # The same models play both roles, so what a request is for is read from it.
            "players": [
                {"name": "a", "model": "openai/model-a", "api_base": fake_llm_server.openai_base},
                {"name": "b", "model": "anthropic/model-b", "api_base": fake_llm_server.url},
                {"name": "tactic", "model": "rule:conceder"},
            ],
            "games": [
                {"game": "balloon", "rules": {"seller_cost": cost, "buyer_budget": budget}}
                for cost, budget in secrets
            ],
            "schedule": {"kind": "selfplay", "rounds": 2, "feedback": "ai", "coached": "seller"},
            "moderator": {
                "model": "openai/moderator-model",
                "api_base": fake_llm_server.openai_base,
            },
        }
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
    assert run.complete, run.errors
    requests = fake_llm_server.requests
    # Only sellers are coached here: there is no critic of the buyer to check.
    seen = {purpose_of(r) for r in requests}
    assert seen == {"seller", "buyer", "critic:seller", "moderator"}, seen
    coached_only = [r for r in requests if purpose_of(r) != "critic:buyer"]
    for request in coached_only:
        body = json.dumps(request.json)
        purpose = purpose_of(request)
        for cost, budget in secrets:
            if purpose in ("buyer", "moderator"):
                assert f"{cost:g}" not in body and advice_code(cost) not in body, purpose
                assert "It cost you" not in body
            if purpose in ("seller", "critic:seller", "moderator"):
                assert f"{budget:g}" not in body and "cannot pay more than" not in body, purpose
    assert_advice_remembered(requests, secrets, "seller")


async def test_the_grid_keeps_briefs_and_advice_to_their_role_in_every_cell(
    tmp_path: Any, fake_llm_server: FakeLLMServer
) -> None:
    from haggler.grid import check_grid_spec, grid_cells, run_grid
    from haggler.store import Store

    ((cost, budget),) = secrets = random_secrets(1, 13)
    fake_llm_server.responder = echoing_critic(secrets, random.Random(7))
    grid = check_grid_spec(
        {
            "name": "private",
            "rules": {"seller_cost": cost, "buyer_budget": budget},
            "pairs": [
                {
                    "name": "models",
                    "seller": {
                        "model": "openai/seller-model",
                        "api_base": fake_llm_server.openai_base,
                    },
                    "buyer": {"model": "anthropic/buyer-model", "api_base": fake_llm_server.url},
                }
            ],
            "moderator": {
                "model": "openai/moderator-model",
                "api_base": fake_llm_server.openai_base,
            },
            "arms": ["ai", "none"],
            "coached": ["seller", "buyer", "both"],
            "main": {"rounds": 2, "lineages": 1},
            "unrolled": {"rounds": 3, "lineages": 1},
        }
    )
    with Store(tmp_path / "h.db") as store:
        played = await run_grid(grid_cells(grid), store=store)
    assert played.complete
    requests = fake_llm_server.requests
    assert_private(requests, secrets)
    assert_advice_remembered(requests, secrets, "seller")
    assert_advice_remembered(requests, secrets, "buyer")


async def test_what_a_model_says_aloud_is_public(
    tmp_path: Any, fake_llm_server: FakeLLMServer
) -> None:
    # The guarantee covers briefs, not words: a seller whose model states its cost has told
    # the buyer, the moderator and the buyer's critic, as saying it across the table would.
    from haggler.run.experiment import selfplay
    from haggler.store import Store

    cost = 7.137
    untagged = random.Random(8)

    def loud(request: RecordedRequest) -> Text:
        reply = negotiate(request, tagged=untagged.random() < 0.5)
        if purpose_of(request) == "seller":
            return Text(f"It cost me {cost:g}. {reply.text}")
        return reply

    fake_llm_server.responder = loud
    spec = {
        "rules": {"seller_cost": cost},
        "roles": {
            "seller": {"model": "openai/seller-model", "api_base": fake_llm_server.openai_base},
            "buyer": {"model": "openai/buyer-model", "api_base": fake_llm_server.openai_base},
        },
        "moderator": {"model": "openai/moderator-model", "api_base": fake_llm_server.openai_base},
        "coached": "both",
        "rounds": 2,
        "lineages": 1,
    }
    with Store(tmp_path / "h.db") as store:
        await selfplay(spec, store=store)
    said = f"It cost me {cost:g}"
    for purpose in ("buyer", "critic:buyer", "moderator"):
        bodies = [json.dumps(r.json) for r in fake_llm_server.requests if purpose_of(r) == purpose]
        assert any(said in body for body in bodies), purpose
        assert not any("It cost you" in body for body in bodies), "the brief itself stays private"
