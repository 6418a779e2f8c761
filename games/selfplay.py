"""Self-play with in-context AI feedback: play, criticise, remember, play again.

A lineage is R rounds for one coached player (or both). Each round the coached player sees its
memory of earlier rounds (transcripts and the coach's advice, under a token budget) and a goal
of beating its last price; the rival starts fresh every round. After the game the feedback
source (an AI critic, nothing, a constant message, or human-written suggestions) speaks, and
both the game and the feedback go into the player's memory, the feedback linked to the game it
criticised.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from haggler.agents.base import Negotiator, PublicMessage, RoleMemory
from haggler.agents.critic import Critic, Feedback, GameReview
from haggler.agents.moderator import Moderator
from haggler.errors import failure_reason
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult, TurnListener, play_episode, role_records
from haggler.games.remembered import (
    ending,
    history_of,
    price_to_beat,
    rederiver,
    remembered_game,
    seen_by,
)
from haggler.memory import AgentMemory, Environment, MemoryItem, TokenCounter, build_context
from haggler.memory.forgetting import ForgetRequest, ForgetResult, Where, forget
from haggler.memory.transcript import render_transcript
from haggler.store.records import CritiqueRecord, OutcomeRecord
from haggler.store.sqlite import Store

if TYPE_CHECKING:
    from haggler.agents.unlearner import Unlearner

__all__ = [
    "AIFeedback",
    "ConstantFeedback",
    "FeedbackSource",
    "HumanFeedback",
    "Lineage",
    "LineageResult",
    "NoFeedback",
    "Recall",
    "ScheduledForget",
    "SelfPlaySetup",
    "play_lineage",
    "recall",
]


# --- where feedback comes from --------------------------------------------------------------


class FeedbackSource(ABC):
    """One arm of an experiment: what the coached player is told after each game."""

    kind: str
    label: str

    @abstractmethod
    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        """Feedback on one game, or None when this arm gives none."""

    def reads_history(self, role: str) -> bool:
        """Whether the feedback for `role` reads the player's earlier games."""
        return False


class AIFeedback(FeedbackSource):
    """A critic's suggestions; with both roles coached, each role may have its own critic."""

    kind = "ai"

    def __init__(self, critic: Critic | Mapping[str, Critic]) -> None:
        self.critics: Mapping[str, Critic] | Critic = critic
        chosen = critic.values() if isinstance(critic, Mapping) else [critic]
        self.label = f"ai ({', '.join(sorted({c.label for c in chosen}))})"

    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        return await self._critic(review.role).critique(review)

    def reads_history(self, role: str) -> bool:
        return self._critic(role).reads_history

    def _critic(self, role: str) -> Critic:
        critics = self.critics
        return critics[role] if isinstance(critics, Mapping) else critics


class NoFeedback(FeedbackSource):
    kind = label = "none"

    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        return None


class ConstantFeedback(FeedbackSource):
    """The paper's control: the same encouraging words after every game."""

    kind = label = "constant"

    def __init__(self, message: str = "Nice game. Try to do better than last round.") -> None:
        self.message = message

    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        return Feedback((self.message,))


class HumanFeedback(FeedbackSource):
    """Suggestions drawn from a pool written by people, as the paper's human-feedback baseline."""

    kind = label = "human"

    def __init__(self, suggestions: Sequence[str], per_game: int = 3) -> None:
        if not suggestions:
            raise ValueError("human feedback needs at least one suggestion")
        self.suggestions = tuple(suggestions)
        self.per_game = min(per_game, len(self.suggestions))

    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        return Feedback(tuple(rng.sample(self.suggestions, self.per_game)))


# --- lineages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduledForget:
    """A forget request a lineage carries out after round `after_round`, between the critic
    and the next round: a typed request, or words for the unlearner to turn into one."""

    after_round: int
    request: ForgetRequest | str
    # For words: how to read them (the rule-based unlearner when None), and the level and
    # mode the reading must keep to, if given.
    unlearner: Unlearner | None = None
    level: str | None = None
    mode: str | None = None


@dataclass(slots=True)
class Lineage:
    """The plan and the state of one lineage; `memories` hold one AgentMemory per coached role.

    What a coached role learned (its price to beat, its tactic's parameters) is derived from
    its memory each round, never kept here: forgetting an item forgets what it taught.
    """

    arm: str
    coached: tuple[str, ...]
    seed: int
    rounds: int
    memories: Mapping[str, AgentMemory]
    stop_at_first_failure: bool = False
    memory_budget: int = 2000
    id: str | None = None
    # Rounds the memories already hold from earlier sessions: this session's round k is the
    # agent's round `memory_rounds + k`, so recollections never repeat a round label.
    memory_rounds: int = 0
    # Forget requests to carry out between rounds, in the order given.
    forgetting: Sequence[ScheduledForget] = ()
    # How each coached role's context budget is counted (its model's tokenizer, if known).
    counters: Mapping[str, TokenCounter] = field(default_factory=dict)

    def continue_memory(self) -> None:
        """Pick up where reloaded memories left off: their round count."""
        for memory in self.memories.values():
            episodes = memory.items(kind="episode")
            self.memory_rounds = max(self.memory_rounds, *(i.round or 0 for i in episodes), 0)


