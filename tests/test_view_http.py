"""The viewer's HTTP, with real sockets on 127.0.0.1: HEAD, idle connections, and bounds.

Idle connections once held a thread each for ever (issue 14.9: 364 of them); HEAD got a 501
(issue 12.9). Timeouts here are made short so that the tests are fast; every wait is bounded.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from haggler.view import data, make_server
from haggler.view.server import ViewerServer
from tests.fakes.viewer_store import ViewerStore, build_viewer_store

BOUND_S = 20  # no answer within this: the test fails rather than hangs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ViewerStore:
    return build_viewer_store(tmp_path_factory.mktemp("http") / "view.db")


@pytest.fixture
def serve(built: ViewerStore) -> Iterator[Callable[..., ViewerServer]]:
    started: list[ViewerServer] = []

    def start(db: Path | None = None, **options: Any) -> ViewerServer:
        options.setdefault("results_wait_s", 60)
        viewer = make_server(db or built.path, port=0, **options)
        viewer.start_in_background()
        started.append(viewer)
        return viewer

    yield start
    for viewer in started:
        viewer.shutdown()
        viewer.server_close()


def _address(viewer: ViewerServer) -> tuple[str, int]:
    host, port = viewer.server_address[:2]
    return str(host), int(port)


def get(viewer: ViewerServer, path: str) -> tuple[int, str, http.client.HTTPMessage]:
    try:
        with urllib.request.urlopen(viewer.url.rstrip("/") + path, timeout=BOUND_S) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def _closed_by_the_server(connection: socket.socket, within_s: float) -> bool:
    """Whether the server closes `connection` (without answering) within `within_s`."""
    connection.settimeout(within_s)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _eventually(check: Callable[[], bool], within_s: float = BOUND_S) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- HEAD --------------------------------------------------------------------------------------


def test_head_is_answered_as_get_is_without_the_body(
    serve: Callable[..., ViewerServer], built: ViewerStore
) -> None:
    viewer = serve()
    paths = ["/", f"/run/{built.tournament_run}", "/game/ep-missing", "/nowhere", "/health"]
    paths += [f"/run/{built.selfplay_run}?round=two"]  # a 400
    connection = http.client.HTTPConnection(*_address(viewer), timeout=BOUND_S)
    try:
        for path in paths:
            connection.request("HEAD", path)
            head = connection.getresponse()
            assert head.read() == b""
            # The next answer on the same connection reads right only if HEAD sent no body.
            connection.request("GET", path)
            got = connection.getresponse()
            body = got.read()
            assert (head.status, path) == (got.status, path)
            assert int(head.headers["Content-Length"]) == len(body) > 0
            assert _same_headers(head.headers) == _same_headers(got.headers)
        connection.request("HEAD", "/", headers={"Host": "evil.example"})
        refused = connection.getresponse()
        assert refused.status == 403 and refused.read() == b""
    finally:
        connection.close()
    assert {get(viewer, p)[0] for p in paths} == {200, 400, 404}


def _same_headers(headers: http.client.HTTPMessage) -> dict[str, str]:
    # The date, and the count of requests the connection has left, move on between two.
    return {k: v for k, v in headers.items() if k not in ("Date", "Keep-Alive")}


def test_other_methods_are_still_refused(serve: Callable[..., ViewerServer]) -> None:
    viewer = serve()
    connection = http.client.HTTPConnection(*_address(viewer), timeout=BOUND_S)
    try:
        connection.request("DELETE", "/")
        answer = connection.getresponse()
        assert answer.status == 501 and answer.headers["Connection"] == "close"
    finally:
        connection.close()


# -- idle connections --------------------------------------------------------------------------


def test_idle_connections_are_closed_after_the_timeout(
    serve: Callable[..., ViewerServer],
) -> None:
    viewer = serve(idle_timeout_s=0.5)
    address = _address(viewer)
    silent = socket.create_connection(address)  # says nothing at all
    begun = socket.create_connection(address)  # begins a request and never ends it
    begun.sendall(b"GET / HT")
    kept = http.client.HTTPConnection(*address, timeout=BOUND_S)  # a browser's keep-alive
    kept.request("GET", "/health")
    answer = kept.getresponse()
    assert answer.read() == b"ok" and answer.headers["Keep-Alive"].startswith("timeout=0.5,")
    try:
        assert _eventually(lambda: viewer.connections.open == 3, 5)
        # A request is served meanwhile, on a connection of its own.
        assert get(viewer, "/")[0] == 200
        started = time.monotonic()
        for connection in (silent, begun, kept.sock):
            assert connection is not None
            assert _closed_by_the_server(connection, BOUND_S)
        assert time.monotonic() - started < 10
        assert _eventually(lambda: viewer.connections.open == 0, 5)
    finally:
        for connection in (silent, begun):
            connection.close()
        kept.close()


def test_a_flood_of_idle_connections_does_not_crowd_out_a_request(
    serve: Callable[..., ViewerServer], built: ViewerStore
) -> None:
    # Idle connections would hold their places for a minute; there are four places.
    viewer = serve(idle_timeout_s=60, max_connections=4)
    threads_before = threading.active_count()
    flood = [socket.create_connection(_address(viewer)) for _ in range(40)]
    try:
        started = time.monotonic()
        status, page, _ = get(viewer, f"/run/{built.tournament_run}")
        assert status == 200 and 'class="grid leaderboard"' in page
        assert time.monotonic() - started < 10  # not after the idle timeout
        # The connections idle the longest gave way; never more than four were open, each
        # with its thread.
        assert all(_closed_by_the_server(c, BOUND_S) for c in flood[:30])
        assert viewer.connections.open <= 4
        assert _eventually(lambda: threading.active_count() <= threads_before + 4, 5)
    finally:
        for connection in flood:
            connection.close()


class _NeverDone(Executor):
    """A results worker that never finishes: a run page waits its whole `results_wait_s`."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return Future()


