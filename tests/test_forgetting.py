"""Forgetting at three levels and in three modes, judged against the agent that never met it.

Every lineage here is rule-based and seeded: a coached seller meets a fresh buyer each round,
and the buyer lets slip a distinctive secret ("budget code ZEBRA-7") so there is something
real to forget. After each request the agent's next prompt is compared, byte for byte, with
that of an agent rebuilt from the retained items alone (counterfactual replay), and with a
lineage replayed from scratch that never met what was forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from haggler.agents.advice import read_advice
from haggler.agents.base import Negotiator, Reply, RoleView
from haggler.agents.critic import Feedback, RuleCritic
from haggler.agents.llm_negotiator import negotiator_prompt
from haggler.agents.moderator import RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.games.base import Game
from haggler.games.registry import make_game
from haggler.games.remembered import rederiver, review_of
from haggler.games.selfplay import (
    AIFeedback,
    FeedbackSource,
    Lineage,
    ScheduledForget,
    SelfPlaySetup,
    play_lineage,
    recall,
)
from haggler.memory import AgentMemory, MemoryItem
from haggler.memory.forgetting import (
    PLACEHOLDER,
    EnvironmentRequest,
    NameFact,
    PhraseFact,
    Scope,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
    forget,
    load_scope,
    plan_forget,
)
from haggler.store.export import export_jsonl
from haggler.store.sqlite import Store

SECRET = "budget code ZEBRA-7"
OWNER = "shop/ai/0/seller"


class Blabbing(Negotiator):
    """A rule-based buyer that lets its secret slip in its first message."""

    def __init__(self, inner: RuleNegotiator, secret: str | None) -> None:
        self.inner, self.secret = inner, secret
        self.role, self.label = inner.role, inner.label

    async def respond(self, view: RoleView) -> Reply:
        reply = await self.inner.respond(view)
        if self.secret and not any(m.speaker == self.role and not m.scripted for m in view.public):
            return Reply(f"Between us, my {self.secret}. {reply.text}")
        return reply


def players_for(secret_rounds: set[int]) -> Callable[[int], dict[str, Negotiator]]:
    """Round seeds -> players; the buyer of the rounds in `secret_rounds` blabs, and rounds
    alternate between two buyer tactics (two counterparts)."""
    seen: list[int] = []

    def make(seed: int) -> dict[str, Negotiator]:
        seen.append(seed)
        number = len(seen)
        tactic = "linear" if number % 2 else "conceder"
        buyer = RuleNegotiator("buyer", TACTICS.get(tactic)(), seed=seed, label=f"rule:{tactic}")
        seller = RuleNegotiator("seller", TACTICS.get("linear")(), seed=seed)
        return {
            "seller": seller,
            "buyer": Blabbing(buyer, SECRET if number in secret_rounds else None),
        }

    return make


def setup_for(game: Game, store: Store | None, secret_rounds: set[int]) -> SelfPlaySetup:
    run_id = store.start_run("selfplay", {"test": True}) if store else None
    return SelfPlaySetup(
        game=game,
        make_players=players_for(secret_rounds),
        moderator=RuleModerator(),
        feedback=AIFeedback(RuleCritic()),
        store=store,
        run_id=run_id,
    )


async def lineage_of(
    game: Game,
    store: Store | None,
    *,
    rounds: int = 4,
    secret_rounds: Sequence[int] = (2,),
    forgetting: Sequence[ScheduledForget] = (),
    owner: str = OWNER,
    budget: int = 2000,
) -> tuple[Lineage, SelfPlaySetup]:
    memory = AgentMemory(owner, store)
    lineage = Lineage(
        arm="ai", coached=("seller",), seed=11, rounds=rounds, memories={"seller": memory},
        forgetting=forgetting, memory_budget=budget,
    )  # fmt: skip
    setup = setup_for(game, store, set(secret_rounds))
    await play_lineage(lineage, setup)
    return lineage, setup


def next_prompt(memory: AgentMemory, game: Game) -> tuple[Any, ...]:
    """Everything the agent takes into its next game: the LLM prompt it would send, what a
    rule-based seller learns from its advice, and its goal."""
    lineage = Lineage(arm="ai", coached=("seller",), seed=0, rounds=1, memories={"seller": memory})
    recalled = recall(lineage, game, "seller").memory
    view = RoleView(
        role="seller",
        brief=game.brief("seller"),
        public=tuple(game.opening()),
        facts=game.facts,
        turn=0,
        max_turns=game.max_turns,
        memory=recalled,
    )
    learned = read_advice(recalled.advice, "seller")
    return (
        [m.as_dict() for m in negotiator_prompt(view)],
        (learned.firmness, learned.ambition),
        recalled.goal,
    )


def rebuilt(memory: AgentMemory) -> AgentMemory:
    """A new agent given only the items `memory` retains, with their links among themselves."""
    return memory.copy()


def contents(memory: AgentMemory) -> list[tuple[str, str, int | None]]:
    return [(item.kind, item.content, item.round) for item in memory]


@pytest.fixture
def balloon() -> Game:
    return make_game("balloon", {})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "h.db") as opened:
        yield opened


# -- provenance ------------------------------------------------------------------------------


def test_a_game_links_what_was_in_its_players_context_and_the_game_that_set_its_goal(
    balloon: Game,
) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, None, rounds=3))
    memory = lineage.memories["seller"]
    e1, f1, e2, f2, e3, f3 = memory.items()
    assert [i.kind for i in (e1, f1, e2, f2, e3, f3)] == ["episode", "feedback"] * 3
    assert dict(e1.relations) == {}
    assert dict(f1.relations) == {e1.id: "about"}
    # Round 2 was played with round 1 and its advice in the prompt (and to beat its price).
    assert dict(e2.relations) == {e1.id: "context", f1.id: "context"}
    assert dict(e3.relations) == {
        e1.id: "context",
        f1.id: "context",
        e2.id: "context",
        f2.id: "context",
    }
    assert f3.episode_id == e3.episode_id  # advice carries the id of the game it is about


def test_the_game_that_set_the_goal_is_linked_even_when_the_budget_left_it_out(
    balloon: Game,
) -> None:
    # Room for the newest advice only: the last game is no longer in the prompt, yet its
    # price is the one to beat.
    lineage, _ = asyncio.run(lineage_of(balloon, None, rounds=2, budget=40))
    e1, f1, e2, _ = lineage.memories["seller"].items()
    assert dict(e2.relations) == {e1.id: "goal", f1.id: "context"}


def test_the_price_to_beat_is_derived_from_the_memory_not_kept_beside_it(balloon: Game) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, None, rounds=3))
    memory = lineage.memories["seller"]
    last_deal = [i for i in memory.items(kind="episode") if i.meta["outcome"] == "deal"][-1]
    assert f"${last_deal.meta['price']:g}" in next_prompt(memory, balloon)[2].replace(",", "")
    memory.forget(memory.items(kind="episode")[0].id)  # everything hangs on round 1
    assert len(memory) == 0 and next_prompt(memory, balloon)[2] is None


# -- exact: counterfactual replay at each level ----------------------------------------------


@pytest.mark.parametrize(
    "request_for",
    [
        pytest.param(lambda m: StateRequest(fact=PhraseFact(text=SECRET)), id="state-phrase"),
        pytest.param(
            lambda m: TrajectoryRequest(episode=m.items(kind="episode")[1].episode_id),
            id="trajectory-game",
        ),
        pytest.param(
            lambda m: EnvironmentRequest(counterpart="rule:conceder"), id="environment-counterpart"
        ),
    ],
)
def test_exact_forgetting_leaves_the_agent_rebuilt_from_what_it_retains(
    balloon: Game, store: Store, request_for: Callable[[AgentMemory], Any]
) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=4, secret_rounds=(2,)))
    memory = lineage.memories["seller"]
    before = next_prompt(memory, balloon)
    assert SECRET in str(before[0])  # there is something to forget

    result = asyncio.run(forget(request_for(memory), store=store, memories={OWNER: memory}))

    assert result.counts["deleted"] > 0
    after = next_prompt(memory, balloon)
    assert after == next_prompt(rebuilt(memory), balloon)
    assert after != before and SECRET not in str(after)
    # Nothing kept derives from anything gone, and the store holds what memory holds.
    assert all(source in memory for item in memory for source in item.sources)
    assert contents(AgentMemory.load(store, OWNER)) == contents(memory)
    # Counterfactual: a lineage that stopped before the forgotten round is this agent.
    replay, _ = asyncio.run(
        lineage_of(balloon, None, rounds=len(memory.items(kind="episode")), owner="replay")
    )
    assert contents(replay.memories["seller"]) == contents(memory)


def test_a_fact_in_an_items_meta_is_forgotten_too_its_summary_stands_in_for_it() -> None:
    from haggler.memory import Environment, build_context

    memory = AgentMemory("a")
    game = memory.remember_episode(
        "seller (you): hello " + "x" * 400 + "\nResult: deal at $9.", Environment("balloon"),
        round=1, meta={"summary": f"the buyer let slip its {SECRET}"},
    )  # fmt: skip
    memory.remember_feedback("Hold firm.", Environment("balloon"), about=[game], round=1)
    # A budget with no room for the game: its summary is what the prompt shows.
    assert SECRET in build_context(memory, budget_tokens=40).text

    asyncio.run(forget(StateRequest(fact=PhraseFact(text=SECRET)), memories={"a": memory}))

    assert len(memory) == 0 and SECRET not in build_context(memory, budget_tokens=40).text


def test_a_value_in_a_summary_counts_as_money_not_as_a_round_or_a_count() -> None:
    from haggler.memory import Environment

    memory = AgentMemory("a")
    memory.remember_episode(
        "seller (you): hello\nResult: deal at $16.", Environment("balloon"), round=8,
        meta={"summary": "Round 8: deal at $16 after 8 messages."},
    )  # fmt: skip
    named = memory.remember_episode(
        "seller (you): hello\nResult: no deal.", Environment("balloon"), round=9,
        meta={"summary": "the buyer said its budget was $8"},
    )  # fmt: skip
    plan = plan_forget(StateRequest(fact=ValueFact(value=8)), memories={"a": memory})
    assert plan.owners[0].hits == [named.id]


def test_redact_scrubs_a_fact_from_meta_wherever_it_sits() -> None:
    from haggler.memory import Environment

    memory = AgentMemory("a")
    game = memory.remember_episode(
        "seller (you): hello\nResult: deal at $9.", Environment("balloon"), round=1,
        meta={"summary": SECRET, "notes": [f"again {SECRET}"], "deep": {"k": SECRET}},
    )  # fmt: skip
    request = StateRequest(fact=PhraseFact(text=SECRET), mode="redact")
    asyncio.run(forget(request, memories={"a": memory}))
    assert SECRET not in str(dict(memory.get(game.id).meta))
    assert memory.get(game.id).meta["notes"] == [f"again {PLACEHOLDER}"]


class AdviceOnce(FeedbackSource):
    """The rule critic's advice, with a distinctive tip after one round; no advice at all after
    rounds past `last` (a lineage that was never told that round's advice)."""

    kind = label = "ai"

    def __init__(self, tip_round: int, last: int = 99) -> None:
        self.critic, self.tip_round, self.last, self.given = RuleCritic(), tip_round, last, 0

    async def give(self, review: Any, rng: Any) -> Feedback | None:
        self.given += 1
        if self.given > self.last:
            return None
        advice = await self.critic.critique(review)
        if self.given == self.tip_round:
            return Feedback((*advice.suggestions, "Try the ZEBRA gambit: open at $25."))
        return advice


def _replayed(game: Game, rounds: int, feedback: FeedbackSource, budget: int = 2000) -> Lineage:
    lineage = Lineage(
        arm="ai", coached=("seller",), seed=11, rounds=rounds, memory_budget=budget,
        memories={"seller": AgentMemory("replay")},
    )  # fmt: skip
    setup = setup_for(game, None, set())
    setup.feedback = feedback
    setup.game_id = lambda number: f"game-{number}"
    asyncio.run(play_lineage(lineage, setup))
    return lineage


def test_exact_forgetting_of_advice_leaves_the_agent_that_was_never_given_it(
    balloon: Game,
) -> None:
    # Counterfactual replay where only the context links carry the influence: the games after
    # the advice were played with it in the prompt.
    memory = _replayed(balloon, 4, AdviceOnce(tip_round=2)).memories["seller"]
    assert "ZEBRA" in memory.items(kind="feedback")[1].content
    asyncio.run(
        forget(StateRequest(fact=PhraseFact(text="ZEBRA gambit")), memories={"replay": memory})
    )
    never = _replayed(balloon, 2, AdviceOnce(tip_round=0, last=1)).memories["seller"]
    assert contents(memory) == contents(never)
    assert next_prompt(memory, balloon) == next_prompt(never, balloon)


def test_exact_forgetting_of_a_game_that_only_set_the_goal_leaves_the_agent_that_never_played_it(
    balloon: Game,
) -> None:
    # No advice, and no room in the prompt for an earlier game (not even its summary): the only
    # influence of a game on the next is the price it set to beat.
    from haggler.games.selfplay import NoFeedback

    memory = _replayed(balloon, 3, NoFeedback(), budget=5).memories["seller"]
    relations = [r for i in memory for r in i.relations.values()]
    assert relations and all(r == "goal" for r in relations)
    asyncio.run(forget(TrajectoryRequest(episode="game-1"), memories={"replay": memory}))
    assert contents(memory) == [] and next_prompt(memory, balloon)[2] is None


def test_exact_forgetting_of_a_span_of_turns_removes_the_game_and_what_it_led_to(
    balloon: Game, store: Store
) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=3, secret_rounds=(2,)))
    memory = lineage.memories["seller"]
    game = memory.items(kind="episode")[1]
    request = TrajectoryRequest(episode=game.episode_id, turns=(2, 3))
    plan = plan_forget(request, memories={OWNER: memory}, store=store)
    assert plan.owners[0].hits == [game.id]
    asyncio.run(forget(request, store=store, memories={OWNER: memory}))
    assert [i.round for i in memory.items(kind="episode")] == [1]


