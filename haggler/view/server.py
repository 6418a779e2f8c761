"""`haggler view`: a local web server over a store, on the loopback interface only.

Pages are rendered on the server from a few indexed queries, so a run of any size shows a page
of games at a time. No script runs in the pages and the Content-Security-Policy forbids any:
a transcript that slipped past escaping still could not execute.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from haggler.errors import HagglerError, StoreError
from haggler.store.query import GameFilter
from haggler.store.sqlite import Store
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


class _NotFound(Exception):
    pass


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, db: Path, port: int, results_wait_s: float) -> None:
        self.db = db
        self.results_wait_s = results_wait_s
        super().__init__((LOOPBACK, port), _Handler)

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


def make_server(db: str | Path, port: int = 8765, *, results_wait_s: float = 0.4) -> ViewerServer:
    """A viewer over the store at `db`, listening on 127.0.0.1:`port` (0 picks a free port).

    A run page waits up to `results_wait_s` for its leaderboard or per-round results; a run too
    large for that gets its page at once and the results on a reload.
    """
    path = Path(db)
    if not path.exists():
        raise StoreError(f"store {path}: no such file; play a game first or pass another path")
    Store(path).close()  # fail now, with the store's own message, if it is not a store
    try:
        server = ViewerServer(path, port, results_wait_s)
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

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
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
            with Store(self.server.db) as store:
                body = handler(self.server, store, argument, query)
        except _NotFound as missing:
            self._send(HTTPStatus.NOT_FOUND, error_page(str(missing), _LINKS))
        except HagglerError as error:
            self._send(HTTPStatus.BAD_REQUEST, error_page(str(error), _LINKS))
        except Exception as error:  # one broken page must not take the viewer down
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                error_page(f"this page failed: {type(error).__name__}: {error}", _LINKS),
            )
        else:
            self._send(HTTPStatus.OK, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Methods other than GET, malformed requests: the same headers as every page, and the
        # connection closed (a request body left unread must not be read as a request).
        self.close_connection = True
        self._send(HTTPStatus(code), f"{code} {message or HTTPStatus(code).phrase}")

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
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


_Page = Callable[[ViewerServer, Store, str, dict[str, str]], str]


def _health(_: ViewerServer, __: Store, ___: str, ____: dict[str, str]) -> str:
    return "ok"


def _runs(_: ViewerServer, store: Store, __: str, ___: dict[str, str]) -> str:
    return runs_page(store.runs(), _LINKS, store.path.name)


def _resolve(resolve: Callable[[str], str], ref: str) -> str:
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
    )
