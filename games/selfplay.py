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

from haggler.agents.base import Negotiator, PublicMessage, RoleMemory
from haggler.agents.critic import Critic, Feedback, GameReview
from haggler.agents.moderator import Moderator
from haggler.agents.prices import format_price
from haggler.errors import failure_reason
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult, TurnListener, play_episode, role_records
from haggler.memory import AgentMemory, Environment, build_context
from haggler.store.records import CritiqueRecord, OutcomeRecord
from haggler.store.sqlite import Store

__all__ = [
    "AIFeedback",
    "ConstantFeedback",
    "FeedbackSource",
    "HumanFeedback",
    "Lineage",
    "LineageResult",
    "NoFeedback",
    "SelfPlaySetup",
    "play_lineage",
]


# --- where feedback comes from --------------------------------------------------------------


class FeedbackSource(ABC):
    """One arm of an experiment: what the coached player is told after each game."""

    kind: str
    label: str

    @abstractmethod
    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        """Feedback on one game, or None when this arm gives none."""


class AIFeedback(FeedbackSource):
    """A critic's suggestions; with both roles coached, each role may have its own critic."""

    kind = "ai"

    def __init__(self, critic: Critic | Mapping[str, Critic]) -> None:
        self.critics: Mapping[str, Critic] | Critic = critic
        chosen = critic.values() if isinstance(critic, Mapping) else [critic]
        self.label = f"ai ({', '.join(sorted({c.label for c in chosen}))})"

    async def give(self, review: GameReview, rng: random.Random) -> Feedback | None:
        critics = self.critics
        critic = critics[review.role] if isinstance(critics, Mapping) else critics
        return await critic.critique(review)


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


@dataclass(slots=True)
class Lineage:
    """The plan and the state of one lineage; `memories` hold one AgentMemory per coached role."""

    arm: str
    coached: tuple[str, ...]
    seed: int
    rounds: int
    memories: Mapping[str, AgentMemory]
    stop_at_first_failure: bool = False
    memory_budget: int = 2000
    id: str | None = None
    # The coached role's last deal price: the price to beat next round.
    last_price: dict[str, float] = field(default_factory=dict)
    # Rounds the memories already hold from earlier sessions: this session's round k is the
    # agent's round `memory_rounds + k`, so recollections never repeat a round label.
    memory_rounds: int = 0

    def continue_memory(self) -> None:
        """Pick up where reloaded memories left off: their round count and last deal price."""
        for role, memory in self.memories.items():
            episodes = memory.items(kind="episode")
            self.memory_rounds = max(self.memory_rounds, *(i.round or 0 for i in episodes), 0)
            deals = [i for i in episodes if i.meta.get("outcome") == "deal" and i.meta.get("price")]
            if deals:
                self.last_price[role] = float(deals[-1].meta["price"])


@dataclass(frozen=True, slots=True)
class LineageResult:
    lineage_id: str | None
    rounds: tuple[EpisodeResult, ...]
    feedback: tuple[Mapping[str, Feedback | None], ...]
    stopped: str | None = None


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
    )


def round_seed(seed: int, round_number: int) -> int:
    """A distinct, reproducible seed per lineage round."""
    return random.Random(f"{seed}/{round_number}").randrange(2**31)


def render_game(public: Sequence[PublicMessage], role: str, ending: str) -> str:
    """A game as its player remembers it: the public conversation, its own lines marked."""
    lines = [f"{m.speaker}{' (you)' if m.speaker == role else ''}: {m.text}" for m in public]
    return "\n".join([*lines, f"Result: {ending}."])


def _ending(result: EpisodeResult) -> str:
    outcome = result.outcome
    if outcome.kind == "deal" and outcome.price is not None:
        return f"deal at {format_price(outcome.price)}"
    return f"{outcome.kind.replace('_', ' ')} ({outcome.reason.replace('_', ' ')})"