def test_a_request_that_hits_nothing_changes_nothing(balloon: Game, store: Store) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=2))
    memory = lineage.memories["seller"]
    before = contents(memory)
    plan = plan_forget(
        StateRequest(fact=PhraseFact(text="never said")), memories={OWNER: memory}, store=store
    )
    assert plan.is_empty()
    asyncio.run(
        forget(
            StateRequest(fact=PhraseFact(text="never said")), store=store, memories={OWNER: memory}
        )
    )
    assert contents(memory) == before


def test_sequential_requests_compose_into_the_union_of_their_closures(
    balloon: Game, store: Store, tmp_path: Path
) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=4, secret_rounds=(3,)))
    memory = lineage.memories["seller"]
    first = StateRequest(fact=PhraseFact(text=SECRET))
    second = EnvironmentRequest(counterpart="rule:conceder")
    expected = {
        item_id
        for request in (first, second)
        for o in plan_forget(request, memories={OWNER: memory}, store=store).owners
        for item_id in o.delete
    }
    ids_before = {i.id for i in memory}
    asyncio.run(forget(first, store=store, memories={OWNER: memory}))
    asyncio.run(forget(second, store=store, memories={OWNER: memory}))
    assert ids_before - {i.id for i in memory} == expected
    assert len(store.forgettings()) == 2


