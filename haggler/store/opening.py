"""Opening a store file: whether it is a haggler store is settled before anything is written.

A file is looked at (kind, size, SQLite's header), then read over a read-only connection
(schema version, tables, and for a writer SQLite's quick integrity check); only a file that
passes is opened for writing, switched to WAL and migrated. A file refused here is left
byte for byte as it was, with no journal beside it.

A store this process cannot write (a read-only file, folder or filesystem) opens for reading
over a read-only connection; SQLite reads a WAL database there as long as it need not create
the `-shm` file beside it, so a store with no `-wal` file is opened `immutable` (nothing
uncommitted can be missed: a writer would have a `-wal` file).

A new store is built under a hidden name beside its path and linked into place when whole:
a store is complete or absent, never an empty file left by a process killed while creating
it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import uuid
from contextlib import suppress
from pathlib import Path

from haggler.errors import StoreError
from haggler.store.schema import SCHEMA_VERSION, migrate, tables_at
from haggler.store.sqlite_errors import damaged_store, store_error

__all__ = ["connect_store"]

_HEADER = b"SQLite format 3\x00"
_SIDE_FILES = ("-wal", "-shm", "-journal")
# Free space below which a store is not opened for writing: the -shm file (32 KiB) and the
# first frames of the -wal would not fit, and SQLite would fail leaving both behind.
_ROOM_TO_WRITE = 64 * 1024


def connect_store(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection (in autocommit) to the haggler store at `path`, migrated to this
    haggler's schema; created first if missing, unless `read_only`. Raises StoreError."""
    try:
        return _connect(path, read_only=read_only)
    except sqlite3.Error as error:
        raise store_error(path, error) from error


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    status = _status(path)
    if status is None:
        if read_only:
            raise StoreError(f"store {path}: no such file; play a game first or pass --db")
        _create(path)
        status = _status(path)
        if status is None:  # made just now, and already removed by someone else
            raise StoreError(f"store {path}: removed while it was being created; run again")
    _check_kind(path, status)
    wal_header = _wal_header(path)
    unwritable = _why_unwritable(path)
    writable = unwritable is None
    if unwritable is not None and not read_only:
        if _disk_full(path.parent):
            raise _disk_full_error(path)
        raise StoreError(
            f"store {path} is read-only ({unwritable}); make it writable, or pass another "
            f"--db to a command that writes"
        )
    has_wal = _side(path, "-wal").exists()
    if not writable and has_wal and not _side(path, "-shm").exists():
        # SQLite reads the -wal's commits only through a -shm file it would have to create:
        # in a read-only folder it cannot, beside a read-only file it must not.
        raise StoreError(
            f"store {path}: {_side(path, '-wal').name} beside it holds changes not yet in it, "
            f"which SQLite reads only by creating {_side(path, '-shm').name}, and the store is "
            f"read-only ({unwritable}); copy both files to a writable folder and open the copy"
        )
    probe = _read_only(path, immutable=wal_header and not has_wal)
    try:
        version = _schema_version(probe, path)
        if not read_only:
            _check_integrity(probe, path)
        if not writable:
            if version < SCHEMA_VERSION:
                raise StoreError(
                    f"store {path}: schema version {version} is older than this haggler's "
                    f"({SCHEMA_VERSION}) and the store is read-only, so it cannot be upgraded; "
                    f"make it writable once, or copy it to a writable folder"
                )
            return probe
    except BaseException:
        probe.close()
        raise
    probe.close()
    db = _read_write(path)
    try:
        migrate(db, version)
        if read_only:
            # Read-write only so that the last connection to close checkpoints and removes
            # the -wal and -shm files, as SQLite does for writers; no statement may write.
            db.execute("PRAGMA query_only=ON")
        else:
            db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a killed process; only an OS crash may
            # lose the last commits, which is the trade every turn-by-turn logger makes.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            # Deleted content is overwritten, not left in free pages: forgetting must erase.
            db.execute("PRAGMA secure_delete=ON")
    except BaseException:
        db.close()
        raise
    return db


