"""A transformers model on this machine (`local:/path/to/model`), CPU or GPU, micro-batched.

The path is checked when the backend is made, so a typo fails before the first game; the weights
are held from the first call, not at construction, so opening a spec stays cheap. They belong to
the process, not to the backend (haggler.llm.local_weights): loaded once for each (path, device,
dtype), shared by every backend that names them, and kept for `keep_alive_s` after the last one
is closed, so games played one after another do not reload them.

Concurrent games share one backend per setting (`LocalBackend.shared`): calls that arrive within
`batch_window_s` of each other with the same generation settings are generated together as one
left-padded batch (up to `max_batch`); `batch_sizes` counts the prompts of every forward pass.
Greedy text does not depend on the batch a call lands in (exactly so in float32; in half
precision batched GPU kernels can round differently); seeded sampling runs alone, so that a seed
reproduces its text whatever else is running. All model and tokenizer work happens on the
weights' one worker thread: the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from haggler.errors import ConfigError, ModelRequestError
from haggler.llm.base import Backend, Completion, Message, Usage
from haggler.llm.local_weights import (
    DEFAULT_KEEP_ALIVE_S,
    DTYPES,
    Loaded,
    LocalModelState,
    Weights,
    WeightsKey,
    acquire,
    release,
    state_of,
    weights_key,
)
from haggler.llm.retry import RetryPolicy

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["LocalBackend", "LocalSettings", "encode_prompt", "render_prompt"]

T = TypeVar("T")

DEFAULT_MAX_TOKENS = 256
_PARAMS = ("temperature", "max_tokens", "seed", "stop", "top_p")

# `shared` hands every game of a run that asks for the same settings the same backend, so that
# their calls batch together.
_POOL_LOCK = threading.Lock()
_POOL: dict[tuple[object, ...], LocalBackend] = {}

# The plain template for models without a chat template (base models). Each turn is
# "<Role>: <content>" separated by a blank line, and the prompt ends with "Assistant:" so the
# model writes the next assistant turn, e.g.
#
#     System: You sell a balloon.
#
#     User: How much?
#
#     Assistant:
#
# A base model does not know where its turn ends, so the turn headers double as stop strings.
_PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}
_PLAIN_STOPS = ("\nUser:", "\nSystem:", "\nAssistant:")


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> str:
    """The text the model sees: its own chat template when it has one, else the plain template."""
    if getattr(tokenizer, "chat_template", None):
        conversation = [message.as_dict() for message in messages]
        try:
            rendered = tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=True
            )
        except Exception:
            # Some templates (Gemma's, Mistral's older ones) reject a system turn; fold it into
            # the first user turn, which is what those models were trained to expect.
            merged = _merge_system(conversation)
            if merged is conversation:
                raise
            rendered = tokenizer.apply_chat_template(
                merged, tokenize=False, add_generation_prompt=True
            )
        return str(rendered)
    turns = [f"{_PLAIN_ROLES[message.role]}: {message.content}" for message in messages]
    return "\n\n".join([*turns, "Assistant:"])


def encode_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> list[int]:
    """The prompt's tokens: a chat template writes its own bos token; the plain template relies
    on the tokenizer adding it, as base models were trained with it."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    ids: list[int] = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=not chat)[
        "input_ids"
    ]
    return ids


def _merge_system(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    system = [m["content"] for m in conversation if m["role"] == "system"]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    if not system:
        return conversation
    preamble = "\n\n".join(system)
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{preamble}\n\n{rest[0]['content']}"
    else:
        rest.insert(0, {"role": "user", "content": preamble})
    return rest


@dataclass(frozen=True, slots=True)
class _Sampling:
    """Generation settings of one call; calls with equal settings may share a batch."""

    max_new_tokens: int
    temperature: float
    top_p: float | None
    stop: tuple[str, ...]
    seed: int | None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    @property
    def solo(self) -> bool:
        # A seeded sample must not depend on which other prompts share its batch.
        return not self.greedy and self.seed is not None

    @classmethod
    def from_params(cls, params: dict[str, Any], *, model: str) -> _Sampling:
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ModelRequestError(
                f"{model}: unsupported generation parameter(s) {', '.join(unknown)}; "
                f"the local backend takes {', '.join(_PARAMS)}",
                model=model,
            )
        temperature = float(params.get("temperature") or 0.0)
        max_tokens = params.get("max_tokens")
        max_new_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens)
        if max_new_tokens < 1:
            raise ModelRequestError(
                f"{model}: max_tokens must be at least 1, got {max_tokens}", model=model
            )
        stop = params.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)
        seed = params.get("seed")
        top_p = params.get("top_p")
        return cls(
            max_new_tokens=max_new_tokens,
            temperature=max(temperature, 0.0),
            # Irrelevant to greedy decoding: dropping them lets such calls share batches.
            top_p=None if temperature <= 0 or top_p is None else float(top_p),
            stop=stop,
            seed=None if temperature <= 0 or seed is None else int(seed),
        )