# -- redact and rederive ---------------------------------------------------------------------


def test_redact_keeps_the_games_and_scrubs_the_fact_from_all_of_them(
    balloon: Game, store: Store
) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=3, secret_rounds=(1, 3)))
    memory = lineage.memories["seller"]
    count = len(memory)
    request = StateRequest(fact=PhraseFact(text=SECRET), mode="redact")

    result = asyncio.run(forget(request, store=store, memories={OWNER: memory}))

    assert len(memory) == count and result.counts["redacted"] == 2
    assert all(SECRET not in i.content for i in memory)
    assert sum(PLACEHOLDER in i.content for i in memory) == 2
    assert SECRET not in str(next_prompt(memory, balloon))
    assert contents(AgentMemory.load(store, OWNER)) == contents(memory)


def test_redacting_a_game_deletes_the_advice_on_it_and_keeps_what_it_led_to() -> None:
    from haggler.memory import Environment

    # Only the game is tagged: its advice is hit as advice on a game that goes, not by the tag.
    memory = AgentMemory("a")
    env = Environment("balloon")
    e1 = memory.remember_episode("seller (you): first\nResult: deal at $9.", env, tags=["x"])
    f1 = memory.remember_feedback("Hold firm next time.", env, about=[e1])
    e2 = memory.remember_episode("seller (you): second\nResult: deal at $9.", env, context=[e1, f1])
    request = EnvironmentRequest(tag="x", mode="redact")
    plan = plan_forget(request, memories={"a": memory})
    assert plan.owners[0].hits == [e1.id] and plan.owners[0].delete == [e1.id, f1.id]
    asyncio.run(forget(request, memories={"a": memory}))
    # Advice on a game that is gone cannot stand alone; the later game stays, its links cut.
    assert [i.id for i in memory] == [e2.id] and memory.get(e2.id).sources == ()


