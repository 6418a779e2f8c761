"""The parts of self-play, each on its own: critics, advice, feedback arms, lineages, specs, CLI.

Every game here is rule-based and seeded, and hosted models are the fake server, so the whole
file runs offline in seconds.
"""

from __future__ import annotations

import asyncio
import csv
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haggler.agents.actions import Action, ActionKind
from haggler.agents.advice import Adjustment, read_advice
from haggler.agents.base import PublicMessage, RoleMemory, RoleView
from haggler.agents.critic import (
    Critic,
    Feedback,
    GameReview,
    LLMCritic,
    RuleCritic,
    parse_suggestions,
)
from haggler.agents.moderator import RuleModerator
from haggler.agents.prices import find_prices
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.cli import app
from haggler.errors import SpecError
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult, play_episode
from haggler.games.registry import make_game
from haggler.games.selfplay import (
    AIFeedback,
    ConstantFeedback,
    HumanFeedback,
    Lineage,
    NoFeedback,
    SelfPlaySetup,
    play_lineage,
)
from haggler.llm.providers import open_backend
from haggler.memory import AgentMemory
from haggler.run.experiment import lineage_seed, memory_owner, selfplay
from haggler.run.spec import SelfPlaySpec, check_selfplay_spec, load_selfplay_spec
from haggler.store.sqlite import Store
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Text
from tests.fakes.negotiating_llm import negotiate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY = "sk-test-selfplay-0123456789"
RIVAL = {"seller": "buyer", "buyer": "seller"}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY.replace("sk-test", "sk-ant-test"))


@pytest.fixture
def balloon() -> Game:
    return make_game("balloon", {})


def rule(role: str, tactic: str, seed: int = 0, **options: Any) -> RuleNegotiator:
    return RuleNegotiator(role, TACTICS.get(tactic)(), seed=seed, **options)


async def play(game: Game, seller: str, buyer: str, seed: int = 0, **options: Any) -> EpisodeResult:
    players = {"seller": rule("seller", seller, seed, **options)}
    players["buyer"] = rule("buyer", buyer, seed, **options)
    return await play_episode(game, players)


def review_of(game: Game, result: EpisodeResult, role: str) -> GameReview:
    """What self-play hands a critic after `result`, from `role`'s side."""
    outcome = result.outcome
    return GameReview(
        role=role,
        brief=game.brief(role),
        public=result.public,
        facts=game.facts,
        outcome=outcome.kind,
        reason=outcome.reason,
        price=outcome.price,
    )


def scripted_review(
    game: Game,
    role: str,
    moves: Sequence[tuple[str, float]],
    *,
    accepted_by: str,
) -> GameReview:
    """A deal after the scripted opening and `moves` (speaker, offer), accepted by `accepted_by`
    at the other side's last offer."""
    public = list(game.opening())
    for speaker, price in moves:
        action = Action(ActionKind.OFFER, price)
        public.append(PublicMessage(speaker, f"How about ${price:g}? [OFFER ${price:g}]", action))
    offers = [price for speaker, price in moves if speaker != accepted_by]
    price = offers[-1]
    public.append(
        PublicMessage(
            accepted_by,
            f"Deal at ${price:g}. [ACCEPT ${price:g}]",
            Action(ActionKind.ACCEPT, price),
        )
    )
    return GameReview(
        role=role,
        brief=game.brief(role),
        public=tuple(public),
        facts=game.facts,
        outcome="deal",
        reason="accepted",
        price=price,
    )


def critique(review: GameReview) -> tuple[str, ...]:
    return asyncio.run(RuleCritic().critique(review)).suggestions


def names_a_price(text: str) -> bool:
    return "$" in text or any(mention.marked for mention in find_prices(text))


# --- 1. the rule-based critic ---------------------------------------------------------------


async def test_rule_critic_gives_at_most_three_suggestions_and_never_a_price(
    balloon: Game,
) -> None:
    pairs = [("linear", "linear"), ("conceder", "boulware"), ("boulware", "conceder")]
    seen: set[str] = set()
    for seed in range(4):
        for seller, buyer in pairs:
            result = await play(balloon, seller, buyer, seed)
            for role in ("seller", "buyer"):
                feedback = await RuleCritic().critique(review_of(balloon, result, role))
                assert 1 <= len(feedback.suggestions) <= 3, feedback.suggestions
                for suggestion in feedback.suggestions:
                    assert not names_a_price(suggestion), suggestion
                    assert not re.search(r"\d", suggestion), suggestion
                    seen.add(suggestion)
                # The numbered text is what memory stores and negotiators read.
                assert feedback.text.splitlines()[0].startswith("1. ")
    assert len(seen) >= 3, "the critic should say different things about different games"


