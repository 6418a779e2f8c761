"""From a hosted provider's failure to haggler's error: one mapping for every hosted backend.

Each backend sorts its SDK's exceptions into a `Failure` (what kind of failure, the HTTP status,
the provider's own words, how long it asked us to wait); `model_error` turns that into the
`ModelError` subclass that decides whether `haggler.llm.retry` tries again, with one message
per kind, redacted and on one line. So the litellm and the OpenAI-SDK backends fail alike.

A server that cannot be reached at all — nothing listens at its address (connection refused),
or its host name does not resolve — is told apart from a dropped connection or a timeout by
the operating system's error at the bottom of the SDK's exception chain (`unreachable`): it
becomes `ModelUnreachableError`, which names the address and is retried once, quickly, not
for the half minute of backoff a busy server gets.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

from haggler.errors import (
    ModelAuthError,
    ModelError,
    ModelRequestError,
    ModelUnreachableError,
    TransientModelError,
)
from haggler.llm.secrets import redact
from haggler.model_text import storable_text, terminal_text

__all__ = [
    "SUPPORTED_PARAMS",
    "CallSite",
    "Failure",
    "FailureKind",
    "check_params",
    "detail_of",
    "model_error",
    "retry_after",
    "unreachable",
]

# The generation parameters every hosted backend accepts; anything else is refused up front.
SUPPORTED_PARAMS = frozenset({"temperature", "max_tokens", "seed", "stop", "top_p"})

# Longest provider detail kept in an error message: enough to recognise, short enough to print.
_DETAIL_CHARS = 300

FailureKind = Literal[
    "context_window",  # the prompt does not fit: not retried
    "auth",  # 401/403: not retried
    "rate_limit",  # 429: retried, honouring retry-after
    "timeout",  # no reply in time: retried
    "refused",  # nothing listens at the address: retried once, quickly
    "unresolved",  # the host name does not resolve: retried once, quickly
    "connection",  # dropped or broken connection: retried
    "unreadable",  # a 2xx reply nobody can read: retried
    "server",  # 5xx, 408, 409: retried
    "not_found",  # 404: not retried
    "request",  # any other 4xx: not retried
    "unexpected",  # not an HTTP failure at all: not retried
]


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed call, in terms no SDK owns."""

    kind: FailureKind
    status: int | None
    detail: str  # the provider's own words, already redacted and on one line
    retry_after: float | None = None
    error_name: str = ""  # the SDK's exception class, for an unexpected failure
    # Where the client tried to connect (scheme://host:port), for a server it could not reach.
    address: str | None = None


@dataclass(frozen=True, slots=True)
class CallSite:
    """Where a call went, for the messages: model, server, timeout, and where its key lives."""

    model: str
    api_base: str | None
    timeout_s: float
    key_hint: str


def check_params(model: str, params: Mapping[str, object]) -> None:
    """Refuse unknown generation parameters before any request is made."""
    unknown = set(params) - SUPPORTED_PARAMS
    if unknown:
        raise TypeError(
            f"{model}: unsupported generation parameter(s) {sorted(unknown)}; "
            f"use {', '.join(sorted(SUPPORTED_PARAMS))}"
        )


def model_error(failure: Failure, site: CallSite) -> ModelError:
    """The haggler error for `failure`: transient ones are retried, the others fail fast."""
    model, status, detail, kind = site.model, failure.status, failure.detail, failure.kind
    where = f" at {_without_credentials(site.api_base)}" if site.api_base else ""
    if kind == "context_window":
        return ModelRequestError(
            f"{model}: the prompt does not fit the model's context window ({detail}); "
            f"shorten the history (a smaller memory token budget) or pick a longer-context model",
            model=model,
            status=status,
        )
    if kind == "auth":
        return ModelAuthError(
            f"{model}: the provider refused the credentials (HTTP {status or 401}: {detail}); "
            f"{site.key_hint}",
            model=model,
            status=status,
        )
    if kind == "rate_limit":
        wait = failure.retry_after
        asked = f", asked to wait {wait:g}s" if wait is not None else ""
        return TransientModelError(
            f"{model}: rate limited by the provider (HTTP 429{asked}: {detail}); "
            f"retried with backoff, lower the concurrency if it persists",
            model=model,
            status=429,
            retry_after=wait,
        )
    if kind == "timeout":
        return TransientModelError(
            f"{model}: no reply within {site.timeout_s:g}s{where}; "
            f"raise timeout_s for a slow model or check the server",
            model=model,
        )
    if kind == "refused":
        address = failure.address or _origin(site.api_base) or "the provider's address"
        return ModelUnreachableError(
            f"{model}: nothing listens at {address} (connection refused); "
            f"start the server or fix --api-base / api_base",
            model=model,
        )
    if kind == "unresolved":
        address = failure.address or _origin(site.api_base)
        host = urlsplit(address).hostname if address else None
        return ModelUnreachableError(
            f"{model}: cannot find the host {host or 'of the provider'} ({detail}); "
            f"fix the host name in --api-base / api_base, or check the network and DNS",
            model=model,
        )
    if kind == "connection":
        return TransientModelError(
            f"{model}: the connection to the provider failed{where} ({detail}); "
            f"check the network or that the server is running",
            model=model,
        )
    if kind == "unreadable":
        return TransientModelError(
            f"{model}: the provider's reply could not be read{where} ({detail}); usually passes",
            model=model,
            status=status,
        )
    if kind == "server":
        return TransientModelError(
            f"{model}: the provider failed (HTTP {status or 500}: {detail}); usually passes",
            model=model,
            status=status,
        )
    if kind == "not_found":
        return ModelRequestError(
            f"{model}: the provider does not know this model or endpoint{where} "
            f"(HTTP 404: {detail}); check the model name"
            + (" and api_base" if site.api_base else ""),
            model=model,
            status=status,
        )
    if kind == "request":
        return ModelRequestError(
            f"{model}: the provider rejected the request (HTTP {status or 400}: {detail}); "
            f"check the generation parameters ({', '.join(sorted(SUPPORTED_PARAMS))}) "
            f"and the prompt",
            model=model,
            status=status,
        )
    return ModelError(
        f"{model}: the call failed unexpectedly ({failure.error_name}: {detail})", model=model
    )


