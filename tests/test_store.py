"""The store: written turn by turn, versioned, readable back exactly, exported as JSONL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from haggler import Store, play
from haggler.errors import ModelAuthError, StoreError
from haggler.store import export_jsonl
from haggler.store.records import EPISODE_SCHEMA, TurnRecord
from haggler.store.schema import SCHEMA_VERSION
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