async def test_rule_critic_after_a_lost_deal_says_be_more_flexible(balloon: Game) -> None:
    # Walk-away prices near their own openings: no price suits both.
    result = await play(balloon, "linear", "linear", reserve_share=0.95, jitter=0)
    assert result.outcome.kind == "no_deal"
    for role in ("seller", "buyer"):
        suggestions = (await RuleCritic().critique(review_of(balloon, result, role))).suggestions
        assert any("more flexible" in s for s in suggestions), suggestions
        assert len(suggestions) <= 3
        # ...and a rule-based negotiator reads it as advice to yield.
        adjustment = read_advice(suggestions, role)
        assert adjustment.firmness < 1 and adjustment.ambition < 0


def test_rule_critic_after_an_invalid_game_mentions_action_tags(balloon: Game) -> None:
    review = GameReview(
        role="buyer",
        brief=balloon.brief("buyer"),
        public=tuple(balloon.opening()),
        facts=balloon.facts,
        outcome="invalid",
        reason="unreadable",
        price=None,
    )
    suggestions = critique(review)
    assert 1 <= len(suggestions) <= 3
    assert any("action tag" in s.lower() for s in suggestions), suggestions
    assert not any(names_a_price(s) for s in suggestions)


def test_rule_critic_tells_a_seller_who_conceded_more_than_the_buyer(balloon: Game) -> None:
    # The seller gives 20 -> 17 -> 15 (5 dollars); the buyer 10 -> 11 (1 dollar), then accepts.
    moves = [("seller", 17), ("buyer", 11), ("seller", 15)]
    suggestions = critique(scripted_review(balloon, "seller", moves, accepted_by="buyer"))
    assert any("conceded more than the buyer" in s for s in suggestions), suggestions
    assert len(suggestions) <= 3


def test_rule_critic_does_not_blame_a_seller_who_conceded_less(balloon: Game) -> None:
    # The buyer gives 10 -> 14 -> 16; the seller 20 -> 19.5 -> 19 ... then accepts 16.
    moves = [("seller", 19.5), ("buyer", 14), ("seller", 19), ("buyer", 16)]
    suggestions = critique(scripted_review(balloon, "seller", moves, accepted_by="seller"))
    assert not any("conceded more" in s for s in suggestions), suggestions
    # The buyer, reviewed on the same game, is the one told so, about the seller.
    buyer = critique(scripted_review(balloon, "buyer", moves, accepted_by="seller"))
    assert any("conceded more than the seller" in s for s in buyer), buyer


def test_rule_critic_mirrors_its_wording_for_the_buyer(balloon: Game) -> None:
    # A buyer whose first counter-offer jumped from 10 to 13.
    jumped = [("seller", 19.5), ("buyer", 13), ("seller", 19), ("buyer", 13.5)]
    opening = critique(scripted_review(balloon, "buyer", jumped, accepted_by="seller"))
    assert any("open lower" in s for s in opening), opening
    assert not any("open higher" in s for s in opening), opening
    # A buyer who moved little but accepted a price on the seller's side of the range.
    slow = [("seller", 18), ("buyer", 10.5), ("seller", 17), ("buyer", 11), ("seller", 16)]
    landed = critique(scripted_review(balloon, "buyer", slow, accepted_by="buyer"))
    assert any("aim lower" in s for s in landed), landed
    assert not any("aim higher" in s for s in landed), landed
    # A seller in the mirrored spot, moving little and accepting on the buyer's side.
    mirrored = [("seller", 19.5), ("buyer", 12), ("seller", 19), ("buyer", 13), ("seller", 18.5)]
    mirrored.append(("buyer", 14))
    seller = critique(scripted_review(balloon, "seller", mirrored, accepted_by="seller"))
    assert any("aim higher" in s for s in seller), seller
    assert not any("aim lower" in s for s in seller), seller


async def test_a_played_episode_ends_with_the_accepting_message(balloon: Game) -> None:
    result = await play(balloon, "conceder", "boulware", jitter=0)
    assert result.outcome.kind == "deal"
    last = result.public[-1]
    assert last.action is not None and last.action.kind is ActionKind.ACCEPT
    assert last.speaker == result.outcome.by
    assert last.action.price == result.outcome.price
    review = review_of(balloon, result, RIVAL[last.speaker])
    assert review.public[-1] == last


class RecordingCritic(Critic):
    label = "recording"

    def __init__(self) -> None:
        self.reviews: list[GameReview] = []

    async def critique(self, review: GameReview) -> Feedback:
        self.reviews.append(review)
        return Feedback(("Hold firm.",))


