"""Hosted models through litellm: OpenAI, Anthropic and every provider litellm speaks, plus
self-hosted vLLM or Ollama servers behind their OpenAI-compatible endpoints.

litellm is imported on the first call, never at import: it takes seconds and reads settings from
the environment. Its own retries and the provider SDKs' retries are switched off, so that
`haggler.llm.retry` is the only place a call is repeated; its exceptions become haggler's, with
every message redacted and on one line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import cache
from types import ModuleType
from typing import Any

from haggler.errors import (
    ModelAuthError,
    ModelError,
    ModelRequestError,
    TransientModelError,
)
from haggler.llm.base import Backend, Completion, Message, Usage
from haggler.llm.providers import _is_loopback, api_key_env_for
from haggler.llm.retry import RetryPolicy
from haggler.llm.secrets import redact, register_secret

__all__ = ["LiteLLMBackend", "litellm_providers"]

logger = logging.getLogger(__name__)

SUPPORTED_PARAMS = frozenset({"temperature", "max_tokens", "seed", "stop", "top_p"})

# The OpenAI SDK refuses to build a client without a key, but a local vLLM or a test fake often
# takes none; this stands in for it.
_PLACEHOLDER_KEY = "haggler-no-key"

# Longest provider detail kept in an error message: enough to recognise, short enough to print.
_DETAIL_CHARS = 300


@cache
def _litellm() -> ModuleType:
    # The cost map would otherwise be fetched from GitHub on import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Otherwise litellm prints "Give Feedback / Get Help" banners to stdout on every failed call,
    # which would land in the middle of CLI output.
    litellm.suppress_debug_info = True
    return litellm


@cache
def litellm_providers() -> frozenset[str]:
    """Every provider prefix litellm knows (`openai`, `anthropic`, `hosted_vllm`, ...)."""
    return frozenset(getattr(p, "value", p) for p in _litellm().provider_list)


class LiteLLMBackend(Backend):
    """A hosted or served model, named as litellm names it: `openai/gpt-4o`, `hosted_vllm/...`."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(model, retry_policy=retry_policy)
        register_secret(api_key)
        self.provider = model.partition("/")[0]
        self.api_base = api_base
        if api_key is None and api_base is not None and _is_loopback(api_base):
            api_key = _PLACEHOLDER_KEY
        self._api_key = api_key
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        # Never the key: a repr ends up in logs and tracebacks.
        return f"LiteLLMBackend({self.model!r}, api_base={self.api_base!r})"

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        unknown = set(params) - SUPPORTED_PARAMS
        if unknown:
            raise TypeError(
                f"{self.model}: unsupported generation parameter(s) {sorted(unknown)}; "
                f"use {', '.join(sorted(SUPPORTED_PARAMS))}"
            )
        litellm = _litellm()
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [message.as_dict() for message in messages],
            "timeout": self.timeout_s,
            # Retries belong to haggler.llm.retry alone: num_retries stops litellm's wrapper from
            # retrying, max_retries reaches the OpenAI client as its own max_retries.
            "num_retries": 0,
            "max_retries": 0,
            # Providers that reject a parameter (Anthropic and `seed`) get the call without it.
            "drop_params": True,
            **{name: value for name, value in params.items() if value is not None},
        }
        if self.api_base is not None:
            request["api_base"] = self.api_base
        if self._api_key is not None:
            request["api_key"] = self._api_key
        try:
            response = await litellm.acompletion(**request)
        except Exception as error:
            mapped = self._to_model_error(error)
            logger.debug("%s", mapped)
            # Not chained: litellm's own message may quote the key back (OpenAI's 401 does).
            raise mapped from None
        return self._completion(response)

    def _completion(self, response: Any) -> Completion:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise TransientModelError(
                f"{self.model}: the provider's reply held no choices; usually passes, retrying",
                model=self.model,
            )
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None) or ""
        usage = getattr(response, "usage", None)
        return Completion(
            text=text if isinstance(text, str) else str(text),
            model=self.model,
            usage=Usage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            ),
            cost_usd=self._cost(response),
        )

    def _cost(self, response: Any) -> float:
        # litellm prices every response for its own logging; asking it again costs a second
        # lookup per call, a slow one for names its price list lacks. Unlisted and self-hosted
        # models have no price: a missing price is not a failure.
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
        try:
            return float(cost) if cost is not None else 0.0
        except (TypeError, ValueError):
            return 0.0

    # -- errors ------------------------------------------------------------------------------

    def _to_model_error(self, error: Exception) -> ModelError:
        """The haggler error for a litellm exception, redacted, on one line."""
        exceptions = _litellm().exceptions
        model = self.model
        status = _status(error)
        detail = _detail(error)
        where = f" at {redact(self.api_base)}" if self.api_base else ""

        if isinstance(error, exceptions.ContextWindowExceededError):
            return ModelRequestError(
                f"{model}: the prompt does not fit the model's context window ({detail}); "
                f"shorten the history (a smaller memory token budget) or pick a longer-context model",
                model=model,
                status=status,
            )
        if isinstance(error, exceptions.AuthenticationError | exceptions.PermissionDeniedError) or (
            status in (401, 403)
        ):
            return ModelAuthError(
                f"{model}: the provider refused the credentials (HTTP {status or 401}: {detail}); "
                f"{self._key_hint()}",
                model=model,
                status=status,
            )
        if isinstance(error, exceptions.RateLimitError) or status == 429:
            retry_after = _retry_after(_response_headers(error))
            asked = f", asked to wait {retry_after:g}s" if retry_after is not None else ""
            return TransientModelError(
                f"{model}: rate limited by the provider (HTTP 429{asked}: {detail}); "
                f"retried with backoff, lower the concurrency if it persists",
                model=model,
                status=429,
                retry_after=retry_after,
            )
        if isinstance(error, exceptions.Timeout):
            return TransientModelError(
                f"{model}: no reply within {self.timeout_s:g}s{where}; "
                f"raise timeout_s for a slow model or check the server",
                model=model,
            )
        if _connection_failed(error) or (
            isinstance(error, exceptions.APIConnectionError) and (status is None or status >= 500)
        ):
            # litellm reports unreadable bodies from httpx-based providers (Anthropic) this way too.
            return TransientModelError(
                f"{model}: the connection to the provider failed{where} ({detail}); "
                f"check the network or that the server is running",
                model=model,
            )
        if status is not None and 200 <= status < 300:
            # An error with a success status: the server answered 200 with a body nobody can read.
            return TransientModelError(
                f"{model}: the provider's reply could not be read{where} ({detail}); usually passes",
                model=model,
                status=status,
            )
        if (
            isinstance(
                error,
                exceptions.InternalServerError
                | exceptions.ServiceUnavailableError
                | exceptions.BadGatewayError,
            )
            or (status is not None and status >= 500)
            or status in (408, 409)
        ):
            return TransientModelError(
                f"{model}: the provider failed (HTTP {status or 500}: {detail}); usually passes",
                model=model,
                status=status,
            )
        if isinstance(error, exceptions.NotFoundError) or status == 404:
            return ModelRequestError(
                f"{model}: the provider does not know this model or endpoint{where} "
                f"(HTTP 404: {detail}); check the model name"
                + (" and api_base" if self.api_base else ""),
                model=model,
                status=status,
            )
        if (
            isinstance(error, exceptions.BadRequestError | exceptions.UnprocessableEntityError)
            or status is not None
        ):
            return ModelRequestError(
                f"{model}: the provider rejected the request (HTTP {status or 400}: {detail}); "
                f"check the generation parameters ({', '.join(sorted(SUPPORTED_PARAMS))}) "
                f"and the prompt",
                model=model,
                status=status,
            )
        return ModelError(
            f"{model}: the call failed unexpectedly ({type(error).__name__}: {detail})",
            model=model,
        )

    def _key_hint(self) -> str:
        env = api_key_env_for(self.provider)
        if env is not None:
            return f"check the key in the environment variable {env}"
        if self.api_base is not None:
            return "check the API key the server expects (e.g. vLLM's --api-key)"
        return f"check the credentials litellm reads for {self.provider}"


