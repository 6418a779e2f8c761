"""Moderators read each message as an action of the game's vocabulary.

A tagged message is read by the rule-based parser whatever the moderator. For a message in
free prose, `RuleModerator` applies conservative text cues and `LLMModerator` asks a model,
as the seed paper did, but demands a strict JSON verdict: an answer that is not exactly that
is no verdict at all, never a deal found by a substring. Prose is read only as one of the four
bargaining actions; a game whose vocabulary has no offer (package proposals) is read from
its tags alone, and a speaker who writes none is told which tags to use.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from haggler.agents.actions import Action, ActionKind
from haggler.agents.base import PublicMessage
from haggler.agents.vocabulary import BARGAINING, Vocabulary
from haggler.llm.base import Backend, Completion, Message

__all__ = ["LLMModerator", "Moderator", "Reading", "RuleModerator", "Verdict"]

# The paper's moderator read the last four messages; the message being judged is the last.
CONTEXT_MESSAGES = 4


@dataclass(frozen=True, slots=True)
class Reading:
    action: Action | None
    completion: Completion | None = None
    # What the moderator's model answered when it could not be read as a verdict.
    unreadable_verdict: str | None = None


class Moderator(ABC):
    label: str

    @abstractmethod
    async def read(
        self,
        recent: Sequence[PublicMessage],
        speaker: str,
        text: str,
        *,
        vocabulary: Vocabulary = BARGAINING,
    ) -> Reading:
        """The action `speaker` takes with `text`, after the public messages `recent`, among
        the game's actions (`vocabulary`)."""


class RuleModerator(Moderator):
    label = "rule"

    async def read(
        self,
        recent: Sequence[PublicMessage],
        speaker: str,
        text: str,
        *,
        vocabulary: Vocabulary = BARGAINING,
    ) -> Reading:
        return Reading(vocabulary.parse(text))


class Verdict(BaseModel):
    """The only answer an LLM moderator may give."""

    model_config = ConfigDict(extra="forbid")

    reasoning: str = ""
    action: Literal["offer", "accept", "reject", "walk_away", "none"]
    # Strict and finite: `true` is not $1, and NaN is no price.
    price: float | None = Field(None, strict=True, allow_inf_nan=False)


_INSTRUCTIONS = """You moderate a negotiation between a seller and a buyer. Read the last \
messages and decide which action the LAST message takes:
- "offer": it proposes a price (give that price);
- "accept": it agrees to the other side's latest price (give that price);
- "reject": it turns the other side's price down without proposing one;
- "walk_away": it ends the negotiation without a deal;
- "none": none of these.
Think briefly, then answer with one JSON object and nothing else:
{"reasoning": "<one sentence>", "action": "<offer|accept|reject|walk_away|none>", "price": <number or null>}

Examples:
buyer: Would you sell it for $10?
seller: I could part with it for $16, not a cent less.
{"reasoning": "The seller names a new price of 16.", "action": "offer", "price": 16}

seller: Fine, $14 then.
buyer: Great, we have a deal at $14!
{"reasoning": "The buyer agrees to the seller's 14.", "action": "accept", "price": 14}

seller: $19 is my final price.
buyer: That is far too much for me, goodbye.
{"reasoning": "The buyer leaves without a deal.", "action": "walk_away", "price": null}"""

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class LLMModerator(Moderator):
    def __init__(self, backend: Backend, *, params: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.params = {"temperature": 0.0, "max_tokens": 200} | dict(params or {})
        self.label = backend.model

    async def read(
        self,
        recent: Sequence[PublicMessage],
        speaker: str,
        text: str,
        *,
        vocabulary: Vocabulary = BARGAINING,
    ) -> Reading:
        if vocabulary.has_tag(text):
            return Reading(vocabulary.parse_tag(text))
        if ActionKind.OFFER not in vocabulary:
            # Its model knows the four bargaining actions only: packages must be tagged.
            return Reading(None)
        window = [*recent[-(CONTEXT_MESSAGES - 1) :], PublicMessage(speaker, text)]
        transcript = "\n".join(f"{m.speaker}: {m.text}" for m in window)
        completion = await self.backend.complete(
            [Message("system", _INSTRUCTIONS), Message("user", transcript)], **self.params
        )
        verdict = parse_verdict(completion.text)
        if verdict is None:
            return Reading(None, completion, unreadable_verdict=completion.text)
        return Reading(_to_action(verdict), completion)


def parse_verdict(text: str) -> Verdict | None:
    """The verdict in a moderator's answer, or None unless it is one well-formed JSON object."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None
    try:
        return Verdict.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError):
        return None


def _to_action(verdict: Verdict) -> Action | None:
    if verdict.action == "none":
        return None
    kind = ActionKind(verdict.action)
    if kind is ActionKind.OFFER and verdict.price is None:
        return None
    price = verdict.price if kind in (ActionKind.OFFER, ActionKind.ACCEPT) else None
    return Action(kind, price, source="moderator")
