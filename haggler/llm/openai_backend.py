"""OpenAI-compatible models straight through the openai SDK: `openai/...` (api.openai.com or
any api_base) and `hosted_vllm/...` servers.

For these models litellm sends the request on untouched, at a few milliseconds of client CPU
per call: in a tournament of dozens of concurrent games, more than the SDK itself spends. This
backend sends the JSON body litellm would send through the SDK's low-level `post` (the SDK's
headers, timeouts and error classes), reads the reply itself, prices it from litellm's price
map (haggler.llm.pricing) and fails as `LiteLLMBackend` does (haggler.llm.failures). Models
whose parameters litellm rewrites (OpenAI's reasoning models) stay on litellm: see
`haggler.llm.providers`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from haggler.errors import TransientModelError
from haggler.llm.api_keys import PLACEHOLDER_KEY, api_key_env_for, is_loopback
from haggler.llm.base import Backend, Completion, Message, Usage, token_count
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
from haggler.llm.openai_clients import shared_client
from haggler.llm.pricing import Price, list_price
from haggler.llm.retry import RetryPolicy
from haggler.llm.secrets import register_secret

__all__ = ["OpenAICompatibleBackend"]

logger = logging.getLogger(__name__)

# Words with which OpenAI and vLLM say a prompt is too long (litellm looks for the same).
_CONTEXT_WINDOW_WORDS = (
    "maximum context length",
    "context_length_exceeded",
    "is longer than the model's context length",
    "exceeds the available context size",
    "prompt is too long",
)
_UNPRICED = Price(0.0, 0.0)


class OpenAICompatibleBackend(Backend):
    """A model behind an OpenAI-compatible chat completions endpoint.

    Its connections belong to the client shared by every backend of the event loop
    (haggler.llm.openai_clients), so closing the backend has nothing to release.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retry_policy: RetryPolicy | None = None,
        organization: str | None = None,
    ) -> None:
        super().__init__(model, retry_policy=retry_policy)
        register_secret(api_key)
        self.organization = organization
        self.provider, _, self.name = model.partition("/")
        self.api_base = api_base
        if api_key is None and (
            self.provider == "hosted_vllm" or (api_base is not None and is_loopback(api_base))
        ):
            # A vLLM server started without --api-key takes any key; the SDK insists on one.
            api_key = PLACEHOLDER_KEY
        self._api_key = api_key
        self.timeout_s = timeout_s
        # Priced when opened, as litellm would price it; opening the first one imports litellm
        # for its price map (seconds, once). Self-hosted models have no price to look up.
        listed = list_price(model) if self.provider == "openai" else None
        if listed is None and self.provider == "openai":
            logger.warning("%s: no price in litellm's price map; its calls count as $0", model)
        self._price = listed or _UNPRICED

    def __repr__(self) -> str:
        # Never the key: a repr ends up in logs and tracebacks.
        return f"OpenAICompatibleBackend({self.model!r}, api_base={self.api_base!r})"

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        check_params(self.model, params)
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [message.as_dict() for message in messages],
            **{name: value for name, value in params.items() if value is not None},
        }
        mapped = None
        try:
            # No api_base: the SDK's default (OPENAI_BASE_URL, else api.openai.com); no key:
            # the SDK reads OPENAI_API_KEY, which open_backend has checked is set.
            client = await shared_client(self.api_base, self._api_key, self.organization)
            # The SDK's low-level call: its headers, timeouts and error classes, without the
            # typed-parameter walk and response models that cost more than the request itself.
            text = await client.post(
                "/chat/completions",
                cast_to=str,
                body=body,
                options={"timeout": self.timeout_s},
            )
        except Exception as error:
            mapped = model_error(_failure(error), self._site())
        if mapped is not None:
            logger.debug("%s", mapped)
            # Raised outside the `except`: neither chained nor carrying the SDK's exception as
            # its context, whose message (OpenAI's 401 quotes the key) and request hold the key.
            raise mapped
        return self._completion(text)

    def _completion(self, text: str) -> Completion:
        failure = None
        try:
            reply = json.loads(text)
            choices = reply.get("choices")
            if not choices:
                raise TransientModelError(
                    f"{self.model}: the provider's reply held no choices; usually passes, retrying",
                    model=self.model,
                )
            message = choices[0].get("message") or {}
            content = message.get("content")
            # What a provider counted is checked, not trusted: Usage.reported and
            # Backend.complete decide what to make of a count that cannot be right.
            usage = reply.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            details = usage.get("prompt_tokens_details")
            cached = token_count(details.get("cached_tokens") if isinstance(details, dict) else 0)
            served_as = reply.get("model")
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            # HTTP 200 with a body that is not a completion: a broken proxy, a cut reply.
            failure = Failure("unreadable", 200, detail_of(error))
        if failure is not None:
            raise model_error(failure, self._site())
        counted = Usage.reported(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        cost = 0.0
        if not counted.estimated:
            cost = self._price_of(served_as).cost(
                counted.prompt_tokens, counted.completion_tokens, cached or 0
            )
        return Completion(
            text=_text_of(content),
            model=self.model,
            usage=counted,
            cost_usd=cost,
        )

    def cost_of(self, usage: Usage) -> float:
        return self._price.cost(usage.prompt_tokens, usage.completion_tokens)

    def _price_of(self, served_as: object) -> Price:
        # As litellm does: the price of the model the reply names (gpt-4o answers as a dated
        # snapshot, priced on its own), else of the model asked for.
        if self.provider == "openai" and isinstance(served_as, str) and served_as:
            price = list_price(f"openai/{served_as}")
            if price is not None:
                return price
        return self._price

    def _site(self) -> CallSite:
        env = api_key_env_for(self.provider)
        if env is not None:
            hint = f"check the key in the environment variable {env}"
        else:
            hint = "check the API key the server expects (e.g. vLLM's --api-key)"
        return CallSite(self.model, self.api_base, self.timeout_s, hint)


def _text_of(content: object) -> str:
    """The reply's text: `null` is no text; a list of content parts (as some servers send)
    is their text joined; anything else is written as JSON would write it."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] if isinstance(part, dict) and isinstance(part.get("text"), str) else ""
            for part in content
        )
    return json.dumps(content, ensure_ascii=False, allow_nan=True)


def _failure(error: Exception) -> Failure:
    """What kind of failure an openai SDK exception reports."""
    import openai

    detail = detail_of(error)
    if isinstance(error, openai.APIConnectionError) and (no_server := unreachable(error)):
        return no_server
    if isinstance(error, openai.APITimeoutError) and _timed_out(error):
        return Failure("timeout", None, detail)
    if isinstance(error, openai.APIConnectionError):
        return Failure("connection", None, detail)
    if not isinstance(error, openai.APIStatusError):
        return Failure("unexpected", None, detail, error_name=type(error).__name__)
    status = error.status_code
    if status == 429:
        headers = {k.lower(): v for k, v in error.response.headers.items()}
        return Failure("rate_limit", 429, detail, retry_after(headers))
    kind: FailureKind
    if status == 400 and _context_window(error, detail):
        kind = "context_window"
    elif status in (401, 403):
        kind = "auth"
    elif 200 <= status < 300:
        kind = "unreadable"
    elif status >= 500 or status in (408, 409):
        kind = "server"
    elif status == 404:
        kind = "not_found"
    else:
        kind = "request"
    return Failure(kind, status, detail)


def _timed_out(error: Exception) -> bool:
    # The SDK's aiohttp transport reports a refused or dropped connection as a connect timeout;
    # say what happened, so the message points at the server rather than at timeout_s.
    cause = error.__cause__
    while cause is not None:
        if type(cause).__module__.startswith("aiohttp") and not isinstance(cause, TimeoutError):
            return False
        cause = cause.__cause__
    return True


def _context_window(error: Exception, detail: str) -> bool:
    body = getattr(error, "body", None)
    code = body.get("code") if isinstance(body, dict) else None
    text = detail.lower()
    return code == "context_length_exceeded" or any(w in text for w in _CONTEXT_WINDOW_WORDS)