@dataclass(slots=True)
class _Request:
    messages: list[Message]
    sampling: _Sampling
    future: asyncio.Future[Completion]


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """How a local model runs: on which device, in which dtype, how its calls are batched, and
    how long its weights stay loaded once no backend holds them (see LocalBackend)."""

    device: str = "auto"
    dtype: str | None = None
    max_batch: int = 8
    batch_window_s: float = 0.005
    keep_alive_s: float = DEFAULT_KEEP_ALIVE_S


class LocalBackend(Backend):
    """A causal LM saved with `save_pretrained()`, generating on this machine.

    `device`: "auto" (cuda, else mps, else cpu), or cpu, cuda, cuda:N, mps. `dtype`: None picks
    bfloat16 on GPUs that support it, float16 on other GPUs and float32 elsewhere; or name one
    ("float32", "bfloat16", "float16", "auto" = the checkpoint's). `max_batch`: the most prompts
    in one forward pass; `batch_window_s`: how long a call waits for others to share its batch.
    `keep_alive_s`: how long the weights stay loaded after the last backend holding them is
    closed (0: released at once). Sampling settings other than `temperature` and `top_p` (top_k,
    repetition penalty) follow the checkpoint's generation_config. Every call costs $0.
    """

    def __init__(
        self,
        path: str,
        *,
        device: str = "auto",
        dtype: str | None = None,
        max_batch: int = 8,
        batch_window_s: float = 0.005,
        keep_alive_s: float = DEFAULT_KEEP_ALIVE_S,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__("local:" + path, retry_policy=retry_policy)
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ConfigError(
                f"local model path {path!r} does not exist; point local:PATH at a directory "
                f"written by save_pretrained() (config.json, weights, tokenizer files)"
            )
        if not (self.path / "config.json").is_file():
            raise ConfigError(
                f"local model path {path!r} holds no model (no config.json); point local:PATH at "
                f"a directory written by save_pretrained(), e.g. a downloaded model snapshot"
            )
        if dtype is not None and dtype not in DTYPES:
            raise ConfigError(
                f"{self.model}: unknown dtype {dtype!r}; use one of {', '.join(sorted(DTYPES))}"
            )
        if max_batch < 1:
            raise ConfigError(f"{self.model}: max_batch must be at least 1, got {max_batch}")
        if batch_window_s < 0:
            raise ConfigError(
                f"{self.model}: batch_window_s must be 0 or more, got {batch_window_s}"
            )
        if keep_alive_s < 0:
            raise ConfigError(f"{self.model}: keep_alive_s must be 0 or more, got {keep_alive_s}")
        self.device = device
        self.dtype = dtype
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.keep_alive_s = keep_alive_s
        # Every forward pass (model.generate call) so far, and how many prompts each held: how
        # tests and users see batching work.
        self.batches_run = 0
        self.batch_sizes: Counter[int] = Counter()
        self._key: WeightsKey | None = None
        self._weights: Weights | None = None
        self._hold_lock = threading.Lock()
        self._queue: list[_Request] = []
        self._server: asyncio.Task[None] | None = None
        # Holders of a pooled backend (see `shared`); the last one to close it lets it go.
        self._holders = 0
        self._pool_key: tuple[object, ...] | None = None

    @classmethod
    def shared(cls, path: str, settings: LocalSettings | None = None) -> LocalBackend:
        """The process's one backend for this model and these settings, so that concurrent games
        batch together; close it once per `shared`."""
        settings = settings or LocalSettings()
        key = (
            str(Path(path).expanduser().resolve()),
            settings.device,
            settings.dtype,
            settings.max_batch,
            settings.batch_window_s,
            settings.keep_alive_s,
        )
        with _POOL_LOCK:
            backend = _POOL.get(key)
            if backend is None:
                backend = cls(
                    path,
                    device=settings.device,
                    dtype=settings.dtype,
                    max_batch=settings.max_batch,
                    batch_window_s=settings.batch_window_s,
                    keep_alive_s=settings.keep_alive_s,
                )
                backend._pool_key = key
                _POOL[key] = backend
            backend._holders += 1
        return backend

    @property
    def weights_state(self) -> LocalModelState | None:
        """What the process holds of this model's weights (loaded, holders, loads so far); None
        before the first call has found out which device and dtype they load on."""
        return None if self._key is None else state_of(self._key)

    @property
    def loaded(self) -> bool:
        """Whether this model's weights are in memory (they load on the first call)."""
        state = self.weights_state
        return state is not None and state.loaded

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        sampling = _Sampling.from_params(params, model=self.model)
        loop = asyncio.get_running_loop()
        weights = await self._hold()
        if weights.loaded is None:
            await asyncio.wrap_future(weights.submit(weights.ensure_loaded, self.model))
        request = _Request(list(messages), sampling, loop.create_future())
        self._queue.append(request)
        server = self._server
        if server is None or server.done() or server.get_loop() is not loop:
            self._server = loop.create_task(self._serve())
        return await request.future

    async def on_model(self, work: Callable[[PreTrainedModel, PreTrainedTokenizerBase], T]) -> T:
        """`work(model, tokenizer)` run on the worker thread that owns the weights (loading them
        first if needed), between batches: white-box access (`haggler.llm.whitebox`) to the
        very copy that games generate with."""
        weights = await self._hold()

        def on_loaded() -> T:
            loaded = weights.ensure_loaded(self.model)
            return work(loaded.model, loaded.tokenizer)

        return await asyncio.wrap_future(weights.submit(on_loaded))

    async def _hold(self) -> Weights:
        """The weights, held by this backend from its first call until it is closed."""
        if self._weights is None:
            if self._key is None:
                # Which device "auto" means needs torch, whose first import takes seconds.
                self._key = await asyncio.to_thread(
                    weights_key, self.path, self.device, self.dtype, self.model
                )
            with self._hold_lock:
                if self._weights is None:
                    self._weights = acquire(self._key)
        return self._weights

    async def aclose(self) -> None:
        """Let go of the weights: they stay loaded for `keep_alive_s`, for the next game, unless
        another backend still holds them. A later call holds them again.

        A pooled backend stays open until its last holder closes it.
        """
        with _POOL_LOCK:
            if self._holders > 1:
                self._holders -= 1
                return
            self._holders = 0
            if self._pool_key is not None and _POOL.get(self._pool_key) is self:
                del _POOL[self._pool_key]
        with self._hold_lock:
            weights, self._weights = self._weights, None
        if weights is not None:
            # A batch in flight finishes with its own reference to the weights.
            release(weights, self.keep_alive_s)

    async def _serve(self) -> None:
        # One server per event loop drains the queue batch by batch. While a batch generates,
        # new calls pile up and form the next batch, so a busy model batches more, not less.
        while self._queue:
            if len(self._queue) < self.max_batch:
                await asyncio.sleep(self.batch_window_s)
            batch = self._take_batch()
            if not batch:
                continue
            try:
                weights = await self._hold()
                results = await asyncio.wrap_future(weights.submit(self._run_batch, weights, batch))
            except Exception as error:  # the worker itself failed, e.g. the weights vanished
                results = [self._failure(error) for _ in batch]
            for request, result in zip(batch, results, strict=True):
                if request.future.done():  # the caller was cancelled meanwhile
                    continue
                if isinstance(result, BaseException):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)

    def _take_batch(self) -> list[_Request]:
        # Calls whose caller gave up (cancelled, or their event loop closed) are dropped: no one
        # waits for them, and a closed loop's future cannot even take a result.
        self._queue = [
            r for r in self._queue if not r.future.done() and not r.future.get_loop().is_closed()
        ]
        if not self._queue:
            return []
        first = self._queue[0]
        if first.sampling.solo:
            batch = [first]
        else:
            same = [r for r in self._queue if r.sampling == first.sampling]
            batch = same[: self.max_batch]
        taken = {id(r) for r in batch}
        self._queue = [r for r in self._queue if id(r) not in taken]
        return batch

    # --- everything below runs on the weights' worker thread ---

    def _run_batch(self, weights: Weights, batch: list[_Request]) -> list[Completion | Exception]:
        loaded = weights.ensure_loaded(self.model)
        results: list[Completion | Exception | None] = [None] * len(batch)
        prompts: list[tuple[int, list[int]]] = []
        for index, request in enumerate(batch):
            try:
                prompts.append((index, self._encode(loaded, request)))
            except ModelRequestError as error:
                results[index] = error
            except Exception as error:
                results[index] = self._failure(error, "cannot format the prompt")
        if prompts:
            sampling = batch[prompts[0][0]].sampling
            for (index, _), outcome in zip(
                prompts,
                self._generate_rows(loaded, [ids for _, ids in prompts], sampling),
                strict=True,
            ):
                results[index] = outcome
        return [r for r in results if r is not None]

    def _encode(self, loaded: Loaded, request: _Request) -> list[int]:
        ids = encode_prompt(loaded.tokenizer, request.messages)
        limit = loaded.max_positions
        if limit is not None and len(ids) + request.sampling.max_new_tokens > limit:
            raise ModelRequestError(
                f"{self.model}: the prompt has {len(ids)} tokens and max_tokens is "
                f"{request.sampling.max_new_tokens}, beyond the model's {limit}-token context; "
                f"shorten the history or lower max_tokens",
                model=self.model,
            )
        return ids

    def _generate_rows(
        self, loaded: Loaded, prompts: list[list[int]], sampling: _Sampling
    ) -> list[Completion | Exception]:
        import torch

        try:
            return self._generate_batch(loaded, prompts, sampling)
        except torch.cuda.OutOfMemoryError as error:
            if loaded.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(prompts) == 1:
                return [self._failure(error, "ran out of memory")]
            # Half the batch may fit where the whole did not; results do not change with it.
            half = len(prompts) // 2
            return self._generate_rows(loaded, prompts[:half], sampling) + self._generate_rows(
                loaded, prompts[half:], sampling
            )
        except Exception as error:
            return [self._failure(error) for _ in prompts]

    def _generate_batch(
        self, loaded: Loaded, prompts: list[list[int]], sampling: _Sampling
    ) -> list[Completion | Exception]:
        import torch

        started = time.perf_counter()
        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), loaded.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            # Left padding: every row's last prompt token sits in the last column, where the
            # first new token is generated.
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        stops = sampling.stop + (() if loaded.chat else _PLAIN_STOPS)
        options: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": not sampling.greedy,
            "pad_token_id": loaded.pad_id,
            "eos_token_id": loaded.eos_ids or None,
        }
        if not sampling.greedy:
            options["temperature"] = sampling.temperature
            if sampling.top_p is not None:
                options["top_p"] = sampling.top_p
        if stops:
            # Stops generation early; the text is still cut below, as a stop can end mid-token.
            options["stop_strings"] = list(stops)
            options["tokenizer"] = loaded.tokenizer

        device = loaded.device
        fork_devices = [] if device.type == "cpu" else [device.index or 0]
        with (
            torch.random.fork_rng(
                devices=fork_devices,
                enabled=sampling.seed is not None,
                device_type=None if device.type == "cpu" else device.type,
            ),
            torch.inference_mode(),
        ):
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            output = loaded.model.generate(  # type: ignore[operator]
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                **options,
            )
        self.batches_run += 1
        self.batch_sizes[len(prompts)] += 1
        new_tokens = output[:, width:].tolist()
        latency = time.perf_counter() - started

        ends = set(loaded.eos_ids) | {loaded.pad_id}
        completions: list[Completion | Exception] = []
        for ids, generated in zip(prompts, new_tokens, strict=True):
            # Tokens after the first eos (or the padding of a row that finished early) are
            # not the model's answer.
            length = next((i for i, t in enumerate(generated) if t in ends), len(generated))
            text = str(loaded.tokenizer.decode(generated[:length], skip_special_tokens=True))
            completions.append(
                Completion(
                    text=_cut_at_stop(text, stops).strip(),
                    model=self.model,
                    usage=Usage(prompt_tokens=len(ids), completion_tokens=length),
                    cost_usd=0.0,
                    latency_s=latency,
                )
            )
        return completions

    def _failure(self, error: BaseException, what: str = "failed to generate") -> ModelRequestError:
        hint = ""
        if "out of memory" in str(error).lower() or type(error).__name__ == "OutOfMemoryError":
            hint = "; lower the batch size (local: {batch_size: N}) or max_tokens, or pick a smaller dtype"
        return ModelRequestError(
            f"{self.model} {what}: {type(error).__name__}: {_one_line(error)}{hint}",
            model=self.model,
        )


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cuts = [text.find(stop) for stop in stops]
    found = [cut for cut in cuts if cut >= 0]
    return text[: min(found)] if found else text


def _one_line(error: BaseException, limit: int = 200) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
