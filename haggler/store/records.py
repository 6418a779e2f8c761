"""What the store holds, as versioned pydantic records: the schema of transcripts and exports.

Whatever a model or a provider wrote passes through these records on its way in and out, so
they hold it to what a store and a JSON file can keep, built or read back alike:

- text (`StoredText`) follows `haggler.model_text.storable_text`: a lone surrogate becomes its
  escape `\\udc00`, NUL becomes `\\x00`, everything else is kept;
- a price (`Price`) is a finite number or none: an infinite or NaN price, which no JSON can
  hold and no game can have ruled on, is read as no price at all (a store written before
  prices were checked may hold one).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from haggler.model_text import storable_text

__all__ = [
    "EPISODE_SCHEMA",
    "SpeakerTotals",
    "CritiqueRecord",
    "EpisodeRecord",
    "EpisodeSummary",
    "FindingRecord",
    "ForgettingRecord",
    "GAME_OUTCOMES",
    "PROBE_VERDICTS",
    "RoleRecord",
    "RunRecord",
    "TurnRecord",
]

# Bumped whenever an exported field changes meaning or disappears; additions keep the number.
EPISODE_SCHEMA = "haggler.episode/1"


def _finite_or_none(price: float | None) -> float | None:
    return price if price is None or math.isfinite(price) else None


StoredText = Annotated[str, AfterValidator(storable_text)]
Price = Annotated[float | None, AfterValidator(_finite_or_none)]


def _drop_absent_terms(dumped: dict[str, Any]) -> dict[str, Any]:
    # Records of games at a price are written as they were before package terms existed.
    if dumped.get("terms", "") is None:
        del dumped["terms"]
    return dumped


class ActionRecord(BaseModel):
    # The four of bargaining, or another kind a game declares ("suggest", "propose").
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    price: Price = None
    source: Literal["tag", "text", "moderator"] = "tag"
    # What a package proposal settles: issue -> option (None for price actions).
    terms: dict[StoredText, StoredText] | None = None

    @model_serializer(mode="wrap")
    def _without_absent_terms(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_absent_terms(handler(self))


class ModerationRecord(BaseModel):
    """A model's reading of a message, when an LLM moderator was asked."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    unreadable_verdict: StoredText | None = None
    # The token counts are haggler's own estimate: the provider's were missing or insane.
    usage_estimated: bool = False


class TurnRecord(BaseModel):
    index: int
    speaker: StoredText
    text: StoredText
    action: ActionRecord | None = None
    # False when the message could not stand (no readable action, an acceptance of no offer):
    # it stays out of the public conversation and its speaker was told `error`.
    accepted: bool = True
    error: StoredText | None = None
    scripted: bool = False
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    retries: int = 0
    started_at: float
    ended_at: float
    moderation: ModerationRecord | None = None
    # The token counts are haggler's own estimate: the provider's were missing or insane.
    usage_estimated: bool = False


class RoleRecord(BaseModel):
    model: str
    # The tournament player in this role, by name; None outside tournaments.
    player: str | None = None
    # The role's private brief, kept for the people reading transcripts; no other role saw it.
    brief: StoredText
    private: dict[str, float] = Field(default_factory=dict)
    # The player's own prompt (a tournament player's persona), when it had one; like the
    # brief, only this role's model read it.
    prompt: str | None = None


class FindingRecord(BaseModel):
    """What a probe attempt found besides its verdict (see docs/probing.md)."""

    # The adversary's guess at the secret, and the number it inferred, if any.
    guess: StoredText | None = None
    guessed_value: Price = None
    # The target's replies the attempt spent, and how many it took to the first leak.
    queries: int = 0
    first_leak: int | None = None
    # A reply was refused by the target or withheld by a defence.
    refused: bool = False
    # A digest of the answered replies: tells a changed answer from the same one.
    answer: str = ""
    # The target's replies and the judges, in dollars.
    cost_usd: float = 0.0
    # Every judge's verdict by name; the outcome is the first judge's.
    verdicts: dict[str, str] = Field(default_factory=dict)


# What a game can come to, and (a probe attempt, judged) what a probe can.
GAME_OUTCOMES = ("deal", "no_deal", "invalid")
PROBE_VERDICTS = ("leak", "no_leak", "undetermined")