def test_redacting_a_value_also_stops_it_setting_the_goal(balloon: Game, store: Store) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=2))
    memory = lineage.memories["seller"]
    price = memory.items(kind="episode")[-1].meta["price"]
    goal = next_prompt(memory, balloon)[2]
    asyncio.run(
        forget(
            StateRequest(fact=ValueFact(value=price), mode="redact"),
            store=store,
            memories={OWNER: memory},
        )
    )
    assert next_prompt(memory, balloon)[2] != goal


def test_rederive_with_the_rule_critic_equals_the_agent_that_never_saw_the_fact(
    balloon: Game, store: Store
) -> None:
    lineage, setup = asyncio.run(lineage_of(balloon, store, rounds=3, secret_rounds=(1,)))
    memory = lineage.memories["seller"]
    request = StateRequest(fact=PhraseFact(text=SECRET), mode="rederive")

    result = asyncio.run(
        forget(
            request,
            store=store,
            memories={OWNER: memory},
            rederive=rederiver(balloon, setup.feedback),
        )
    )

    assert result.counts["rederived"] >= 1
    # Never saw it: the same (scrubbed) games, each criticised afresh by the same critic.
    never = AgentMemory("never")
    critic = RuleCritic()
    episodes = memory.items(kind="episode")
    for n, episode in enumerate(episodes):
        game = never.remember_episode(
            episode.content, episode.env, episode_id=episode.episode_id, round=episode.round,
            meta=dict(episode.meta),
        )  # fmt: skip
        # Its critic reads the earlier games it remembers, as the lineage's critic did.
        review = review_of(episode, balloon, episodes[:n])
        assert review is not None
        advice = asyncio.run(critic.critique(review))
        never.remember_feedback(advice.text, episode.env, about=[game], round=episode.round)
    assert next_prompt(memory, balloon) == next_prompt(never, balloon)
    assert SECRET not in str(next_prompt(memory, balloon))


class Snitch(FeedbackSource):
    """A critic that, like a model, says what it noticed: the buyer's secret, if it slipped."""

    kind = label = "snitch"

    async def give(self, review: Any, rng: Any) -> Feedback | None:
        said = " ".join(m.text for m in review.public)
        if "ZEBRA" in said:
            return Feedback((f"The buyer let its {SECRET} slip: use it.",))
        return Feedback(("Hold firm.",))


def test_rederive_re_makes_advice_that_itself_states_the_fact_rather_than_scrubbing_it(
    balloon: Game, store: Store
) -> None:
    memory = AgentMemory(OWNER, store)
    lineage = Lineage(arm="ai", coached=("seller",), seed=11, rounds=3, memories={"seller": memory})
    setup = setup_for(balloon, store, {1})
    setup.feedback = Snitch()
    asyncio.run(play_lineage(lineage, setup))
    request = StateRequest(fact=PhraseFact(text=SECRET), mode="rederive")
    asyncio.run(
        forget(request, store=store, memories={OWNER: memory},
               rederive=rederiver(balloon, setup.feedback))
    )  # fmt: skip
    # The agent that never saw it: the same scrubbed games, each criticised afresh.
    assert [i.content for i in memory.items(kind="feedback")] == ["1. Hold firm."] * 3


def test_advice_made_again_does_not_state_the_fact_again(balloon: Game, store: Store) -> None:
    from haggler.games.selfplay import ConstantFeedback

    memory = AgentMemory(OWNER, store)
    lineage = Lineage(arm="c", coached=("seller",), seed=11, rounds=2, memories={"seller": memory})
    setup = setup_for(balloon, store, set())
    setup.feedback = ConstantFeedback("Nice game. Try to do better than last round.")
    asyncio.run(play_lineage(lineage, setup))
    request = StateRequest(fact=PhraseFact(text="do better"), mode="rederive")
    result = asyncio.run(
        forget(request, store=store, memories={OWNER: memory},
               rederive=rederiver(balloon, setup.feedback))
    )  # fmt: skip
    assert result.counts["rederived"] == 2
    assert [i.content for i in memory.items(kind="feedback")] == [
        f"1. Nice game. Try to {PLACEHOLDER} than last round."
    ] * 2