async def test_the_critic_of_a_lineage_sees_the_rivals_final_accepting_message(
    balloon: Game,
) -> None:
    # A yielding seller against a firm buyer: the buyer, the coached seller's rival, accepts.
    critic = RecordingCritic()
    setup = SelfPlaySetup(
        game=balloon,
        make_players=lambda seed: {
            "seller": rule("seller", "conceder", seed, jitter=0),
            "buyer": rule("buyer", "boulware", seed, jitter=0),
        },
        moderator=RuleModerator(),
        feedback=AIFeedback(critic),
    )
    memory = AgentMemory("coached-seller")
    lineage = Lineage(arm="ai", coached=("seller",), seed=3, rounds=1, memories={"seller": memory})
    result = await play_lineage(lineage, setup)
    (played,) = result.rounds
    (review,) = critic.reviews
    assert played.outcome.kind == "deal" and played.outcome.by == "buyer", played.outcome
    assert review.role == "seller" and review.brief == balloon.brief("seller")
    assert review.public == played.public
    last = review.public[-1]
    assert last.speaker == "buyer"
    assert last.action is not None and last.action.kind is ActionKind.ACCEPT
    assert (review.outcome, review.price) == ("deal", played.outcome.price)
    # The game the seller remembers holds that message too.
    (episode,) = memory.items("episode")
    assert last.text in episode.content


# --- 2. the LLM critic, through the fake server ---------------------------------------------

CRITIC_ANSWER = """Here is my advice:
1. Hold firm and make the buyer move first.
2. Ask for $15 next time.
3. Concede in smaller steps.
4. Never settle below 15 dollars.
5. Be patient near the end.
6. Open higher."""


@pytest.mark.parametrize(
    ("model", "coached"),
    [("openai/gpt-critic", "seller"), ("anthropic/claude-critic", "buyer")],
)
async def test_llm_critic_reads_the_coached_brief_and_whole_game_but_not_the_rivals_brief(
    keys: None, fake_llm_server: FakeLLMServer, balloon: Game, model: str, coached: str
) -> None:
    result = await play(balloon, "linear", "boulware", seed=2)
    assert result.outcome.kind == "deal"
    fake_llm_server.script(Text(CRITIC_ANSWER, prompt_tokens=300, completion_tokens=40))
    base = fake_llm_server.openai_base if model.startswith("openai/") else fake_llm_server.url
    backend = open_backend(model, api_base=base)
    try:
        feedback = await LLMCritic(backend).critique(review_of(balloon, result, coached))
    finally:
        await backend.aclose()

    (request,) = fake_llm_server.requests
    assert request.api == model.partition("/")[0]
    prompt = "\n".join(m["content"] for m in request.messages)
    assert balloon.brief(coached).text in prompt
    for message in result.public:
        assert f"{message.speaker}: {message.text}" in prompt
    # The final accepting message is there, as the last line of the game.
    assert result.public[-1].action is not None
    assert result.public[-1].action.kind is ActionKind.ACCEPT
    game_lines = [line for line in prompt.splitlines() if line.startswith(("seller:", "buyer:"))]
    assert game_lines[-1] == f"{result.public[-1].speaker}: {result.public[-1].text}"
    # Nothing of the rival's brief: neither its text nor its private values.
    rival_brief = balloon.brief(RIVAL[coached])
    assert rival_brief.text not in prompt
    own_text = balloon.brief(coached).text
    rival_only = [s for s in re.split(r"(?<=\.)\s+", rival_brief.text) if s not in own_text]
    assert rival_only
    for sentence in rival_only:
        assert sentence not in prompt, sentence
    if coached == "buyer":
        assert "$8" not in prompt and "cost" not in prompt.lower(), "the seller's cost leaked"

    assert feedback.suggestions == (
        "Hold firm and make the buyer move first.",
        "Concede in smaller steps.",
        "Be patient near the end.",
    )
    assert feedback.completion is not None
    assert feedback.completion.usage.total_tokens == 340


def test_parse_suggestions_keeps_at_most_three_numbered_items() -> None:
    text = "Sure, three tips:\n1. Hold firm.\n2) Be patient.\n3. Open high.\n4. Smile.\n"
    assert parse_suggestions(text) == ("Hold firm.", "Be patient.", "Open high.")


def test_parse_suggestions_drops_items_that_name_a_price() -> None:
    text = (
        "1. Ask for $15 next time.\n"
        "2. Do not go under 15 dollars.\n"
        "3. Hold firm.\n"
        "4. Say fifteen dollars is your limit.\n"
        "5. Be patient.\n"
        "6. Open high.\n"
        "7. Smile."
    )
    assert parse_suggestions(text) == ("Hold firm.", "Be patient.", "Open high.")
    assert parse_suggestions("1. $15.\n2. 15 dollars.") == ()


