"""Exports, reports, tables and plots are written whole or not at all: a write that fails, is
interrupted or is killed outright leaves the previous file as it was and nothing beside it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from haggler import Store, play
from haggler.errors import StoreError
from haggler.evals import RoundMetrics, plot_rounds, write_csv
from haggler.evals.stats import Interval
from haggler.store import atomic_file, export_jsonl
from haggler.store.atomic_file import replace_atomically
from haggler.store.records import EpisodeRecord
from haggler.view import write_report

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "the previous, complete file\n"


class Interrupted(Exception):
    """Raised from inside a write, where a full disk or Ctrl-C would strike."""


def _names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture(params=["nameless", "named"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of holding the new content: a nameless file (Linux's O_TMPFILE) and, where
    the system has none, a hidden named one."""
    if request.param == "nameless" and not (hasattr(os, "O_TMPFILE") and Path("/proc").is_dir()):
        pytest.skip("no O_TMPFILE here")
    if request.param == "named":
        monkeypatch.setattr(atomic_file, "_PROC_FD", Path("/nonexistent/proc/self/fd"))
    return str(request.param)


@pytest.mark.parametrize("stop", [Interrupted, KeyboardInterrupt])
def test_a_write_stopped_halfway_leaves_the_previous_file_and_nothing_else(
    tmp_path: Path, way: str, stop: type[BaseException]
) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text(PREVIOUS)
    with pytest.raises(stop), replace_atomically(target) as out:
        out.write("a first line that looks complete\n" * 1000)
        out.flush()
        raise stop()
    assert target.read_text() == PREVIOUS
    assert _names(tmp_path) == ["out.jsonl"]


def test_a_finished_write_replaces_the_file_keeping_its_permissions(
    tmp_path: Path, way: str
) -> None:
    target = tmp_path / "out.csv"
    target.write_text(PREVIOUS)
    target.chmod(0o640)
    with replace_atomically(target, newline="") as out:
        out.write("a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _names(tmp_path) == ["out.csv"]
    fresh = tmp_path / "new.bin"
    with replace_atomically(fresh, binary=True) as out:
        out.write(b"\x89PNG")
    assert fresh.read_bytes() == b"\x89PNG"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_symlink_stays_a_link_to_the_new_content(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text(PREVIOUS)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    with replace_atomically(link) as out:
        out.write("new\n")
    assert link.is_symlink() and real.read_text() == "new\n"
    assert _names(tmp_path) == ["latest.jsonl", "real.jsonl"]


def test_a_device_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    null = Path(os.devnull)
    with replace_atomically(null) as out:
        out.write("nothing to keep\n")
    assert stat.S_ISCHR(null.stat().st_mode), "/dev/null must still be the device"


def test_what_open_would_refuse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError), replace_atomically(tmp_path) as out:
        out.write("x")
    with pytest.raises(FileNotFoundError), replace_atomically(tmp_path / "no" / "f.txt") as out:
        out.write("x")
    assert _names(tmp_path) == []


# --- the writers that use it ----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    import asyncio

    with Store(tmp_path / "h.db") as store:
        run_id = store.start_run("play")
        for seed in range(3):
            asyncio.run(play({"seed": seed}, store=store, run_id=run_id))
        yield store


class _BreaksAfterOneGame(Store):
    """A store whose disk fails while the export reads its second game."""

    def run_episodes(self, run_id: str, *, transcripts: bool = True) -> list[EpisodeRecord]:
        return _first_then_fail(super().run_episodes(run_id, transcripts=transcripts))  # type: ignore[return-value]

    def episode(self, episode_id: str) -> EpisodeRecord:
        if getattr(self, "_read_one", False):
            raise StoreError(f"store {self.path}: the disk failed to read it (disk I/O error)")
        self._read_one = True
        return super().episode(episode_id)


def _first_then_fail(games: list[EpisodeRecord]) -> Iterator[EpisodeRecord]:
    yield games[0]
    raise StoreError("store: the disk failed to read it (disk I/O error)")


@pytest.mark.parametrize("kind", ["jsonl", "html"])
def test_an_export_that_fails_midway_leaves_the_previous_export(
    store: Store, tmp_path: Path, kind: str
) -> None:
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / f"run.{kind}"
    target.write_text(PREVIOUS)
    run_id = store.runs()[0].id
    store.close()
    with _BreaksAfterOneGame(store.path) as broken, pytest.raises(StoreError, match="disk"):
        if kind == "jsonl":
            export_jsonl(broken, run_id, target)
        else:
            write_report(broken, run_id, target)
    assert target.read_text() == PREVIOUS
    assert _names(out_dir) == [f"run.{kind}"]


def test_an_export_onto_the_store_itself_is_refused(store: Store) -> None:
    before = store.path.read_bytes()
    with pytest.raises(StoreError, match="that is the store itself"):
        export_jsonl(store, store.runs()[0].id, store.path)
    assert store.path.read_bytes() == before


def test_a_csv_that_fails_midway_leaves_the_previous_table(tmp_path: Path) -> None:
    target = tmp_path / "rounds.csv"
    target.write_text(PREVIOUS)
    interval = Interval(1.0, 0.5, 1.5, 3)
    row = RoundMetrics(
        arm="ai",
        round=1,
        coached="seller",
        lineages=3,
        alive=3,
        games=3,
        deals=2,
        failed=0,
        price=interval,
        deal_rate_alive=interval,
        deal_rate_all=interval,
        surplus_all=interval,
        msg_chars=40.0,
        tokens=0,
        cost_usd=0.0,
    )
    with pytest.raises(AttributeError):
        write_csv([row, object()], target)  # the second row is not a row
    assert target.read_text() == PREVIOUS
    assert _names(tmp_path) == ["rounds.csv"]
    write_csv([row], target)
    assert target.read_text().startswith("arm,round,")


def test_a_plot_that_fails_midway_leaves_the_previous_plot(tmp_path: Path) -> None:
    target = tmp_path / "rounds.svg"
    target.write_text(PREVIOUS)
    with pytest.raises(AttributeError):
        plot_rounds([object()], target)  # type: ignore[list-item]
    assert target.read_text() == PREVIOUS
    assert _names(tmp_path) == ["rounds.svg"]


# --- killed outright ---------------------------------------------------------------------


def _grow(db: Path, copies: int) -> str:
    """Copy the one game of the store's run `copies` times, in SQL: a large run in a moment."""
    with sqlite3.connect(db) as con:
        run_id = con.execute("SELECT id FROM runs").fetchone()[0]
        episode = [r[1] for r in con.execute("PRAGMA table_info(episodes)")]
        turn = [r[1] for r in con.execute("PRAGMA table_info(turns)")]
        numbers = (
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {copies})"
        )
        con.execute(
            f"{numbers} INSERT INTO episodes ({', '.join(episode)}) SELECT "
            + ", ".join("id || '-' || i" if c == "id" else c for c in episode)
            + " FROM episodes, n"
        )
        con.execute(
            f"{numbers} INSERT INTO turns ({', '.join(turn)}) SELECT "
            + ", ".join("episode_id || '-' || i" if c == "episode_id" else c for c in turn)
            + " FROM turns, n"
        )
    con.close()
    return str(run_id)


