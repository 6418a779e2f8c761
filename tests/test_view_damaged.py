"""A damaged store and hostile input never give the viewer a traceback or a bare 500 (issue 14.7).

The store is a real one built here, then damaged as disks and people damage files: a page
overwritten, the header gone, the file and its folder made unwritable, the disk full. The viewer serving it
is the real server on loopback. Input too long for SQLite's LIKE is refused as bad input (4xx,
and exit 2 from the CLI), never passed on to fail as a store error.
"""

from __future__ import annotations

import html
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.store import Store
from haggler.store.query import LONGEST_VALUE
from haggler.view import make_server
from haggler.view.server import ViewerServer
from tests.fakes.viewer_store import ViewerStore, build_viewer_store

BOUND_S = 20
HUGE = "a" * 60_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ViewerStore:
    return build_viewer_store(tmp_path_factory.mktemp("damaged") / "view.db")


@pytest.fixture
def copy(built: ViewerStore, tmp_path: Path) -> Path:
    """A copy of the store, whole in its one file (no write-ahead log beside it)."""
    target = tmp_path / "store" / "copy.db"
    target.parent.mkdir()
    with Store(built.path) as source, Store(target) as copied:
        source._db.backup(copied._db)  # noqa: SLF001 (a byte-for-byte copy to damage)
        copied._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # noqa: SLF001
    return target


@pytest.fixture
def serve() -> Iterator[Callable[..., ViewerServer]]:
    started: list[ViewerServer] = []

    def start(db: Path) -> ViewerServer:
        viewer = make_server(db, port=0, results_wait_s=60)
        viewer.start_in_background()
        started.append(viewer)
        return viewer

    yield start
    for viewer in started:
        viewer.shutdown()
        viewer.server_close()


