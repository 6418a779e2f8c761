"""From a model name to a backend: `openai/gpt-4o`, `anthropic/claude-…`, `hosted_vllm/…`,
`ollama/…`, `local:/path/to/model`.

Checks that can fail without a network (unknown prefix, missing API key, missing api_base) run
here, before the first call, so a tournament does not die on its hundredth game.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from haggler.errors import ConfigError
from haggler.llm.api_keys import KEY_ENV, api_key_env_for, is_loopback
from haggler.llm.base import Backend
from haggler.llm.retry import RetryPolicy

if TYPE_CHECKING:
    from haggler.llm.local_backend import LocalSettings

__all__ = ["HostedModel", "api_key_env_for", "open_backend", "split_model_name"]

LOCAL_PREFIX = "local:"

# OpenAI's reasoning models: o1, o3-mini, o4-mini-2025-04-16, ...
_REASONING_MODEL = re.compile(r"o\d")
# Self-hosted servers: they need to be told where they are.
_NEEDS_API_BASE = {"hosted_vllm"}
# Prefixes that name no hosted provider but a haggler agent kind; handled above this layer.
KNOWN_PREFIXES = tuple(sorted(KEY_ENV))


@dataclass(frozen=True, slots=True)
class HostedModel:
    provider: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.provider}/{self.name}"


def split_model_name(model: str) -> HostedModel:
    """`openai/gpt-4o` -> HostedModel('openai', 'gpt-4o'); ConfigError for an unknown provider."""
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        raise ConfigError(
            f"model {model!r} has no provider prefix; write it as PROVIDER/NAME "
            f"(e.g. openai/gpt-4o), local:/path/to/model, or rule:TACTIC"
        )
    if provider not in KEY_ENV and not _litellm_knows(provider):
        raise ConfigError(
            f"model {model!r}: unknown provider prefix {provider + '/'!r}; use one of "
            f"{', '.join(p + '/' for p in KNOWN_PREFIXES)}, local:/path, or rule:TACTIC"
        )
    return HostedModel(provider, name)


def _litellm_knows(provider: str) -> bool:
    # The long tail of providers is litellm's to know; importing it costs seconds, so only
    # names outside our table pay that price.
    from haggler.llm.litellm_backend import litellm_providers

    return provider in litellm_providers()


def open_backend(
    model: str,
    *,
    api_base: str | None = None,
    api_key_env: str | None = None,
    timeout_s: float = 60.0,
    retry_policy: RetryPolicy | None = None,
    device: str | None = None,
    local: LocalSettings | None = None,
) -> Backend:
    """A backend for `model`, checked for everything that can be checked offline.

    `local` says how a `local:/path` model runs (device, dtype, batching, keep-alive);
    `device`, when given, overrides its device.
    """
    if model.startswith(LOCAL_PREFIX):
        from haggler.llm.local_backend import LocalBackend, LocalSettings

        path = model[len(LOCAL_PREFIX) :]
        if not path:
            raise ConfigError(f"model {model!r}: write local models as local:/path/to/model")
        settings = local or LocalSettings()
        if device is not None:
            settings = replace(settings, device=device)
        return LocalBackend.shared(path, settings)

    hosted = split_model_name(model)
    if hosted.provider in _NEEDS_API_BASE and not api_base:
        raise ConfigError(
            f"model {model!r}: a {hosted.provider} server needs its address; "
            f"set api_base (e.g. http://localhost:8000/v1)"
        )
    env = api_key_env or api_key_env_for(hosted.provider)
    api_key = None
    if env is not None:
        api_key = os.environ.get(env)
        if not api_key and not (api_base and api_key_env is None and is_loopback(api_base)):
            raise ConfigError(
                f"model {model!r} needs an API key: set the environment variable {env}"
            )
    if _openai_compatible(hosted):
        from haggler.llm.openai_backend import OpenAICompatibleBackend

        # What litellm reads from the environment, read here as litellm would (the SDK alone
        # knows only OPENAI_BASE_URL and OPENAI_ORG_ID): a key meant for a proxy must reach it.
        organization = None
        if hosted.provider == "openai":
            api_base = api_base or os.environ.get("OPENAI_BASE_URL") or None
            api_base = api_base or os.environ.get("OPENAI_API_BASE") or None
            organization = os.environ.get("OPENAI_ORGANIZATION") or None
        elif api_key is None and api_key_env is None:
            api_key = os.environ.get("HOSTED_VLLM_API_KEY") or None
        return OpenAICompatibleBackend(
            hosted.full_name,
            api_base=api_base,
            api_key=api_key,
            timeout_s=timeout_s,
            retry_policy=retry_policy,
            organization=organization,
        )
    from haggler.llm.litellm_backend import LiteLLMBackend

    return LiteLLMBackend(
        hosted.full_name,
        api_base=api_base,
        api_key=api_key,
        timeout_s=timeout_s,
        retry_policy=retry_policy,
    )


def _openai_compatible(model: HostedModel) -> bool:
    """Whether litellm would send `model` its parameters untouched over the OpenAI wire format,
    so that the openai SDK can be called directly, at a fraction of litellm's CPU per call.

    litellm rewrites the request for OpenAI's reasoning models (o1, o3, o4-mini, gpt-5...:
    max_tokens becomes max_completion_tokens, an unsupported temperature is dropped), so those
    stay on litellm.
    """
    if model.provider == "hosted_vllm":
        return True
    if model.provider != "openai":
        return False
    name = model.name.rpartition("/")[2].lower()
    base = name.split(":")[1] if name.startswith("ft:") and ":" in name[3:] else name
    # As litellm tells them: o-series by their start, gpt-5 and later anywhere in the name
    # (a fine-tune, a proxy's deployment name).
    return not (_REASONING_MODEL.match(base) or "gpt-5" in name or "gpt-6" in name)

