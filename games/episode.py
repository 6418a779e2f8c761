"""One episode as a LangGraph `StateGraph`: a node per speaking role, plus the moderator.

    START -> first speaker -> moderator -> (next speaker | same speaker, to retry | END)

A speaker node asks its player for a message, seeing only its own `RoleView` (the messages
the game lets it see). The moderator node reads the message as an action of the game's
vocabulary, checks that the speaker may take it, lets the game rule on it, records the turn,
and routes to whoever the game names from the episode's state (`Game.next_speaker`). A
message that cannot stand is told back to its speaker alone, who may retry within an
allowance; past it, the game ends as invalid. Nothing a model writes can raise.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from haggler.agents.actions import Action
from haggler.agents.base import Player, PublicMessage, Reply, RoleMemory, RoleView
from haggler.agents.moderator import Moderator, Reading, RuleModerator
from haggler.agents.vocabulary import BARGAINING, Vocabulary
from haggler.errors import HagglerError, PlayerError
from haggler.games.base import Game, TurnState
from haggler.games.outcome import Outcome
from haggler.store.records import ActionRecord, ModerationRecord, RoleRecord, TurnRecord

__all__ = ["EpisodeResult", "TurnListener", "play_episode", "role_records"]

TurnListener = Callable[[TurnRecord], None]


def _no_action(actions: Vocabulary) -> str:
    return (
        f"no action could be read from it; end your message with one tag such as "
        f"{actions.examples()}"
    )


def _unreadable_tag(actions: Vocabulary) -> str:
    if actions == BARGAINING:
        return (
            "its action tag could not be read: an offer or an acceptance needs a price it "
            "can read, e.g. [OFFER $15]"
        )
    return f"its action tag could not be read; write it as one of {actions.examples()}"


def _not_yours(role: str, action: Action, actions: Vocabulary) -> str:
    return (
        f"the {role} cannot {action.name.replace('_', ' ')} in this game; end your message "
        f"with one of {actions.examples()}"
    )


@dataclass(frozen=True, slots=True)
class EpisodeResult:
    outcome: Outcome
    scores: dict[str, float]
    public: tuple[PublicMessage, ...]
    turns: tuple[TurnRecord, ...]


@dataclass(slots=True)
class _Context:
    """Everything an episode needs that is not conversation state."""

    game: Game
    players: Mapping[str, Player]
    moderator: Moderator
    listeners: Sequence[TurnListener]
    invalid_allowance: int
    table: Any
    memories: Mapping[str, RoleMemory]
    turns: list[TurnRecord] = field(default_factory=list)

    def record(self, turn: TurnRecord) -> None:
        self.turns.append(turn)
        for listener in self.listeners:
            listener(turn)


class _State(TypedDict, total=False):
    public: Annotated[list[PublicMessage], operator.add]
    speaker: str
    # Who spoke the last message that stood (None before the first).
    last: str | None
    turn: int
    failures: dict[str, int]
    correction: str | None
    pending: Reply | None
    pending_started: float
    # Why the speaker's player gave no reply to read (it answered no `Reply` of text).
    broken: str | None
    outcome: Outcome | None


def _speaker_node(role: str) -> Callable[..., Any]:
    async def speak(state: _State, runtime: Runtime[_Context]) -> dict[str, Any]:
        ctx = runtime.context
        game = ctx.game
        public = tuple(state["public"])
        now = TurnState(state["turn"], state.get("last"), public, ctx.table)
        view = RoleView(
            role=role,
            brief=game.brief(role),
            public=tuple(m for m in public if m.speaker == role or game.may_see(role, m)),
            facts=game.facts,
            turn=state["turn"],
            max_turns=game.max_turns,
            correction=state.get("correction"),
            memory=ctx.memories.get(role),
            roles=tuple(game.roles),
            own_turns_left=game.turns_left(role, now),
        )
        started = time.time()
        try:
            reply = await ctx.players[role].respond(view)
        except HagglerError:
            raise  # a model's failure (a provider down, a budget spent) is the run's to handle
        except Exception as error:
            # Not a move of the game: the player's code failed (a plug-in's bug, a local model
            # out of memory). The run fails the game, as for a model that failed for good,
            # rather than scoring it as the player's loss; one line, the cause kept.
            label = getattr(ctx.players[role], "label", type(ctx.players[role]).__name__)
            raise PlayerError(
                f"the {role}'s player ({label}) raised {type(error).__name__}: {error}"[:500],
                model=str(label),
            ) from error
        if not (isinstance(reply, Reply) and isinstance(reply.text, str)):
            what = type(reply.text if isinstance(reply, Reply) else reply).__name__
            broken = f"the {role}'s player answered with a {what}, not a Reply of text"
            return {"pending": Reply(""), "pending_started": started, "broken": broken}
        return {"pending": reply, "pending_started": started}

    speak.__name__ = f"speak_{role}"
    return speak


async def _moderate(state: _State, runtime: Runtime[_Context]) -> Command[Any]:
    ctx = runtime.context
    game = ctx.game
    speaker, reply = state["speaker"], state["pending"]
    assert reply is not None, "the moderator runs only after a speaker"
    broken = state.get("broken")
    if broken is not None:
        ctx.record(_turn_record(len(ctx.turns), speaker, reply, Reading(None), broken, state))
        outcome = Outcome.invalid("player_error", by=speaker)
        return Command(goto=END, update={"outcome": outcome, "broken": None, "pending": None})
    vocabulary, allowed = game.vocabulary, game.actions(speaker)
    reading = await ctx.moderator.read(state["public"], speaker, reply.text, vocabulary=vocabulary)
    error = None
    step = None
    if reading.action is None:
        error = _unreadable_tag(allowed) if vocabulary.has_tag(reply.text) else _no_action(allowed)
    elif reading.action.kind not in allowed:
        error = _not_yours(speaker, reading.action, allowed)
    else:
        step = game.apply(ctx.table, speaker, reading.action)
        if step.error:
            error = step.error
    ctx.record(_turn_record(len(ctx.turns), speaker, reply, reading, error, state))

    if error is not None:
        failures = dict(state["failures"])
        failures[speaker] = failures.get(speaker, 0) + 1
        if failures[speaker] > ctx.invalid_allowance:
            outcome = Outcome.invalid(
                "unreadable" if reading.action is None else "illegal_action", by=speaker
            )
            return Command(goto=END, update={"failures": failures, "outcome": outcome})
        return Command(
            goto=speaker, update={"failures": failures, "correction": error, "pending": None}
        )

    turn = state["turn"] + 1
    message = PublicMessage(speaker, reply.text, reading.action)
    update: dict[str, Any] = {
        "public": [message],
        "turn": turn,
        "last": speaker,
        "correction": None,
        "pending": None,
    }
    outcome = step.outcome if step else None
    if outcome is None and turn >= game.max_turns:
        outcome = game.at_turn_limit(ctx.table)
    if outcome is not None:
        return Command(goto=END, update=update | {"outcome": outcome})
    following = game.next_speaker(TurnState(turn, speaker, (*state["public"], message), ctx.table))
    if following not in game.roles:
        # A game's routing that names no role ends the game rather than the run.
        outcome = Outcome.invalid("no_next_speaker", by=following)
        return Command(goto=END, update=update | {"outcome": outcome})
    return Command(goto=following, update=update | {"speaker": following})


def role_records(
    game: Game, players: Mapping[str, Player], names: Mapping[str, str] | None = None
) -> dict[str, RoleRecord]:
    """Who played each role, as the store keeps it: the model, its player name in a
    tournament, and the role's private brief (for people reading transcripts only)."""
    records = {}
    for role, player in players.items():
        brief = game.brief(role)
        records[role] = RoleRecord(
            model=player.label,
            player=(names or {}).get(role),
            brief=brief.text,
            private=dict(brief.private),
            prompt=player.prompt,
        )
    return records