class OutcomeRecord(BaseModel):
    kind: Literal["deal", "no_deal", "invalid", "leak", "no_leak", "undetermined"]
    reason: StoredText
    price: Price = None
    # Who ended it: the role that accepted or walked away; a probe's judge.
    by: str | None = None
    # A probe attempt's findings; None for games.
    finding: FindingRecord | None = None
    # What a deal on a package settled: issue -> option (None for a deal at a price).
    terms: dict[StoredText, StoredText] | None = None

    @model_serializer(mode="wrap")
    def _without_absent_terms(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_absent_terms(handler(self))


class EpisodeSummary(BaseModel):
    id: str
    run_id: str
    game: str
    seed: int
    # Set for self-play games: the lineage, its round (from 1), and the arm (feedback kind).
    lineage_id: str | None = None
    round: int | None = None
    arm: str | None = None
    # Set for tournament games: the match's content-derived id.
    match_id: str | None = None
    status: Literal["running", "finished", "failed"]
    roles: dict[str, RoleRecord]
    outcome: OutcomeRecord | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    error: StoredText | None = None
    started_at: float
    ended_at: float | None = None
    turns: int = 0

    @property
    def standing(self) -> str:
        """What the game came to, one of `haggler.store.query.OUTCOMES`: its outcome's kind
        once finished, else `failed` or `running`."""
        if self.status == "finished" and self.outcome is not None:
            return self.outcome.kind
        return self.status


class EpisodeRecord(EpisodeSummary):
    """One game with all its turns: the unit of `haggler show` and of the JSONL export."""

    schema_: str = Field(EPISODE_SCHEMA, alias="schema")
    rules: dict[str, Any] = Field(default_factory=dict)
    transcript: list[TurnRecord] = Field(default_factory=list)

    model_config = {"populate_by_name": True}


class LineageRecord(BaseModel):
    """A sequence of self-play rounds for one coached player (or both) in one arm of a run."""

    id: str
    run_id: str
    arm: str
    coached: str
    seed: int
    rounds_planned: int
    rounds_played: int = 0
    status: Literal["running", "finished", "stopped", "failed"]
    stop_reason: StoredText | None = None
    started_at: float


class MemoryRecord(BaseModel):
    """One item of an agent's memory as stored; `sources` are the items it was derived from."""

    id: str
    owner: str
    kind: Literal["episode", "feedback", "note"]
    content: StoredText
    game: str | None = None
    item: str | None = None
    counterpart: str | None = None
    episode_id: str | None = None
    round: int | None = None
    tokens: int
    created_at: float
    meta: dict[str, Any] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list)
    # How the item came from each source (about, context, goal, derived), by source id.
    relations: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class CritiqueRecord(BaseModel):
    """The feedback a coached role got after one game, and its price."""

    episode_id: str
    role: str
    # The feedback arm and its author: "ai (openai/gpt-4o)", "constant", "human", …
    source: StoredText
    text: StoredText
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    created_at: float
    usage_estimated: bool = False


class RunRecord(BaseModel):
    id: str
    kind: str
    created_at: float
    spec: dict[str, Any] = Field(default_factory=dict)
    haggler_version: str
    episodes: int = 0


class SpeakerTotals(BaseModel):
    """What one role's turns in one game add up to, summed in the store (no turns loaded)."""

    tokens: int = 0  # prompt + completion, every turn
    cost_usd: float = 0.0
    retries: int = 0
    messages: int = 0  # generated (not scripted) messages that stood
    chars: int = 0  # their length, in characters
    # An LLM moderator's readings of this role's messages: the game's cost, not the role's.
    moderated: int = 0
    moderation_tokens: int = 0
    moderation_cost_usd: float = 0.0


class ForgettingRecord(BaseModel):
    """One forget request as the audit keeps it: what kind of request, over whom, what it did
    (counts), and hashes of the content it removed; never the content, nor the fact asked for."""

    id: str
    created_at: float
    level: str
    mode: str
    # The kind of target: value, name, phrase, pattern; game, lineage, span; environment.
    target: str
    owners: list[str]
    purge_record: bool = False
    run_id: str | None = None
    lineage_id: str | None = None
    after_round: int | None = None
    counts: dict[str, float] = Field(default_factory=dict)
    # sha256 of each removed or rewritten item's content as it was, sorted.
    hashes: list[str] = Field(default_factory=list)
    plan_sha256: str
    # The database file and its WAL were rid of the removed bytes (checkpointed, truncated).
    erased: bool = False

    def describe(self) -> str:
        """One line for people: what kind of request, and what it removed (counts only)."""
        counts = self.counts
        done = [
            f"{counts.get(key, 0):.0f} {word}"
            for key, word in (
                ("deleted", "items deleted"),
                ("redacted", "redacted"),
                ("rederived", "re-derived"),
            )
        ]
        where = f" after round {self.after_round}" if self.after_round is not None else ""
        purged = ""
        if self.purge_record:
            games = counts.get("games_purged", 0)
            texts = sum(v for k, v in counts.items() if k.startswith("record_"))
            purged = f"; record: {games:.0f} games purged, {texts:.0f} texts scrubbed"
        return (
            f"forgetting{where} ({self.mode}, {self.level}: {self.target}): "
            f"{', '.join(done)}{purged}"
        )

    def for_export(self) -> dict[str, Any]:
        """The record as exports carry it: without the content hashes, which are the audit's."""
        return self.model_dump(mode="json", exclude={"hashes", "owners"})