# -- reading an SDK exception ----------------------------------------------------------------


def unreachable(error: BaseException) -> Failure | None:
    """A `refused` or `unresolved` failure if `error` comes from a server that could not be
    reached at all; None for anything else (a timeout, a dropped connection, an HTTP reply).

    The SDKs wrap the operating system's error in their own classes (openai's
    APIConnectionError, or even APITimeoutError under its aiohttp transport; litellm's
    InternalServerError), so the chain of causes is searched for it.
    """
    chain = list(_chain(error))
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            reason = cause.strerror or str(cause) or "DNS lookup failed"
            return Failure("unresolved", None, _one_line(reason), address=_target(chain))
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return Failure("refused", None, "connection refused", address=_target(chain))
    return None


def _chain(error: BaseException) -> list[BaseException]:
    # Causes, contexts and the members of exception groups (anyio tries every address of a
    # host and reports them together), each once.
    seen: set[int] = set()
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop(0)
        if cause is None or id(cause) in seen or len(found) > 50:
            continue
        seen.add(id(cause))
        found.append(cause)
        pending += [cause.__cause__, cause.__context__]
        members = getattr(cause, "exceptions", None)
        if isinstance(members, tuple):
            pending += [m for m in members if isinstance(m, BaseException)]
    return found


def _target(chain: list[BaseException]) -> str | None:
    """Where the client tried to connect, as scheme://host:port, read from the transport's own
    error (aiohttp's connector error, or the URL of httpx's request); None if neither says."""
    for cause in chain:
        key = getattr(cause, "_conn_key", None)  # aiohttp's ClientConnectorError
        host, port = getattr(key, "host", None), getattr(key, "port", None)
        if isinstance(host, str) and host and isinstance(port, int):
            scheme = "https" if getattr(key, "is_ssl", False) else "http"
            return _origin(f"{scheme}://{_bracketed(host)}:{port}")
    for cause in chain:
        # Only the transports' own errors: litellm's exceptions carry made-up request URLs.
        if type(cause).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore"):
            continue
        try:
            url = str(cause.request.url)  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError when it has none
            continue
        if url:
            return _origin(url)
    return None


def _origin(url: str | None) -> str | None:
    """scheme://host:port of `url` with the default port filled in; never its user, password,
    path or query, any of which may hold a key."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    scheme = parts.scheme or "http"
    if port is None:
        port = 443 if scheme == "https" else 80
    return redact(f"{scheme}://{_bracketed(parts.hostname)}:{port}")


def _without_credentials(url: str) -> str:
    """`url` without its user, password, query and fragment: a key can hide in any of them."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the configured api_base"
    if not parts.hostname:
        return redact(url.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2])
    netloc = _bracketed(parts.hostname) + (f":{port}" if port is not None else "")
    return redact(f"{parts.scheme}://{netloc}{parts.path}")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _one_line(text: str) -> str:
    return " ".join(redact(text).split())[:_DETAIL_CHARS]


# litellm prefixes messages with its class names ("litellm.RateLimitError: RateLimitError:
# OpenAIException - ") and suffixes advice; the provider's own words are what a person needs.
_PREAMBLE = re.compile(r"^(?:litellm\.)?\w+(?:Error|Exception|Timeout)(?::| -)\s*")
_HANDLE_WITH = re.compile(r"\.?\s*Handle with `litellm\.\w+`\.?\s*$")


def detail_of(error: BaseException) -> str:
    """The provider's own explanation, redacted, on one line, cut to a readable length."""
    text = _body_message(getattr(error, "body", None))
    if text is None:
        text = str(getattr(error, "message", None) or error)
        while (stripped := _PREAMBLE.sub("", text, count=1)) != text:
            text = stripped
        text = _HANDLE_WITH.sub("", text)
        with contextlib.suppress(ValueError):
            text = _body_message(json.loads(text)) or text
    # litellm appends the traceback of its own failure to the message: not the provider's words.
    text = text.split("Traceback (most recent call last)")[0]
    # Whatever a provider writes is hostile: storable, and inert on a terminal.
    text = terminal_text(storable_text(" ".join(redact(text).split())))
    if len(text) > _DETAIL_CHARS:
        text = text[: _DETAIL_CHARS - 3] + "..."
    return text or type(error).__name__


def _body_message(body: object) -> str | None:
    # OpenAI: {"message": ...} (the SDK unwraps "error"); Anthropic: {"error": {"message": ...}}.
    if not isinstance(body, Mapping):
        return None
    inner = body.get("error")
    if isinstance(inner, Mapping):
        body = inner
    message = body.get("message")
    return message if isinstance(message, str) and message else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` in seconds or as
    an HTTP date; None when it did not say. Header names must be lower-case."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
