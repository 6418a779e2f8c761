"""One agent's memory: episodes it played, feedback it was given, notes it drew, with provenance.

Every item records the items it was derived from (feedback -> the episodes it criticised, a
note -> whatever it was drawn from). That is what makes forgetting exact: `forget` removes an
item and, transitively, everything derived from it, in memory and in the store alike.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from haggler.memory.items import KINDS, Environment, MemoryItem, MemoryKind
from haggler.memory.tokens import estimate_tokens

if TYPE_CHECKING:
    from haggler.store.sqlite import Store

__all__ = ["AgentMemory", "UnknownMemoryItemError"]


class UnknownMemoryItemError(KeyError):
    """An id names no item of this memory (raised by `get`, `descendants` and `forget`)."""

    def __str__(self) -> str:
        # KeyError's own str() is the repr of its argument, quotes included; say it plainly.
        return str(self.args[0]) if self.args else super().__str__()


_clock_lock = threading.Lock()
_last_stamp = 0.0


def _stamp(after: float) -> float:
    """A wall-clock time strictly later than every stamp this process handed out and `after`.

    The store orders memory by created_at, a REAL: at today's epoch a double resolves about
    240 ns, so items made in a tight loop could share a stamp. Stepping to the next double
    keeps the order strict and survives the store's 8-byte REAL exactly. `after` is the newest
    item of the memory at hand, which may come from an earlier session on a clock running ahead.
    """
    global _last_stamp
    with _clock_lock:
        now = time.time()
        floor = max(_last_stamp, after)
        if now <= floor:
            now = math.nextafter(floor, math.inf)
        _last_stamp = now
        return now


def _new_id() -> str:
    # 64 random bits: ids are unique across owners too, since the store keys items by id alone.
    return f"mem-{uuid.uuid4().hex[:16]}"


def _json_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """`meta` as it will read back from the store (JSON), so memory and store never disagree."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a mapping of str to JSON values, got {type(meta).__name__}")
    bad_keys = [key for key in meta if not isinstance(key, str)]
    if bad_keys:
        raise ValueError(f"meta keys must be strings (meta is stored as JSON), got {bad_keys[0]!r}")
    try:
        loaded: dict[str, Any] = json.loads(json.dumps(dict(meta), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"meta must hold JSON values only (it is stored as JSON): {error}"
        ) from None
    return loaded


class AgentMemory:
    """The memory `owner` holds; with a `store`, every change is written through at once.

    A memory that already has items in the store is continued with `AgentMemory.load`.
    """

    def __init__(self, owner: str, store: Store | None = None) -> None:
        if not isinstance(owner, str) or not owner:
            raise ValueError(f"a memory needs its owner's name, got {owner!r}")
        if store is not None and store.has_memory(owner):
            raise ValueError(
                f"store {store.path} already holds memory of {owner!r}; continue it with "
                f"AgentMemory.load(store, {owner!r}) rather than starting another beside it"
            )
        self.owner = owner
        self.store = store
        # Insertion order is chronological order: dicts keep it, and ids look items up.
        self._items: dict[str, MemoryItem] = {}
        self._derived: dict[str, list[str]] = {}

    @classmethod
    def load(cls, store: Store, owner: str) -> AgentMemory:
        """The memory `owner` left in `store` (empty if none), writing through to it from now."""
        memory = cls(owner)
        memory.store = store
        position: dict[str, int] = {}
        for record in store.memory(owner):
            item = MemoryItem.from_record(record)
            # The store gives links back sorted by id; put them oldest first, as when made.
            # (A source outside this owner's memory, which only a foreign writer makes, goes last.)
            sources = sorted(item.sources, key=lambda s: position.get(s, len(position)))
            position[item.id] = len(position)
            memory._add(replace(item, sources=tuple(sources)))
        return memory

    # -- remembering -------------------------------------------------------------------------

    def remember_episode(
        self,
        content: str,
        env: Environment,
        *,
        episode_id: str | None = None,
        round: int | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> MemoryItem:
        """A game as this agent saw it. `meta["summary"]`, a one-line account of the game,
        stands in for the transcript when a context budget has no room for it."""
        summary = (meta or {}).get("summary")
        if summary is not None and (not isinstance(summary, str) or not summary.strip()):
            raise ValueError(f"meta['summary'] must be a non-empty string, got {summary!r}")
        return self._remember(
            "episode", content, env, episode_id=episode_id, round=round, meta=meta, sources=()
        )

    def remember_feedback(
        self,
        content: str,
        env: Environment,
        *,
        about: Sequence[MemoryItem | str],
        round: int | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> MemoryItem:
        """A critic's advice, linked to the episodes (items or ids) it criticised."""
        if isinstance(about, str | MemoryItem):
            about = [about]  # one episode given bare is still one episode
        sources = self._known_sources(about, what="feedback")
        if not sources:
            raise ValueError(
                "feedback must name the episodes it criticised (about=[episode, ...]); "
                "without them it could not be forgotten with them"
            )
        for source in sources:
            if self._items[source].kind != "episode":
                raise ValueError(
                    f"feedback is about episodes, but {source!r} is a "
                    f"{self._items[source].kind} item"
                )
        return self._remember(
            "feedback", content, env, episode_id=None, round=round, meta=meta, sources=sources
        )

    def remember_note(
        self,
        content: str,
        env: Environment,
        *,
        derived_from: Sequence[MemoryItem | str] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> MemoryItem:
        """A fact or lesson, linked to whatever items it was drawn from."""
        if isinstance(derived_from, str | MemoryItem):
            derived_from = [derived_from]
        sources = self._known_sources(derived_from, what="note")
        return self._remember(
            "note", content, env, episode_id=None, round=None, meta=meta, sources=sources
        )

    # -- reading -----------------------------------------------------------------------------

    def items(
        self, kind: MemoryKind | None = None, env: Environment | None = None
    ) -> list[MemoryItem]:
        """Items oldest first; `kind` and `env` narrow them (see `Environment.includes`)."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        return [
            item
            for item in self._items.values()
            if (kind is None or item.kind == kind) and (env is None or env.includes(item.env))
        ]

    def get(self, item_id: str) -> MemoryItem:
        try:
            return self._items[item_id]
        except KeyError:
            raise self._unknown(item_id) from None

    def descendants(self, item_id: str) -> list[MemoryItem]:
        """Everything derived from the item, directly or through other items, oldest first."""
        self.get(item_id)
        found: set[str] = set()
        frontier = [item_id]
        while frontier:
            for child in self._derived.get(frontier.pop(), []):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        return [item for item in self._items.values() if item.id in found]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[MemoryItem]:
        return iter(list(self._items.values()))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __repr__(self) -> str:
        where = f", store={str(self.store.path)!r}" if self.store is not None else ""
        return f"AgentMemory(owner={self.owner!r}, items={len(self)}{where})"

    # -- forgetting --------------------------------------------------------------------------

    def forget(self, item_id: str) -> list[str]:
        """Remove the item and everything derived from it; returns their ids, oldest first."""
        gone = [self.get(item_id).id, *(item.id for item in self.descendants(item_id))]
        # Store first: if it fails, memory still matches what the store holds.
        if self.store is not None:
            self.store.delete_memory(self.owner, gone)
        for removed in gone:
            item = self._items.pop(removed)
            for source in item.sources:
                children = self._derived.get(source)
                if children is not None and removed in children:
                    children.remove(removed)
            self._derived.pop(removed, None)
        return gone

    # -- internals ---------------------------------------------------------------------------

    def _remember(
        self,
        kind: MemoryKind,
        content: str,
        env: Environment,
        *,
        episode_id: str | None,
        round: int | None,
        meta: Mapping[str, Any] | None,
        sources: tuple[str, ...],
    ) -> MemoryItem:
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"a {kind} item needs some text as content, got {content!r}")
        if not isinstance(env, Environment):
            raise ValueError(
                f"env must be an Environment(game, item, counterpart), got {type(env).__name__}"
            )
        if round is not None and (
            isinstance(round, bool) or not isinstance(round, int) or round < 1
        ):
            raise ValueError(f"round counts from 1, got {round!r}")
        newest = next(reversed(self._items.values()), None)
        item = MemoryItem(
            id=self._fresh_id(),
            owner=self.owner,
            kind=kind,
            content=content,
            env=env,
            episode_id=episode_id,
            round=round,
            tokens=estimate_tokens(content),
            created_at=_stamp(newest.created_at if newest else 0.0),
            meta=_json_meta(meta),
            sources=sources,
        )
        # Store first, so a failed write leaves no item that the next session would not see.
        if self.store is not None:
            self.store.add_memory(item.to_record())
        self._add(item)
        return item

    def _add(self, item: MemoryItem) -> None:
        self._items[item.id] = item
        for source in item.sources:
            self._derived.setdefault(source, []).append(item.id)

    def _fresh_id(self) -> str:
        while (item_id := _new_id()) in self._items:
            pass
        return item_id

    def _known_sources(self, refs: Sequence[MemoryItem | str], *, what: str) -> tuple[str, ...]:
        """The ids `refs` name, checked to be in this memory, without repeats, oldest first.

        Oldest first because the store gives links back in no meaningful order: sorting here
        makes `sources` read the same before and after a reload.
        """
        ids: set[str] = set()
        for ref in refs:
            ref_id = ref.id if isinstance(ref, MemoryItem) else ref
            if ref_id not in self._items:
                raise ValueError(
                    f"a {what} of {self.owner!r} cannot derive from {ref_id!r}: "
                    "no such item in this memory"
                )
            ids.add(ref_id)
        return tuple(item_id for item_id in self._items if item_id in ids)

    def _unknown(self, item_id: str) -> UnknownMemoryItemError:
        return UnknownMemoryItemError(
            f"{self.owner!r}'s memory holds no item {item_id!r} "
            f"(it holds {len(self)}; was it forgotten already?)"
        )
