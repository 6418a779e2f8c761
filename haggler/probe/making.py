"""Making an experiment's agent: self-play against rivals who say things about themselves.

The agent is coached in its role through the spec's rounds, each against a fresh rival of
that round's model who, on its first message, says the facts the round names ("My budget is
$14, that's all I have."). The agent remembers each game and its coach's advice, as in any
self-play lineage; what it learned of the rivals is what it will be asked to forget.

The lineage is played without the store and kept whole, to be stored with everything else the
agent's job produces in one transaction (a job killed half-way leaves nothing behind). Its
games get their ids here, `<job>/make/r<k>`: the agent's memory refers to them by these, and
they are the match ids they are stored under.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from haggler.agents.base import Negotiator, Reply, RoleView
from haggler.agents.prices import format_price
from haggler.games.base import Game
from haggler.games.selfplay import (
    AIFeedback,
    ConstantFeedback,
    FeedbackSource,
    Lineage,
    NoFeedback,
    SelfPlaySetup,
    play_lineage,
)
from haggler.memory import AgentMemory
from haggler.probe.spec import UnlearnEvalSpec
from haggler.run.cast import Cast
from haggler.run.spec import PlaySpec, RoleSpec, SelfPlaySpec
from haggler.store.records import CritiqueRecord, OutcomeRecord, RoleRecord, TurnRecord

__all__ = ["Candid", "MadeAgent", "Fact", "facts_of", "make_agent", "rival_role"]


class Candid(Negotiator):
    """A rival that says `lines` before its first message, and is remembered as `name`."""

    def __init__(self, inner: Negotiator, name: str, lines: list[str]) -> None:
        self.inner = inner
        self.role = inner.role
        self.label = name
        self.prompt = inner.prompt
        self.lines = " ".join(lines)
        self.spoken = False

    async def respond(self, view: RoleView) -> Reply:
        reply = await self.inner.respond(view)
        if self.spoken or not self.lines:
            return reply
        self.spoken = True
        return Reply(f"{self.lines} {reply.text}", reply.completion)


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact as drawn for one agent: its words, and where it was said."""

    name: str
    value: str | float
    # As said: "$14" for a price, the word for a choice.
    text: str
    said: str
    topic: str
    hints: tuple[str, ...]
    round: int  # from 1
    rival: str


def rival_role(role: str) -> str:
    return "buyer" if role == "seller" else "seller"


def facts_of(spec: UnlearnEvalSpec, seed: int) -> dict[str, Fact]:
    """The facts of the agent of `seed`, drawn."""
    facts = {}
    for name, fact in spec.facts.items():
        value = fact.draw(seed, name)
        text = format_price(value) if isinstance(value, float) else str(value)
        number = spec.said_in(name)
        rival = spec.agents.rounds[number].rival.name
        hints = (
            f"It was {rival} who said it.",
            f"It came up in your game number {number + 1}, against {rival}.",
            *fact.hints,
        )
        facts[name] = Fact(
            name, value, text, fact.says.replace("{value}", text), fact.topic, hints,
            number + 1, rival,
        )  # fmt: skip
    return facts


@dataclass
class _Game:
    """A making game as it is played, to be stored later."""

    id: str
    roles: dict[str, RoleRecord]
    rules: dict[str, Any]
    seed: int
    started_at: float
    turns: list[TurnRecord] = field(default_factory=list)
    outcome: OutcomeRecord | None = None
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    critique: CritiqueRecord | None = None