def _connection_failed(error: Exception) -> bool:
    # The OpenAI client's refused or dropped connection reaches us as a "500" from litellm;
    # no server answered, so say so rather than blame the provider.
    cause: BaseException | None = error
    while cause is not None:
        if type(cause).__name__ in ("APIConnectionError", "ConnectError", "RemoteProtocolError"):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _status(error: Exception) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


# litellm prefixes messages with its class names ("litellm.RateLimitError: RateLimitError:
# OpenAIException - ") and suffixes advice; the provider's own words are what a person needs.
_PREAMBLE = re.compile(r"^(?:litellm\.)?\w+(?:Error|Exception|Timeout)(?::| -)\s*")
_HANDLE_WITH = re.compile(r"\.?\s*Handle with `litellm\.\w+`\.?\s*$")


def _detail(error: Exception) -> str:
    """The provider's own explanation, redacted, on one line, cut to a readable length."""
    text = _body_message(getattr(error, "body", None))
    if text is None:
        text = str(getattr(error, "message", None) or error)
        while (stripped := _PREAMBLE.sub("", text, count=1)) != text:
            text = stripped
        text = _HANDLE_WITH.sub("", text)
        with contextlib.suppress(ValueError):
            text = _body_message(json.loads(text)) or text
    text = " ".join(redact(text).split())
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


def _response_headers(error: Exception) -> Mapping[str, str]:
    # The OpenAI-SDK path keeps the upstream response on the exception; litellm's own httpx path
    # (Anthropic, vLLM) only attaches the headers as `litellm_response_headers`.
    for headers in (
        getattr(error, "litellm_response_headers", None),
        getattr(getattr(error, "response", None), "headers", None),
        getattr(error, "headers", None),
    ):
        if headers:
            return {str(k).lower(): str(v) for k, v in dict(headers).items()}
    return {}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` in seconds or as
    an HTTP date; None when it did not say."""
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