# -- the record, the files, the audit --------------------------------------------------------


def test_a_purge_leaves_no_forgotten_byte_in_the_database_its_wal_or_an_export(
    balloon: Game, tmp_path: Path
) -> None:
    path = tmp_path / "h.db"
    secret = SECRET.encode()
    with Store(path) as store:
        lineage, setup = asyncio.run(lineage_of(balloon, store, rounds=3, secret_rounds=(1, 2)))
        memory = lineage.memories["seller"]
        export_jsonl(store, setup.run_id, tmp_path / "before.jsonl")
        assert secret in (tmp_path / "before.jsonl").read_bytes()
        assert secret in path.read_bytes() + Path(f"{path}-wal").read_bytes()

        request = StateRequest(fact=PhraseFact(text=SECRET), mode="redact", purge_record=True)
        result = asyncio.run(forget(request, store=store, memories={OWNER: memory}))

        assert result.erased is True
        assert result.counts["record_turns_scrubbed"] == 2
        wal = Path(f"{path}-wal")
        on_disk = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert secret not in on_disk
        export_jsonl(store, setup.run_id, tmp_path / "after.jsonl")
        assert secret not in (tmp_path / "after.jsonl").read_bytes()
        audit = store.forgettings()[0]
        assert SECRET not in audit.model_dump_json() and audit.erased


def _game_with_the_secret_everywhere(store: Store) -> tuple[str, str]:
    """A game of the record whose every text holds the secret: a message, the error its speaker
    was told, an LLM moderator's verdict on it, the outcome's reason, a role's persona prompt
    and brief, and the critic's advice; and a seller that remembers it. (run, game)"""
    from haggler.memory import Environment
    from haggler.store.records import ModerationRecord, OutcomeRecord, RoleRecord, TurnRecord

    run = store.start_run("selfplay", {"test": True})
    roles = {
        "seller": RoleRecord(model="rule:linear", brief=f"Sell; {SECRET}."),
        "buyer": RoleRecord(model="m", brief="Buy.", prompt=f"You are Bob; {SECRET}."),
    }
    game = store.start_episode(run, game="balloon", rules={}, roles=roles, seed=1)
    store.add_turn(
        game,
        TurnRecord(
            index=0, speaker="buyer", text=f"My {SECRET}.", accepted=False,
            error=f"your message 'My {SECRET}.' has no action", started_at=0, ended_at=0,
            moderation=ModerationRecord(model="m", unreadable_verdict=f"It says {SECRET}"),
        ),
    )  # fmt: skip
    store.finish_episode(game, OutcomeRecord(kind="no_deal", reason=f"quit over {SECRET}"), {})
    from haggler.store.records import CritiqueRecord

    store.add_critique(
        CritiqueRecord(episode_id=game, role="seller", source="rule", text=f"Use {SECRET}.",
                       prompt_tokens=0, completion_tokens=0, cost_usd=0.0, latency_s=0.0,
                       created_at=0.0)
    )  # fmt: skip
    memory = AgentMemory(OWNER, store)
    memory.remember_episode(
        f"buyer: My {SECRET}.\nResult: no deal.", Environment("balloon"), episode_id=game,
        meta={"turns": [0]},
    )  # fmt: skip
    return run, game


@pytest.mark.parametrize(
    "request_for",
    [
        pytest.param(lambda g: StateRequest(fact=PhraseFact(text=SECRET)), id="state-exact"),
        pytest.param(
            lambda g: StateRequest(fact=PhraseFact(text=SECRET), mode="redact"), id="state-redact"
        ),
        pytest.param(lambda g: TrajectoryRequest(episode=g, mode="redact"), id="game-blanked"),
    ],
)
def test_a_purge_reaches_every_text_of_the_record_not_only_the_messages(
    tmp_path: Path, request_for: Callable[[str], Any]
) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        run, game = _game_with_the_secret_everywhere(store)
        memory = AgentMemory.load(store, OWNER)
        request = request_for(game).model_copy(update={"purge_record": True})
        asyncio.run(forget(request, store=store, memories={OWNER: memory}))
        export_jsonl(store, run, tmp_path / "after.jsonl")
        shown = store.episode(game).model_dump_json()
    wal = Path(f"{path}-wal")
    on_disk = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert SECRET not in shown
    assert SECRET.encode() not in on_disk
    assert SECRET.encode() not in (tmp_path / "after.jsonl").read_bytes()


def test_a_fact_purged_from_the_record_leaves_the_runs_spec_and_stop_reasons_too(
    store: Store,
) -> None:
    from haggler.memory import Environment

    run = store.start_run("selfplay", {"rounds": 2, "note": f"the {SECRET} game"})
    lineage = store.start_lineage(run, arm="ai", coached="seller", seed=1, rounds_planned=2)
    store.update_lineage(lineage, rounds_played=1, status="stopped", stop_reason=f"{SECRET}!")
    game = store.start_episode(run, game="balloon", rules={}, roles={}, seed=1, lineage_id=lineage)
    memory = AgentMemory(OWNER, store)
    memory.remember_episode(f"buyer: {SECRET}", Environment("balloon"), episode_id=game)
    request = StateRequest(fact=PhraseFact(text=SECRET), mode="redact", purge_record=True)
    result = asyncio.run(forget(request, store=store, memories={OWNER: memory}))
    assert result.counts["record_runs_scrubbed"] == result.counts["record_lineages_scrubbed"] == 1
    assert SECRET not in str(store.runs()[0].spec) and SECRET not in str(store.lineages(run))