def _turn_record(
    index: int,
    speaker: str,
    reply: Reply,
    reading: Reading,
    error: str | None,
    state: _State,
) -> TurnRecord:
    completion = reply.completion
    moderation = None
    if reading.completion is not None:
        mc = reading.completion
        moderation = ModerationRecord(
            model=mc.model,
            prompt_tokens=mc.usage.prompt_tokens,
            completion_tokens=mc.usage.completion_tokens,
            cost_usd=mc.cost_usd,
            latency_s=mc.latency_s,
            unreadable_verdict=reading.unreadable_verdict,
            usage_estimated=mc.usage.estimated,
        )
    return TurnRecord(
        index=index,
        speaker=speaker,
        text=reply.text,
        action=_action_record(reading.action),
        accepted=error is None,
        error=error,
        model=completion.model if completion else None,
        prompt_tokens=completion.usage.prompt_tokens if completion else 0,
        completion_tokens=completion.usage.completion_tokens if completion else 0,
        cost_usd=completion.cost_usd if completion else 0.0,
        latency_s=completion.latency_s if completion else 0.0,
        retries=completion.retries if completion else 0,
        started_at=state.get("pending_started", time.time()),
        ended_at=time.time(),
        moderation=moderation,
        usage_estimated=completion.usage.estimated if completion else False,
    )


