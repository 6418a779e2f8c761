"""A fake hosted LLM: a real HTTP/1.1 server on loopback speaking the OpenAI and Anthropic APIs.

Tests point real clients (litellm, the openai and anthropic SDKs) at it, script what it answers,
and read back every request it received:

    with FakeLLMServer() as server:
        server.script(Status(429, headers={"retry-after": "1"}), Text("I offer $10."))
        ...  # call a model with api_base=server.openai_base (OpenAI) or server.url (Anthropic)
        assert server.requests[-1].messages[-1]["content"] == "..."

Scripted replies are consumed in order; once they run out, `server.responder` answers (by default
"OK"), so a game test can plug in a function that answers from the prompt.

Replies can be hostile, as a broken or malicious provider's are: `Text` carries any JSON value as
its text (None, a number, a string with lone surrogates, NUL or terminal escapes) and as its
token counts (negative, 10**30, 1.5, "abc", NaN, or `OMIT` to leave a count out; `usage=False`
sends no usage at all); `Garbage` sends any body with status 200 (`BROKEN_JSON`, NaN literals).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

__all__ = [
    "BROKEN_JSON",
    "OMIT",
    "Cut",
    "Delay",
    "Empty",
    "FakeLLMServer",
    "Garbage",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Status",
    "Text",
]

logger = logging.getLogger(__name__)

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"

Api = Literal["openai", "anthropic"]


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


# A token count left out of the reply's usage.
OMIT: Any = _Omit()


@dataclass(frozen=True, slots=True)
class Text:
    """A completion; `None` text is a reply with no content at all.

    Hostile on purpose when asked: `text` and the counts go into the JSON as they are (a str
    with lone surrogates is sent as JSON's `\\udc00`, a float NaN as the `NaN` literal that
    Python's json module writes); a count of `OMIT` is left out, and `usage=False` leaves out
    the whole usage object.
    """

    text: Any
    prompt_tokens: Any = 10
    completion_tokens: Any = 5
    usage: bool = True


@dataclass(frozen=True, slots=True)
class Status:
    """An HTTP error in the provider's own error JSON, e.g. `Status(429, headers={"retry-after": "1"})`."""

    code: int
    message: str = "fake server error"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait `seconds` (cut short when the server stops), then answer `then`."""

    seconds: float
    then: Reply = field(default_factory=lambda: Text("OK"))


@dataclass(frozen=True, slots=True)
class Garbage:
    """HTTP 200 whose body is not JSON, as from a broken proxy."""

    body: bytes = b"<html><body>502 upstream hiccup</body></html>"
    content_type: str = "application/json"


# A body cut off mid-JSON, as from a proxy that dropped the rest of the reply.
BROKEN_JSON = b'{"id": "chatcmpl-cut", "choices": [{"index": 0, "message": {"role": "assis'


@dataclass(frozen=True, slots=True)
class Empty:
    """HTTP 200 with an empty body."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Close the connection after reading the request, without answering."""


Reply = Text | Status | Delay | Garbage | Empty | Cut


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    # Header names lower-cased: HTTP names are case-insensitive and clients differ.
    headers: dict[str, str]
    json: Any
    received_at: float

    @property
    def api(self) -> Api:
        return "anthropic" if self.path.rstrip("/").endswith(ANTHROPIC_PATH) else "openai"

    @property
    def model(self) -> str | None:
        return self.json.get("model") if isinstance(self.json, dict) else None

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat as {role, content} dicts; Anthropic's `system` field becomes a system message."""
        if not isinstance(self.json, dict):
            return []
        chat: list[dict[str, str]] = []
        system = self.json.get("system")
        if system:
            chat.append({"role": "system", "content": _flatten(system)})
        for message in self.json.get("messages") or []:
            chat.append(
                {"role": str(message.get("role")), "content": _flatten(message.get("content"))}
            )
        return chat

    @property
    def last_user_text(self) -> str:
        """What the model was asked last: handy for a responder that answers from the prompt."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else ""


Responder = Callable[[RecordedRequest], "Reply | str"]


def _flatten(content: Any) -> str:
    # Both APIs accept either a string or a list of content blocks; tests want the text.
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            block.get("text", "") if isinstance(block, dict) else str(block) for block in content
        )
    return str(content)


def _reply_ok(request: RecordedRequest) -> Reply:
    return Text("OK")


# Error `type` strings each provider sends with a status, so SDKs pick the right exception.
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class FakeLLMServer:
    """A scripted OpenAI- and Anthropic-compatible server on 127.0.0.1, one thread per connection."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or _reply_ok
        self._script: deque[Reply | str] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        if self._httpd is not None:
            raise RuntimeError("FakeLLMServer is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-llm-server:{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping Delays and drop open connections; returns within ~1 s."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.drop_connections()
        httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=2)
        httpd.join_handlers(timeout=2)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeLLMServer is not running; use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The server root: Anthropic clients take this as their base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        """The OpenAI-style base URL (`url` + "/v1"), as a vLLM server would advertise."""
        return self.url + "/v1"

    # -- scripting and inspection ------------------------------------------------------------

    def script(self, *replies: Reply | str) -> None:
        """Queue replies, answered in order before `responder` is consulted; a str is `Text`."""
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and scripted replies."""
        with self._lock:
            self._requests.clear()
            self._script.clear()

    # -- internals used by the handler -------------------------------------------------------

    def _record_and_choose(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            reply: Reply | str = scripted
        else:
            try:
                reply = self.responder(request)
            except Exception as error:  # a broken responder must show up in the test, not hang it
                logger.exception("fake LLM responder failed")
                reply = Status(500, f"fake responder raised {error!r}")
        return Text(reply) if isinstance(reply, str) else reply

    def _next_id(self) -> int:
        return next(self._ids)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver queues only 5 pending connections; 64 clients connecting at once (a
    # tournament at full concurrency) would see resets that no real provider gives.
    request_queue_size = 1024
    # We join our own handler threads in `join_handlers`, with a deadline.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, fake: FakeLLMServer) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="fake-llm-connection",
            daemon=True,
        )
        with self._conn_lock:
            self._connections.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()]
            self._handlers.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        # Idle keep-alive connections park their thread in a blocking read; shutting the socket
        # down wakes it with EOF so it can exit.
        with self._conn_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._conn_lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-reply (timeouts, Cut) are expected here, not worth a traceback.
        logger.debug("fake LLM server: connection from %s ended with an error", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers serve
    server: _HTTPServer
    # An idle keep-alive connection is dropped after this long; stop() drops them sooner.
    timeout = 30
    # Headers and body go out in separate writes: with Nagle's algorithm and the client's
    # delayed ACK, every reply would wait ~40 ms, which real providers do not.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake LLM server: " + format, *args)

    def do_GET(self) -> None:
        self._read_body()
        self._send_error_json(self._api(), Status(404, f"no such endpoint: GET {self.path}"))

    def do_POST(self) -> None:
        raw = self._read_body()
        api = self._api()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send_error_json(api, Status(400, "request body is not valid JSON"))
            return
        request = RecordedRequest(
            method="POST",
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            json=body,
            received_at=time.monotonic(),
        )
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in (OPENAI_PATH, ANTHROPIC_PATH):
            self._send_error_json(api, Status(404, f"no such endpoint: POST {self.path}"))
            return
        self._answer(request, self.server.fake._record_and_choose(request))

    # -- replies -----------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest, reply: Reply) -> None:
        fake = self.server.fake
        if isinstance(reply, Delay):
            if fake._stopping.wait(reply.seconds):
                self._cut()
                return
            reply = reply.then
            if isinstance(reply, Delay):
                self._answer(request, reply)
                return
        if isinstance(reply, Text):
            body = (
                _anthropic_message(request, reply, fake._next_id())
                if request.api == "anthropic"
                else _openai_completion(request, reply, fake._next_id())
            )
            self._send(200, json.dumps(body).encode(), "application/json")
        elif isinstance(reply, Status):
            self._send_error_json(request.api, reply)
        elif isinstance(reply, Garbage):
            self._send(200, reply.body, reply.content_type)
        elif isinstance(reply, Empty):
            self._send(200, b"", "application/json")
        elif isinstance(reply, Cut):
            self._cut()
        else:
            raise TypeError(f"FakeLLMServer cannot send {reply!r}; script a Text, Status, ...")

    def _send_error_json(self, api: Api, status: Status) -> None:
        if api == "anthropic":
            kind = _ANTHROPIC_ERROR_TYPES.get(
                status.code, "api_error" if status.code >= 500 else "invalid_request_error"
            )
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": kind, "message": status.message},
            }
        else:
            kind, code = _OPENAI_ERROR_TYPES.get(
                status.code,
                ("server_error", None) if status.code >= 500 else ("invalid_request_error", None),
            )
            body = {"error": {"message": status.message, "type": kind, "param": None, "code": code}}
        self._send(status.code, json.dumps(body).encode(), "application/json", status.headers)

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            # The client gave up (its timeout fired during a Delay): nobody is listening.
            self.close_connection = True

    def _cut(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- request helpers ---------------------------------------------------------------------

    def _api(self) -> Api:
        return (
            "anthropic"
            if self.path.split("?", 1)[0].rstrip("/").endswith(ANTHROPIC_PATH)
            else "openai"
        )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def _usage(reply: Text, names: tuple[str, str], total: str | None) -> dict[str, Any]:
    counts = dict(zip(names, (reply.prompt_tokens, reply.completion_tokens), strict=True))
    usage = {name: count for name, count in counts.items() if count is not OMIT}
    if total is not None and all(type(c) is int for c in counts.values()):
        usage[total] = sum(counts.values())
    return usage


def _openai_completion(request: RecordedRequest, reply: Text, number: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"chatcmpl-fake{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model or "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(reply, ("prompt_tokens", "completion_tokens"), "total_tokens"),
        "system_fingerprint": "fp_fake",
    }
    if not reply.usage:
        del body["usage"]
    return body


def _anthropic_message(request: RecordedRequest, reply: Text, number: int) -> dict[str, Any]:
    content = [] if reply.text is None else [{"type": "text", "text": reply.text}]
    body: dict[str, Any] = {
        "id": f"msg_fake{number}",
        "type": "message",
        "role": "assistant",
        "model": request.model or "fake-model",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _usage(reply, ("input_tokens", "output_tokens"), None),
    }
    if not reply.usage:
        del body["usage"]
    return body