def _writing_in(pid: int, folder: Path) -> bool:
    """Whether process `pid` has a file open in `folder` for the new content."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder) + "/") and (
            target.endswith("(deleted)") or target.endswith(".part")
        ):
            return True
    return False


@pytest.mark.parametrize("suffix", ["jsonl", "html"])
def test_an_export_killed_outright_leaves_the_previous_file_and_nothing_else(
    tmp_path: Path, suffix: str
) -> None:
    if not Path("/proc/self/fd").is_dir() or not hasattr(os, "O_TMPFILE"):
        pytest.skip("needs /proc and O_TMPFILE (Linux) to see the write begin and survive a kill")
    import asyncio

    db = tmp_path / "big.db"
    with Store(db) as store:
        asyncio.run(play({"seed": 1}, store=store))
    run_id = _grow(db, 3000)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / f"big.{suffix}"
    target.write_text(PREVIOUS)

    export = subprocess.Popen(
        [sys.executable, "-m", "haggler.cli", "export", run_id, "-o", str(target), "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _writing_in(export.pid, out_dir):
            assert export.poll() is None, f"the export ended before it was killed: {export.stderr}"
            assert time.monotonic() < deadline, "the export never began writing"
            time.sleep(0.002)
        os.kill(export.pid, signal.SIGKILL)
    finally:
        export.wait(timeout=60)
    assert export.returncode == -signal.SIGKILL
    assert target.read_text() == PREVIOUS
    assert _names(out_dir) == [target.name], "a killed export left a file behind"


def test_an_export_run_to_the_end_holds_every_game(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "big.db"
    with Store(db) as store:
        asyncio.run(play({"seed": 1}, store=store))
    run_id = _grow(db, 50)
    target = tmp_path / "all.jsonl"
    target.write_text(PREVIOUS)
    with Store(db, read_only=True) as store:
        assert export_jsonl(store, run_id, target) == 51
    lines = target.read_text().splitlines()
    assert len(lines) == 51 and all(json.loads(line)["run_id"] == run_id for line in lines)