class _Recording:
    """What a self-play lineage writes to its store, kept here instead (the calls a lineage
    makes on its store: see `haggler.games.selfplay`), games named `<prefix>/r<round>`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.games: dict[str, _Game] = {}

    def start_lineage(self, run_id: str, **_: Any) -> str:
        return f"{self.prefix}/lineage"

    def update_lineage(self, lineage_id: str, **_: Any) -> None:
        pass

    def start_episode(
        self,
        run_id: str,
        *,
        rules: Mapping[str, Any],
        roles: Mapping[str, RoleRecord],
        seed: int,
        round: int | None = None,
        **_: Any,
    ) -> str:
        episode_id = f"{self.prefix}/r{round}"
        self.games[episode_id] = _Game(episode_id, dict(roles), dict(rules), seed, time.time())
        return episode_id

    def add_turn(self, episode_id: str, turn: TurnRecord) -> None:
        self.games[episode_id].turns.append(turn)

    def finish_episode(
        self, episode_id: str, outcome: OutcomeRecord, scores: Mapping[str, float]
    ) -> None:
        self.games[episode_id].outcome = outcome
        self.games[episode_id].scores = dict(scores)

    def fail_episode(self, episode_id: str, error: str) -> None:
        self.games[episode_id].error = error

    def add_critique(self, critique: CritiqueRecord) -> None:
        self.games[critique.episode_id].critique = critique


@dataclass
class MadeAgent:
    """An agent as self-play made it: its memory, its facts, and the games to store."""

    memory: AgentMemory
    facts: dict[str, Fact]
    games: list[_Game]
    feedback: FeedbackSource

    @property
    def cost_usd(self) -> float:
        return sum(
            sum(t.cost_usd + (t.moderation.cost_usd if t.moderation else 0.0) for t in g.turns)
            + (g.critique.cost_usd if g.critique else 0.0)
            for g in self.games
        )


def agent_cast(spec: UnlearnEvalSpec, game: Game, rate_limits: Any = None) -> Cast:
    """The agent's model (and its critic), opened once for its job."""
    agents = spec.agents
    selfplay = SelfPlaySpec(
        game=agents.game,
        rules=agents.rules,
        roles={agents.role: agents.model},
        coached=agents.role,
        feedback=[agents.feedback],
        critic=agents.critic,
        memory_budget=agents.memory_budget,
        retry=spec.retry,
    )
    return Cast(selfplay, game, rate_limits=rate_limits)


def rival_cast(spec: UnlearnEvalSpec, game: Game, name: str, rate_limits: Any = None) -> Cast:
    """The model of the rival called `name`."""
    round_ = next(r for r in spec.agents.rounds if r.rival.name == name)
    rival = RoleSpec(**round_.rival.model_dump(exclude={"name"}))
    play = PlaySpec(
        game=spec.agents.game, rules=spec.agents.rules,
        roles={rival_role(spec.agents.role): rival}, retry=spec.retry,
    )  # fmt: skip
    return Cast(play, game, rate_limits=rate_limits)


def feedback_source(spec: UnlearnEvalSpec, cast: Cast) -> FeedbackSource:
    kind = spec.agents.feedback
    if kind == "ai":
        return AIFeedback(cast.critic(spec.agents.critic, spec.agents.role))
    if kind == "constant":
        return ConstantFeedback()
    return NoFeedback()


async def make_agent(
    spec: UnlearnEvalSpec,
    *,
    owner: str,
    seed: int,
    prefix: str,
    game: Game,
    cast: Cast,
    rivals: Mapping[str, Cast],
) -> MadeAgent:
    """Play the agent's rounds; its memory (in this process only) and the games played."""
    agents = spec.agents
    facts = facts_of(spec, seed)
    other = rival_role(agents.role)
    played = 0

    def players(round_seed: int) -> dict[str, Negotiator]:
        nonlocal played
        round_ = agents.rounds[played]
        played += 1
        rival = rivals[round_.rival.name].players(round_seed)[other]
        lines = [facts[name].said for name in round_.says]
        return {
            agents.role: cast.players(round_seed)[agents.role],
            other: Candid(rival, round_.rival.name, lines),
        }

    memory = AgentMemory(owner)
    recording = _Recording(prefix)
    source = feedback_source(spec, cast)
    lineage = Lineage(
        arm=source.kind,
        coached=(agents.role,),
        seed=seed,
        rounds=len(agents.rounds),
        memories={agents.role: memory},
        memory_budget=agents.memory_budget,
        counters={agents.role: cast.token_counter(agents.role)},
    )
    setup = SelfPlaySetup(
        game=game,
        make_players=players,
        moderator=cast.moderator,
        feedback=source,
        store=recording,  # type: ignore[arg-type]  # it keeps what a store would be given
        run_id="making",
    )
    await play_lineage(lineage, setup)
    return MadeAgent(memory, facts, list(recording.games.values()), source)