def test_a_fact_purged_within_one_game_leaves_the_record_of_other_games_alone(
    store: Store,
) -> None:
    from haggler.memory import Environment
    from haggler.store.records import RoleRecord, TurnRecord

    run = store.start_run("selfplay", {})
    memory = AgentMemory(OWNER, store)
    role = {"buyer": RoleRecord(model="m", brief="Buy.")}
    for name in ("balloon", "diamond"):
        game = store.start_episode(run, game=name, rules={}, roles=role, seed=1)
        store.add_turn(game, TurnRecord(index=0, speaker="buyer", text=f"My {SECRET}.",
                                        started_at=0, ended_at=0))  # fmt: skip
        memory.remember_episode(f"buyer: My {SECRET}.", Environment(name), episode_id=game)
    request = StateRequest(
        fact=PhraseFact(text=SECRET), scope=Scope(game="diamond"), purge_record=True
    )
    asyncio.run(forget(request, store=store, memories={OWNER: memory}))
    said = {e.game: store.episode(e.id).transcript[0].text for e in store.episodes(run)}
    assert said == {"balloon": f"My {SECRET}.", "diamond": f"My {PLACEHOLDER}."}


def test_a_span_purged_from_the_record_loses_its_turns_errors_and_verdicts_too(
    store: Store,
) -> None:
    _, game = _game_with_the_secret_everywhere(store)
    memory = AgentMemory.load(store, OWNER)
    request = TrajectoryRequest(episode=game, turns=(0, 0), purge_record=True)
    asyncio.run(forget(request, store=store, memories={OWNER: memory}))
    (turn,) = store.episode(game).transcript
    assert SECRET not in turn.model_dump_json()
    assert turn.text == turn.error == PLACEHOLDER


def test_purging_a_game_from_the_record_leaves_a_tombstone(balloon: Game, store: Store) -> None:
    lineage, setup = asyncio.run(lineage_of(balloon, store, rounds=3))
    memory = lineage.memories["seller"]
    game = memory.items(kind="episode")[2].episode_id
    request = TrajectoryRequest(episode=game, purge_record=True)

    result = asyncio.run(forget(request, store=store, memories={OWNER: memory}))

    assert result.counts["games_purged"] == 1
    assert store.purged_count(setup.run_id) == 1
    assert game not in {e.id for e in store.episodes(setup.run_id)}


def test_a_failed_store_write_leaves_memory_and_store_as_they_were(
    balloon: Game, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lineage, _ = asyncio.run(lineage_of(balloon, store, rounds=2))
    memory = lineage.memories["seller"]
    before = contents(memory)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "add_forgetting", broken)
    with pytest.raises(OSError):
        asyncio.run(
            forget(
                TrajectoryRequest(episode=memory.items()[0].episode_id),
                store=store,
                memories={OWNER: memory},
            )
        )
    assert contents(memory) == before == contents(AgentMemory.load(store, OWNER))


# -- scope -----------------------------------------------------------------------------------


def test_scope_names_agents_by_prefix_and_narrows_to_a_lineage(balloon: Game, store: Store) -> None:
    one, _ = asyncio.run(
        lineage_of(balloon, store, rounds=2, secret_rounds=(1,), owner="shop/ai/0/seller")
    )
    two, _ = asyncio.run(
        lineage_of(balloon, store, rounds=2, secret_rounds=(1,), owner="shop/ai/1/seller")
    )
    asyncio.run(lineage_of(balloon, store, rounds=2, secret_rounds=(1,), owner="other/ai/0/seller"))
    request = StateRequest(fact=PhraseFact(text=SECRET), scope=Scope(agents=("shop",)))
    assert sorted(load_scope(request, store=store)) == ["shop/ai/0/seller", "shop/ai/1/seller"]

    lineage_id = one.id
    assert lineage_id is not None
    narrowed = StateRequest(
        fact=PhraseFact(text=SECRET), scope=Scope(agents=("*",), lineage=lineage_id)
    )
    plan = plan_forget(narrowed, memories=load_scope(narrowed, store=store), store=store)
    hit = {o.owner for o in plan.owners if o.hits}
    assert hit == {"shop/ai/0/seller"}


def test_a_name_is_found_as_a_whole_word_in_any_case() -> None:
    from haggler.memory.forgetting.facts import fact_spans

    assert fact_spans(NameFact(name="Zebra"), "zebra, ZEBRA-7 and zebras") == [(0, 5), (7, 12)]
    assert [s for s in fact_spans(ValueFact(value=8), "$8, 8 dollars, eight bucks, $18, 8.5")] == [
        (0, 2), (4, 13), (15, 26),
    ]  # fmt: skip


# -- scheduled in a lineage ------------------------------------------------------------------


def test_a_lineage_forgets_between_rounds_and_plays_on_as_if_it_never_knew(
    balloon: Game, store: Store
) -> None:
    forgetting = [
        ScheduledForget(after_round=2, request=StateRequest(fact=PhraseFact(text=SECRET)))
    ]
    lineage, setup = asyncio.run(
        lineage_of(balloon, store, rounds=3, secret_rounds=(2,), forgetting=forgetting)
    )
    memory = lineage.memories["seller"]
    assert [i.round for i in memory.items(kind="episode")] == [1, 3]
    assert SECRET not in str([i.content for i in memory])
    (audit,) = store.forgettings(run_id=setup.run_id)
    assert audit.lineage_id == lineage.id and audit.after_round == 2