def _status(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StoreError(
                f"store {path}: folder {path.parent} does not exist; create it or choose "
                f"another --db"
            ) from None
        return None
    except OSError as error:
        raise StoreError(
            f"store {path}: {error.strerror or error}; check the path or pass another --db"
        ) from None


def _check_kind(path: Path, status: os.stat_result) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise StoreError(f"store {path}: is a directory; give a file path such as haggler.db")
    if not stat.S_ISREG(status.st_mode):
        raise StoreError(
            f"store {path}: not a regular file (a device, pipe or socket); give a file path "
            f"such as haggler.db"
        )
    if status.st_size == 0:
        raise StoreError(
            f"store {path}: an empty file (0 bytes), not a haggler store; delete it and "
            f"haggler will start a new store there, or pass another --db"
        )
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_HEADER))
    except OSError as error:
        raise StoreError(
            f"store {path}: cannot be read ({error.strerror or error}); check its permissions "
            f"or pass another --db"
        ) from None
    if header != _HEADER:
        raise StoreError(
            f"store {path}: not a haggler store (not an SQLite database); pass another --db"
        )


def _wal_header(path: Path) -> bool:
    # Bytes 18 and 19 of the header: the file format versions, 2 for a WAL database.
    with path.open("rb") as handle:
        handle.seek(18)
        return handle.read(2) == b"\x02\x02"


def _why_unwritable(path: Path) -> str | None:
    """Why this process cannot write the store at `path`; None if it can."""
    if not os.access(path, os.W_OK):
        return "the file cannot be written"
    if not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent} cannot be written, and SQLite keeps its journal there"
    if _disk_full(path.parent):
        # Even reading through a writable connection needs room for the -shm file.
        return "its disk is full"
    return None


def _disk_full(folder: Path) -> bool:
    try:
        space = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False
    return space.f_bavail * space.f_frsize < _ROOM_TO_WRITE


def _disk_full_error(path: Path) -> StoreError:
    return StoreError(
        f"store {path}: the disk holding it is full; free some space and run again (what was "
        f"stored before is kept)"
    )


def _schema_version(db: sqlite3.Connection, path: Path) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {path}: schema version {version} is newer than this haggler's "
            f"({SCHEMA_VERSION}); upgrade haggler to read it"
        )
    if version == 0 and not tables:
        raise StoreError(
            f"store {path}: an empty SQLite database, not a haggler store; delete it and "
            f"haggler will start a new store there, or pass another --db"
        )
    # Other programs number their schemas too: a version is haggler's only with its tables.
    if version == 0 or not tables_at(version) <= tables:
        raise StoreError(
            f"store {path}: an SQLite file that haggler did not make; pass another --db"
        )
    return version


def _check_integrity(db: sqlite3.Connection, path: Path) -> None:
    # Before a writer touches it: writing into broken pages can only lose more. The quick
    # check reads every page once (about 0.15 s for 200 MB, less than a game's worth).
    problems = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
    if problems != ["ok"]:
        found = [p for line in problems for p in line.splitlines() if not p.startswith("***")]
        raise damaged_store(path, found[0] if found else "integrity check failed")


def _read_only(path: Path, *, immutable: bool) -> sqlite3.Connection:
    uri = path.absolute().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _read_write(path: Path) -> sqlite3.Connection:
    # mode=rw: the file was checked above; were it removed since, fail rather than create it.
    uri = path.absolute().as_uri() + "?mode=rw"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    # Another process (a second CLI, a viewer) may hold the write lock for a moment.
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _create(path: Path) -> None:
    """Build an empty store of this schema beside `path`, then give it the name `path`."""
    if not os.access(path.parent, os.W_OK):
        raise StoreError(
            f"store {path}: cannot create it, folder {path.parent} cannot be written; choose "
            f"another --db"
        )
    if _disk_full(path.parent):
        raise StoreError(
            f"store {path}: cannot create it, the disk is full; free some space or choose "
            f"another --db"
        )
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.new")
    try:
        db = sqlite3.connect(draft, isolation_level=None)
        try:
            migrate(db, 0)
            db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process created it first: both use that one
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A filesystem without hard links: a rename, which cannot refuse to replace.
            if not path.exists():
                os.rename(draft, path)
    except OSError as error:
        raise StoreError(
            f"store {path}: cannot create it ({error.strerror or error}); choose another --db"
        ) from None
    finally:
        for suffix in ("", *_SIDE_FILES):
            with suppress(OSError):
                os.unlink(f"{draft}{suffix}")


def _side(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)
