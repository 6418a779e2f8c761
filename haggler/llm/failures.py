"""From a hosted provider's failure to haggler's error: one mapping for every hosted backend.

Each backend sorts its SDK's exceptions into a `Failure` (what kind of failure, the HTTP status,
the provider's own words, how long it asked us to wait); `model_error` turns that into the
`ModelError` subclass that decides whether `haggler.llm.retry` tries again, with one message
per kind, redacted and on one line. So the litellm and the OpenAI-SDK backends fail alike.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

from haggler.errors import ModelAuthError, ModelError, ModelRequestError, TransientModelError
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
    "connection",  # refused or dropped connection: retried
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
    where = f" at {redact(site.api_base)}" if site.api_base else ""
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