def test_a_named_agents_forgetting_is_marked_at_the_lineages_own_round(
    balloon: Game, store: Store
) -> None:
    # A named agent continues its memory: its second session's round 1 is its round 3. The
    # audit row must name the round of the lineage, which is where show and the viewer look.
    first, _ = asyncio.run(lineage_of(balloon, store, rounds=2, secret_rounds=()))
    memory = first.memories["seller"]
    lineage = Lineage(
        arm="ai", coached=("seller",), seed=12, rounds=2, memories={"seller": memory},
        forgetting=[ScheduledForget(after_round=1, request=EnvironmentRequest(tag="none-such"))],
    )  # fmt: skip
    lineage.continue_memory()
    assert lineage.memory_rounds == 2
    memory.remember_note("a note to forget", memory.items()[0].env, tags=["none-such"])
    setup = setup_for(balloon, store, set())
    asyncio.run(play_lineage(lineage, setup))
    (audit,) = store.forgettings(run_id=setup.run_id)
    assert audit.after_round == 1
    assert store.forgettings_by_round(setup.run_id or "")[(lineage.id or "", 1)] == [audit]


def test_an_older_store_is_migrated_so_exact_forgetting_removes_too_much_not_too_little(
    tmp_path: Path,
) -> None:
    import sqlite3

    from haggler.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for version in range(1, 5):
        db.executescript(MIGRATIONS[version])
    db.execute("PRAGMA user_version=4")
    rows = [
        ("e1", "episode", "game one", 1.0, "{}"),
        ("f1", "feedback", "advice one", 2.0, '{"episode_id": "ep-1"}'),
        ("e2", "episode", "game two", 3.0, "{}"),
        ("f2", "feedback", "advice two", 4.0, '{"episode_id": "ep-2"}'),
    ]
    for item_id, kind, content, at, meta in rows:
        db.execute(
            "INSERT INTO memory_items (id, owner, kind, content, game, tokens, created_at, "
            "meta_json) VALUES (?, 'old', ?, ?, 'balloon', 2, ?, ?)",
            (item_id, kind, content, at, meta),
        )
    db.executemany(
        "INSERT INTO memory_links (item_id, source_id) VALUES (?, ?)", [("f1", "e1"), ("f2", "e2")]
    )
    db.commit()
    db.close()

    with Store(path) as store:
        memory = AgentMemory.load(store, "old")
        assert dict(memory.get("f1").relations) == {"e1": "about"}
        assert dict(memory.get("e2").relations) == {"e1": "context", "f1": "context"}
        assert memory.get("f2").episode_id == "ep-2"
        assert memory.forget("e1") == ["e1", "f1", "e2", "f2"]


def test_show_the_viewer_and_exports_mark_where_forgetting_happened(
    balloon: Game, store: Store, tmp_path: Path
) -> None:
    import json

    from rich.console import Console

    from haggler.cli.render import print_episode
    from haggler.view.pages import game_page
    from haggler.view.server import _LINKS, game_view

    forgetting = [
        ScheduledForget(after_round=2, request=StateRequest(fact=PhraseFact(text=SECRET)))
    ]
    lineage, setup = asyncio.run(
        lineage_of(balloon, store, rounds=3, secret_rounds=(2,), forgetting=forgetting)
    )
    rounds = store.lineage_rounds(lineage.id or "")
    marked = "forgetting after round 2 (exact, state: phrase): 2 items deleted"

    console = Console(record=True, width=200)
    episode = store.episode(rounds[2])
    print_episode(
        console,
        episode,
        forgetting=store.forgettings_by_round(setup.run_id or "")[(lineage.id or "", 2)],
    )
    assert marked in console.export_text()
    assert marked in game_page(game_view(store, rounds[2]), _LINKS)
    assert marked not in game_page(game_view(store, rounds[1]), _LINKS)

    export_jsonl(store, setup.run_id or "", tmp_path / "x.jsonl")
    lines = {
        json.loads(line)["round"]: json.loads(line)
        for line in (tmp_path / "x.jsonl").read_text().splitlines()
    }
    (record,) = lines[2]["forgetting"]
    assert record["counts"]["deleted"] == 2 and record["target"] == "phrase"
    assert "hashes" not in record and lines[1]["forgetting"] == lines[3]["forgetting"] == []


# -- in a tournament -------------------------------------------------------------------------

TOURNAMENT = """\
name: forgetful
players:
  - {name: boulware, model: "rule:boulware"}
  - {name: linear, model: "rule:linear"}
schedule:
  kind: selfplay
  rounds: 3
  forget:
    - {after_round: 2, request: "forget the counterpart of round 1"}
"""


