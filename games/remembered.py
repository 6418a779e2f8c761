"""A played game as a coached agent remembers it, and back: the remembered game as a critic
would read it, which is how feedback is re-derived after forgetting (rederive mode).

What an agent derives from memory is recomputed here from the items it keeps, never stored
beside them: the price to beat comes from the newest remembered deal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from haggler.agents.actions import parse_action
from haggler.agents.base import PublicMessage
from haggler.agents.critic import GameReview, PastGame
from haggler.agents.prices import format_price
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult
from haggler.memory import AgentMemory, Environment, MemoryItem
from haggler.memory.forgetting import Rederived, Rederiver
from haggler.memory.transcript import read_transcript, render_transcript

__all__ = [
    "PriceToBeat",
    "ending",
    "history_of",
    "price_to_beat",
    "remembered_game",
    "rederiver",
    "review_of",
    "seen_by",
]


@dataclass(frozen=True, slots=True)
class PriceToBeat:
    price: float
    # The remembered game that set it: the next game is linked to it (relation "goal").
    source: MemoryItem


def ending(result: EpisodeResult) -> str:
    """How a game ended, in words: "deal at $15", "no deal (walk away)"."""
    outcome = result.outcome
    if outcome.kind == "deal" and outcome.price is not None:
        return f"deal at {format_price(outcome.price)}"
    return f"{outcome.kind.replace('_', ' ')} ({outcome.reason.replace('_', ' ')})"


def remembered_game(
    result: EpisodeResult, role: str, game: Game | None = None
) -> tuple[str, list[int]]:
    """The game as `role` remembers it, and the turn index of each message in it (for
    forgetting a span of turns): only the messages `game` let it see (`Game.may_see`)."""
    # The public conversation is the scripted opening and every message that stood, in order.
    stood = [turn.index for turn in result.turns if turn.accepted]
    kept = [
        (message, index)
        for message, index in zip(result.public, stood, strict=False)
        if game is None or seen_by(game, role, message)
    ]
    content = render_transcript([(m.speaker, m.text) for m, _ in kept], role, ending(result))
    return content, [index for _, index in kept]


def seen_by(game: Game, role: str, message: PublicMessage) -> bool:
    """Whether `role` saw `message` in its game: its own, or one the game let it see."""
    return message.speaker == role or game.may_see(role, message)


def price_to_beat(memory: AgentMemory, game: str) -> PriceToBeat | None:
    """The price of the newest deal `memory` remembers in `game`: the goal of the next round."""
    for item in memory.newest("episode", Environment(game)):
        price = item.meta.get("price")
        if item.meta.get("outcome") == "deal" and isinstance(price, int | float):
            return PriceToBeat(float(price), item)
    return None


def history_of(items: Sequence[MemoryItem]) -> tuple[PastGame, ...]:
    """The outcomes of the remembered games among `items`, oldest first: what a critic given
    the player's recollection reads of its earlier games."""
    games = sorted((i for i in items if i.kind == "episode"), key=lambda i: i.round or 0)
    return tuple(
        PastGame(
            outcome=str(i.meta.get("outcome", "no_deal")),
            price=float(p) if isinstance(p := i.meta.get("price"), int | float) else None,
            round=i.round,
        )
        for i in games
    )


def review_of(
    item: MemoryItem, game: Game, context: Sequence[MemoryItem] = ()
) -> GameReview | None:
    """A remembered game as its critic reads it, with the earlier games in `context` (the
    items its critic read with it); None if it cannot be read as one."""
    messages, _ = read_transcript(item.content)
    role = next((m.speaker for m in messages if m.own), None)
    if role is None or role not in game.roles:
        return None
    scripted = item.meta.get("scripted")
    opening = scripted if isinstance(scripted, int) else 0
    public = tuple(
        PublicMessage(m.speaker, m.text, parse_action(m.text), scripted=n < opening)
        for n, m in enumerate(messages)
    )
    price = item.meta.get("price")
    return GameReview(
        role=role,
        brief=game.brief(role),
        public=public,
        facts=game.facts,
        outcome=str(item.meta.get("outcome", "no_deal")),
        reason=str(item.meta.get("reason", "")),
        price=float(price) if isinstance(price, int | float) else None,
        history=history_of(context),
    )


def rederiver(game: Game, source: object, *, seed: int = 0) -> Rederiver:
    """Feedback of `source` (a `FeedbackSource`) re-made on remembered games of `game`."""
    from haggler.games.selfplay import FeedbackSource

    assert isinstance(source, FeedbackSource)
    rng = random.Random(f"rederive/{seed}")

    async def rederive(
        feedback: MemoryItem, episode: MemoryItem, advice: Sequence[MemoryItem]
    ) -> Rederived | None:
        # The critic reads again what it read the first time, less what was forgotten.
        review = review_of(episode, game, advice)
        if review is None:
            return None
        given = await source.give(review, rng)
        if given is None or not given.suggestions:
            return None
        completion = given.completion
        return Rederived(
            text=given.text,
            calls=1 if completion is not None else 0,
            tokens=completion.usage.total_tokens if completion else 0,
            cost_usd=completion.cost_usd if completion else 0.0,
        )

    return rederive
