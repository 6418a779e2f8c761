"""The hosted-model backends against a fake server that speaks the OpenAI and Anthropic wire formats.

Everything goes over real HTTP on loopback, through litellm and the providers' own SDKs, so the
tests see what a hosted model would: status codes, headers, broken bodies, dropped connections.
Each test runs against litellm for OpenAI and Anthropic, and against the direct openai-SDK
backend (`openai-sdk`) that open_backend picks for OpenAI-compatible models.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import anthropic
import openai
import pytest

from haggler.errors import (
    ConfigError,
    ModelAuthError,
    ModelRequestError,
    ModelUnreachableError,
    TransientModelError,
)
from haggler.llm import Message, RetryPolicy, open_backend
from haggler.llm.base import Backend
from haggler.llm.failures import Failure, model_error, retry_after
from haggler.llm.litellm_backend import LiteLLMBackend, litellm_providers
from haggler.llm.openai_backend import OpenAICompatibleBackend
from haggler.llm.openai_clients import shared_client
from haggler.llm.pricing import list_price
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
    backend: type[LiteLLMBackend] | type[OpenAICompatibleBackend] = LiteLLMBackend


PROVIDERS = {
    "openai": Provider("openai/gpt-4o", "OPENAI_API_KEY", lambda server: server.openai_base),
    # litellm appends /v1/messages to an Anthropic api_base, as the Anthropic SDK does.
    "anthropic": Provider(
        "anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY", lambda server: server.url
    ),
    "openai-sdk": Provider(
        "openai/gpt-4o",
        "OPENAI_API_KEY",
        lambda server: server.openai_base,
        OpenAICompatibleBackend,
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
) -> Backend:
    return provider.backend(
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


# --- LiteLLMBackend through both wire formats, and the direct OpenAI-SDK backend ---------------


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
    # The timeout leaves room for a loaded machine (CI): at 0.3 s the second, prompt reply
    # was once also cut off, the client's first call in a new event loop being the slow one.
    fake_llm_server.script(Delay(2.5, then=Text("too late")), Text("on time"))

    completion = await backend_for(fake_llm_server, provider, timeout_s=1.0).complete(CHAT)

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


@pytest.mark.parametrize("kind", [LiteLLMBackend, OpenAICompatibleBackend])
async def test_unreadable_replies_from_a_vllm_server_are_retried(
    fake_llm_server: FakeLLMServer, kind: type[Backend]
) -> None:
    # litellm's httpx path for vLLM reports these as errors with status 200, not as 5xx.
    fake_llm_server.script(Garbage(), Empty(), Text("readable"))
    backend = kind(  # type: ignore[call-arg]
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
    # Nor hidden in the exception object: the SDK's own error (its request carries the key in
    # a header) is neither the cause nor the context.
    for error in (exhausted.value, refused.value):
        assert error.__cause__ is None and error.__context__ is None
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
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    in_ten_seconds = retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert in_ten_seconds is not None and 8 <= in_ten_seconds <= 10
    assert retry_after({"retry-after": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_litellm_providers_lists_the_known_prefixes() -> None:
    assert {"openai", "anthropic", "hosted_vllm", "ollama"} <= litellm_providers()


# --- the direct OpenAI-SDK backend: what litellm would do, without litellm ---------------------


async def test_direct_backend_sends_what_litellm_sends(fake_llm_server: FakeLLMServer) -> None:
    params = {"temperature": 0.2, "max_tokens": 50, "seed": 7, "stop": ["\n"], "top_p": 0.9}
    for kind in (LiteLLMBackend, OpenAICompatibleBackend):
        backend = kind("openai/gpt-4o", api_base=fake_llm_server.openai_base, api_key=KEY)
        await backend.complete(CHAT, **params)

    via_litellm, direct = fake_llm_server.requests
    assert direct.path == via_litellm.path == "/v1/chat/completions"
    assert direct.json == via_litellm.json
    assert direct.headers["authorization"] == via_litellm.headers["authorization"]


@pytest.mark.parametrize("model", ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/not-listed"])
async def test_direct_backend_prices_a_reply_as_litellm_does(
    fake_llm_server: FakeLLMServer, model: str
) -> None:
    fake_llm_server.script(*[Text("a", prompt_tokens=1234, completion_tokens=567)] * 2)
    costs = [
        (await kind(model, api_base=fake_llm_server.openai_base, api_key=KEY).complete(CHAT))
        for kind in (LiteLLMBackend, OpenAICompatibleBackend)
    ]

    assert costs[1].cost_usd == pytest.approx(costs[0].cost_usd)
    assert (costs[1].cost_usd > 0) == (model != "openai/not-listed")


def test_list_prices_charge_cached_prompt_tokens_at_the_cache_read_price() -> None:
    price = list_price("openai/gpt-4o")

    assert price is not None and price.cached_prompt is not None
    assert price.cached_prompt < price.prompt
    assert price.cost(1000, 10, cached_tokens=400) == pytest.approx(
        600 * price.prompt + 400 * price.cached_prompt + 10 * price.completion
    )
    assert list_price("hosted_vllm/my-llama") is None
    assert list_price("openai/not-listed") is None
    assert list_price("anthropic/gpt-4o") is None  # listed, but as OpenAI's


@pytest.mark.parametrize("provider_name", ["openai", "openai-sdk"])
async def test_prompt_too_long_for_the_context_window_fails_at_once(
    fake_llm_server: FakeLLMServer, provider_name: str
) -> None:
    provider = PROVIDERS[provider_name]
    fake_llm_server.script(
        Status(400, "This model's maximum context length is 8192 tokens, you asked for 9000.")
    )

    with pytest.raises(ModelRequestError) as rejected:
        await backend_for(fake_llm_server, provider).complete(CHAT)

    assert "context window" in str(rejected.value)
    assert "8192" in str(rejected.value)
    assert len(fake_llm_server.requests) == 1
    assert_one_line_about(rejected.value, provider.model)


@pytest.mark.parametrize("provider_name", ["openai", "openai-sdk"])
async def test_a_lost_connection_is_reported_as_one_not_as_a_timeout(
    fake_llm_server: FakeLLMServer, provider_name: str
) -> None:
    provider = PROVIDERS[provider_name]
    backend = backend_for(fake_llm_server, provider, retry_policy=RetryPolicy(attempts=1))
    fake_llm_server.script(Cut())

    with pytest.raises(TransientModelError) as lost:
        await backend.complete(CHAT)

    assert not isinstance(lost.value, ModelUnreachableError), "a server answered, then hung up"
    assert "connection to the provider failed" in str(lost.value)
    assert_one_line_about(lost.value, provider.model)


# --- a server nobody runs: said at once, with its address -------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed at once."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


# Each hosted path to a server at an api_base: the openai SDK directly (its aiohttp transport),
# and litellm for OpenAI's reasoning models, Anthropic, Ollama and vLLM; each with its own key
# variable set to KEY, which must not reach the message.
UNREACHABLE = {
    "openai-sdk": ("openai/gpt-4o-mini", "/v1", "OPENAI_API_KEY"),
    "litellm-openai": ("openai/o3-mini", "/v1", "OPENAI_API_KEY"),
    "litellm-anthropic": ("anthropic/claude-3-5-haiku-latest", "", "ANTHROPIC_API_KEY"),
    "litellm-ollama": ("ollama/llama3.1", "", None),
}


@pytest.mark.parametrize("path", sorted(UNREACHABLE))
async def test_nothing_listening_is_said_at_once_naming_the_address(
    path: str, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, suffix, key_env = UNREACHABLE[path]
    if key_env is not None:
        monkeypatch.setenv(key_env, KEY)
    litellm_providers()  # litellm's import (seconds, once per process) is not what is timed
    # The default retry policy: six attempts a second apart and doubling for a busy server.
    backend = open_backend(model, api_base=f"http://127.0.0.1:{closed_port}{suffix}")
    assert isinstance(backend, OpenAICompatibleBackend) == (path == "openai-sdk")

    started = time.monotonic()
    with pytest.raises(ModelUnreachableError) as refused:
        await backend.complete(CHAT)
    elapsed = time.monotonic() - started

    assert str(refused.value) == (
        f"{model}: nothing listens at http://127.0.0.1:{closed_port} (connection refused); "
        f"start the server or fix --api-base / api_base"
    )
    assert_one_line_about(refused.value, model)
    # One quick re-try (0.5 s later), where the backoff for a busy server takes over 30 s.
    assert 0.4 < elapsed < 3.0, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("path", sorted(UNREACHABLE))
async def test_a_host_that_does_not_resolve_is_said_at_once(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = "no-such-host.haggler-test.invalid"  # .invalid never resolves (RFC 6761)
    started = time.monotonic()
    with contextlib.suppress(OSError):
        socket.getaddrinfo(host, 80)
        pytest.skip(f"this machine's resolver answers for {host}")
    if time.monotonic() - started > 1.0:
        pytest.skip("this machine's resolver is too slow to time a lookup that fails")
    model, suffix, key_env = UNREACHABLE[path]
    if key_env is not None:
        monkeypatch.setenv(key_env, KEY)
    litellm_providers()
    backend = open_backend(model, api_base=f"http://{host}:8000{suffix}")

    started = time.monotonic()
    with pytest.raises(ModelUnreachableError) as unresolved:
        await backend.complete(CHAT)
    elapsed = time.monotonic() - started

    message = str(unresolved.value)
    assert message.startswith(f"{model}: cannot find the host {host} ("), message
    assert message.endswith(
        "; fix the host name in --api-base / api_base, or check the network and DNS"
    )
    assert_one_line_about(unresolved.value, model)
    assert elapsed < 3.0, f"took {elapsed:.1f}s"


def test_a_key_in_the_api_base_never_reaches_the_message(closed_port: int) -> None:
    # A key pasted into the URL (as user info or a query parameter) is shown to nobody.
    base = f"http://user:{KEY}@127.0.0.1:{closed_port}/v1?api-key={KEY}#{KEY}"
    backend = OpenAICompatibleBackend(
        "openai/gpt-4o-mini", api_base=base, retry_policy=RetryPolicy(attempts=1)
    )
    site = backend._site()
    for kind in ("refused", "unresolved", "timeout", "connection", "not_found", "unreadable"):
        message = str(model_error(Failure(kind, None, "detail"), site))  # type: ignore[arg-type]
        assert KEY not in message and "user" not in message, message
        assert "127.0.0.1" in message, message


def test_the_cli_says_at_once_that_nothing_listens(closed_port: int, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from haggler.cli import app
    from haggler.store import Store

    base = f"http://127.0.0.1:{closed_port}/v1"
    args = ["play", "--seller", "openai/gpt-4o-mini", "--api-base", base]
    args += ["--db", str(tmp_path / "h.db"), "--quiet"]
    started = time.monotonic()
    result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": KEY}, catch_exceptions=False)
    elapsed = time.monotonic() - started

    # A model error that may pass exits 1, as every TransientModelError does in the CLI.
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: openai/gpt-4o-mini: nothing listens at http://127.0.0.1:{closed_port} "
        f"(connection refused); start the server or fix --api-base / api_base"
    ]
    assert KEY not in result.output
    assert elapsed < 3.0, f"took {elapsed:.1f}s"
    with Store(tmp_path / "h.db") as store:
        (episode,) = store.episodes()
    assert episode.status == "failed"
    assert "nothing listens" in (episode.error or "")


def test_backends_share_one_client_per_loop_and_server_closed_when_the_loop_ends(
    fake_llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    base = fake_llm_server.openai_base
    seen: list[tuple[openai.AsyncOpenAI, ...]] = []

    async def play() -> None:
        for model in ("openai/gpt-4o", "openai/gpt-4o-mini"):
            backend = OpenAICompatibleBackend(model, api_base=base, api_key=KEY)
            await backend.complete(CHAT)  # and never closed, as a script might leave it
        keys = (KEY, KEY, "sk-other-key-0123")
        seen.append(tuple([await shared_client(base, key) for key in keys]))

    asyncio.run(play())
    asyncio.run(play())
    gc.collect()

    (first, same, other_key), (next_loop, *_) = seen
    assert same is first  # one client per server and key in a loop
    assert other_key is not first
    assert next_loop is not first  # a client belongs to its loop
    assert all(client.is_closed() for clients in seen for client in clients)
    assert "Unclosed" not in caplog.text


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


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("openai/gpt-4o", OpenAICompatibleBackend),
        ("openai/gpt-4.1-mini", OpenAICompatibleBackend),
        ("hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", OpenAICompatibleBackend),
        # litellm rewrites the parameters of reasoning models: they stay on litellm.
        ("openai/o3-mini", LiteLLMBackend),
        ("openai/o1", LiteLLMBackend),
        ("openai/gpt-5-mini", LiteLLMBackend),
        ("anthropic/claude-3-5-haiku-latest", LiteLLMBackend),
    ],
)
def test_open_backend_calls_the_openai_sdk_directly_where_litellm_would_pass_the_call_on(
    monkeypatch: pytest.MonkeyPatch, model: str, kind: type[Backend]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)

    assert type(open_backend(model, api_base="http://127.0.0.1:9/v1")) is kind


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
        "import sys, haggler.llm, haggler.llm.litellm_backend, haggler.llm.openai_backend; "
        "assert 'litellm' not in sys.modules, 'litellm was imported'"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- found in review: the direct OpenAI path reads what litellm reads, and prices as it does --


async def test_direct_path_reads_the_environment_litellm_reads(
    fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haggler.llm.providers import open_backend

    # A key meant for a proxy named by OPENAI_API_BASE must go to the proxy, not to OpenAI.
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_BASE", fake_llm_server.openai_base)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-acme")
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", "vllm-secret-key")
    fake_llm_server.script(Text("proxied"), Text("served"))

    proxied = await open_backend("openai/gpt-4o", retry_policy=FAST).complete(CHAT)
    vllm = open_backend("hosted_vllm/qwen", api_base=fake_llm_server.openai_base)
    served = await vllm.complete(CHAT)

    assert (proxied.text, served.text) == ("proxied", "served")
    first, second = fake_llm_server.requests
    assert sent_key(first) == KEY and first.headers.get("openai-organization") == "org-acme"
    assert sent_key(second) == "vllm-secret-key"


@pytest.mark.parametrize(
    ("name", "direct"),
    [
        ("gpt-4o", True),
        ("gpt-4o-2024-08-06", True),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", True),
        ("omni-moderation-latest", True),
        ("o1-mini", False),
        ("o3-pro", False),
        ("ft:o4-mini-2025-04-16:acme::x", False),
        ("gpt-5", False),
        ("ft:gpt-5-mini-2025-08-07:acme::x", False),
        ("azure-gpt-5-deploy", False),
        ("gpt-6", False),
    ],
)
def test_models_whose_parameters_litellm_rewrites_stay_on_litellm(name: str, direct: bool) -> None:
    from haggler.llm.providers import _openai_compatible, split_model_name

    assert _openai_compatible(split_model_name(f"openai/{name}")) is direct


def test_fine_tunes_and_snapshots_are_priced_as_litellm_prices_them() -> None:
    from haggler.llm.pricing import list_price

    tuned = list_price("openai/ft:gpt-4o-mini-2024-07-18:acme::abc123")
    assert tuned is not None and tuned == list_price("openai/ft:gpt-4o-mini-2024-07-18")
    # A reply that names a dated snapshot is priced at the snapshot's price.
    backend = open_direct("openai/gpt-4o")
    snapshot = list_price("openai/gpt-4o-2024-05-13")
    assert snapshot is not None and backend._price_of("gpt-4o-2024-05-13") == snapshot  # noqa: SLF001
    assert backend._price_of("not-a-listed-model") == list_price("openai/gpt-4o")  # noqa: SLF001


def open_direct(model: str):  # type: ignore[no-untyped-def]
    from haggler.llm.openai_backend import OpenAICompatibleBackend

    return OpenAICompatibleBackend(model, api_key=KEY)
