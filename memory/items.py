"""What a memory item is: typed content, the environment it came from, and its provenance."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from haggler.store.records import MemoryRecord

__all__ = ["KINDS", "RELATIONS", "Environment", "MemoryItem", "MemoryKind", "Relation", "check_tag"]

MemoryKind = Literal["episode", "feedback", "note"]
KINDS: tuple[MemoryKind, ...] = get_args(MemoryKind)

# How an item came from one of its sources:
#   about    feedback criticising an episode
#   context  an item that was in the player's (or the critic's) context when this was made
#   goal     the episode whose price set the goal ("sell for more than $X") of a played game
#   derived  anything else drawn from it (a note's sources)
Relation = Literal["about", "context", "goal", "derived"]
RELATIONS: tuple[Relation, ...] = get_args(Relation)

_TAG = re.compile(r"^[\w.:/@+-]{1,64}$")


def check_tag(tag: object) -> str:
    """A user's tag as stored: 1-64 letters, digits or `_.:/@+-`, no spaces."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValueError(f"a tag is 1-64 letters, digits or _.:/@+- without spaces, got {tag!r}")
    return tag


@dataclass(frozen=True)
class Environment:
    """Where an item came from: a game, and optionally the item traded and the counterpart.

    Memory stores these as tags only; it knows nothing else of games.
    """

    game: str
    item: str | None = None
    counterpart: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.game, str) or not self.game:
            raise ValueError(f"Environment.game must be a non-empty game name, got {self.game!r}")

    def includes(self, other: Environment) -> bool:
        """True when `other` lies within this environment: the same game, and the same item
        and counterpart wherever this one names them (a field left None matches anything)."""
        return (
            other.game == self.game
            and (self.item is None or other.item == self.item)
            and (self.counterpart is None or other.counterpart == self.counterpart)
        )


@dataclass(frozen=True)
class MemoryItem:
    """One thing an agent remembers.

    `sources` are the ids of the items it was derived from, oldest first, and `relations`
    says how it came from each (see `Relation`); `tags` are the user's own labels, by which
    a whole environment can be forgotten.
    """

    id: str
    owner: str
    kind: MemoryKind
    content: str
    env: Environment
    episode_id: str | None
    round: int | None
    tokens: int
    created_at: float
    # Left out of the hash: a mapping is not hashable, and the id already identifies an item.
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)
    sources: tuple[str, ...] = ()
    relations: Mapping[str, Relation] = field(default_factory=dict, hash=False, compare=False)
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"memory item kind must be one of {KINDS}, got {self.kind!r}")
        # A read-only view, so an item shared between a memory and its callers cannot drift
        # from what the store holds.
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        object.__setattr__(self, "sources", tuple(self.sources))
        relations = {source: self.relations.get(source, "derived") for source in self.sources}
        object.__setattr__(self, "relations", MappingProxyType(relations))
        object.__setattr__(self, "tags", tuple(self.tags))

    def to_record(self) -> MemoryRecord:
        return MemoryRecord(
            id=self.id,
            owner=self.owner,
            kind=self.kind,
            content=self.content,
            game=self.env.game,
            item=self.env.item,
            counterpart=self.env.counterpart,
            episode_id=self.episode_id,
            round=self.round,
            tokens=self.tokens,
            created_at=self.created_at,
            meta=dict(self.meta),
            sources=list(self.sources),
            relations=dict(self.relations),
            tags=list(self.tags),
        )

    @classmethod
    def from_record(
        cls, record: MemoryRecord, *, sources: Sequence[str] | None = None
    ) -> MemoryItem:
        """The item `record` stores; `sources` puts its sources in another order."""
        if not record.game:
            raise ValueError(
                f"memory record {record.id!r} of {record.owner!r} names no game; "
                "every memory item needs the environment it came from"
            )
        return cls(
            id=record.id,
            owner=record.owner,
            kind=record.kind,
            content=record.content,
            env=Environment(record.game, record.item, record.counterpart),
            episode_id=record.episode_id,
            round=record.round,
            tokens=record.tokens,
            created_at=record.created_at,
            meta=record.meta,
            sources=tuple(record.sources if sources is None else sources),
            relations=dict(record.relations),  # type: ignore[arg-type]
            tags=tuple(record.tags),
        )
