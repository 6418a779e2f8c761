"""Hosted models through litellm: Anthropic and every provider litellm speaks, OpenAI's
reasoning models, and Ollama servers. (open_backend sends other `openai/` models and vLLM
servers straight through the openai SDK: haggler.llm.openai_backend.)

litellm is imported on the first call, never at import: it takes seconds and reads settings from
the environment. Its own retries and the provider SDKs' retries are switched off, so that
`haggler.llm.retry` is the only place a call is repeated; its exceptions become haggler's, with
every message redacted and on one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cache
from types import ModuleType
from typing import Any

from haggler.errors import ModelError, TransientModelError
from haggler.llm.api_keys import PLACEHOLDER_KEY, api_key_env_for, is_loopback
from haggler.llm.base import Backend, Completion, Message, Usage
from haggler.llm.failures import (
    CallSite,
    Failure,
    FailureKind,
    check_params,
    detail_of,
    model_error,
    retry_after,
    unreachable,
)
from haggler.llm.retry import RetryPolicy
from haggler.llm.secrets import register_secret

__all__ = ["LiteLLMBackend", "litellm_providers"]

logger = logging.getLogger(__name__)


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
        if api_key is None and api_base is not None and is_loopback(api_base):
            api_key = PLACEHOLDER_KEY
        self._api_key = api_key
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        # Never the key: a repr ends up in logs and tracebacks.
        return f"LiteLLMBackend({self.model!r}, api_base={self.api_base!r})"

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        check_params(self.model, params)
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
        mapped = None
        try:
            response = await litellm.acompletion(**request)
        except Exception as error:
            mapped = self._to_model_error(error)
        if mapped is not None:
            logger.debug("%s", mapped)
            # Raised outside the `except`: neither chained nor carrying litellm's exception as
            # its context, whose message (OpenAI's 401 quotes the key) and request hold the key.
            raise mapped
        return self._completion(response)

    def _completion(self, response: Any) -> Completion:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise TransientModelError(
                f"{self.model}: the provider's reply held no choices; usually passes, retrying",
                model=self.model,
            )
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        usage = getattr(response, "usage", None)
        # What a provider counted is checked, not trusted: Usage.reported and Backend.complete
        # decide what to make of a count that cannot be right, and of litellm's price of it.
        counted = Usage.reported(
            getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
        )
        return Completion(
            text="" if text is None else text if isinstance(text, str) else str(text),
            model=self.model,
            usage=counted,
            cost_usd=0.0 if counted.estimated else self._cost(response),
        )

    def cost_of(self, usage: Usage) -> float:
        # litellm's own price list, as for every other call of this model; none: $0, as for
        # a model litellm cannot price at all.
        try:
            prompt, completion = _litellm().cost_per_token(
                model=self.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
            return float(prompt) + float(completion)
        except Exception:  # litellm raises a plain Exception for a model it cannot price
            return 0.0

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
        site = CallSite(self.model, self.api_base, self.timeout_s, self._key_hint())
        return model_error(_failure(error), site)

    def _key_hint(self) -> str:
        env = api_key_env_for(self.provider)
        if env is not None:
            return f"check the key in the environment variable {env}"
        if self.api_base is not None:
            return "check the API key the server expects (e.g. vLLM's --api-key)"
        return f"check the credentials litellm reads for {self.provider}"


def _failure(error: Exception) -> Failure:
    """What kind of failure a litellm exception reports, by its class and HTTP status."""
    exceptions = _litellm().exceptions
    status = _status(error)
    detail = detail_of(error)

    def failure(kind: FailureKind, status: int | None = status) -> Failure:
        return Failure(kind, status, detail, error_name=type(error).__name__)

    if status is None or status >= 500:
        # No server answered (litellm reports a refused connection as a "500"): say so, and
        # where, rather than blame the provider. A real HTTP status means something listens.
        no_server = unreachable(error)
        if no_server is not None:
            return no_server
    if isinstance(error, exceptions.ContextWindowExceededError):
        return failure("context_window")
    if isinstance(error, exceptions.AuthenticationError | exceptions.PermissionDeniedError) or (
        status in (401, 403)
    ):
        return failure("auth")
    if isinstance(error, exceptions.RateLimitError) or status == 429:
        return Failure("rate_limit", 429, detail, retry_after(_response_headers(error)))
    if isinstance(error, exceptions.Timeout):
        return failure("timeout")
    if _connection_failed(error) or (
        isinstance(error, exceptions.APIConnectionError) and (status is None or status >= 500)
    ):
        # litellm reports unreadable bodies from httpx-based providers (Anthropic) this way too.
        return failure("connection")
    if status is not None and 200 <= status < 300:
        # An error with a success status: the server answered 200 with a body nobody can read.
        return failure("unreadable")
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
        return failure("server")
    if isinstance(error, exceptions.NotFoundError) or status == 404:
        return failure("not_found")
    if (
        isinstance(error, exceptions.BadRequestError | exceptions.UnprocessableEntityError)
        or status is not None
    ):
        return failure("request")
    return failure("unexpected")


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
