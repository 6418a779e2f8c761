"""Agents' memory in the store: items, their provenance links and tags, and what forgetting
does to them (delete, rewrite, cut links), each all or nothing.

A mixin of `haggler.store.Store`: it uses the store's connection and transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from haggler.errors import StoreError
from haggler.store.query import like_prefix
from haggler.store.records import MemoryRecord

__all__ = ["MemoryTables"]

_MEMORY_COLUMNS = (
    "id, owner, kind, content, game, item, counterpart, episode_id, round, tokens, created_at, "
    "meta_json"
)
_NAMES = [c.strip() for c in _MEMORY_COLUMNS.split(",")]
# SQLite's default limit on bound variables is 999 in older builds: stay well below it.
_CHUNK = 500


def chunks(ids: list[str]) -> Iterator[list[str]]:
    """`ids` in pieces small enough to bind as one statement's parameters."""
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


class MemoryTables:
    _db: sqlite3.Connection
    path: Path

    def _transaction(self, begin: str = "BEGIN") -> AbstractContextManager[None]:
        raise NotImplementedError  # pragma: no cover - provided by Store

    # -- writing -----------------------------------------------------------------------------

    def add_memory(self, record: MemoryRecord) -> None:
        """Store one memory item, its provenance links and its tags, atomically."""
        with self._transaction():
            self._db.execute(
                f"INSERT INTO memory_items ({_MEMORY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(record),
            )
            self._write_links(record)

    def rewrite_memory(self, record: MemoryRecord) -> None:
        """Replace an item's content, tokens, meta, links and tags (redacted or re-derived),
        keeping its id, owner and place in time."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE memory_items SET content = ?, tokens = ?, meta_json = ? "
                "WHERE id = ? AND +owner = ?",
                (record.content, record.tokens, json.dumps(record.meta), record.id, record.owner),
            )
            if cursor.rowcount != 1:
                raise StoreError(
                    f"store {self.path}: {record.owner!r} holds no memory item {record.id!r}"
                )
            self._db.execute("DELETE FROM memory_links WHERE item_id = ?", (record.id,))
            self._db.execute("DELETE FROM memory_tags WHERE item_id = ?", (record.id,))
            self._write_links(record)

    def delete_memory(self, owner: str, item_ids: Iterable[str], *, cut_links: bool = False) -> int:
        """Delete `owner`'s items `item_ids`, their links and tags, all or nothing; returns the
        count.

        Deleting an item that something left behind was derived from fails (StoreError):
        forget an item together with its descendants, or say `cut_links=True` (redact and
        rederive keep descendants and cut their links to what is forgotten).
        """
        ids = list(dict.fromkeys(item_ids))
        deleted = 0
        try:
            with self._transaction():
                # Links are checked at COMMIT, so the chunks may come in any order.
                self._db.execute("PRAGMA defer_foreign_keys=ON")
                for chunk in chunks(ids):
                    marks = ",".join("?" * len(chunk))
                    if cut_links:
                        self._db.execute(
                            f"DELETE FROM memory_links WHERE source_id IN ({marks})", chunk
                        )
                    # `+owner` keeps SQLite on the primary key: with the owner's index it
                    # would read every item of the owner to delete three.
                    cursor = self._db.execute(
                        f"DELETE FROM memory_items WHERE id IN ({marks}) AND +owner = ?",
                        [*chunk, owner],
                    )
                    deleted += cursor.rowcount
        except sqlite3.IntegrityError:
            raise StoreError(
                f"store {self.path}: cannot delete memory of {owner!r} that other items were "
                f"derived from; forget it together with its descendants"
            ) from None
        return deleted

    def _write_links(self, record: MemoryRecord) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO memory_links (item_id, source_id, relation) VALUES (?, ?, ?)",
            [(record.id, s, record.relations.get(s, "derived")) for s in record.sources],
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO memory_tags (item_id, tag) VALUES (?, ?)",
            [(record.id, tag) for tag in record.tags],
        )

    # -- reading -----------------------------------------------------------------------------

    def memory(self, owner: str) -> list[MemoryRecord]:
        """Every memory item `owner` holds, oldest first, with the items each was derived from
        (sorted by id) and how, and its tags."""
        links: dict[str, dict[str, str]] = {}
        for item_id, source_id, relation in self._db.execute(
            "SELECT l.item_id, l.source_id, l.relation FROM memory_links l "
            "JOIN memory_items m ON m.id = l.item_id WHERE m.owner = ?",
            (owner,),
        ):
            links.setdefault(item_id, {})[source_id] = relation
        tags: dict[str, list[str]] = {}
        for item_id, tag in self._db.execute(
            "SELECT t.item_id, t.tag FROM memory_tags t JOIN memory_items m ON m.id = t.item_id "
            "WHERE m.owner = ? ORDER BY t.rowid",
            (owner,),
        ):
            tags.setdefault(item_id, []).append(tag)
        records = []
        for row in self._db.execute(
            f"SELECT {_MEMORY_COLUMNS} FROM memory_items WHERE owner = ? "
            "ORDER BY created_at, rowid",
            (owner,),
        ):
            fields = dict(zip(_NAMES, row, strict=True))
            fields["meta"] = json.loads(fields.pop("meta_json"))
            sources = links.get(fields["id"], {})
            records.append(
                MemoryRecord(
                    **fields,
                    sources=sorted(sources),
                    relations=sources,
                    tags=tags.get(fields["id"], []),
                )
            )
        return records

    def has_memory(self, owner: str) -> bool:
        row = self._db.execute("SELECT 1 FROM memory_items WHERE owner = ? LIMIT 1", (owner,))
        return row.fetchone() is not None

    def memory_owners(self, prefix: str | None = None) -> list[str]:
        """Every agent that holds memory here; with `prefix`, those whose name starts with it."""
        if prefix is None:
            rows = self._db.execute("SELECT DISTINCT owner FROM memory_items ORDER BY owner")
        else:
            rows = self._db.execute(
                "SELECT DISTINCT owner FROM memory_items WHERE owner LIKE ? ESCAPE '\\' "
                "ORDER BY owner",
                (like_prefix(prefix),),
            )
        return [r[0] for r in rows]

    def memory_sizes(self, owners: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(items, tokens) each of `owners` holds."""
        sizes: dict[str, tuple[int, int]] = {}
        for chunk in chunks(list(owners)):
            marks = ",".join("?" * len(chunk))
            for owner, count, tokens in self._db.execute(
                f"SELECT owner, COUNT(*), SUM(tokens) FROM memory_items WHERE owner IN ({marks}) "
                "GROUP BY owner",
                chunk,
            ):
                sizes[owner] = (count, tokens or 0)
        return sizes


def _row(record: MemoryRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.owner,
        record.kind,
        record.content,
        record.game,
        record.item,
        record.counterpart,
        record.episode_id,
        record.round,
        record.tokens,
        record.created_at,
        json.dumps(record.meta),
    )
