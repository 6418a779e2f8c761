"""What SQLite's failures mean to someone holding a store: one line that names the store, says
what is wrong with it and what to do.

Raised in place of `sqlite3` errors wherever the store meets SQLite (see `Store`), so a
damaged file, a full disk or a read-only folder ends a command with a sentence, never a
traceback.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from haggler.errors import StoreError

__all__ = ["damaged_record", "damaged_store", "store_error"]

# SQLite's primary result codes (https://sqlite.org/rescode.html); an extended code keeps its
# primary code in its low byte.
_ERROR = 1
_PERM = 3
_BUSY, _LOCKED = 5, 6
_READONLY = 8
_IOERR = 10
_CORRUPT = 11
_FULL = 13
_CANTOPEN = 14
_NOTADB = 26


def store_error(path: Path, error: sqlite3.Error) -> StoreError:
    """The StoreError to raise for `error`, met while using the store at `path`."""
    code = getattr(error, "sqlite_errorcode", None)
    said = _one_line(str(error))
    if code is None:
        # Raised by Python's sqlite3 module itself; the one it raises on a store's data is a
        # text that is not UTF-8, and its message quotes the (damaged) text: leave that out.
        if "decode" in said.lower():
            return damaged_record(path, "a stored text is not UTF-8")
        return StoreError(f"store {path}: {said}")
    primary = code & 0xFF
    if primary in (_CORRUPT, _NOTADB):
        return damaged_store(path, said)
    if primary == _FULL:
        return StoreError(
            f"store {path}: the disk is full ({said}); free some space and run again (what was "
            f"stored before is kept)"
        )
    if primary == _IOERR:
        return StoreError(
            f"store {path}: the disk failed to read or write it ({said}); check that the disk "
            f"has free space and is still there, then run again"
        )
    if primary in (_READONLY, _PERM):
        return StoreError(
            f"store {path} is read-only ({said}); make it and its folder writable, or pass "
            f"another --db"
        )
    if primary in (_BUSY, _LOCKED):
        return StoreError(
            f"store {path} is busy: another process has kept it locked ({said}); try again "
            f"when that process is done"
        )
    if primary == _CANTOPEN:
        return StoreError(
            f"store {path} cannot be opened ({said}); check that it and its folder exist and "
            f"can be read"
        )
    if primary == _ERROR and "pattern too complex" in said:
        return StoreError(f"store {path}: {said}; search for fewer or shorter words")
    return StoreError(
        f"store {path}: SQLite failed ({said}); if another program changed the file, restore "
        f"it from a backup or pass another --db"
    )


def damaged_store(path: Path, problem: str) -> StoreError:
    """The file's pages are broken: SQLite says so reading it, or its integrity check does."""
    return StoreError(
        f"store {path} is damaged ({_one_line(problem)}); restore it from a backup, or salvage "
        f"what is left with `sqlite3 {path} .recover`"
    )


def damaged_record(path: Path, what: str) -> StoreError:
    """A row that SQLite reads but haggler cannot: bytes changed under the database's feet."""
    return StoreError(f"store {path} is damaged: {what}; restore it from a backup")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
