"""The local transformers backend, run for real on a tiny model built in the test session."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from haggler.errors import ConfigError, ModelRequestError  # noqa: E402
from haggler.llm import Message, open_backend  # noqa: E402
from haggler.llm.local_backend import LocalBackend, LocalSettings, render_prompt  # noqa: E402

SELLER = Message("system", "You sell a red balloon. Your cost is $10.")
PROMPTS = [
    "How much?",
    "I can pay $8 at most for the balloon.",
    "Deal.",
    "You are the buyer. Your budget is $20. Would you take $12? [OFFER $12]",
]


def chat(user: str) -> list[Message]:
    return [SELLER, Message("user", user)]


def hf_model(backend: LocalBackend) -> Any:
    """The transformers model behind `backend`, to break it on purpose."""
    assert backend._weights is not None and backend._weights.loaded is not None
    return backend._weights.loaded.model


@pytest.fixture
async def backend(tiny_model_dir: Path) -> AsyncIterator[LocalBackend]:
    # A wide window: on a loaded CI machine gather() must still land in one batch.
    local = LocalBackend(str(tiny_model_dir), device="cpu", batch_window_s=0.05)
    yield local
    await local.aclose()


async def test_loads_from_disk_with_the_hub_off(backend: LocalBackend, tiny_model_dir: Path):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert not backend.loaded, "weights must load on the first call, not at construction"
    completion = await backend.complete(chat("Hello"), max_tokens=5)
    assert backend.loaded
    assert completion.model == f"local:{tiny_model_dir}"
    assert isinstance(completion.text, str)


async def test_greedy_is_deterministic_and_reports_usage(backend: LocalBackend):
    first = await backend.complete(chat(PROMPTS[1]), temperature=0, max_tokens=12)
    second = await backend.complete(chat(PROMPTS[1]), max_tokens=12)
    assert first.text == second.text
    assert first.text, "the tiny model should say something"
    assert first.usage.prompt_tokens > 0
    assert 0 < first.usage.completion_tokens <= 12
    assert first.usage == second.usage
    assert first.latency_s > 0
    assert first.cost_usd == 0.0


async def test_sampling_with_a_seed_reproduces_and_leaves_global_rng_alone(
    backend: LocalBackend,
):
    rng_before = torch.get_rng_state()
    params: dict[str, Any] = {"temperature": 1.0, "max_tokens": 20}
    first = await backend.complete(chat("Hi"), seed=7, **params)
    again = await backend.complete(chat("Hi"), seed=7, **params)
    other = await backend.complete(chat("Hi"), seed=8, **params)
    assert first.text == again.text
    assert first.text != other.text, "a different seed should sample a different reply"
    assert torch.equal(torch.get_rng_state(), rng_before), "a seed must not leak into torch"


async def test_concurrent_seeded_samples_match_solo_ones(backend: LocalBackend):
    params: dict[str, Any] = {"temperature": 1.0, "max_tokens": 15, "seed": 3}
    alone = [await backend.complete(chat(p), **params) for p in PROMPTS]
    together = await asyncio.gather(*(backend.complete(chat(p), **params) for p in PROMPTS))
    assert [c.text for c in together] == [c.text for c in alone]


async def test_stop_strings_cut_the_text_and_end_generation(backend: LocalBackend):
    full = await backend.complete(chat(PROMPTS[0]), max_tokens=30)
    # A stop taken from the middle of the greedy reply; whitespace-free so strip() is neutral.
    start = next(i for i in range(4, len(full.text) - 3) if " " not in full.text[i : i + 3])
    stop = full.text[start : start + 3]
    cut = await backend.complete(chat(PROMPTS[0]), max_tokens=30, stop=["<never>", stop])
    assert cut.text == full.text[: full.text.find(stop)].strip()
    assert cut.usage.completion_tokens < full.usage.completion_tokens


async def test_concurrent_greedy_calls_share_a_batch_and_match_sequential_ones(
    backend: LocalBackend,
):
    sequential = [await backend.complete(chat(p), max_tokens=16) for p in PROMPTS]
    assert backend.batches_run == len(PROMPTS)

    concurrent = await asyncio.gather(*(backend.complete(chat(p), max_tokens=16) for p in PROMPTS))
    assert [c.text for c in concurrent] == [c.text for c in sequential]
    assert [c.usage for c in concurrent] == [c.usage for c in sequential]
    assert backend.batches_run == len(PROMPTS) + 1, "the four concurrent calls form one batch"


async def test_calls_with_different_settings_are_not_mixed(backend: LocalBackend):
    short, long = await asyncio.gather(
        backend.complete(chat("Hi"), max_tokens=3), backend.complete(chat("Hi"), max_tokens=9)
    )
    assert short.usage.completion_tokens <= 3 < long.usage.completion_tokens
    assert backend.batches_run == 2


async def test_batch_sizes_count_the_prompts_of_every_forward_pass(tiny_model_dir: Path):
    local = LocalBackend(str(tiny_model_dir), device="cpu", max_batch=2, batch_window_s=0.05)
    try:
        await asyncio.gather(*(local.complete(chat(p), max_tokens=4) for p in [*PROMPTS, "Hi"]))
        assert dict(local.batch_sizes) == {2: 2, 1: 1}
        assert local.batches_run == 3
    finally:
        await local.aclose()


@pytest.mark.parametrize(("window", "expected"), [(0.6, {2: 1}), (0.0, {1: 2})])
async def test_a_call_waits_the_gathering_window_for_others_to_share_its_batch(
    tiny_model_dir: Path, window: float, expected: dict[int, int]
):
    local = LocalBackend(str(tiny_model_dir), device="cpu", batch_window_s=window)
    try:
        await local.complete(chat("Hi"), max_tokens=2)  # the weights are loaded before timing
        local.batch_sizes.clear()
        first = asyncio.create_task(local.complete(chat(PROMPTS[0]), max_tokens=4))
        await asyncio.sleep(0.2)  # the second call comes 0.2 s after the first
        await asyncio.gather(first, local.complete(chat(PROMPTS[1]), max_tokens=4))
        assert dict(local.batch_sizes) == expected
    finally:
        await local.aclose()


@pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="auto means a GPU here"
)
async def test_auto_and_cpu_name_one_copy_of_the_weights_on_a_machine_without_a_gpu(
    tiny_model_dir: Path, tmp_path: Path
):
    directory = Path(shutil.copytree(tiny_model_dir, tmp_path / "auto"))
    auto = open_backend(f"local:{directory}")
    cpu = open_backend(f"local:{directory}", local=LocalSettings(device="cpu", max_batch=2))
    assert isinstance(auto, LocalBackend) and isinstance(cpu, LocalBackend)
    assert (auto.device, cpu.device, cpu.max_batch) == ("auto", "cpu", 2)
    try:
        await asyncio.gather(auto.complete(chat("Hi"), max_tokens=2), cpu.complete(chat("Hi")))
        shared = cpu.weights_state
        assert shared is not None and auto.weights_state == shared
        assert (shared.device, shared.dtype, shared.loads) == ("cpu", "float32", 1)
    finally:
        await auto.aclose()
        await cpu.aclose()


def test_open_backend_passes_the_local_settings_and_device_overrides_theirs(tiny_model_dir: Path):
    settings = LocalSettings(device="cuda:1", dtype="bf16", batch_window_s=0.02, keep_alive_s=9)
    local = open_backend(f"local:{tiny_model_dir}", local=settings, device="cpu")
    assert isinstance(local, LocalBackend)
    assert (local.device, local.dtype, local.batch_window_s, local.keep_alive_s) == (
        "cpu",
        "bf16",
        0.02,
        9,
    )
    asyncio.run(local.aclose())


async def test_generation_ends_at_any_eos_of_the_checkpoint(tiny_model_dir: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The oracle: plain transformers greedy decoding of the same prompt.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompt_ids = tokenizer(render_prompt(tokenizer, chat(PROMPTS[1])), add_special_tokens=False)
    output = model.generate(
        torch.tensor([prompt_ids["input_ids"]]), max_new_tokens=12, do_sample=False
    )
    new = output[0, len(prompt_ids["input_ids"]) :].tolist()
    at = next(i for i in range(3, len(new)) if new[i] not in new[:i])

    # A chat checkpoint may end turns with an extra token (Llama 3's <|eot_id|>); declare one.
    directory = Path(shutil.copytree(tiny_model_dir, tmp_path / "two-eos"))
    config_path = directory / "generation_config.json"
    config = json.loads(config_path.read_text())
    config["eos_token_id"] = [tokenizer.eos_token_id, new[at]]
    config_path.write_text(json.dumps(config))

    local = LocalBackend(str(directory), device="cpu", batch_window_s=0.05)
    try:
        alone = await local.complete(chat(PROMPTS[1]), max_tokens=12)
        assert alone.usage.completion_tokens == at
        assert alone.text == tokenizer.decode(new[:at], skip_special_tokens=True).strip()
        # In a batch the row that ends early is padded; padding is neither text nor usage.
        together = await asyncio.gather(*(local.complete(chat(p), max_tokens=12) for p in PROMPTS))
        assert together[1].text == alone.text
        assert together[1].usage == alone.usage
    finally:
        await local.aclose()


def test_render_prompt_uses_the_chat_template(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = render_prompt(tokenizer, chat("Would you take $8?"))
    assert SELLER.content in prompt and "Would you take $8?" in prompt
    assert prompt.startswith(tokenizer.bos_token)
    assert prompt.endswith("<|assistant|>\n"), "the generation prompt must be added"


def test_render_prompt_falls_back_to_a_plain_template(tiny_base_model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model_dir)
    assert not tokenizer.chat_template
    messages = [*chat("Would you take $8?"), Message("assistant", "No, $14.")]
    prompt = render_prompt(tokenizer, messages)
    assert prompt == (
        f"System: {SELLER.content}\n\nUser: Would you take $8?\n\nAssistant: No, $14.\n\nAssistant:"
    )


def test_render_prompt_folds_system_into_user_for_templates_without_system(
    tiny_model_dir: Path,
):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]"
    )
    prompt = render_prompt(tokenizer, chat("Hi"))
    assert prompt == f"[user] {SELLER.content}\n\nHi\n[assistant]"


async def test_base_model_answers_through_the_plain_template(tiny_base_model_dir: Path):
    local = LocalBackend(str(tiny_base_model_dir), device="cpu")
    try:
        completion = await local.complete(chat("Hi"), max_tokens=8)
        assert completion.usage.prompt_tokens > 0
        assert "\nUser:" not in completion.text
    finally:
        await local.aclose()


def test_a_missing_path_is_a_config_error_naming_it(tmp_path: Path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="no-such-model") as caught:
        LocalBackend(str(missing))
    assert "\n" not in str(caught.value)

    with pytest.raises(ConfigError, match="holds no model"):
        LocalBackend(str(tmp_path))


async def test_an_unloadable_model_is_a_config_error_on_first_call(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    local = LocalBackend(str(tmp_path), device="cpu")
    with pytest.raises(ConfigError, match="cannot load the model"):
        await local.complete(chat("Hi"))
    await local.aclose()


def test_bad_settings_are_config_errors(tiny_model_dir: Path):
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        LocalBackend(str(tiny_model_dir), dtype="float8")
    with pytest.raises(ConfigError, match="max_batch must be at least 1, got 0"):
        LocalBackend(str(tiny_model_dir), max_batch=0)
    with pytest.raises(ConfigError, match="batch_window_s must be 0 or more, got -1"):
        LocalBackend(str(tiny_model_dir), batch_window_s=-1)
    with pytest.raises(ConfigError, match="keep_alive_s must be 0 or more, got -1"):
        LocalBackend(str(tiny_model_dir), keep_alive_s=-1)


async def test_an_unknown_device_is_a_config_error_on_first_call(tiny_model_dir: Path):
    local = LocalBackend(str(tiny_model_dir), device="tpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'; use auto, cpu, cuda, cuda:N"):
        await local.complete(chat("Hi"))
    await local.aclose()


async def test_bad_requests_are_model_request_errors(backend: LocalBackend):
    with pytest.raises(ModelRequestError, match="unsupported generation parameter"):
        await backend.complete(chat("Hi"), frequency_penalty=1.0)
    with pytest.raises(ModelRequestError, match="512-token context") as caught:
        await backend.complete(chat("Hi"), max_tokens=600)
    assert caught.value.model == backend.model


async def test_a_failure_inside_generation_is_one_line_naming_the_model(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
):
    await backend.complete(chat("Hi"), max_tokens=2)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA error: device-side assert triggered\nlong details")

    monkeypatch.setattr(hf_model(backend), "generate", broken)
    with pytest.raises(ModelRequestError) as caught:
        await backend.complete(chat("Hi"), max_tokens=2)
    message = str(caught.value)
    assert backend.model in message and "device-side assert" in message
    assert "\n" not in message


async def test_out_of_memory_splits_the_batch(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
):
    sequential = [await backend.complete(chat(p), max_tokens=8) for p in PROMPTS]
    model = hf_model(backend)
    real_generate = model.generate

    def small_batches_only(*args: Any, **kwargs: Any) -> Any:
        if kwargs["input_ids"].shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", small_batches_only)
    concurrent = await asyncio.gather(*(backend.complete(chat(p), max_tokens=8) for p in PROMPTS))
    assert [c.text for c in concurrent] == [c.text for c in sequential]


async def test_aclose_lets_go_of_the_weights_and_a_later_call_holds_them_again(
    tiny_model_dir: Path, tmp_path: Path
):
    directory = Path(shutil.copytree(tiny_model_dir, tmp_path / "closed"))
    local = LocalBackend(str(directory), device="cpu", keep_alive_s=0)
    before = await local.complete(chat("Hi"), max_tokens=6)
    assert local.weights_state is not None and local.weights_state.holders == 1
    await local.aclose()
    assert not local.loaded, "keep_alive_s=0: released as the last holder lets go"
    after = await local.complete(chat("Hi"), max_tokens=6)
    assert after.text == before.text
    assert local.weights_state.loads == 2
    await local.aclose()
    assert local.weights_state.holders == 0


async def test_open_backend_gives_a_working_local_backend(tiny_model_dir: Path):
    local = open_backend("local:" + str(tiny_model_dir), device="cpu")
    try:
        assert isinstance(local, LocalBackend)
        completion = await local.complete(chat("Hi"), max_tokens=4)
        assert completion.model == "local:" + str(tiny_model_dir)
    finally:
        await local.aclose()


def test_importing_the_backend_does_not_import_torch():
    code = (
        "import sys, haggler.llm.local_backend; "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