async def play_lineage(lineage: Lineage, setup: SelfPlaySetup) -> LineageResult:
    """Play the rounds of `lineage`, storing each game and remembering it with its feedback."""
    store = setup.store
    rng = random.Random(f"feedback/{lineage.seed}")
    if store is not None and setup.run_id is not None and lineage.id is None:
        lineage.id = store.start_lineage(
            setup.run_id,
            arm=setup.feedback.kind,
            coached="both" if len(lineage.coached) > 1 else lineage.coached[0],
            seed=lineage.seed,
            rounds_planned=lineage.rounds,
        )
    results: list[EpisodeResult] = []
    feedbacks: list[Mapping[str, Feedback | None]] = []
    stopped: str | None = None
    try:
        for number in range(1, lineage.rounds + 1):
            players = setup.make_players(round_seed(lineage.seed, number))
            result, episode_id = await _play_round(lineage, setup, players, number)
            results.append(result)
            feedbacks.append(await _learn(lineage, setup, players, result, episode_id, number, rng))
            if store is not None and lineage.id is not None:
                store.update_lineage(lineage.id, rounds_played=number)
            if setup.on_round is not None:
                setup.on_round()
            if lineage.stop_at_first_failure and result.outcome.kind != "deal":
                stopped = f"round {number}: {_ending(result)}"
                break
    except BaseException as error:
        if store is not None and lineage.id is not None:
            store.update_lineage(
                lineage.id,
                rounds_played=len(results),
                status="failed",
                stop_reason=failure_reason(error),
            )
        raise
    if store is not None and lineage.id is not None:
        store.update_lineage(
            lineage.id,
            rounds_played=len(results),
            status="stopped" if stopped else "finished",
            stop_reason=stopped,
        )
    return LineageResult(lineage.id, tuple(results), tuple(feedbacks), stopped)


async def _play_round(
    lineage: Lineage, setup: SelfPlaySetup, players: dict[str, Negotiator], number: int
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
    try:
        result = await play_episode(
            game,
            players,
            moderator=setup.moderator,
            listeners=listeners,
            invalid_allowance=setup.invalid_allowance,
            memories={role: _recall(lineage, game, role) for role in lineage.coached},
        )
    except BaseException as error:
        if store is not None and episode_id is not None:
            store.fail_episode(episode_id, failure_reason(error))
        raise
    if store is not None and episode_id is not None:
        store.finish_episode(episode_id, OutcomeRecord(**result.outcome.as_dict()), result.scores)
    return result, episode_id


def _recall(lineage: Lineage, game: Game, role: str) -> RoleMemory:
    memory = lineage.memories[role]
    recollection = build_context(memory, budget_tokens=lineage.memory_budget)
    last = lineage.last_price.get(role)
    return RoleMemory(
        history=recollection.text,
        advice=recollection.advice,
        goal=game.goal(role, last) if last is not None else None,
    )


async def _learn(
    lineage: Lineage,
    setup: SelfPlaySetup,
    players: dict[str, Negotiator],
    result: EpisodeResult,
    episode_id: str | None,
    number: int,
    rng: random.Random,
) -> dict[str, Feedback | None]:
    game = setup.game
    given: dict[str, Feedback | None] = {}
    outcome = result.outcome
    for role in lineage.coached:
        rival = next(r for r in game.roles if r != role)
        env = Environment(
            game=game.name, item=str(game.facts.get("item")), counterpart=players[rival].label
        )
        memory = lineage.memories[role]
        ending = _ending(result)
        game_item = memory.remember_episode(
            render_game(result.public, role, ending),
            env,
            episode_id=episode_id,
            round=lineage.memory_rounds + number,
            meta={
                "summary": (
                    f"Round {lineage.memory_rounds + number}: {ending} "
                    f"after {len(result.public)} messages."
                ),
                "outcome": outcome.kind,
                "price": outcome.price,
                "arm": setup.feedback.kind,
            },
        )
        review = GameReview(
            role=role,
            brief=game.brief(role),
            public=result.public,
            facts=game.facts,
            outcome=outcome.kind,
            reason=outcome.reason,
            price=outcome.price,
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
                round=lineage.memory_rounds + number,
                meta={
                    "kind": setup.feedback.kind,
                    "source": setup.feedback.label,
                    "episode_id": episode_id,
                    "tokens": completion.usage.total_tokens if completion else 0,
                    "cost_usd": completion.cost_usd if completion else 0.0,
                },
            )
        if outcome.kind == "deal" and outcome.price is not None:
            lineage.last_price[role] = outcome.price
    return given
