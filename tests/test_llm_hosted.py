"""The hosted-model backend against a fake server that speaks the OpenAI and Anthropic wire formats.

Everything goes over real HTTP on loopback, through litellm and the providers' own SDKs, so the
tests see what a hosted model would: status codes, headers, broken bodies, dropped connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

import anthropic
import openai
import pytest

from haggler.errors import ConfigError, ModelAuthError, ModelRequestError, TransientModelError
from haggler.llm import Message, RetryPolicy, open_backend
from haggler.llm.litellm_backend import LiteLLMBackend, _retry_after, litellm_providers
from tests.fakes.llm_server import (
    Cut,
    Delay,
    Empty,
    FakeLLMServer,
    Garbage,
    RecordedRequest,
    Reply,
    Status,
    Text,
)

KEY = "sk-test-SECRET123456789"
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, jitter=0.01)
CHAT = [
    Message("system", "You sell balloons."),
    Message("user", "I offer $10 for a balloon."),
]


@dataclass(frozen=True)
class Provider:
    model: str
    key_env: str
    base: Callable[[FakeLLMServer], str]


PROVIDERS = {
    "openai": Provider("openai/gpt-4o", "OPENAI_API_KEY", lambda server: server.openai_base),
    # litellm appends /v1/messages to an Anthropic api_base, as the Anthropic SDK does.
    "anthropic": Provider(
        "anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY", lambda server: server.url
    ),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Provider:
    return PROVIDERS[request.param]


def backend_for(
    server: FakeLLMServer,
    provider: Provider,
    *,
    timeout_s: float = 2.0,
    retry_policy: RetryPolicy = FAST,
    api_key: str | None = KEY,
) -> LiteLLMBackend:
    return LiteLLMBackend(
        provider.model,
        api_base=provider.base(server),
        api_key=api_key,
        timeout_s=timeout_s,
        retry_policy=retry_policy,
    )


def sent_key(request: RecordedRequest) -> str | None:
    # Anthropic clients send x-api-key (litellm) or a bearer token (anthropic SDK 2.x).
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    return request.headers.get("x-api-key") or bearer or None


def assert_one_line_about(error: Exception, model: str) -> None:
    message = str(error)
    assert message.startswith(f"{model}:"), message
    assert "\n" not in message, message
    assert KEY not in message, message


# --- the fake is faithful: the providers' own SDKs read it -------------------------------------


async def test_openai_sdk_reads_fake_replies_and_errors(fake_llm_server: FakeLLMServer) -> None:
    client = openai.AsyncOpenAI(base_url=fake_llm_server.openai_base, api_key=KEY, max_retries=0)
    fake_llm_server.script(
        Text("Deal at $12.", prompt_tokens=7, completion_tokens=3),
        Status(429, "slow down", headers={"retry-after": "2"}),
        Status(401, "Incorrect API key provided"),
        Status(500),
    )
    chat = [{"role": "user", "content": "hi"}]

    reply = await client.chat.completions.create(model="gpt-4o", messages=chat)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Deal at $12."
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 3)

    with pytest.raises(openai.RateLimitError) as rate_limited:
        await client.chat.completions.create(model="gpt-4o", messages=chat)  # type: ignore[arg-type]
    assert rate_limited.value.response.headers["retry-after"] == "2"
    assert "slow down" in str(rate_limited.value)
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="gpt-4o", messages=chat)  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o", messages=chat)  # type: ignore[arg-type]
    assert fake_llm_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    await client.close()


async def test_anthropic_sdk_reads_fake_replies_and_errors(fake_llm_server: FakeLLMServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_llm_server.url, api_key=KEY, max_retries=0)
    fake_llm_server.script(
        Text("Deal at $12.", prompt_tokens=7, completion_tokens=3),
        Status(429, "slow down", headers={"retry-after": "2"}),
        Status(401, "invalid x-api-key"),
        Status(529, "overloaded"),
    )
    chat = [{"role": "user", "content": "hi"}]

    reply = await client.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=20,
        system="You sell balloons.",
        messages=chat,  # type: ignore[arg-type]
    )
    assert reply.content[0].text == "Deal at $12."  # type: ignore[union-attr]
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 3)
    assert fake_llm_server.requests[0].messages == [
        {"role": "system", "content": "You sell balloons."},
        {"role": "user", "content": "hi"},
    ]
    assert sent_key(fake_llm_server.requests[0]) == KEY

    with pytest.raises(anthropic.RateLimitError) as rate_limited:
        await client.messages.create(model="m", max_tokens=20, messages=chat)  # type: ignore[arg-type]
    assert rate_limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model="m", max_tokens=20, messages=chat)  # type: ignore[arg-type]
    with pytest.raises(anthropic.InternalServerError):
        await client.messages.create(model="m", max_tokens=20, messages=chat)  # type: ignore[arg-type]
    await client.close()


def test_fake_server_stops_at_once_while_a_reply_is_delayed() -> None:
    server = FakeLLMServer().start()
    server.script(Delay(30))
    request = urllib.request.Request(
        server.openai_base + "/chat/completions", data=b'{"model": "m", "messages": []}'
    )
    caller = threading.Thread(target=_call_ignoring_hangup, args=(request,))
    caller.start()
    while not server.requests:
        time.sleep(0.01)

    started = time.perf_counter()
    server.stop()
    caller.join(timeout=2)

    assert time.perf_counter() - started < 1.5
    assert not caller.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-llm")]


def _call_ignoring_hangup(request: urllib.request.Request) -> None:
    # The server dropping the connection is the point.
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request)


# --- LiteLLMBackend through both wire formats --------------------------------------------------


async def test_normal_reply(fake_llm_server: FakeLLMServer, provider: Provider) -> None:
    fake_llm_server.script(Text("I can do $14.", prompt_tokens=21, completion_tokens=6))

    completion = await backend_for(fake_llm_server, provider).complete(
        CHAT, temperature=0.2, max_tokens=50, seed=7
    )

    assert completion.text == "I can do $14."
    assert completion.model == provider.model
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 6)
    assert completion.latency_s > 0
    assert completion.retries == 0
    [request] = fake_llm_server.requests
    assert request.messages == [message.as_dict() for message in CHAT]
    assert request.json["temperature"] == 0.2
    assert request.json["max_tokens"] == 50
    assert sent_key(request) == KEY
    if request.api == "openai":
        assert request.json["seed"] == 7
    else:
        assert "seed" not in request.json  # Anthropic has none; drop_params removes it


async def test_cost_is_priced_for_listed_models_and_zero_for_self_hosted(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Text("a", prompt_tokens=1000, completion_tokens=1000), Text("b"))
    listed = backend_for(fake_llm_server, PROVIDERS["openai"])
    served = LiteLLMBackend("hosted_vllm/my-llama", api_base=fake_llm_server.openai_base)

    assert (await listed.complete(CHAT)).cost_usd > 0
    assert (await served.complete(CHAT)).cost_usd == 0.0


async def test_rate_limit_waits_as_long_as_retry_after_says(
    fake_llm_server: FakeLLMServer, provider: Provider
) -> None:
    fake_llm_server.script(Status(429, "slow down", headers={"retry-after": "0.3"}), Text("ok"))
    # Backoff alone would wait ~0.01 s; max_wait must leave room for the header to be honoured.
    policy = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=1.0, jitter=0.01)

    completion = await backend_for(fake_llm_server, provider, retry_policy=policy).complete(CHAT)

    assert completion.text == "ok"
    assert completion.retries == 1
    first, second = fake_llm_server.requests
    assert second.received_at - first.received_at >= 0.3


async def test_server_errors_are_retried(
    fake_llm_server: FakeLLMServer, provider: Provider
) -> None:
    fake_llm_server.script(Status(500), Status(500), Text("third time lucky"))

    completion = await backend_for(fake_llm_server, provider).complete(CHAT)

    assert completion.text == "third time lucky"
    assert completion.retries == 2
    assert len(fake_llm_server.requests) == 3


async def test_timeout_is_retried(fake_llm_server: FakeLLMServer, provider: Provider) -> None:
    fake_llm_server.script(Delay(1.5, then=Text("too late")), Text("on time"))

    completion = await backend_for(fake_llm_server, provider, timeout_s=0.3).complete(CHAT)

    assert completion.text == "on time"
    assert completion.retries == 1


@pytest.mark.parametrize("broken", [Garbage(), Empty(), Cut()], ids=["garbage", "empty", "cut"])
async def test_unreadable_replies_are_retried(
    fake_llm_server: FakeLLMServer, provider: Provider, broken: Reply
) -> None:
    fake_llm_server.script(broken, Text("readable"))

    completion = await backend_for(fake_llm_server, provider).complete(CHAT)

    assert completion.text == "readable"
    assert completion.retries == 1


async def test_unreadable_replies_from_a_vllm_server_are_retried(
    fake_llm_server: FakeLLMServer,
) -> None:
    # litellm's httpx path for vLLM reports these as errors with status 200, not as 5xx.
    fake_llm_server.script(Garbage(), Empty(), Text("readable"))
    backend = LiteLLMBackend(
        "hosted_vllm/llama", api_base=fake_llm_server.openai_base, retry_policy=FAST
    )

    completion = await backend.complete(CHAT)

    assert (completion.text, completion.retries) == ("readable", 2)


async def test_retries_run_out(fake_llm_server: FakeLLMServer, provider: Provider) -> None:
    fake_llm_server.script(*[Status(503, "overloaded")] * 3)

    with pytest.raises(TransientModelError) as failed:
        await backend_for(fake_llm_server, provider).complete(CHAT)

    assert failed.value.status == 503
    assert "overloaded" in str(failed.value)
    assert_one_line_about(failed.value, provider.model)
    assert len(fake_llm_server.requests) == FAST.attempts


async def test_rejected_key_fails_at_once(
    fake_llm_server: FakeLLMServer, provider: Provider
) -> None:
    fake_llm_server.script(Status(401, f"Incorrect API key provided: {KEY}"))

    with pytest.raises(ModelAuthError) as refused:
        await backend_for(fake_llm_server, provider).complete(CHAT)

    # One request: neither haggler nor litellm nor the SDK retried.
    assert len(fake_llm_server.requests) == 1
    assert provider.key_env in str(refused.value)
    assert refused.value.status == 401
    assert_one_line_about(refused.value, provider.model)


@pytest.mark.parametrize("code", [400, 404, 422])
async def test_rejected_request_fails_at_once(
    fake_llm_server: FakeLLMServer, provider: Provider, code: int
) -> None:
    fake_llm_server.script(Status(code, "max_tokens is too large"))

    with pytest.raises(ModelRequestError) as rejected:
        await backend_for(fake_llm_server, provider).complete(CHAT)

    assert len(fake_llm_server.requests) == 1
    assert "max_tokens is too large" in str(rejected.value)
    assert_one_line_about(rejected.value, provider.model)


async def test_api_key_never_leaks(
    fake_llm_server: FakeLLMServer,
    provider: Provider,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"request with key {KEY} failed"
    fake_llm_server.script(
        Status(429, echo), Status(500, echo), Status(503, echo), Status(401, echo)
    )
    backend = backend_for(fake_llm_server, provider)

    with pytest.raises(TransientModelError) as exhausted:
        await backend.complete(CHAT)
    with pytest.raises(ModelAuthError) as refused:
        await backend.complete(CHAT)

    out, err = capsys.readouterr()
    for text in (str(exhausted.value), str(refused.value), repr(backend), caplog.text, out, err):
        assert KEY not in text
    assert "request with key" in str(refused.value)  # the provider's words survive, not the key


async def test_reply_without_an_action_is_returned_as_text(
    fake_llm_server: FakeLLMServer, provider: Provider
) -> None:
    fake_llm_server.script(Text("Balloons are lovely, aren't they?"), Text(None))
    backend = backend_for(fake_llm_server, provider)

    assert (await backend.complete(CHAT)).text == "Balloons are lovely, aren't they?"
    assert (await backend.complete(CHAT)).text == ""


async def test_responder_answers_from_the_prompt(
    fake_llm_server: FakeLLMServer, provider: Provider
) -> None:
    fake_llm_server.responder = lambda request: f"You said: {request.last_user_text}"

    completion = await backend_for(fake_llm_server, provider).complete(CHAT)

    assert completion.text == "You said: I offer $10 for a balloon."


async def test_concurrent_calls_each_get_their_own_reply(
    fake_llm_server: FakeLLMServer, provider: Provider
) -> None:
    fake_llm_server.responder = lambda request: f"re: {request.last_user_text}"
    backend = backend_for(fake_llm_server, provider)
    prompts = [f"offer {price}" for price in range(8)]

    completions = await asyncio.gather(
        *(backend.complete([Message("user", prompt)]) for prompt in prompts)
    )

    assert [c.text for c in completions] == [f"re: {prompt}" for prompt in prompts]


async def test_unknown_generation_parameter_is_refused_before_any_request(
    fake_llm_server: FakeLLMServer,
) -> None:
    with pytest.raises(TypeError, match="frequency_penalty"):
        await backend_for(fake_llm_server, PROVIDERS["openai"]).complete(
            CHAT, frequency_penalty=1.0
        )
    assert fake_llm_server.requests == []


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after": "0.5"}) == 0.5
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    in_ten_seconds = _retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert in_ten_seconds is not None and 8 <= in_ten_seconds <= 10
    assert _retry_after({"retry-after": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None


def test_litellm_providers_lists_the_known_prefixes() -> None:
    assert {"openai", "anthropic", "hosted_vllm", "ollama"} <= litellm_providers()


# --- open_backend: what can be checked offline is checked before any call ---------------------


@pytest.mark.parametrize("provider_name", sorted(PROVIDERS))
def test_missing_api_key_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, provider_name: str
) -> None:
    provider = PROVIDERS[provider_name]
    monkeypatch.delenv(provider.key_env, raising=False)

    with pytest.raises(ConfigError, match=provider.key_env):
        open_backend(provider.model)


def test_unknown_prefix_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as unknown:
        open_backend("foo/bar")

    assert "'foo/'" in str(unknown.value)
    assert "openai/" in str(unknown.value)
    assert "anthropic/" in str(unknown.value)


def test_self_hosted_model_needs_an_api_base() -> None:
    with pytest.raises(ConfigError, match="api_base"):
        open_backend("hosted_vllm/x")


async def test_key_from_the_environment_reaches_the_provider(
    fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    backend = open_backend("openai/gpt-4o", api_base=fake_llm_server.openai_base, retry_policy=FAST)

    assert (await backend.complete(CHAT)).text == "OK"
    assert fake_llm_server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_self_hosted_vllm_end_to_end(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Text("I accept $12.", prompt_tokens=9, completion_tokens=4))
    backend = open_backend(
        "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
        api_base=fake_llm_server.openai_base,
        retry_policy=FAST,
    )

    completion = await backend.complete(CHAT, temperature=0.0)

    assert completion.text == "I accept $12."
    assert completion.model == "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"
    assert completion.usage.total_tokens == 13
    [request] = fake_llm_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert request.messages == [message.as_dict() for message in CHAT]


def test_importing_haggler_llm_does_not_import_litellm() -> None:
    probe = (
        "import sys, haggler.llm, haggler.llm.litellm_backend; "
        "assert 'litellm' not in sys.modules, 'litellm was imported'"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