def test_a_tournaments_lineages_forget_between_rounds_and_store_the_audit_with_them(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from haggler.cli import app
    from haggler.tournament.schedule import expand
    from haggler.tournament.spec import check_tournament_spec, load_tournament_spec

    spec = tmp_path / "t.yaml"
    spec.write_text(TOURNAMENT)
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        (run,) = store.runs()
        audits = store.forgettings(run_id=run.id)
        lineages = store.lineages(run.id)
        assert len(audits) == len(lineages) == 2
        assert {a.lineage_id for a in audits} == {lin.id for lin in lineages}
        assert all(a.after_round == 2 and a.level == "environment" for a in audits)
        # The rival is one counterpart every round: everything before is forgotten.
        assert all(a.counts["deleted"] == 4 for a in audits)
        third = store.lineage_rounds(lineages[0].id)[2]
    shown = CliRunner().invoke(app, ["show", third, "--db", str(db)])
    assert "forgetting after round 2 (exact, environment: environment)" in shown.output

    # Forgetting is part of a lineage's content: the match ids change with it, and only then.
    with_forgetting = {job.id for job in expand(load_tournament_spec(spec))}
    plain = check_tournament_spec(
        {"name": "forgetful", "players": [{"name": "boulware", "model": "rule:boulware"},
         {"name": "linear", "model": "rule:linear"}], "schedule": {"kind": "selfplay", "rounds": 3}}
    )  # fmt: skip
    assert with_forgetting.isdisjoint(job.id for job in expand(plain))


def test_a_tournament_refuses_to_purge_a_record_it_has_not_written_yet(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from haggler.cli import app

    spec = tmp_path / "t.yaml"
    spec.write_text(
        TOURNAMENT.replace(
            '{after_round: 2, request: "forget the counterpart of round 1"}',
            "{after_round: 2, request: {level: environment, counterpart: 'rule:linear', "
            "purge_record: true}}",
        )
    )
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2
    assert "no record to purge yet; drop purge_record" in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- every level in every mode ---------------------------------------------------------------

LEVELS = {
    "state": lambda m: StateRequest(fact=PhraseFact(text=SECRET)),
    # Round 2's game, where the secret was said (and its counterpart, the conceder).
    "trajectory": lambda m: TrajectoryRequest(episode=m.items(kind="episode")[1].episode_id),
    "environment": lambda m: EnvironmentRequest(counterpart="rule:conceder"),
}


def _own_lines(item: MemoryItem) -> list[str]:
    """The messages of a remembered game past its scripted opening: its own words."""
    from haggler.memory.transcript import read_transcript

    messages, _ = read_transcript(item.content)
    return [m.text for m in messages[int(item.meta.get("scripted", 0)) :] if len(m.text) >= 12]


@pytest.mark.parametrize("level", sorted(LEVELS))
@pytest.mark.parametrize("mode", ["redact", "rederive"])
def test_redact_and_rederive_at_every_level_leave_no_forgotten_words(
    balloon: Game, store: Store, level: str, mode: str
) -> None:
    lineage, setup = asyncio.run(lineage_of(balloon, store, rounds=4, secret_rounds=(2,)))
    memory = lineage.memories["seller"]
    request = LEVELS[level](memory).model_copy(update={"mode": mode})
    plan = plan_forget(request, memories={OWNER: memory}, store=store)
    hits = [memory.get(i) for o in plan.owners for i in o.hits]
    gone = [line for item in hits if level != "state" for line in _own_lines(item)]
    influenced = {item.id for item in memory.descendants([item.id for item in hits])}

    asyncio.run(
        forget(
            request,
            store=store,
            memories={OWNER: memory},
            rederive=rederiver(balloon, setup.feedback),
        )
    )

    retained = "\n".join(item.content for item in memory)
    assert SECRET not in retained and SECRET not in str(next_prompt(memory, balloon))
    # The forgotten games' own words are in nothing made under their influence (an earlier
    # game may say the same words: rule-based players repeat themselves, uninfluenced).
    kept_influenced = "\n".join(item.content for item in memory if item.id in influenced)
    assert influenced and any(item.id in influenced for item in memory)
    for line in gone:
        assert line not in kept_influenced, line
    assert contents(AgentMemory.load(store, OWNER)) == contents(memory)
    if mode == "rederive":
        # With the rule-based critic: the agent that never saw it, which remembers the same
        # (scrubbed) games and had each criticised afresh.
        never = AgentMemory("never")
        episodes = memory.items(kind="episode")
        for n, episode in enumerate(episodes):
            game = never.remember_episode(
                episode.content, episode.env, episode_id=episode.episode_id,
                round=episode.round, meta=dict(episode.meta),
            )  # fmt: skip
            review = review_of(episode, balloon, episodes[:n])
            assert review is not None
            advice = asyncio.run(RuleCritic().critique(review))
            never.remember_feedback(advice.text, episode.env, about=[game], round=episode.round)
        assert next_prompt(memory, balloon) == next_prompt(never, balloon)


@pytest.mark.parametrize("level", sorted(LEVELS))
@pytest.mark.parametrize("mode", ["exact", "redact"])
def test_a_purge_at_every_level_leaves_no_forgotten_byte_on_disk_or_in_an_export(
    balloon: Game, tmp_path: Path, level: str, mode: str
) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        lineage, setup = asyncio.run(lineage_of(balloon, store, rounds=3, secret_rounds=(2,)))
        memory = lineage.memories["seller"]
        wal = Path(f"{path}-wal")
        assert SECRET.encode() in path.read_bytes() + wal.read_bytes()
        request = LEVELS[level](memory).model_copy(update={"mode": mode, "purge_record": True})

        result = asyncio.run(forget(request, store=store, memories={OWNER: memory}))

        assert result.erased is True
        on_disk = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert SECRET.encode() not in on_disk
        export_jsonl(store, setup.run_id or "", tmp_path / "after.jsonl")
        assert SECRET.encode() not in (tmp_path / "after.jsonl").read_bytes()
