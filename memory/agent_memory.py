"""One agent's memory: episodes it played, feedback it was given, notes it drew, with provenance.

Every item records the items it was derived from, and how: feedback -> the episode it
criticised and the advice that was in the critic's context; an episode -> every item that was
in the player's context when it was played, and the episode whose price set its goal. That is
what makes forgetting exact: `forget` removes an item and, transitively, everything whose
making it influenced, in memory and in the store alike. What an agent learned (a price to
beat, a tactic's parameters) is never stored: it is recomputed from the items that remain.

Costs: remembering an item is O(its sources + log n); forgetting is O(what is removed, each
log n); looking items up by kind, episode, tag or environment field walks only those items, and
so does stepping through them newest first within an environment (`newest`, `older`).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from haggler.memory.items import (
    KINDS,
    RELATIONS,
    Environment,
    MemoryItem,
    MemoryKind,
    Relation,
    check_tag,
)
from haggler.memory.labels import smallest_rendering
from haggler.memory.recency import RecencyIndex
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


Ref = MemoryItem | str
# What an environment with no items of a kind steps through.
_EMPTY = RecencyIndex()


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
        self._order: dict[str, int] = {}
        self._made = 0
        self._derived: dict[str, dict[str, None]] = {}
        self._kinds: dict[str, RecencyIndex] = {kind: RecencyIndex() for kind in KINDS}
        # The same, per kind and environment field (game, item, counterpart): a context or a
        # lookup within an environment steps through that environment's items only.
        self._kinds_in: dict[tuple[str, str, str], RecencyIndex] = {}
        # Lookups by what a request can name: an episode, a tag, an environment field.
        self._index: dict[tuple[str, str], dict[str, None]] = {}

    @classmethod
    def load(cls, store: Store, owner: str) -> AgentMemory:
        """The memory `owner` left in `store` (empty if none), writing through to it from now."""
        memory = cls(owner)
        memory.store = store
        position: dict[str, int] = {}
        sizes: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for record in store.memory(owner):
            # The store gives links back sorted by id; put them oldest first, as when made.
            # (A source outside this owner's memory, which only a foreign writer makes, goes last.)
            sources = sorted(record.sources, key=lambda s: position.get(s, len(position)))
            item = MemoryItem.from_record(record, sources=sources)
            position[item.id] = len(position)
            memory._add(item, recency=False)
            size = smallest_rendering(item)
            for key in [(item.kind,), *memory._env_keys(item)]:
                sizes.setdefault(key, []).append((item.id, size))
        # The recency indexes built once at the end, rather than one item at a time.
        for key, entries in sizes.items():
            if len(key) == 1:
                memory._kinds[key[0]].extend(entries)
            else:
                memory._kinds_in.setdefault(key, RecencyIndex()).extend(entries)  # type: ignore[arg-type]
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
        context: Sequence[Ref] = (),
        goal_from: Ref | None = None,
        tags: Iterable[str] = (),
    ) -> MemoryItem:
        """A game as this agent saw it.

        `context`: the items that were in the agent's prompt while it played (its
        recollection); `goal_from`: the episode whose price set its goal. `meta["summary"]`, a
        one-line account of the game, stands in for the transcript when a context budget has no
        room for it.
        """
        summary = (meta or {}).get("summary")
        if summary is not None and (not isinstance(summary, str) or not summary.strip()):
            raise ValueError(f"meta['summary'] must be a non-empty string, got {summary!r}")
        links = self._links({"context": context, "goal": [goal_from] if goal_from else []})
        return self._remember(
            "episode", content, env, episode_id=episode_id, round=round, meta=meta, links=links,
            tags=tags,
        )  # fmt: skip

    def remember_feedback(
        self,
        content: str,
        env: Environment,
        *,
        about: Sequence[Ref],
        context: Sequence[Ref] = (),
        round: int | None = None,
        meta: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> MemoryItem:
        """A critic's advice, linked to the episodes (items or ids) it criticised and to the
        items that were in the critic's context (earlier advice it read)."""
        if isinstance(about, str | MemoryItem):
            about = [about]  # one episode given bare is still one episode
        links = self._links({"about": about, "context": context})
        criticised = [source for source, relation in links if relation == "about"]
        if not criticised:
            raise ValueError(
                "feedback must name the episodes it criticised (about=[episode, ...]); "
                "without them it could not be forgotten with them"
            )
        for source in criticised:
            if self._items[source].kind != "episode":
                raise ValueError(
                    f"feedback is about episodes, but {source!r} is a "
                    f"{self._items[source].kind} item"
                )
        # The feedback answers for one game: it carries that game's id, so forgetting a game
        # by its id finds the advice about it too.
        episode_id = self._items[criticised[-1]].episode_id
        return self._remember(
            "feedback", content, env, episode_id=episode_id, round=round, meta=meta, links=links,
            tags=tags,
        )  # fmt: skip

    def remember_note(
        self,
        content: str,
        env: Environment,
        *,
        derived_from: Sequence[Ref] = (),
        meta: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> MemoryItem:
        """A fact or lesson, linked to whatever items it was drawn from."""
        if isinstance(derived_from, str | MemoryItem):
            derived_from = [derived_from]
        links = self._links({"derived": derived_from})
        return self._remember(
            "note", content, env, episode_id=None, round=None, meta=meta, links=links, tags=tags
        )

    # -- reading -----------------------------------------------------------------------------

    def items(
        self,
        kind: MemoryKind | None = None,
        env: Environment | None = None,
        *,
        tag: str | None = None,
    ) -> list[MemoryItem]:
        """Items oldest first; `kind`, `env` and `tag` narrow them (see `Environment.includes`)."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        if tag is not None:
            pool: Iterable[MemoryItem] = self._looked_up("tag", tag)
        elif env is not None:
            pool = self._looked_up("game", env.game)
        else:
            pool = self._items.values()
        return [
            item
            for item in pool
            if (kind is None or item.kind == kind) and (env is None or env.includes(item.env))
        ]

    def newest(
        self, kind: MemoryKind, env: Environment | None = None, *, at_most: float = math.inf
    ) -> Iterator[MemoryItem]:
        """Items of `kind`, newest first, within `env`, whose smallest rendering is at most
        `at_most` characters (see `smallest_rendering`)."""
        for item_id in self._recency(kind, env).newest_first(at_most=at_most):
            item = self._items[item_id]
            if env is None or env.includes(item.env):
                yield item

    def older(
        self,
        kind: MemoryKind,
        than: MemoryItem | None,
        at_most: float,
        env: Environment | None = None,
    ) -> MemoryItem | None:
        """The newest item of `kind` (within `env`, if given) made before `than` (or at all)
        that can render in at most `at_most` characters: a context's step to its next
        candidate. Within an environment it steps over the items of that environment only."""
        index = self._recency(kind, env)
        if than is not None and than.id not in index:
            index = self._kinds[kind]  # `than` lies outside `env`: step through the kind
        while True:
            found = index.older(than.id if than else None, at_most)
            if found is None:
                return None
            item = self._items[found]
            if env is None or env.includes(item.env):
                return item
            than = item

    def of_episode(self, episode_id: str) -> list[MemoryItem]:
        """The items that carry `episode_id`: the game as remembered and the advice on it."""
        return self._looked_up("episode", episode_id)

    def of_episode_prefix(self, prefix: str) -> list[MemoryItem]:
        """The items of every game whose id starts with `prefix` (the exact id included)."""
        exact = self._looked_up("episode", prefix)
        if exact:
            return exact
        found = [
            item_id
            for (field, value), bucket in self._index.items()
            if field == "episode" and value.startswith(prefix)
            for item_id in bucket
        ]
        return self._oldest_first(found)

    def get(self, item_id: str) -> MemoryItem:
        try:
            return self._items[item_id]
        except KeyError:
            raise self._unknown(item_id) from None

    def position(self, item_id: str) -> int:
        """Where the item stands in the order items were made (larger is newer)."""
        self.get(item_id)
        return self._order[item_id]

    def children(self, item_id: str) -> list[MemoryItem]:
        """The items derived directly from `item_id`, oldest first."""
        self.get(item_id)
        return [self._items[child] for child in self._derived.get(item_id, {})]

    def descendants(self, item_id: str | Iterable[str]) -> list[MemoryItem]:
        """Everything derived from the item(s), directly or through other items, oldest first
        (the items themselves excluded)."""
        roots = [item_id] if isinstance(item_id, str) else list(item_id)
        for root in roots:
            self.get(root)
        found: set[str] = set()
        frontier = list(roots)
        while frontier:
            for child in self._derived.get(frontier.pop(), ()):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        found.difference_update(roots)
        return self._oldest_first(found)

    def closure(self, item_ids: Iterable[str]) -> list[MemoryItem]:
        """The items and everything derived from them, oldest first: what exact forgetting of
        `item_ids` removes."""
        roots = set(item_ids)
        return self._oldest_first(roots | {item.id for item in self.descendants(roots)})

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[MemoryItem]:
        return iter(list(self._items.values()))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __repr__(self) -> str:
        where = f", store={str(self.store.path)!r}" if self.store is not None else ""
        return f"AgentMemory(owner={self.owner!r}, items={len(self)}{where})"

    def copy(self, owner: str | None = None) -> AgentMemory:
        """A new memory, held in this process only, given exactly this memory's items with
        their links among themselves (new ids, same order and content): after forgetting, the
        reference agent "rebuilt from the retained items alone"; before it, a snapshot."""
        fresh = AgentMemory(owner or self.owner)
        made: dict[str, MemoryItem] = {}
        for item in self:

            def linked(relation: str, item: MemoryItem = item) -> list[MemoryItem]:
                return [made[s] for s, r in item.relations.items() if r == relation]

            meta = dict(item.meta)
            if item.kind == "episode":
                goal = linked("goal")
                new = fresh.remember_episode(
                    item.content, item.env, episode_id=item.episode_id, round=item.round,
                    meta=meta, context=linked("context"), goal_from=goal[0] if goal else None,
                    tags=item.tags,
                )  # fmt: skip
            elif item.kind == "feedback":
                new = fresh.remember_feedback(
                    item.content, item.env, about=linked("about"), context=linked("context"),
                    round=item.round, meta=meta, tags=item.tags,
                )  # fmt: skip
            else:
                new = fresh.remember_note(
                    item.content, item.env, derived_from=linked("derived"), meta=meta,
                    tags=item.tags,
                )  # fmt: skip
            made[item.id] = new
        return fresh

    # -- forgetting --------------------------------------------------------------------------

    def forget(self, item_id: str) -> list[str]:
        """Remove the item and everything derived from it; returns their ids, oldest first.

        The plain exact case; requests by fact, game or environment, and the redact and
        rederive modes, go through `haggler.memory.forgetting`.
        """
        gone = [item.id for item in self.closure([self.get(item_id).id])]
        # Store first: if it fails, memory still matches what the store holds.
        if self.store is not None:
            self.store.delete_memory(self.owner, gone)
        self.drop(gone)
        return gone

    def drop(self, item_ids: Iterable[str], *, cut_links: bool = False) -> None:
        """Remove `item_ids` from this memory only (the store is the caller's business).

        Items left behind that derive from a removed one keep standing only with
        `cut_links=True` (redact and rederive keep descendants); otherwise that is refused, so
        provenance is never cut by accident.
        """
        gone = set(item_ids)
        for removed in gone:
            self.get(removed)
        if not cut_links:
            for removed in gone:
                orphans = [child for child in self._derived.get(removed, ()) if child not in gone]
                if orphans:
                    raise ValueError(
                        f"{orphans[0]!r} was derived from {removed!r}: forget them together "
                        "(or cut the link, as redact and rederive do)"
                    )
        for removed in gone:
            item = self._items.pop(removed)
            del self._order[removed]
            self._kinds[item.kind].remove(removed)
            for key in self._env_keys(item):
                index = self._kinds_in[key]
                index.remove(removed)
                if not len(index):
                    del self._kinds_in[key]
            for key in self._keys(item):
                bucket = self._index.get(key)
                if bucket is not None:
                    bucket.pop(removed, None)
                    if not bucket:
                        del self._index[key]
            for source in item.sources:
                children = self._derived.get(source)
                if children is not None:
                    children.pop(removed, None)
            for child in self._derived.pop(removed, {}):
                if child not in gone:
                    kept = self._items[child]
                    self._put(replace(kept, sources=tuple(s for s in kept.sources if s != removed)))

    def put(self, item: MemoryItem) -> None:
        """Replace an item of this memory by a new version of itself (same id, same place):
        redacted or re-derived content. Memory only; the store is the caller's business."""
        old = self.get(item.id)
        if (item.owner, item.kind, item.env) != (old.owner, old.kind, old.env):
            raise ValueError(
                f"{item.id!r} must keep its owner, kind and environment when rewritten"
            )
        missing = [s for s in item.sources if s not in self._items]
        if missing:
            raise ValueError(f"{item.id!r} cannot derive from {missing[0]!r}: no such item")
        for source in old.sources:
            self._derived.get(source, {}).pop(item.id, None)
        for source in item.sources:
            self._derived.setdefault(source, {})[item.id] = None
        old_keys, new_keys = set(self._keys(old)), set(self._keys(item))
        for key in old_keys - new_keys:
            bucket = self._index.get(key, {})
            bucket.pop(item.id, None)
            if not bucket:
                self._index.pop(key, None)
        for key in new_keys - old_keys:
            self._index.setdefault(key, {})[item.id] = None
        self._put(item)

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
        links: list[tuple[str, Relation]],
        tags: Iterable[str],
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
        if isinstance(tags, str):
            tags = [tags]
        checked_tags = tuple(dict.fromkeys(check_tag(tag) for tag in tags))
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
            sources=tuple(source for source, _ in links),
            relations=dict(links),
            tags=checked_tags,
        )
        # Store first, so a failed write leaves no item that the next session would not see.
        if self.store is not None:
            self.store.add_memory(item.to_record())
        self._add(item)
        return item

    def _add(self, item: MemoryItem, *, recency: bool = True) -> None:
        self._items[item.id] = item
        self._order[item.id] = self._made
        self._made += 1
        if recency:
            size = smallest_rendering(item)
            self._kinds[item.kind].add(item.id, size)
            for key in self._env_keys(item):
                self._kinds_in.setdefault(key, RecencyIndex()).add(item.id, size)
        for source in item.sources:
            self._derived.setdefault(source, {})[item.id] = None
        for key in self._keys(item):
            self._index.setdefault(key, {})[item.id] = None

    def _put(self, item: MemoryItem) -> None:
        self._items[item.id] = item
        size = smallest_rendering(item)
        self._kinds[item.kind].resize(item.id, size)
        for key in self._env_keys(item):
            self._kinds_in[key].resize(item.id, size)

    @staticmethod
    def _env_keys(item: MemoryItem) -> list[tuple[str, str, str]]:
        env = item.env
        keys = [(item.kind, "game", env.game)]
        if env.item is not None:
            keys.append((item.kind, "item", env.item))
        if env.counterpart is not None:
            keys.append((item.kind, "counterpart", env.counterpart))
        return keys

    def _recency(self, kind: MemoryKind, env: Environment | None) -> RecencyIndex:
        """The recency index to step through for `kind` within `env`: the smallest of those
        of the fields `env` names (an empty one when nothing there is of that kind)."""
        if env is None:
            return self._kinds[kind]
        fields = [("game", env.game), ("item", env.item), ("counterpart", env.counterpart)]
        named = [(kind, field, value) for field, value in fields if value is not None]
        return min((self._kinds_in.get(key, _EMPTY) for key in named), key=len, default=_EMPTY)

    @staticmethod
    def _keys(item: MemoryItem) -> list[tuple[str, str]]:
        keys = [("game", item.env.game)]
        if item.env.item is not None:
            keys.append(("item", item.env.item))
        if item.env.counterpart is not None:
            keys.append(("counterpart", item.env.counterpart))
        if item.episode_id is not None:
            keys.append(("episode", item.episode_id))
        keys.extend(("tag", tag) for tag in item.tags)
        return keys

    def _looked_up(self, field: str, value: str) -> list[MemoryItem]:
        # Rewritten items move within an index's buckets, so order them again.
        return self._oldest_first(self._index.get((field, value), {}))

    def _oldest_first(self, ids: Iterable[str]) -> list[MemoryItem]:
        return [self._items[i] for i in sorted(ids, key=self._order.__getitem__)]

    def _fresh_id(self) -> str:
        while (item_id := _new_id()) in self._items:
            pass
        return item_id

    def _links(
        self, by_relation: Mapping[Relation, Sequence[Ref | None]]
    ) -> list[tuple[str, Relation]]:
        """Sources as (id, relation), each checked to be in this memory, once each (the first
        relation named wins, in RELATIONS order), oldest first.

        Oldest first because the store gives links back in no meaningful order: sorting here
        makes `sources` read the same before and after a reload.
        """
        chosen: dict[str, Relation] = {}
        for relation in RELATIONS:
            for ref in by_relation.get(relation, ()):
                if ref is None:
                    continue
                ref_id = ref.id if isinstance(ref, MemoryItem) else ref
                if ref_id not in self._items:
                    raise ValueError(
                        f"an item of {self.owner!r} cannot derive from {ref_id!r}: "
                        "no such item in this memory"
                    )
                chosen.setdefault(ref_id, relation)
        return [(i, chosen[i]) for i in sorted(chosen, key=self._order.__getitem__)]

    def _unknown(self, item_id: str) -> UnknownMemoryItemError:
        return UnknownMemoryItemError(
            f"{self.owner!r}'s memory holds no item {item_id!r} "
            f"(it holds {len(self)}; was it forgotten already?)"
        )
