"""The store: written turn by turn, versioned, readable back exactly, exported as JSONL."""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from haggler import Store, play
from haggler.errors import ModelAuthError, StoreError
from haggler.store import export_jsonl
from haggler.store.records import EPISODE_SCHEMA, EpisodeRecord, TurnRecord
from haggler.store.schema import MIGRATIONS, SCHEMA_VERSION
from haggler.store.sqlite_errors import store_error
from tests.fakes.llm_server import FakeLLMServer, Status


async def test_a_played_game_reads_back_turn_for_turn(tmp_path: Path) -> None:
    seen: list[TurnRecord] = []
    with Store(tmp_path / "h.db") as store:
        played = await play({"seed": 5}, store=store, listeners=[seen.append])
        episode = store.episode(played.episode_id)

    assert episode.status == "finished"
    assert [t.model_dump() for t in episode.transcript] == [t.model_dump() for t in seen]
    assert [t.index for t in episode.transcript] == list(range(len(seen)))
    assert episode.transcript[0].scripted and episode.transcript[1].scripted
    assert episode.outcome is not None
    assert episode.outcome.kind == played.result.outcome.kind
    assert episode.outcome.price == played.result.outcome.price
    assert episode.scores == played.result.scores
    assert episode.roles["seller"].model == "rule:boulware"
    assert episode.roles["seller"].private == {"cost": 8.0}
    assert episode.rules["seller_opening"] == 20.0
    assert episode.turns == len(seen)