@dataclass(frozen=True, slots=True)
class LineageResult:
    lineage_id: str | None
    rounds: tuple[EpisodeResult, ...]
    feedback: tuple[Mapping[str, Feedback | None], ...]
    stopped: str | None = None
    # What each scheduled forget request did, in order.
    forgotten: tuple[ForgetResult, ...] = ()


@dataclass(slots=True)
class SelfPlaySetup:
    """What every lineage of an arm shares."""

    game: Game
    # Fresh players for a round, from its seed: the rival never carries anything over.
    make_players: Callable[[int], dict[str, Negotiator]]
    moderator: Moderator
    feedback: FeedbackSource
    invalid_allowance: int = 1
    store: Store | None = None
    run_id: str | None = None
    # Told after every round, for progress displays.
    on_round: Callable[[], None] | None = None
    # Names each round's game where no store does (a tournament, which stores a lineage
    # when it ends, names it by its match round): memory items carry it, so a forget request
    # can name the game.
    game_id: Callable[[int], str] | None = None


def critique_record(
    feedback: Feedback, role: str, source: str, episode_id: str = ""
) -> CritiqueRecord:
    """`feedback` to `role` as the store logs it, with what producing it cost."""
    completion = feedback.completion
    return CritiqueRecord(
        episode_id=episode_id,
        role=role,
        source=source,
        text=feedback.text,
        model=completion.model if completion else None,
        prompt_tokens=completion.usage.prompt_tokens if completion else 0,
        completion_tokens=completion.usage.completion_tokens if completion else 0,
        cost_usd=completion.cost_usd if completion else 0.0,
        latency_s=completion.latency_s if completion else 0.0,
        created_at=time.time(),
        usage_estimated=completion.usage.estimated if completion else False,
    )


def round_seed(seed: int, round_number: int) -> int:
    """A distinct, reproducible seed per lineage round."""
    return random.Random(f"{seed}/{round_number}").randrange(2**31)


def render_game(public: Sequence[PublicMessage], role: str, ending: str) -> str:
    """A game as its player remembers it: the public conversation, its own lines marked."""
    return render_transcript([(m.speaker, m.text) for m in public], role, ending)


# --- the lineage as a graph: play -> critique -> unlearn -> play ... -------------------------


@dataclass(slots=True)
class _Run:
    """What one lineage's graph works with besides its state."""

    lineage: Lineage
    setup: SelfPlaySetup
    rng: random.Random
    results: list[EpisodeResult] = field(default_factory=list)
    feedbacks: list[Mapping[str, Feedback | None]] = field(default_factory=list)
    forgotten: list[ForgetResult] = field(default_factory=list)
    players: dict[str, Negotiator] = field(default_factory=dict)
    recalled: dict[str, Recall] = field(default_factory=dict)
    episode_id: str | None = None
    stopped: str | None = None


class _LineageState(TypedDict):
    number: int


async def _play_node(state: _LineageState, runtime: Runtime[_Run]) -> dict[str, Any]:
    run = runtime.context
    lineage, setup = run.lineage, run.setup
    number = state["number"] + 1
    run.players = setup.make_players(round_seed(lineage.seed, number))
    run.recalled = {role: recall(lineage, setup.game, role) for role in lineage.coached}
    result, run.episode_id = await _play_round(lineage, setup, run.players, number, run.recalled)
    run.results.append(result)
    return {"number": number}


async def _critique_node(state: _LineageState, runtime: Runtime[_Run]) -> dict[str, Any]:
    run = runtime.context
    number = state["number"]
    result = run.results[-1]
    run.feedbacks.append(
        await _learn(
            run.lineage, run.setup, run.players, result, run.episode_id, number, run.rng,
            run.recalled,
        )
    )  # fmt: skip
    store, lineage = run.setup.store, run.lineage
    if store is not None and lineage.id is not None:
        store.update_lineage(lineage.id, rounds_played=number)
    if run.setup.on_round is not None:
        run.setup.on_round()
    if lineage.stop_at_first_failure and result.outcome.kind != "deal":
        run.stopped = f"round {number}: {ending(result)}"
    return {}