def test_parse_suggestions_reads_bullets_and_plain_lines() -> None:
    assert parse_suggestions("- Hold firm.\n* Be patient.\n• Open high.") == (
        "Hold firm.",
        "Be patient.",
        "Open high.",
    )
    plain = "Hold firm.\n\n  Be patient.  \nOpen high.\nSmile more."
    assert parse_suggestions(plain) == ("Hold firm.", "Be patient.", "Open high.")
    assert parse_suggestions("Hold firm and be patient.") == ("Hold firm and be patient.",)
    assert parse_suggestions("") == ()


# --- 3. advice as rule-based negotiators read it ---------------------------------------------


def test_smaller_steps_make_a_negotiator_firmer() -> None:
    for role in ("seller", "buyer"):
        adjustment = read_advice(["Concede in smaller steps."], role)
        assert adjustment.firmness > 1
        assert adjustment.ambition == 0


def test_aim_higher_is_for_sellers_and_aim_lower_for_buyers() -> None:
    assert read_advice(["Aim higher next time."], "seller").ambition > 0
    assert read_advice(["Aim higher next time."], "buyer").ambition == 0
    assert read_advice(["Aim lower next time."], "buyer").ambition > 0
    # For a seller "aim lower" is plainly less ambitious; for a buyer "aim higher" reads both
    # ways ("aim high" is also an idiom for ambition), so it is not taken.
    assert read_advice(["Aim lower next time."], "seller").ambition < 0


def test_be_more_flexible_lowers_firmness_and_ambition() -> None:
    for role in ("seller", "buyer"):
        adjustment = read_advice(["You lost the deal; be more flexible."], role)
        assert adjustment.firmness < 1
        assert adjustment.ambition < 0


def test_advice_accumulates_in_order() -> None:
    firm, aim = "Concede in smaller steps.", "Aim higher."
    one = read_advice([firm], "seller")
    both = read_advice([firm, aim], "seller")
    twice = read_advice([firm, aim, firm], "seller")
    assert both.firmness == one.firmness and both.ambition > one.ambition
    assert twice.firmness > both.firmness and twice.ambition == both.ambition
    # Several sentences of one text add up the same as the texts one by one.
    assert read_advice([f"{firm} {aim}\n{firm}"], "seller") == twice
    # Flexibility after firmness undoes part of it, whichever comes first.
    assert read_advice([firm, "Be more flexible."], "seller").firmness < one.firmness


def test_unrelated_words_change_nothing() -> None:
    for role in ("seller", "buyer"):
        assert read_advice(["Nice game.", "", "Thanks for playing!"], role) == Adjustment()
        assert read_advice([], role) == Adjustment()


def test_concede_more_slowly_is_advice_to_hold_firm() -> None:
    assert read_advice(["Concede more slowly."], "seller").firmness > 1


def test_dont_compromise_is_not_advice_to_yield() -> None:
    adjustment = read_advice(["Don't compromise on your price."], "seller")
    assert adjustment.firmness >= 1 and adjustment.ambition >= 0


def _asked(action: Action) -> float | None:
    return action.price if action.kind in (ActionKind.OFFER, ActionKind.ACCEPT) else None


def _view_before(
    game: Game, role: str, public: tuple[PublicMessage, ...], memory: RoleMemory | None
) -> RoleView:
    """What `role` sees when it is about to speak after `public`."""
    return RoleView(
        role=role,
        brief=game.brief(role),
        public=public,
        facts=game.facts,
        turn=sum(1 for m in public if not m.scripted),
        max_turns=game.max_turns,
        memory=memory,
    )


@pytest.mark.parametrize("role", ["seller", "buyer"])
async def test_a_rule_negotiator_with_advice_in_memory_asks_for_more(
    balloon: Game, role: str
) -> None:
    # A real game against a firm rival; at each of the player's turns, its decision with and
    # without the coach's advice in its memory.
    players = {role: rule(role, "linear", jitter=0), RIVAL[role]: rule(RIVAL[role], "boulware")}
    result = await play_episode(balloon, players)
    aim = "aim higher" if role == "seller" else "aim lower"
    memory = RoleMemory(
        history="...", advice=("1. Concede in smaller steps.", f"1. The deal was poor; {aim}.")
    )
    sign = 1 if role == "seller" else -1
    fresh = rule(role, "linear", jitter=0)
    compared = better = 0
    for k, message in enumerate(result.public):
        if message.speaker != role or message.scripted:
            continue
        prefix = result.public[:k]
        plain = _asked(fresh.decide(_view_before(balloon, role, prefix, None)))
        coached = _asked(fresh.decide(_view_before(balloon, role, prefix, memory)))
        if plain is None or coached is None:
            continue
        compared += 1
        assert sign * coached >= sign * plain, (k, plain, coached)
        better += sign * coached > sign * plain
    assert compared >= 5
    assert better >= compared // 2, "advice should move most decisions, not one"


