"""`haggler view`: a local web server over a store, on the loopback interface only.

Pages are rendered on the server from a few indexed queries, so a run of any size shows a page
of games at a time. No script runs in the pages and the Content-Security-Policy forbids any:
a transcript that slipped past escaping still could not execute.

Each connection has a thread; a connection idle for `idle_timeout_s` is closed, one serves at
most `requests_per_connection` requests, and at most `max_connections` are open at once (the
longest idle closed first to make room: see haggler.view.connections). A store that cannot be
read (a damaged page, a file it may not open, a full disk) gets a page saying so in one line
and a 503, whatever part of the store fails, and the viewer keeps serving.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from haggler.errors import HagglerError, StoreError
from haggler.store.query import GameFilter
from haggler.store.sqlite import Store
from haggler.view.connections import Connections
from haggler.view.data import run_overview, stop_worker, warm_up
from haggler.view.pages import (
    GAMES_PER_PAGE,
    GamePage,
    ServerLinks,
    error_page,
    game_page,
    run_page,
    runs_page,
)

__all__ = ["LOOPBACK", "ViewerServer", "make_server"]

LOOPBACK = "127.0.0.1"
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_LINKS = ServerLinks()
_LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?")
# Run and game ids are short (a tournament's name is at most 64 characters); a longer
# reference names nothing, and as a prefix pattern it would be too long for SQLite's LIKE.
_LONGEST_REFERENCE = 1_000


class _NotFound(Exception):
    pass


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True
    # A browser opens several connections at once: a burst waits in the queue, not refused.
    request_queue_size = 64
    # A connection is closed after this many requests (the client opens another).
    requests_per_connection = 100
    # How long a new connection waits for a place while every open one is busy answering;
    # then it gets a 503.
    place_wait_s = 5.0

    def __init__(
        self,
        db: Path,
        port: int,
        results_wait_s: float,
        *,
        idle_timeout_s: float = 20.0,
        max_connections: int = 64,
    ) -> None:
        if not idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s {idle_timeout_s}: give a number of seconds above 0")
        self.db = db
        self.results_wait_s = results_wait_s
        self.idle_timeout_s = idle_timeout_s
        self.connections = Connections(max_connections)
        super().__init__((LOOPBACK, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.admit(request, self.place_wait_s):
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread to serve it: its place is free again
            self.connections.release(request)
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return  # the client went away, or its connection was closed to make room
        # Pages catch their own errors; this is the server's machinery, said in one line.
        print(
            f"haggler view: a connection failed: {type(error).__name__}: {error}", file=sys.stderr
        )

    def server_close(self) -> None:
        super().server_close()
        stop_worker()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/"

    def start_in_background(self) -> threading.Thread:
        """Serve from a daemon thread (tests, benchmarks); `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="haggler-view", daemon=True)
        thread.start()
        return thread


def make_server(
    db: str | Path,
    port: int = 8765,
    *,
    results_wait_s: float = 0.4,
    idle_timeout_s: float = 20.0,
    max_connections: int = 64,
) -> ViewerServer:
    """A viewer over the store at `db`, listening on 127.0.0.1:`port` (0 picks a free port).

    A run page waits up to `results_wait_s` for its leaderboard or per-round results; a run too
    large for that gets its page at once and the results on a reload. A connection idle for
    `idle_timeout_s` seconds is closed; at most `max_connections` are open at once.
    """
    path = Path(db)
    if not path.exists():
        raise StoreError(f"store {path}: no such file; play a game first or pass another path")
    Store(
        path, read_only=True
    ).close()  # fail now, with the store's own message, if it is not a store
    try:
        server = ViewerServer(
            path,
            port,
            results_wait_s,
            idle_timeout_s=idle_timeout_s,
            max_connections=max_connections,
        )
    except OSError as error:
        raise StoreError(
            f"port {port}: {error.strerror or error}; pick another with --port (0 for any)"
        ) from None
    warm_up()
    return server


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    server_version = "haggler-view"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: the terminal shows the address and nothing else

    def setup(self) -> None:
        # Every read and write on the connection gives up after this long: an idle connection
        # (or a client that stopped reading) does not hold its thread for ever.
        self.timeout = self.server.idle_timeout_s
        self.served = 0
        super().setup()

    def handle_one_request(self) -> None:
        self.server.connections.idle(self.connection)
        super().handle_one_request()

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()  # the same status and headers; `_send` leaves the body out

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        if not self._start_answering():
            return
        if not self._host_is_loopback():
            # A page elsewhere pointing a name it controls at 127.0.0.1 (DNS rebinding) must
            # not read the store through the user's browser.
            self._send(HTTPStatus.FORBIDDEN, "forbidden: the viewer answers loopback names only")
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = self._route(parts.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, error_page(f"no page {parts.path}", _LINKS))
            return
        handler, argument = route
        try:
            with Store(self.server.db, read_only=True) as store:
                body = handler(self.server, store, argument, query)
        except _NotFound as missing:
            self._send(HTTPStatus.NOT_FOUND, error_page(_one_line(str(missing)), _LINKS))
        except (StoreError, sqlite3.DatabaseError) as error:
            # The store cannot be read as it is (damaged, refused, a full disk): say so, and
            # keep serving; the store's own error or SQLite's, whichever came first.
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE,
                error_page(_store_trouble(self.server.db, error), _LINKS),
            )
        except HagglerError as error:  # bad input: a filter value, a search too long
            self._send(HTTPStatus.BAD_REQUEST, error_page(_one_line(str(error)), _LINKS))
        except Exception as error:  # one broken page must not take the viewer down
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                error_page(_one_line(f"this page failed: {type(error).__name__}: {error}"), _LINKS),
            )
        else:
            self._send(HTTPStatus.OK, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Methods other than GET and HEAD, malformed requests: the same headers as every page,
        # and the connection closed (a request body left unread must not be read as a request).
        if not self._start_answering():
            return
        self.close_connection = True
        self._send(HTTPStatus(code), f"{code} {message or HTTPStatus(code).phrase}")

    def _start_answering(self) -> bool:
        """Mark the connection busy; False if it was closed meanwhile to make room."""
        self.served += 1
        if self.server.connections.busy(self.connection):
            return True
        self.close_connection = True
        return False

    def _host_is_loopback(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        return host == "" or _LOOPBACK_HOST.fullmatch(host) is not None

    def _route(self, path: str) -> tuple[_Page, str] | None:
        if path in ("/", "/index.html"):
            return _runs, ""
        if path == "/health":
            return _health, ""
        match = re.fullmatch(r"/(run|game)/([^/]+)", path)
        if match is None:
            return None
        return (_run if match[1] == "run" else _game), unquote(match[2])

    def _send(self, status: HTTPStatus, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        kind = "text/html" if body.startswith("<!DOCTYPE") else "text/plain"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        if self.served >= self.server.requests_per_connection:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header(
                "Keep-Alive",
                f"timeout={self.server.idle_timeout_s:g}, "
                f"max={self.server.requests_per_connection - self.served}",
            )
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(data)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _store_trouble(db: Path, error: Exception) -> str:
    if isinstance(error, StoreError):
        return _one_line(str(error))
    return _one_line(
        f"store {db}: cannot be read ({error}); the file may be damaged, not readable, or on a "
        f"full disk: check it with `sqlite3 {db} 'PRAGMA integrity_check'`, free some space, "
        "or restore it from a copy"
    )


def _refuse(connection: socket.socket) -> None:
    """Tell a connection that found every place busy to come back, and close it."""
    body = b"503 the viewer is busy answering other requests; try again in a moment"
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Content-Security-Policy: {_CSP}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    with suppress(OSError):  # gone already: nothing to tell
        connection.settimeout(1.0)
        connection.sendall(head.encode("ascii") + body)


_Page = Callable[[ViewerServer, Store, str, dict[str, str]], str]


def _health(_: ViewerServer, __: Store, ___: str, ____: dict[str, str]) -> str:
    return "ok"


def _runs(_: ViewerServer, store: Store, __: str, ___: dict[str, str]) -> str:
    return runs_page(store.runs(), _LINKS, store.path.name)


def _resolve(resolve: Callable[[str], str], ref: str) -> str:
    if len(ref) > _LONGEST_REFERENCE:
        raise _NotFound(
            f"no page for an id of {len(ref):,} characters; ids are at most "
            f"{_LONGEST_REFERENCE:,} long: follow a link from the runs page"
        )
    try:
        return resolve(ref)
    except StoreError as error:
        raise _NotFound(str(error)) from None


def _run(server: ViewerServer, store: Store, ref: str, query: dict[str, str]) -> str:
    run_id = _resolve(store.resolve_run, ref)
    where = GameFilter.of(**{k: v for k, v in query.items() if k != "page"})
    try:
        page_number = max(1, int(query.get("page", "1")))
    except ValueError:
        page_number = 1
    matching = store.count_episodes(run_id, where)
    # Past the last page: the last page.
    page_number = min(page_number, max(1, -(-matching // GAMES_PER_PAGE)))
    games = store.find_episodes(
        run_id, where, limit=GAMES_PER_PAGE, offset=(page_number - 1) * GAMES_PER_PAGE
    )
    overview = run_overview(store, run_id, wait_s=server.results_wait_s)
    return run_page(overview, games, matching, where, page_number, _LINKS)


def _game(_: ViewerServer, store: Store, ref: str, __: dict[str, str]) -> str:
    episode_id = _resolve(store.resolve_episode, ref)
    return game_page(game_view(store, episode_id), _LINKS)


def game_view(store: Store, episode_id: str) -> GamePage:
    """Everything a game page shows, read from the store."""
    episode = store.episode(episode_id)
    rounds = store.lineage_rounds(episode.lineage_id) if episode.lineage_id else {}
    earlier_game = rounds.get(episode.round - 1) if episode.round is not None else None
    return GamePage(
        episode=episode,
        critiques=store.critiques(episode_id=episode_id),
        earlier=store.critiques(episode_id=earlier_game) if earlier_game else [],
        rounds=rounds,
        forgetting=store.forgettings_by_round(episode.run_id).get(
            (episode.lineage_id or "", episode.round or 0), []
        ),
    )
