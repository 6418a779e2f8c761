"""The viewer's run results and the worker that computes them: no page ever hangs on them.

A run page once hung for good (issue 12.4) when the worker had already finished by the time
the request thread attached its completion callback: the callback then ran at once, in that
thread, under the lock the thread still held. These tests give the viewer a worker whose
results are ready before anyone can look, and one that dies, and read pages with a bounded
wait, so that a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from haggler.store import Store
from haggler.view import data, make_server, write_report
from haggler.view.server import ViewerServer
from tests.fakes.viewer_store import ViewerStore, build_viewer_store

# Far beyond any page of these small runs; a hung page fails the test at this bound.
PAGE_BOUND_S = 20


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ViewerStore:
    return build_viewer_store(tmp_path_factory.mktemp("results") / "view.db")


class _DoneAtOnce(Executor):
    """A results worker that has always finished already: `submit` returns a done future, the
    case a real worker reaches whenever it beats the request thread to the next line."""

    submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        type(self).submitted += 1
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 (handed over, as a worker would)
            future.set_exception(error)
        return future


@pytest.fixture
def done_at_once(monkeypatch: pytest.MonkeyPatch) -> type[_DoneAtOnce]:
    worker = _DoneAtOnce()
    _DoneAtOnce.submitted = 0
    monkeypatch.setattr(data, "_worker", lambda: worker)
    data.forget_results()
    return _DoneAtOnce


def _serve(db: Path, **options: Any) -> ViewerServer:
    viewer = make_server(db, port=0, **options)
    viewer.start_in_background()
    return viewer


def _close(viewer: ViewerServer) -> None:
    viewer.shutdown()
    viewer.server_close()


def get(viewer: ViewerServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(viewer.url.rstrip("/") + path, timeout=PAGE_BOUND_S) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (TimeoutError, urllib.error.URLError) as error:
        pytest.fail(f"{path} did not answer within {PAGE_BOUND_S} s (hung): {error}")


def _copy(built: ViewerStore, to: Path) -> Path:
    with Store(built.path) as source, Store(to) as target:
        source._db.backup(target._db)  # noqa: SLF001 (a byte-for-byte copy to change)
    return to


@pytest.mark.parametrize("wait_s", [0, 60])
def test_results_ready_at_once_never_hang_the_run_page(
    built: ViewerStore, done_at_once: type[_DoneAtOnce], wait_s: float
) -> None:
    viewer = _serve(built.path, results_wait_s=wait_s)
    try:
        # The first request, and every later one for the same run (they all hung).
        for _ in range(3):
            status, page = get(viewer, f"/run/{built.tournament_run}")
            assert status == 200
            assert 'class="grid leaderboard"' in page and "Computing" not in page
            status, page = get(viewer, f"/run/{built.selfplay_run}")
            assert status == 200 and "Price and deal rate by round" in page
    finally:
        _close(viewer)
    # Computed once per run, then read from what the viewer keeps.
    assert done_at_once.submitted == 2 + 1  # the two runs, and the warm-up


def test_a_run_that_moves_on_is_caught_up_with_results_ready_at_once(
    built: ViewerStore, done_at_once: type[_DoneAtOnce], tmp_path: Path
) -> None:
    copy = _copy(built, tmp_path / "moving.db")
    viewer = _serve(copy, results_wait_s=0)
    try:
        assert "Price and deal rate by round" in get(viewer, f"/run/{built.hostile_run}")[1]
        with Store(copy) as store:  # the run moves on: a game of it ends later
            store._db.execute(  # noqa: SLF001
                "UPDATE episodes SET ended_at = ended_at + 1 WHERE id = ?",
                (built.hostile_games[0],),
            )
        before = done_at_once.submitted
        status, page = get(viewer, f"/run/{built.hostile_run}")
        assert status == 200 and "moved on" not in page and "Computing" not in page
        assert done_at_once.submitted == before + 1
    finally:
        _close(viewer)


def test_a_report_waits_for_results_ready_at_once(
    built: ViewerStore, done_at_once: type[_DoneAtOnce], tmp_path: Path
) -> None:
    # The viewer started the run's computation; a report in the same process waits for it.
    viewer = _serve(built.path, results_wait_s=0)
    try:
        get(viewer, f"/run/{built.tournament_run}")
    finally:
        _close(viewer)
    with Store(built.path) as store:
        assert write_report(store, built.tournament_run, tmp_path / "t.html") == 12
    assert 'class="grid leaderboard"' in (tmp_path / "t.html").read_text()


def _worker_pids() -> list[int]:
    pool = data._pool  # noqa: SLF001 (which process to kill)
    return [p.pid for p in getattr(pool, "_processes", {}).values()] if pool else []


def test_a_worker_that_died_is_replaced(built: ViewerStore, tmp_path: Path) -> None:
    copy = _copy(built, tmp_path / "dead-worker.db")
    data.forget_results()
    viewer = _serve(copy, results_wait_s=60)
    try:
        assert 'class="grid leaderboard"' in get(viewer, f"/run/{built.tournament_run}")[1]
        pids = _worker_pids()
        assert pids
        for pid in pids:  # killed outright (the OOM killer, a stray `kill -9`)
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + PAGE_BOUND_S
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # New results are needed (the run was edited), and a new worker computes them.
        with Store(copy) as store:
            store._db.execute(  # noqa: SLF001
                "UPDATE episodes SET ended_at = ended_at + 1 WHERE run_id = ?",
                (built.tournament_run,),
            )
        status, page = get(viewer, f"/run/{built.tournament_run}")
        assert status == 200, page
        assert 'class="grid leaderboard"' in page and "moved on" not in page
        assert _worker_pids() and set(_worker_pids()).isdisjoint(pids)
    finally:
        _close(viewer)


def test_stopping_the_worker_ends_the_wait_and_starts_no_other(built: ViewerStore) -> None:
    import threading

    data.stop_worker()
    data.forget_results()
    viewer = _serve(built.path, results_wait_s=60)  # the worker is still starting
    answer: dict[str, tuple[int, str]] = {}
    reader = threading.Thread(
        target=lambda: answer.update(page=get(viewer, f"/run/{built.tournament_run}"))
    )
    try:
        reader.start()
        assert _eventually(lambda: data.computations_in_flight() == 1)
        started = time.monotonic()
        data.stop_worker()  # as closing the viewer does
        reader.join(PAGE_BOUND_S)
        assert time.monotonic() - started < 10  # not the page's 60 s
        status, page = answer["page"]
        assert status == 200 and "Computing the leaderboard" in page
        assert data._pool is None  # noqa: SLF001 (no worker started again)
    finally:
        _close(viewer)


def _eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PAGE_BOUND_S
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    yield
    data.stop_worker()