# --- 4. feedback sources ---------------------------------------------------------------------


@pytest.fixture
def any_review(balloon: Game) -> GameReview:
    return scripted_review(balloon, "seller", [("seller", 17), ("buyer", 11)], accepted_by="seller")


async def test_no_feedback_gives_none(any_review: GameReview) -> None:
    assert await NoFeedback().give(any_review, random.Random(0)) is None


async def test_constant_feedback_gives_its_message(any_review: GameReview) -> None:
    default = await ConstantFeedback().give(any_review, random.Random(0))
    assert default is not None and len(default.suggestions) == 1
    assert "better than last round" in default.suggestions[0]
    told = await ConstantFeedback("Keep going.").give(any_review, random.Random(0))
    assert told is not None and told.suggestions == ("Keep going.",)


async def test_human_feedback_draws_three_distinct_suggestions_reproducibly(
    any_review: GameReview,
) -> None:
    pool = [
        line.strip()
        for line in (EXAMPLES / "human_feedback.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(pool) >= 4
    source = HumanFeedback(pool)
    draws = []
    for seed in range(6):
        feedback = await source.give(any_review, random.Random(seed))
        again = await source.give(any_review, random.Random(seed))
        assert feedback is not None and again is not None
        assert feedback.suggestions == again.suggestions, "a seeded draw must repeat"
        assert len(set(feedback.suggestions)) == 3
        assert set(feedback.suggestions) <= set(pool)
        draws.append(feedback.suggestions)
    assert len(set(draws)) > 1, "different seeds should draw differently"
    # A small pool gives what it has.
    small = await HumanFeedback(["Hold firm.", "Be patient."]).give(any_review, random.Random(0))
    assert small is not None and sorted(small.suggestions) == ["Be patient.", "Hold firm."]


def test_human_feedback_needs_a_pool() -> None:
    with pytest.raises(ValueError, match="at least one"):
        HumanFeedback([])


# --- 5. lineages, memory and the store ---------------------------------------------------------

RULE_ROLES = {"seller": "rule:linear", "buyer": "rule:linear"}
DEADLOCK_ROLES = {
    role: {"model": "rule:linear", "params": {"reserve_share": 0.95, "jitter": 0}}
    for role in ("seller", "buyer")
}


def _spec(**changes: Any) -> SelfPlaySpec:
    data = {"roles": RULE_ROLES, "critic": "rule", "rounds": 3, "lineages": 2, "seed": 5}
    return check_selfplay_spec(data | changes)


def _index(spec: SelfPlaySpec, seed: int) -> int:
    return next(i for i in range(spec.lineages) if lineage_seed(spec, i) == seed)


async def test_lineages_store_their_rounds_and_the_coached_memory(tmp_path: Path) -> None:
    spec = _spec(feedback=["ai", "none"])
    with Store(tmp_path / "h.db") as store:
        run = await selfplay(spec, store=store)
        lineages = store.lineages(run.run_id)
        episodes = store.episodes(run.run_id)
        owners = store.memory_owners()
        memories = {
            (arm, i): store.memory(memory_owner(spec, run.run_id, arm, i, "seller"))
            for arm in ("ai", "none")
            for i in range(spec.lineages)
        }

    assert sorted(lin.arm for lin in lineages) == ["ai", "ai", "none", "none"]
    assert all(
        (lin.status, lin.rounds_played, lin.coached) == ("finished", 3, "seller")
        for lin in lineages
    )
    assert {len(results) for results in run.lineages.values()} == {2} and not run.failures
    by_lineage: dict[str, dict[int, Any]] = {}
    for episode in episodes:
        lineage = next(lin for lin in lineages if lin.id == episode.lineage_id)
        assert episode.arm == lineage.arm
        assert episode.status == "finished"
        by_lineage.setdefault(lineage.id, {})[episode.round or 0] = episode
    assert {lin.id: sorted(by_lineage[lin.id]) for lin in lineages} == {
        lin.id: [1, 2, 3] for lin in lineages
    }

    # Only the coached seller of each lineage remembers anything; the rival starts fresh.
    assert sorted(owners) == sorted(
        memory_owner(spec, run.run_id, arm, i, "seller") for arm, i in memories
    )
    assert not any(owner.endswith("/buyer") for owner in owners)

    for lineage in lineages:
        index = _index(spec, lineage.seed)
        items = memories[(lineage.arm, index)]
        games = [item for item in items if item.kind == "episode"]
        advice = [item for item in items if item.kind == "feedback"]
        assert [g.round for g in games] == [1, 2, 3]
        assert [g.episode_id for g in games] == [by_lineage[lineage.id][r].id for r in (1, 2, 3)]
        assert all(g.game == "balloon" and g.item == "balloon" for g in games)
        assert all(g.counterpart == "rule:linear" for g in games)
        if lineage.arm == "none":
            assert advice == [] and len(items) == 3
            continue
        assert [a.round for a in advice] == [1, 2, 3]
        for feedback in advice:
            (game,) = [g for g in games if g.round == feedback.round]
            # About its game; the rule critic also read the earlier games the player recalled.
            earlier = [g.id for g in games if (g.round or 0) < (feedback.round or 0)]
            assert dict(feedback.relations) == {game.id: "about"} | dict.fromkeys(earlier, "context")
            assert feedback.meta["kind"] == "ai"
            assert 1 <= len(feedback.content.splitlines()) <= 3
        # The order in memory is play, then feedback on it, round after round.
        assert [i.kind for i in items] == ["episode", "feedback"] * 3


async def test_the_paper_rule_stops_a_lineage_at_its_first_failure(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        stopped = await selfplay(
            _spec(roles=DEADLOCK_ROLES, stop_at_first_failure=True), store=store
        )
        played_on = await selfplay(_spec(roles=DEADLOCK_ROLES), store=store)
        unrolled = store.lineages(stopped.run_id)
        full = store.lineages(played_on.run_id)
        unrolled_games = store.episodes(stopped.run_id)
        full_games = store.episodes(played_on.run_id)

    assert len(unrolled) == 2
    for lineage in unrolled:
        assert (lineage.status, lineage.rounds_played) == ("stopped", 1)
        assert lineage.stop_reason and lineage.stop_reason.startswith("round 1")
    assert sorted(e.round for e in unrolled_games) == [1, 1]
    assert all(e.outcome and e.outcome.kind == "no_deal" for e in unrolled_games)
    assert all(result.stopped for result in stopped.lineages["ai"])

    assert all((lin.status, lin.rounds_played) == ("finished", 3) for lin in full)
    assert sorted(e.round for e in full_games) == [1, 1, 2, 2, 3, 3]
    assert all(e.outcome and e.outcome.kind == "no_deal" for e in full_games)


async def test_arms_play_the_same_seeds(tmp_path: Path) -> None:
    spec = _spec(feedback=["ai", "none", "constant"], rounds=2)
    with Store(tmp_path / "h.db") as store:
        run = await selfplay(spec, store=store)
        seeds = {lin.id: (lin.arm, lin.seed) for lin in store.lineages(run.run_id)}
        first_games: dict[tuple[str, int], list[str]] = {}
        for summary in store.episodes(run.run_id):
            if summary.round == 1 and summary.lineage_id is not None:
                texts = [t.text for t in store.episode(summary.id).transcript]
                first_games[seeds[summary.lineage_id]] = texts
    assert len(first_games) == 6
    for i in range(spec.lineages):
        seed = lineage_seed(spec, i)
        assert first_games[("ai", seed)] == first_games[("none", seed)]
        assert first_games[("ai", seed)] == first_games[("constant", seed)]
    # Different lineages are different games.
    a, b = (first_games[("ai", lineage_seed(spec, i))] for i in range(2))
    assert a != b


async def test_a_named_agent_keeps_its_memory_from_run_to_run(tmp_path: Path) -> None:
    spec = _spec(agent="alice", lineages=1, rounds=2)
    owner = memory_owner(spec, "ignored", "ai", 0, "seller")
    assert owner.startswith("alice/")
    with Store(tmp_path / "h.db") as store:
        first = await selfplay(spec, store=store)
        after_first = AgentMemory.load(store, owner).items()
        second = await selfplay(spec, store=store)
        after_second = AgentMemory.load(store, owner).items()
        games = {
            run.run_id: {
                e.round: [t.text for t in store.episode(e.id).transcript]
                for e in store.episodes(run.run_id)
            }
            for run in (first, second)
        }
        second_ids = [e.id for e in store.episodes(second.run_id)]
        owners = store.memory_owners()

    assert owners == [owner]
    assert [(i.kind, i.round) for i in after_first] == [
        ("episode", 1),
        ("feedback", 1),
        ("episode", 2),
        ("feedback", 2),
    ]
    assert len(after_second) == 8
    assert after_second[:4] == after_first, "the second run starts from what the first left"
    new = after_second[4:]
    # The second session's rounds go on from the first's, so no round label repeats.
    assert [(i.kind, i.round) for i in new] == [(i.kind, (i.round or 0) + 2) for i in after_first]
    assert [i.episode_id for i in new if i.kind == "episode"] == second_ids
    # Same seeds, but the seller now starts with advice in mind: its first game changes.
    assert games[first.run_id][1] != games[second.run_id][1]


async def test_an_unnamed_agent_starts_afresh_each_run(tmp_path: Path) -> None:
    spec = _spec(lineages=1, rounds=1)
    with Store(tmp_path / "h.db") as store:
        first = await selfplay(spec, store=store)
        second = await selfplay(spec, store=store)
        owners = store.memory_owners()
        sizes = [len(store.memory(owner)) for owner in owners]
    assert sorted(owners) == sorted(
        memory_owner(spec, run.run_id, "ai", 0, "seller") for run in (first, second)
    )
    assert sizes == [2, 2]


def _seller_is_coached(request: RecordedRequest) -> bool:
    system = request.messages[0]["content"] if request.messages else ""
    return "You are selling" in system


async def test_a_hosted_seller_is_coached_by_a_critic_on_another_provider(
    keys: None, tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    advice = "1. Hold firm and make the buyer move first.\n2. Concede in smaller steps."

    def answer(request: RecordedRequest) -> Text:
        system = request.messages[0]["content"] if request.messages else ""
        if system.startswith("You coach"):
            return Text(advice, prompt_tokens=200, completion_tokens=20)
        return negotiate(request)

    fake_llm_server.responder = answer
    spec = {
        "roles": {
            "seller": {"model": "openai/gpt-seller", "api_base": fake_llm_server.openai_base},
            "buyer": "rule:linear",
        },
        "critic": {"model": "anthropic/claude-critic", "api_base": fake_llm_server.url},
        "rounds": 2,
        "lineages": 1,
        "retry": {"attempts": 1},
    }
    with Store(tmp_path / "h.db") as store:
        run = await selfplay(spec, store=store)
        (lineage,) = store.lineages(run.run_id)
        (owner,) = store.memory_owners()
        memory = store.memory(owner)
    assert (lineage.status, lineage.rounds_played) == ("finished", 2)
    assert [(i.kind, i.round) for i in memory] == [
        ("episode", 1),
        ("feedback", 1),
        ("episode", 2),
        ("feedback", 2),
    ]
    assert memory[1].content == advice and memory[1].meta["tokens"] == 220

    critic_requests = [r for r in fake_llm_server.requests if r.api == "anthropic"]
    assert len(critic_requests) == 2
    seller_requests = [r for r in fake_llm_server.requests if r.api == "openai"]
    assert all(_seller_is_coached(r) for r in seller_requests)
    later = [r for r in seller_requests if "What you remember" in r.messages[0]["content"]]
    assert later, "round 2 prompts carry the seller's memory"
    system = later[0].messages[0]["content"]
    round_one = memory[0].content.splitlines()
    assert all(line in system for line in round_one[:4])
    assert "Concede in smaller steps." in system
    buyer_brief = make_game("balloon", {}).brief("buyer").text
    every_prompt = "\n".join(m["content"] for r in seller_requests for m in r.messages)
    assert buyer_brief not in every_prompt
    assert "Buy it for as low a price" not in every_prompt


# --- 6. self-play specs ----------------------------------------------------------------------


def test_the_human_arm_needs_a_suggestions_file() -> None:
    with pytest.raises(SpecError) as caught:
        check_selfplay_spec({"feedback": ["ai", "human"]}, source="sp.yaml")
    assert caught.value.field == "human_feedback"
    assert str(caught.value).startswith("sp.yaml: human_feedback: ")


def test_a_missing_suggestions_file_is_named(tmp_path: Path) -> None:
    data = {"feedback": ["human"], "human_feedback": "absent.txt"}
    with pytest.raises(SpecError) as caught:
        check_selfplay_spec(data, source="sp.yaml", base=tmp_path)
    assert caught.value.field == "human_feedback"
    assert "absent.txt" in str(caught.value) and "not found" in str(caught.value)


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n\n"])
def test_an_empty_suggestions_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "tips.txt").write_text(content)
    data = {"feedback": ["human"], "human_feedback": "tips.txt"}
    with pytest.raises(SpecError) as caught:
        check_selfplay_spec(data, source="sp.yaml", base=tmp_path)
    assert caught.value.field == "human_feedback"
    assert "no suggestions" in str(caught.value)


def test_a_missing_spec_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_selfplay_spec(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"feedback": ["ai", "none", "ai"]}, "feedback", "once"),
        ({"feedback": "ai,ai"}, "feedback", "once"),
        ({"lineages": 0}, "lineages", "greater than or equal to 1"),
        ({"rounds": 0}, "rounds", "greater than or equal to 1"),
        ({"feedback": ["ai", "critic"]}, "feedback.1", "'ai'"),
        ({"feedback": []}, "feedback", "at least 1"),
        ({"coached": "rival"}, "coached", "no role 'rival' to coach; its roles are seller, buyer"),
    ],
)
def test_bad_selfplay_fields_are_named(data: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        check_selfplay_spec(data, source="sp.yaml")
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_relative_suggestions_are_read_beside_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "tips.txt").write_text("# tips\nHold firm.\n\nBe patient.\n")
    (folder / "spec.yaml").write_text("feedback: [none, human]\nhuman_feedback: tips.txt\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_selfplay_spec(folder / "spec.yaml")
    assert spec.human_feedback == folder / "tips.txt"
    assert spec.human_suggestions() == ["Hold firm.", "Be patient."]
    # An absolute path is taken as it is.
    absolute = {"feedback": ["human"], "human_feedback": str(folder / "tips.txt")}
    assert check_selfplay_spec(absolute, base=elsewhere).human_feedback == folder / "tips.txt"


def test_feedback_may_be_one_comma_separated_string() -> None:
    assert check_selfplay_spec({"feedback": "ai,none"}).feedback == ["ai", "none"]
    assert check_selfplay_spec({"feedback": " ai , constant "}).feedback == ["ai", "constant"]
    assert check_selfplay_spec({"feedback": "none"}).feedback == ["none"]


def test_the_offline_example_spec_loads() -> None:
    spec = load_selfplay_spec(EXAMPLES / "selfplay_offline.yaml")
    assert set(spec.feedback) >= {"ai", "none"}
    assert spec.coached_roles() == ("seller",)
    if "human" in spec.feedback:
        assert spec.human_feedback is not None and spec.human_feedback.is_absolute()
        assert len(spec.human_suggestions()) >= 3


# --- 7. the CLI ------------------------------------------------------------------------------

runner = CliRunner()


def haggler(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def _row_names(output: str) -> set[str]:
    """The first cell of every table row in `output`."""
    cells = (re.split(r"\s*[│┃|]\s*", line.strip()) for line in output.splitlines())
    return {parts[1] for parts in cells if len(parts) > 2 and parts[0] == ""}


def test_cli_selfplay_runs_both_arms_and_report_writes_plot_and_csv(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    spec = str(EXAMPLES / "selfplay_offline.yaml")
    args = ["--lineages", "3", "--rounds", "2", "--feedback", "ai,none", "--db", db]
    result = haggler("selfplay", spec, *args)
    assert result.exit_code == 0, result.output
    assert {"ai", "none"} <= _row_names(result.output), result.output
    assert "constant" not in _row_names(result.output)
    with Store(db) as store:
        (run,) = store.runs()
        lineages = store.lineages(run.id)
    assert sorted(lin.arm for lin in lineages) == ["ai"] * 3 + ["none"] * 3
    assert all(lin.rounds_played == 2 for lin in lineages)

    plot, table = tmp_path / "out.svg", tmp_path / "out.csv"
    report = haggler("report", "--plot", str(plot), "--csv", str(table), "--db", db)
    assert report.exit_code == 0, report.output
    assert {"ai", "none"} <= _row_names(report.output)
    root = ET.parse(plot).getroot()
    assert root.tag.endswith("svg")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["arm"], row["round"]) for row in rows) == [
        ("ai", "1"),
        ("ai", "2"),
        ("none", "1"),
        ("none", "2"),
    ]
    assert all(row["lineages"] == "3" for row in rows)


def test_cli_report_on_a_run_that_is_not_selfplay_says_so_in_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    assert haggler("play", "--db", db, "--quiet").exit_code == 0
    result = haggler("report", "--db", db)
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message, message
    assert message.startswith("error: ") and "self-play" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("feedback: [ai, human]\n", "human_feedback"),
        ("lineages: 0\n", "lineages"),
        ("feedback: [ai, ai]\n", "feedback"),
        ("roles: {seller: 'rule:stubborn'}\n", "roles.seller.model"),
    ],
)
def test_cli_bad_selfplay_spec_gets_one_line_naming_file_and_field(
    tmp_path: Path, content: str, field: str
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    db = tmp_path / "h.db"
    result = haggler("selfplay", str(spec), "--db", str(db))
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message, message
    assert message.startswith(f"error: {spec}: {field}"), message
    assert not db.exists(), "a bad spec must be refused before the store is touched"


def test_cli_flags_override_the_spec_and_are_checked_too(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text("roles: {seller: 'rule:linear', buyer: 'rule:linear'}\nfeedback: [ai]\n")
    result = haggler(
        "selfplay", str(spec), "--feedback", "ai,bogus", "--db", str(tmp_path / "h.db")
    )
    assert result.exit_code == 2
    assert f"{spec}: feedback" in result.output and "\n" not in result.output.strip()


def test_a_wrapped_suggestion_stays_one_suggestion_and_a_preamble_is_dropped() -> None:
    answer = "Here is my advice:\n1. Hold firm\n   on your price.\n2. Ask for $15.\n3. Be patient.\n4. Smile."
    assert parse_suggestions(answer) == ("Hold firm on your price.", "Be patient.", "Smile.")