def test_when_every_place_is_busy_a_new_connection_is_told_to_come_back(
    serve: Callable[..., ViewerServer], built: ViewerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "_worker", _NeverDone)
    data.forget_results()
    viewer = serve(results_wait_s=3, max_connections=1)
    viewer.place_wait_s = 0.3
    slow: dict[str, int] = {}
    reader = threading.Thread(
        target=lambda: slow.update(status=get(viewer, f"/run/{built.tournament_run}")[0])
    )
    reader.start()
    try:
        assert _eventually(lambda: viewer.connections.open == 1, 5)
        time.sleep(0.2)  # its request is being answered
        status, body, headers = get(viewer, "/health")
        assert status == 503 and "busy" in body and headers["Retry-After"] == "1"
        reader.join(BOUND_S)
        assert slow == {"status": 200}
        assert get(viewer, "/health")[0] == 200  # its place is free again
    finally:
        reader.join(BOUND_S)
    data.forget_results()


def test_a_connection_serves_a_bounded_number_of_requests(
    serve: Callable[..., ViewerServer],
) -> None:
    viewer = serve()
    most = viewer.requests_per_connection
    connection = http.client.HTTPConnection(*_address(viewer), timeout=BOUND_S)
    try:
        for served in range(1, most + 1):
            connection.request("GET", "/health")
            answer = connection.getresponse()
            assert answer.read() == b"ok"
            if served < most:
                assert answer.headers["Keep-Alive"].endswith(f"max={most - served}")
        assert answer.headers["Connection"] == "close"
        assert connection.sock is None or _closed_by_the_server(connection.sock, BOUND_S)
    finally:
        connection.close()


def test_bad_settings_are_refused(built: ViewerStore) -> None:
    with pytest.raises(ValueError, match="idle_timeout_s 0"):
        make_server(built.path, port=0, idle_timeout_s=0)
    with pytest.raises(ValueError, match="max_connections 0"):
        make_server(built.path, port=0, max_connections=0)


def test_the_defaults_are_the_readmes(built: ViewerStore) -> None:
    # README: "A connection idle for 20 s is closed and at most 64 are open at once".
    viewer = make_server(built.path, port=0)
    try:
        assert viewer.idle_timeout_s == 20 and viewer.connections.most == 64
        assert "A connection idle for 20 s is closed and at most 64 are open at once" in (
            " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
        )
    finally:
        viewer.server_close()