async def test_every_turn_is_committed_while_the_game_is_still_going(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    counts: list[int] = []

    def count_from_another_connection(turn: TurnRecord) -> None:
        # A second reader sees each turn once the listener after the store's has it.
        with sqlite3.connect(db) as reader:
            counts.append(reader.execute("SELECT COUNT(*) FROM turns").fetchone()[0])

    with Store(db) as store:
        await play({}, store=store, listeners=[count_from_another_connection])
    assert counts == list(range(1, len(counts) + 1))


def test_store_uses_wal_and_records_its_schema_version(tmp_path: Path) -> None:
    Store(tmp_path / "h.db").close()
    with sqlite3.connect(tmp_path / "h.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_from_a_newer_haggler_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=r"newer than this haggler.*upgrade haggler"):
        Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_files_that_are_not_haggler_stores_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (x)")
    with pytest.raises(StoreError, match="did not make"):
        Store(foreign)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a haggler store"):
        Store(garbage)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing" / "h.db")


async def test_ids_resolve_by_prefix_and_latest_by_default(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        with pytest.raises(StoreError, match="holds no game yet"):
            store.resolve_episode(None)
        first = await play({"seed": 1}, store=store)
        second = await play({"seed": 2}, store=store)
        assert store.resolve_episode(None) == second.episode_id
        assert store.resolve_run(None) == second.run_id
        assert store.resolve_episode(first.episode_id[:-2]) == first.episode_id
        with pytest.raises(StoreError, match="ambiguous"):
            store.resolve_episode("ep-")
        with pytest.raises(StoreError, match="no game 'nope'"):
            store.resolve_episode("nope")
        # LIKE wildcards in a user's reference are literal characters, not patterns.
        with pytest.raises(StoreError, match="no game"):
            store.resolve_episode("%")
        assert [r.id for r in store.runs()] == [first.run_id, second.run_id]


async def test_jsonl_export_is_one_versioned_game_per_line(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        played = await play({"seed": 3}, store=store)
        path = tmp_path / "out.jsonl"
        assert export_jsonl(store, played.run_id, path) == 1
        stored = store.episode(played.episode_id)
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    game = json.loads(lines[0])
    assert game["schema"] == EPISODE_SCHEMA
    assert game["id"] == played.episode_id
    assert len(game["transcript"]) == len(stored.transcript)
    assert game["transcript"][2]["action"]["kind"] in {"offer", "accept", "walk_away"}
    assert game["outcome"]["kind"] == played.result.outcome.kind


async def test_a_game_whose_model_fails_is_stored_as_failed(
    tmp_path: Path, fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    fake_llm_server.script(Status(401, "bad key sk-test-0123456789abcdef"))
    spec = {
        "roles": {"buyer": {"model": "openai/gpt-fake", "api_base": fake_llm_server.openai_base}}
    }
    with Store(tmp_path / "h.db") as store:
        with pytest.raises(ModelAuthError) as raised:
            await play(spec, store=store)
        episode = store.episode(store.resolve_episode(None))
    assert episode.status == "failed"
    assert episode.outcome is None
    assert "openai/gpt-fake" in (episode.error or "")
    assert "0123456789abcdef" not in (episode.error or "") + str(raised.value)
    # The seller's rule-based turn is kept; the buyer's failed call left no turn behind.
    assert [t.speaker for t in episode.transcript if not t.scripted] == ["seller"]


async def test_a_cancelled_game_is_stored_as_interrupted(tmp_path: Path) -> None:
    import asyncio

    started = asyncio.Event()

    def note(turn: TurnRecord) -> None:
        if not turn.scripted:
            started.set()

    with Store(tmp_path / "h.db") as store:
        task = asyncio.create_task(
            play({"rules": {"max_exchanges": 1000}}, store=store, listeners=[note])
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        episode = store.episode(store.resolve_episode(None))
    assert episode.status == "failed"
    assert episode.error == "interrupted before the game ended"


async def test_a_run_reads_back_whole_in_one_go_exactly_as_game_by_game(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        run_id = store.start_run("batch")
        for seed in range(3):
            await play({"seed": seed}, store=store, run_id=run_id)
        await play({"seed": 9}, store=store)  # another run, which must not leak in
        whole = store.run_episodes(run_id)
        one_by_one = [store.episode(e.id) for e in store.episodes(run_id)]
    assert [e.model_dump() for e in whole] == [e.model_dump() for e in one_by_one]
    assert len(whole) == 3 and all(e.transcript for e in whole)


# --- opening: settled before anything is written ------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.mark.parametrize("read_only", [False, True])
def test_an_empty_file_is_refused_untouched(tmp_path: Path, read_only: bool) -> None:
    # `touch haggler.db` makes no store: nothing is adopted without being asked for.
    path = tmp_path / "h.db"
    path.touch()
    with pytest.raises(StoreError, match=r"an empty file \(0 bytes\).*delete it"):
        Store(path, read_only=read_only)
    assert _files(tmp_path) == {"h.db": b""}


def _rollback(path: Path) -> None:
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE notes (body TEXT)")
    other.close()


def _wal(path: Path) -> None:
    other = sqlite3.connect(path)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE notes (body TEXT)")
    other.close()


def _versioned(path: Path) -> None:
    # Another program that numbers its schema too, with a table named like one of haggler's:
    # it used to be switched to WAL and half-migrated before being refused.
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE episodes (title TEXT)")
        other.execute("PRAGMA user_version=2")
    other.close()


@pytest.mark.parametrize("make", [_rollback, _wal, _versioned])
@pytest.mark.parametrize("read_only", [False, True])
def test_another_programs_sqlite_file_is_refused_byte_for_byte(
    tmp_path: Path, make: Callable[[Path], None], read_only: bool
) -> None:
    path = tmp_path / "theirs.db"
    make(path)
    before = _files(tmp_path)
    with pytest.raises(StoreError, match="an SQLite file that haggler did not make"):
        Store(path, read_only=read_only)
    assert _files(tmp_path) == before, "its bytes changed, or a journal was left beside it"


def test_an_sqlite_file_with_no_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE t (x)")
        other.execute("DROP TABLE t")
    other.close()
    before = _files(tmp_path)
    with pytest.raises(StoreError, match="an empty SQLite database, not a haggler store"):
        Store(path)
    assert _files(tmp_path) == before


def test_a_newer_store_is_refused_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    before = _files(tmp_path)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="newer than this haggler"):
            Store(path, read_only=read_only)
    assert _files(tmp_path) == before


def test_a_new_store_appears_whole_and_racing_creators_share_it(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    barrier = threading.Barrier(4)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            opened.append(Store(path))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    run_ids = [store.start_run("play") for store in opened]
    for store in opened:
        assert sorted(r.id for r in store.runs()) == sorted(run_ids)
        store.close()
    assert sorted(os.listdir(tmp_path)) == ["h.db"], "a draft of the new store was left behind"


def test_a_store_on_a_missing_device_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a regular file"):
        Store(os.devnull)
    with pytest.raises(StoreError, match="no such file"):
        Store(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists(), "reading must not create a store"


# --- read-only stores ---------------------------------------------------------------------


async def test_a_read_only_store_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        played = await play({"seed": 4}, store=store)
    before = _files(tmp_path)
    with Store(path, read_only=True) as reader:
        assert reader.read_only
        assert reader.episode(played.episode_id).status == "finished"
        with pytest.raises(StoreError, match="is read-only"):
            reader.start_run("play")
        with pytest.raises(StoreError, match="is read-only"):
            reader.ensure_run("r", "tournament")
    assert _files(tmp_path) == before, "a read-only store changed, or kept files beside it"


def test_a_read_only_open_still_upgrades_an_older_store_it_may_write(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as old:
        for version in range(1, 4):
            old.executescript(f"BEGIN;{MIGRATIONS[version]}PRAGMA user_version={version};COMMIT;")
    old.close()
    with Store(path, read_only=True) as store:
        assert store.runs() == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


# --- failures of the file and the disk, at the store's boundary -----------------------------


def _game_fields(episode: EpisodeRecord, **changes: object) -> dict[str, Any]:
    return {
        "game": episode.game,
        "rules": episode.rules,
        "roles": episode.roles,
        "seed": episode.seed,
        "turns": episode.transcript,
        "outcome": episode.outcome,
        "scores": episode.scores,
    } | changes


async def test_a_full_disk_is_one_line_and_loses_nothing_stored(tmp_path: Path) -> None:
    # SQLite's own limit on pages fails a write exactly as a full disk does (SQLITE_FULL).
    with Store(tmp_path / "h.db") as store:
        played = await play({"seed": 2}, store=store)
        episode = store.episode(played.episode_id)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001
        store._db.execute(f"PRAGMA max_page_count={pages}")  # noqa: SLF001
        long_turns = [
            turn.model_copy(update={"text": "a long message " * 2000})
            for turn in episode.transcript
        ]
        with pytest.raises(StoreError) as full:
            store.add_episode(played.run_id, **_game_fields(episode, turns=long_turns))
        assert str(full.value).startswith(f"store {store.path}: the disk is full")
        assert "\n" not in str(full.value)
        assert [e.id for e in store.episodes()] == [played.episode_id], "all or nothing"
        store._db.execute(f"PRAGMA max_page_count={pages * 100}")  # noqa: SLF001 (space freed)
        assert store.add_episode(played.run_id, **_game_fields(episode)) is not None


async def test_a_damaged_record_is_one_line_not_a_decoding_traceback(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        played = await play({"seed": 2}, store=store)
    with sqlite3.connect(path) as db:
        db.execute(
            'UPDATE episodes SET roles_json = \'{"seller": {"mod\' WHERE id = ?',
            (played.episode_id,),
        )
        db.execute("UPDATE turns SET text = CAST(x'ff80' AS TEXT) WHERE idx = 3")
    db.close()
    with Store(path, read_only=True) as store:
        with pytest.raises(StoreError, match=r"is damaged: a stored record does not read back"):
            store.episodes()
        with pytest.raises(StoreError, match="is damaged: a stored text is not UTF-8"):
            store.run_episodes(played.run_id, transcripts=True)


async def test_a_corrupt_store_is_refused_by_writers_before_they_write(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        await play({"seed": 2}, store=store)
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'turns'").fetchone()
    db.close()
    with path.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xa5" * 64)
    before = _files(tmp_path)
    with pytest.raises(StoreError, match=r"is damaged \(.*\); restore it from a backup"):
        Store(path)
    with Store(path, read_only=True) as reader, pytest.raises(StoreError, match="is damaged"):
        reader.run_episodes(reader.resolve_run(None))
    assert _files(tmp_path) == before


def test_every_public_method_raises_the_files_failures_as_store_errors() -> None:
    public = [
        name
        for name, member in vars(Store).items()
        if inspect.isfunction(member) and not name.startswith("_") and name != "close"
    ]
    assert len(public) > 30
    assert [name for name in public if not hasattr(getattr(Store, name), "__wrapped__")] == []


# --- two processes running the same tournament ---------------------------------------------


async def test_a_match_stored_by_another_process_is_told_apart(tmp_path: Path) -> None:
    # Two connections to one file behave as two processes would (SQLite locks the file).
    path = tmp_path / "h.db"
    with Store(path) as mine, Store(path) as theirs:
        played = await play({"seed": 6}, store=mine)
        episode = mine.episode(played.episode_id)
        mine.ensure_run("tour-x", "tournament")
        finished = _game_fields(episode, match_id="m1")
        assert theirs.add_episode("tour-x", **finished) is not None
        assert mine.add_episode("tour-x", **finished) is None, "already stored by another"
        # A failed attempt is stored all the same: it happened, and spent what it spent.
        failed = _game_fields(episode, match_id="m1", outcome=None, error="timeout")
        assert mine.add_episode("tour-x", **failed) is not None
        assert mine.finished_matches("tour-x") == {"m1"}
        # A lineage whose later round another process already finished is not stored at all.
        rounds = [_game_fields(episode, match_id=f"l1/r{n}") for n in (1, 2)]
        assert theirs.add_episode("tour-x", **rounds[1]) is not None
        before = len(mine.episodes("tour-x"))
        lineage = mine.add_lineage("tour-x", arm="ai", coached="seller", seed=0, games=rounds)
        assert lineage is None
        assert len(mine.episodes("tour-x")) == before and mine.lineages("tour-x") == []


def _sqlite_error(message: str, code: int) -> sqlite3.Error:
    # As SQLite raises them: its message, its (extended) result code.
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("message", "code", "said"),
    [
        ("database disk image is malformed", 11, "is damaged (database disk image is malformed)"),
        ("file is not a database", 26, "is damaged"),
        ("database or disk is full", 13, "the disk is full"),
        ("disk I/O error", 778, "the disk failed to read or write it"),  # SQLITE_IOERR_WRITE
        ("attempt to write a readonly database", 8, "is read-only"),
        ("database is locked", 5, "is busy"),
        ("unable to open database file", 14, "cannot be opened"),
        ("LIKE or GLOB pattern too complex", 1, "search for fewer or shorter words"),
        ("no such table: runs", 1, "SQLite failed (no such table: runs)"),
    ],
)
def test_each_failure_of_sqlite_is_told_in_one_line_with_its_fix(
    message: str, code: int, said: str
) -> None:
    path = Path("/data/h.db")
    told = str(store_error(path, _sqlite_error(message, code)))
    assert told.startswith(f"store {path}") and said in told
    assert "\n" not in told and ";" in told, "one line, with what to do after the semicolon"


def test_a_store_locked_too_long_by_another_process_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            store._db.execute("PRAGMA busy_timeout=50")  # noqa: SLF001 (not 5 s in a test)
            with pytest.raises(StoreError, match="is busy: another process has kept it locked"):
                store.start_run("play")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.runs() == []
