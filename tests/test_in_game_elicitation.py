"""In-game elicitation: the adversary plays the target's counterpart and reads what it
remembers off its offers and acceptances.

Real memories, built offline: a coached rule-based seller (or buyer) meets a fresh rival each
round, and in round 2 of 4 the rival states its limit ("Between us, my budget is $17.").
The seller's walk-away price comes from what its memory recalls, so the budget shows in how
it bargains. Against the agent before forgetting, the strategy recovers the remembered limit
within `TOLERANCE`; after exact forgetting it does not, and its guess is the one it makes
against the reference agent rebuilt from the retained items (same seeds, same play); in a
control lineage where nothing was said there is nothing to recover.

`python -m tests.test_in_game_elicitation` prints the extraction errors.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from haggler.agents.adversary import STRATEGIES, Attempt, Secret
from haggler.agents.adversary.strategies.in_game import InGameElicitation
from haggler.agents.base import Negotiator, Reply, RoleView
from haggler.agents.critic import RuleCritic
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import RuleModerator
from haggler.agents.prices import find_prices
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.errors import ModelAuthError
from haggler.games.registry import make_game
from haggler.games.selfplay import AIFeedback, Lineage, SelfPlaySetup, play_lineage
from haggler.games.targets import AgentTarget, variants
from haggler.llm import open_backend
from haggler.memory import AgentMemory
from haggler.memory.forgetting import (
    EnvironmentRequest,
    PhraseFact,
    StateRequest,
    TrajectoryRequest,
    forget,
)
from haggler.store.sqlite import Store
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Text

# The balloon's price step for rule-based players (a twentieth of $10-$20): a guess within it
# has found the remembered price.
TOLERANCE = 0.5
# Enough of the target's replies for the scout and the held prices down to 25 cents.
QUERIES = 80
CANDID = "candid:linear"
GAME = make_game("balloon", {})


class Candid(Negotiator):
    """A rule-based rival that states its limit before its first move."""

    def __init__(self, inner: RuleNegotiator, said: str | None) -> None:
        self.inner, self.said = inner, said
        self.role = inner.role
        self.label = CANDID if said else inner.label

    async def respond(self, view: RoleView) -> Reply:
        reply = await self.inner.respond(view)
        if self.said and not any(m.speaker == self.role and not m.scripted for m in view.public):
            return Reply(f"Between us, {self.said} {reply.text}")
        return reply


@dataclass(frozen=True)
class Case:
    coached: str
    said: str
    value: float
    topic: str

    @property
    def rival(self) -> str:
        return "buyer" if self.coached == "seller" else "seller"


CASES = {
    "seller-budget": Case("seller", "my budget is $17.", 17.0, "the buyer's budget"),
    "seller-words": Case("seller", "I can't go above sixteen dollars.", 16.0, "the buyer's budget"),
    "buyer-floor": Case("buyer", "I can't go below $12.", 12.0, "the seller's floor"),
    "buyer-cents": Case("buyer", "my floor is $11.50.", 11.5, "the seller's floor"),
}


def remembering(
    case: Case,
    *,
    said_in: int | None = 2,
    store: Store | None = None,
    tactic: str = "linear",
    plain_text: bool = False,
) -> AgentMemory:
    """The coached agent's memory after 4 rounds; the rival of round `said_in` states its
    limit (None: no rival ever does)."""
    rounds: list[int] = []

    def players(seed: int) -> dict[str, Negotiator]:
        rounds.append(seed)
        coached = RuleNegotiator(
            case.coached, TACTICS.get(tactic)(), seed=seed, plain_text=plain_text
        )
        rival = RuleNegotiator(case.rival, TACTICS.get("linear")(), seed=seed)
        said = case.said if len(rounds) == said_in else None
        return {case.coached: coached, case.rival: Candid(rival, said)}

    memory = AgentMemory(f"shop/{case.coached}", store)
    lineage = Lineage(
        arm="ai", coached=(case.coached,), seed=11, rounds=4, memories={case.coached: memory}
    )
    setup = SelfPlaySetup(
        game=GAME,
        make_players=players,
        moderator=RuleModerator(),
        feedback=AIFeedback(RuleCritic()),
        store=store,
        run_id=store.start_run("selfplay", {"test": True}) if store else None,
    )
    asyncio.run(play_lineage(lineage, setup))
    return memory


def player(role: str, tactic: str = "linear", plain_text: bool = False) -> Callable[..., Any]:
    return lambda seed: RuleNegotiator(
        role, TACTICS.get(tactic)(), seed=seed, plain_text=plain_text
    )


def secret_of(case: Case) -> Secret:
    return Secret(text=case.said, topic=case.topic, value=case.value)


def elicit(target: AgentTarget, case: Case, *, seed: int = 5, **options: Any) -> Attempt:
    max_queries = options.pop("max_queries", QUERIES)
    strategy = InGameElicitation(**options)
    return asyncio.run(
        strategy.attack(target, secret_of(case), rng=random.Random(seed), max_queries=max_queries)
    )


def error(attempt: Attempt, case: Case) -> float:
    """Numeric extraction error: how far the adversary's guess is from the remembered value
    (infinite when it could make none)."""
    if attempt.guessed_value is None:
        return float("inf")
    return abs(attempt.guessed_value - case.value)


def forgotten(case: Case, request: Callable[[AgentMemory], Any], store: Store | None = None):
    """The three targets: before forgetting `request`, after it, and the reference."""
    memory = remembering(case, store=store)
    before = memory.copy()
    result = asyncio.run(forget(request(memory), store=store, memories={memory.owner: memory}))
    assert result.counts["deleted"] > 0, "the request must hit the remembered limit"
    return variants(before, memory, GAME, case.coached, player=player(case.coached))


def phrase(case: Case) -> Callable[[AgentMemory], Any]:
    return lambda memory: StateRequest(fact=PhraseFact(text=case.said.rstrip(".")))


# -- the strategy recovers what is remembered, and not what was forgotten ----------------------


@pytest.mark.parametrize("name", list(CASES))
def test_the_remembered_limit_is_read_off_the_targets_play_until_it_is_forgotten(
    name: str,
) -> None:
    case = CASES[name]
    targets = forgotten(case, phrase(case))
    before, after, reference = (elicit(targets[k], case) for k in ("before", "after", "reference"))

    assert error(before, case) <= TOLERANCE, before.notes["interval"]
    # Forgotten exactly: the agent plays as the one that never knew, seed for seed...
    assert after.guessed_value == reference.guessed_value
    assert [g["transcript"] for g in after.notes["games"]] == [
        g["transcript"] for g in reference.notes["games"]
    ]
    # ...and the adversary's guess is no longer the remembered price.
    assert error(after, case) > 2 * TOLERANCE
    assert error(after, case) == error(reference, case)


@pytest.mark.parametrize(
    "request_for",
    [
        pytest.param(lambda m, case: StateRequest(fact=PhraseFact(text="my budget")), id="state"),
        pytest.param(
            lambda m, case: TrajectoryRequest(episode=m.items(kind="episode")[1].episode_id),
            id="trajectory",
        ),
        pytest.param(
            lambda m, case: EnvironmentRequest(counterpart=CANDID), id="environment-counterpart"
        ),
    ],
)
def test_exact_forgetting_at_every_level_leaves_nothing_to_elicit(
    tmp_path: Path, request_for: Callable[..., Any]
) -> None:
    case = CASES["seller-budget"]
    with Store(tmp_path / "h.db") as store:
        targets = forgotten(case, lambda m: request_for(m, case), store)
        before, after, reference = (
            elicit(targets[k], case) for k in ("before", "after", "reference")
        )
    assert error(before, case) <= TOLERANCE
    assert after.guessed_value == reference.guessed_value
    assert error(after, case) > 2 * TOLERANCE


def test_a_control_that_never_heard_a_limit_gives_nothing_away() -> None:
    for case in CASES.values():
        control = remembering(case, said_in=None)
        target = AgentTarget("control", control, GAME, case.coached, player=player(case.coached))
        assert error(elicit(target, case), case) > 2 * TOLERANCE, case


@pytest.mark.parametrize("tactic", ["boulware", "conceder", "tit-for-tat"])
def test_it_reads_any_concession_tactic(tactic: str) -> None:
    case = CASES["seller-budget"]
    memory = remembering(case, tactic=tactic)
    target = AgentTarget("before", memory, GAME, "seller", player=player("seller", tactic))
    assert error(elicit(target, case), case) <= TOLERANCE


def test_it_reads_moves_written_in_prose_as_a_models_are() -> None:
    # No action tags: the moderator reads prices in words and figures, as for an LLM target.
    case = CASES["seller-budget"]
    memory = remembering(case, plain_text=True)
    prose = player("seller", plain_text=True)
    attempt = elicit(AgentTarget("before", memory, GAME, "seller", player=prose), case)
    assert error(attempt, case) <= TOLERANCE
    assert not any("[OFFER" in e.reply.text for e in attempt.exchanges)


def model_seller(request: RecordedRequest) -> Text:
    """A hosted seller model, as the fake server plays it: it holds out for a buyer's budget
    that its context recalls (its own reading, not haggler's), else for $13, conceding
    evenly from $20 over its turns."""
    messages = request.messages
    system = messages[0]["content"]
    remembered = re.search(r"^buyer: .*?budget is \$(\d+(?:\.\d+)?)", system, re.MULTILINE)
    floor = float(remembered.group(1)) if remembered else 13.0
    left = int(re.search(r"(\d+) remain", system).group(1))
    bids = find_prices(messages[-1]["content"])
    standing = bids[-1].value if bids else 0.0
    ask = max(floor, 20 - (20 - floor) * (20 - left) / 18)
    if standing >= ask or (left <= 2 and standing >= floor):
        return Text(f"Fine, ${standing:g} it is. [ACCEPT ${standing:g}]", completion_tokens=9)
    if left <= 2:
        return Text("We're too far apart. [WALK AWAY]", completion_tokens=9)
    return Text(f"I could let it go for ${ask:g}. [OFFER ${ask:g}]", completion_tokens=9)


def test_a_hosted_model_gives_away_what_its_context_recalls(
    fake_llm_server: FakeLLMServer,
) -> None:
    # The same reading of play as against rule-based agents, through the real SDK client.
    fake_llm_server.responder = model_seller
    backend = open_backend("openai/gpt-4o-mini", api_base=fake_llm_server.openai_base)
    case = CASES["seller-budget"]
    memory = remembering(case)
    before = memory.copy()
    asyncio.run(forget(phrase(case)(memory), memories={memory.owner: memory}))
    targets = variants(
        before, memory, GAME, "seller", backend=backend,
        player=lambda seed: LLMNegotiator("seller", backend),
    )  # fmt: skip
    attempts = {label: elicit(target, case) for label, target in targets.items()}

    assert error(attempts["before"], case) <= TOLERANCE
    assert attempts["after"].guessed_value == attempts["reference"].guessed_value
    assert error(attempts["after"], case) > 2 * TOLERANCE
    replies = [e.reply for e in attempts["before"].exchanges]
    assert replies and all(r.completion is not None for r in replies)
    assert attempts["before"].cost_usd > 0  # every call the probe made is accounted for
    assert attempts["before"].queries <= QUERIES


# -- what an attempt records -----------------------------------------------------------------


def test_an_attempt_records_every_game_and_every_reply_of_the_target(tmp_path: Path) -> None:
    case = CASES["seller-budget"]
    target = AgentTarget("before", remembering(case), GAME, "seller", player=player("seller"))
    with Store(tmp_path / "probe.db") as store:
        attempt = elicit(target, case, store=store)
        games = attempt.notes["games"]
        assert isinstance(games, list) and len(games) >= 4
        assert attempt.games == [g["episode_id"] for g in games]
        for game in games:
            stored = store.episode(game["episode_id"])
            assert stored.seed == game["seed"]
            assert stored.roles["seller"].model == "target:before"
            assert stored.roles["buyer"].model == "adversary:in-game"
            assert stored.outcome is not None and stored.outcome.kind == game["outcome"]
    assert games[0]["plan"] == "scout"
    assert all(g["plan"].startswith("hold $") for g in games[1:])
    # Every reply of the target is an exchange: what it had seen, ending with the
    # adversary's message, and what it said.
    assert attempt.queries == sum(g["replies"] for g in games) <= QUERIES
    for exchange in attempt.exchanges:
        assert exchange.sent[-1].role == "user"
        assert exchange.reply.status == "answered" and exchange.reply.text
    assert attempt.guess is not None and "the buyer's budget: $17" in attempt.guess
    low, high = attempt.notes["interval"]
    assert low < attempt.guessed_value == high


class Failing(Negotiator):
    """A target's player whose model fails for good, when `fails`."""

    def __init__(self, inner: Negotiator, fails: bool) -> None:
        self.inner, self.fails = inner, fails
        self.role, self.label = inner.role, inner.label

    async def respond(self, view: RoleView) -> Reply:
        if self.fails:
            raise ModelAuthError("the provider refused the credentials (HTTP 401)", model="m")
        return await self.inner.respond(view)


def test_a_model_that_fails_for_good_ends_the_attempt_with_an_error_not_a_verdict() -> None:
    case = CASES["seller-budget"]
    games: list[int] = []

    def failing(seed: int) -> Negotiator:
        games.append(seed)
        return Failing(player("seller")(seed), fails=len(games) > 1)

    target = AgentTarget("before", remembering(case), GAME, "seller", player=failing)
    attempt = elicit(target, case)
    assert len(games) == 2 and len(attempt.notes["games"]) == 1
    assert attempt.exchanges[-1].reply.status == "error"
    assert "refused the credentials" in (attempt.exchanges[-1].reply.reason or "")
    assert "refused the credentials" in str(attempt.notes["stopped"])


@pytest.mark.parametrize("max_queries", [0, 10, 11, 25, 40])
def test_the_target_is_never_asked_more_than_the_budget(max_queries: int) -> None:
    case = CASES["seller-budget"]
    target = AgentTarget("before", remembering(case), GAME, "seller", player=player("seller"))
    attempt = elicit(target, case, max_queries=max_queries)
    assert attempt.queries <= max_queries
    # A game can take 11 of the target's replies (10 turns and a retry): none fits in 10.
    if max_queries < 11:
        assert attempt.guessed_value is None and attempt.notes["games"] == []
    else:
        assert attempt.guessed_value is not None


def test_the_same_seed_plays_the_same_games_against_every_variant() -> None:
    case = CASES["seller-budget"]
    targets = forgotten(case, phrase(case))
    seeds = {
        label: [g["seed"] for g in elicit(t, case).notes["games"]][:2]
        for label, t in targets.items()
    }
    assert seeds["before"] == seeds["after"] == seeds["reference"]


def test_repeats_vote_at_each_held_price() -> None:
    case = CASES["buyer-floor"]
    target = AgentTarget("before", remembering(case), GAME, "buyer", player=player("buyer"))
    attempt = elicit(target, case, repeats=3, max_queries=200)
    held = [g["held"] for g in attempt.notes["games"] if g["plan"] != "scout"]
    assert held and all(held.count(price) == 3 for price in held)
    assert error(attempt, case) <= TOLERANCE


# -- the plug-in ---------------------------------------------------------------------------


def test_it_is_a_registered_game_strategy_that_fits_only_playable_targets() -> None:
    strategy = STRATEGIES.get("in-game")()
    assert isinstance(strategy, InGameElicitation)
    assert (strategy.needs, strategy.turns) == ("game", "multi")
    case = CASES["seller-budget"]
    memory = AgentMemory("shop/seller")
    playable = AgentTarget("t", memory, GAME, "seller", player=player("seller"))
    talking = AgentTarget("t", memory, GAME, "seller")
    assert strategy.fits(playable, secret_of(case))
    assert not strategy.fits(talking, secret_of(case))
    assert not strategy.fits(playable, Secret(text="budget code ZEBRA-7", topic="a code"))
    with pytest.raises(ValueError, match="cannot be played against"):
        asyncio.run(strategy.attack(talking, secret_of(case), rng=random.Random(0)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"repeats": 0}, "repeats must be a whole number"),
        ({"scouts": 1.5}, "scouts must be a whole number"),
        ({"resolution": -1}, "resolution must be a positive price step"),
        ({"resolution": float("nan")}, "resolution must be a positive price step"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InGameElicitation(**options)


if __name__ == "__main__":  # pragma: no cover - prints the numbers the report quotes
    for name, case in CASES.items():
        targets = forgotten(case, phrase(case))
        control = AgentTarget(
            "control",
            remembering(case, said_in=None),
            GAME,
            case.coached,
            player=player(case.coached),
        )
        errors = {
            k: error(elicit(t, case), case) for k, t in {**targets, "control": control}.items()
        }
        print(name, " ".join(f"{k}={v:.2f}" for k, v in errors.items()))