def _action_record(action: Action | None) -> ActionRecord | None:
    if action is None:
        return None
    return ActionRecord(
        kind=action.name,
        price=action.price,
        source=action.source,
        terms=dict(action.terms) if action.terms is not None else None,
    )


# The moderator's node: a name no role can have (LangGraph reserves `__start__` and `__end__`
# the same way), so that a game may have a party called "moderator".
_MODERATOR = "__moderator__"


@lru_cache(maxsize=32)
def _graph(roles: tuple[str, ...]) -> Any:
    # Compiled once per set of roles: compiling costs far more than a whole rule-based game.
    builder = StateGraph(_State, context_schema=_Context)
    for role in roles:
        builder.add_node(role, _speaker_node(role))
        builder.add_edge(role, _MODERATOR)
    builder.add_node(_MODERATOR, _moderate, destinations=(*roles, END))
    builder.add_conditional_edges(START, lambda state: state["speaker"], list(roles))
    return builder.compile()


async def play_episode(
    game: Game,
    players: Mapping[str, Player],
    *,
    moderator: Moderator | None = None,
    listeners: Sequence[TurnListener] = (),
    invalid_allowance: int = 1,
    memories: Mapping[str, RoleMemory] | None = None,
) -> EpisodeResult:
    """Play one episode of `game` between `players` (one per role) and return how it ended.

    `listeners` receive every turn as it is ruled on, the scripted opening included; the store
    is one of them. `invalid_allowance` is how many unreadable or illegal messages a role may
    send (each followed by a private correction) before the game ends as invalid.
    `memories` hands coached roles their recollection of earlier rounds; each role gets only
    its own.
    """
    missing = set(game.roles) - set(players)
    if missing:
        raise ValueError(f"{game.name} needs a player for {sorted(missing)}")
    ctx = _Context(
        game=game,
        players=players,
        moderator=moderator or RuleModerator(),
        listeners=listeners,
        invalid_allowance=invalid_allowance,
        table=game.new_table(),
        memories=dict(memories or {}),
    )
    opening = game.opening()
    now = time.time()
    for message in opening:
        ctx.record(
            TurnRecord(
                index=len(ctx.turns),
                speaker=message.speaker,
                text=message.text,
                action=_action_record(message.action),
                scripted=True,
                started_at=now,
                ended_at=now,
            )
        )
    steps = 2 * (game.max_turns + len(game.roles) * (invalid_allowance + 1)) + 10
    final = await _graph(game.roles).ainvoke(
        {
            "public": list(opening),
            "speaker": game.first_speaker(),
            "last": None,
            "turn": 0,
            "failures": {},
            "correction": None,
            "pending": None,
            "outcome": None,
        },
        context=ctx,
        config={"recursion_limit": steps},
    )
    outcome: Outcome = final["outcome"]
    return EpisodeResult(
        outcome=outcome,
        scores=game.score(outcome),
        public=tuple(final["public"]),
        turns=tuple(ctx.turns),
    )