async def _unlearn_node(state: _LineageState, runtime: Runtime[_Run]) -> dict[str, Any]:
    run = runtime.context
    for scheduled in run.lineage.forgetting:
        if scheduled.after_round == state["number"]:
            run.forgotten.append(await _forget_now(run, scheduled, state["number"]))
    return {}


def _after_critique(state: _LineageState, runtime: Runtime[_Run]) -> str:
    run = runtime.context
    if any(f.after_round == state["number"] for f in run.lineage.forgetting):
        return "unlearn"
    return _next(state, runtime)


def _next(state: _LineageState, runtime: Runtime[_Run]) -> str:
    run = runtime.context
    if run.stopped is not None or state["number"] >= run.lineage.rounds:
        return END
    return "play"


@lru_cache(maxsize=1)
def _lineage_graph() -> Any:
    builder = StateGraph(_LineageState, context_schema=_Run)
    builder.add_node("play", _play_node)
    builder.add_node("critique", _critique_node)
    builder.add_node("unlearn", _unlearn_node)
    builder.add_edge(START, "play")
    builder.add_edge("play", "critique")
    builder.add_conditional_edges("critique", _after_critique, ["unlearn", "play", END])
    builder.add_conditional_edges("unlearn", _next, ["play", END])
    return builder.compile()


async def play_lineage(lineage: Lineage, setup: SelfPlaySetup) -> LineageResult:
    """Play the rounds of `lineage`, storing each game and remembering it with its feedback,
    and carrying out the forget requests scheduled between rounds."""
    store = setup.store
    if store is not None and setup.run_id is not None and lineage.id is None:
        lineage.id = store.start_lineage(
            setup.run_id,
            arm=setup.feedback.kind,
            coached=_coached_name(lineage.coached),
            seed=lineage.seed,
            rounds_planned=lineage.rounds,
        )
    run = _Run(lineage, setup, random.Random(f"feedback/{lineage.seed}"))
    try:
        await _lineage_graph().ainvoke(
            {"number": 0}, context=run, config={"recursion_limit": 3 * lineage.rounds + 10}
        )
    except BaseException as error:
        if store is not None and lineage.id is not None:
            store.update_lineage(
                lineage.id,
                rounds_played=len(run.results),
                status="failed",
                stop_reason=failure_reason(error),
            )
        raise
    if store is not None and lineage.id is not None:
        store.update_lineage(
            lineage.id,
            rounds_played=len(run.results),
            status="stopped" if run.stopped else "finished",
            stop_reason=run.stopped,
        )
    return LineageResult(
        lineage.id, tuple(run.results), tuple(run.feedbacks), run.stopped, tuple(run.forgotten)
    )


async def _forget_now(run: _Run, scheduled: ScheduledForget, number: int) -> ForgetResult:
    lineage, setup = run.lineage, run.setup
    memories = {memory.owner: memory for memory in lineage.memories.values()}
    request = scheduled.request
    if isinstance(request, str):
        from haggler.agents.unlearner import RuleUnlearner

        unlearner = scheduled.unlearner or RuleUnlearner()
        read = await unlearner.plan(
            request,
            memories=memories,
            store=setup.store,
            level=scheduled.level,  # type: ignore[arg-type]
            mode=scheduled.mode,  # type: ignore[arg-type]
        )
        request = read.request
    # A lineage forgets in its own agents' memories, whatever scope the request names.
    request = request.model_copy(
        update={"scope": request.scope.model_copy(update={"agents": tuple(memories)})}
    )
    return await forget(
        request,
        store=setup.store,
        memories=memories,
        rederive=rederiver(setup.game, setup.feedback, seed=lineage.seed),
        # The lineage's own round, as its games are stored: where show and the viewer mark it.
        where=Where(setup.run_id, lineage.id, number),
    )


@dataclass(frozen=True, slots=True)
class Recall:
    """What a coached role takes into a round, and the items it came from (its provenance)."""

    memory: RoleMemory
    context: tuple[MemoryItem, ...]
    goal_from: MemoryItem | None


def recall(lineage: Lineage, game: Game, role: str) -> Recall:
    """What `role` remembers going into its next round: its recollection under the budget
    and its goal, both derived from the items its memory holds now."""
    memory = lineage.memories[role]
    recollection = build_context(
        memory, budget_tokens=lineage.memory_budget, counter=lineage.counters.get(role)
    )
    beat = price_to_beat(memory, game.name)
    return Recall(
        RoleMemory(
            history=recollection.text,
            advice=recollection.advice,
            goal=game.goal(role, beat.price) if beat is not None else None,
        ),
        recollection.items,
        beat.source if beat is not None else None,
    )