def get(viewer: ViewerServer, path: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(viewer.url.rstrip("/") + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=BOUND_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def said(page: str) -> str:
    """The one line an error page says (and that it is one line)."""
    found = re.search(r'<main><p class="muted">(.*?)</p></main>', page, re.S)
    assert found, page
    line = html.unescape(found[1])
    assert "\n" not in line and "Traceback" not in page
    return line


def _overwrite_page(db: Path, table: str) -> None:
    """Overwrite the page holding `table`'s rows (its b-tree root) with junk."""
    with sqlite3.connect(db) as connection:
        size = connection.execute("PRAGMA page_size").fetchone()[0]
        (root,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
    connection.close()
    with db.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(bytes(range(256)) * (size // 256))


def test_a_damaged_page_gets_one_line_and_a_503_and_the_viewer_keeps_serving(
    built: ViewerStore, copy: Path, serve: Callable[..., ViewerServer]
) -> None:
    viewer = serve(copy)
    assert get(viewer, "/")[0] == 200
    _overwrite_page(copy, "runs")
    for path in ("/", f"/run/{built.tournament_run}"):
        status, page = get(viewer, path)
        assert status == 503, page
        line = said(page)
        assert line.startswith(f"store {copy}") and "malformed" in line
        assert get(viewer, path, method="HEAD")[0] == 503
    # What does not read the damaged page may still be shown; nothing fails with a 500.
    assert get(viewer, f"/game/{built.hostile_games[0]}")[0] in (200, 503)
    assert get(viewer, "/health") == (200, "ok")


def test_a_file_that_is_no_longer_a_store_gets_one_line_and_a_503(
    built: ViewerStore, copy: Path, serve: Callable[..., ViewerServer]
) -> None:
    viewer = serve(copy)
    assert get(viewer, f"/run/{built.selfplay_run}")[0] == 200
    with copy.open("r+b") as file:  # the header, and with it the whole file, is gone
        file.write(b"\0" * 100)
    for path in ("/", f"/run/{built.selfplay_run}", f"/game/{built.hostile_games[1]}"):
        status, page = get(viewer, path)
        assert status == 503, page
        assert said(page).startswith(f"store {copy}")


def _lock_down(paths: list[Path]) -> Callable[[], None] | None:
    """Make `paths` unwritable even for root (immutable); the undo, or None if impossible."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)

        def give_back_modes() -> None:
            for p, mode in modes.items():
                p.chmod(mode)

        return give_back_modes
    chattr = shutil.which("chattr")
    if chattr is None:
        return None
    if subprocess.run([chattr, "+i", *map(str, paths)], capture_output=True).returncode != 0:
        return None

    def make_mutable() -> None:
        subprocess.run([chattr, "-i", *map(str, paths)], check=True)

    return make_mutable


def test_a_store_that_may_not_be_written_is_still_read(
    built: ViewerStore, copy: Path, serve: Callable[..., ViewerServer]
) -> None:
    # The viewer only reads: a store it may not write (its file and folder locked) is shown,
    # read-only, with nothing written beside it.
    viewer = serve(copy)
    assert get(viewer, "/")[0] == 200
    assert not copy.with_name(copy.name + "-wal").exists()  # every connection closed
    undo = _lock_down([copy, copy.parent])
    if undo is None:
        pytest.skip("cannot make a file unwritable here (root without chattr)")
    try:
        status, page = get(viewer, f"/run/{built.tournament_run}")
        left_beside = sorted(p.name for p in copy.parent.iterdir())
    finally:
        undo()
    assert status == 200, page
    assert left_beside == [copy.name]


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux's prlimit")
def test_a_full_disk_gets_one_line_and_a_503_until_there_is_room_again(copy: Path) -> None:
    # The viewer in a process of its own, whose file-size limit then drops to nothing: to
    # SQLite that is a full disk (it cannot make the shared-memory file it reads through).
    process = subprocess.Popen(
        [sys.executable, "-m", "haggler.cli", "view", str(copy), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, line + (process.stderr.read() if process.stderr else "")
        url = found[0]

        def read(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(url + path, timeout=BOUND_S) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        assert read("")[0] == 200
        assert not copy.with_name(copy.name + "-shm").exists()  # every connection closed
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        status, page = read("")
        assert status == 503, page
        line = said(page)
        assert line.startswith(f"store {copy}") and "disk" in line
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (-1, -1))  # room again
        assert read("")[0] == 200
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=BOUND_S)
    assert "Traceback" not in errors


# -- input too long for SQLite ----------------------------------------------------------------


@pytest.fixture(scope="module")
def viewer(built: ViewerStore) -> Iterator[ViewerServer]:
    server = make_server(built.path, port=0, results_wait_s=60)
    server.start_in_background()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("field", ["text", "lineage", "player"])
def test_an_over_long_filter_is_bad_input(
    viewer: ViewerServer, built: ViewerStore, field: str
) -> None:
    status, page = get(viewer, f"/run/{built.selfplay_run}?{field}={HUGE}")
    assert status == 400, page
    what = "search text" if field == "text" else field
    assert said(page) == (
        f"{what} of 60,000 characters is too long; give at most {LONGEST_VALUE:,}"
    )


@pytest.mark.parametrize("kind", ["run", "game"])
def test_an_over_long_id_names_nothing(viewer: ViewerServer, kind: str) -> None:
    status, page = get(viewer, f"/{kind}/{HUGE}")
    assert status == 404, page
    assert "no page for an id of 60,000 characters" in said(page)


@pytest.mark.parametrize("command", ["show", "export"])
def test_the_cli_refuses_an_over_long_search_in_one_line(
    built: ViewerStore, tmp_path: Path, command: str
) -> None:
    args: list[Any] = [command, "--search", HUGE, "--db", str(built.path)]
    if command == "show":
        args[1:1] = ["--run", built.selfplay_run]
    else:
        args[1:1] = [built.selfplay_run, "-o", str(tmp_path / "out.html")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == ["error: search text of 60,000 characters is too long; give at most 1,000"]
    assert not (tmp_path / "out.html").exists()