async def _play_round(
    lineage: Lineage,
    setup: SelfPlaySetup,
    players: dict[str, Negotiator],
    number: int,
    recalled: Mapping[str, Recall],
) -> tuple[EpisodeResult, str | None]:
    game, store = setup.game, setup.store
    episode_id: str | None = None
    listeners: list[TurnListener] = []
    if store is not None and setup.run_id is not None:
        roles = role_records(game, players)
        episode_id = store.start_episode(
            setup.run_id,
            game=game.name,
            rules=game.settings(),
            roles=roles,
            seed=lineage.seed,
            lineage_id=lineage.id,
            round=number,
            arm=setup.feedback.kind,
        )
        stored_id = episode_id
        listeners.append(lambda turn: store.add_turn(stored_id, turn))
    elif setup.game_id is not None:
        episode_id = setup.game_id(number)
    try:
        result = await play_episode(
            game,
            players,
            moderator=setup.moderator,
            listeners=listeners,
            invalid_allowance=setup.invalid_allowance,
            memories={role: recalled[role].memory for role in lineage.coached},
        )
    except BaseException as error:
        if store is not None and episode_id is not None:
            store.fail_episode(episode_id, failure_reason(error))
        raise
    if store is not None and episode_id is not None:
        store.finish_episode(episode_id, OutcomeRecord(**result.outcome.as_dict()), result.scores)
    return result, episode_id


async def _learn(
    lineage: Lineage,
    setup: SelfPlaySetup,
    players: dict[str, Negotiator],
    result: EpisodeResult,
    episode_id: str | None,
    number: int,
    rng: random.Random,
    recalled: Mapping[str, Recall],
) -> dict[str, Feedback | None]:
    game = setup.game
    given: dict[str, Feedback | None] = {}
    outcome = result.outcome
    for role in lineage.coached:
        # Its counterpart: the rival of a two-party game; at a larger table, everyone else.
        others = [players[r].label for r in game.roles if r != role]
        env = Environment(
            game=game.name, item=str(game.facts.get("item")), counterpart=" + ".join(others)
        )
        memory = lineage.memories[role]
        said = ending(result)
        # What it saw, no more: a message the game hid from it stays out of its memory.
        content, turns = remembered_game(result, role, game)
        game_item = memory.remember_episode(
            content,
            env,
            episode_id=episode_id,
            round=lineage.memory_rounds + number,
            meta={
                "summary": (
                    f"Round {lineage.memory_rounds + number}: {said} "
                    f"after {len(result.public)} messages."
                ),
                "outcome": outcome.kind,
                "reason": outcome.reason,
                "price": outcome.price,
                "arm": setup.feedback.kind,
                "role": role,
                "turns": turns,
                # The game's scripted opening, the same in every game: not this game's own.
                "scripted": sum(turn.scripted for turn in result.turns),
            },
            # Provenance: this game was played with these items in the player's prompt.
            context=recalled[role].context,
            goal_from=recalled[role].goal_from,
        )
        # The critic may read the player's recollection of its earlier games: those items
        # are the feedback's context, so forgetting one forgets what it taught the critic.
        read = tuple(
            item
            for item in recalled[role].context
            if item.kind == "episode" and setup.feedback.reads_history(role)
        )
        review = GameReview(
            role=role,
            brief=game.brief(role),
            # Its critic reads what it saw: feedback must not carry what the game hid from it.
            public=tuple(m for m in result.public if seen_by(game, role, m)),
            facts=game.facts,
            outcome=outcome.kind,
            reason=outcome.reason,
            price=outcome.price,
            history=history_of(read),
        )
        feedback = await setup.feedback.give(review, rng)
        given[role] = feedback
        if feedback is not None and feedback.suggestions:
            completion = feedback.completion
            if setup.store is not None and episode_id is not None:
                setup.store.add_critique(
                    critique_record(feedback, role, setup.feedback.label, episode_id)
                )
            memory.remember_feedback(
                feedback.text,
                env,
                about=[game_item],
                context=read,
                round=lineage.memory_rounds + number,
                meta={
                    "kind": setup.feedback.kind,
                    "source": setup.feedback.label,
                    "episode_id": episode_id,
                    "role": role,
                    "tokens": completion.usage.total_tokens if completion else 0,
                    "cost_usd": completion.cost_usd if completion else 0.0,
                },
            )
    return given


def _coached_name(coached: tuple[str, ...]) -> str:
    """How a lineage's coached roles are stored: one role, "both" (seller and buyer, as the
    paper's runs were), or several roles joined by commas."""
    if set(coached) == {"seller", "buyer"} and len(coached) == 2:
        return "both"
    return ",".join(coached)
