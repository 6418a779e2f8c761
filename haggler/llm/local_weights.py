"""The weights of local models: loaded once per process for each (path, device, dtype), shared by
every backend that names them, and let go when nobody has used them for a while.

Games played one after another (self-play rounds and lineages, `haggler.play` called again and
again from a script, the matches a tournament worker plays) each open and close their own
backends; the weights outlive them:

- held while any `LocalBackend` holds them (from its first call until it is closed);
- then idle, still loaded, for `keep_alive_s` seconds (the setting of the backend that let go
  last; 300 by default, as Ollama keeps a model), so the next game picks them up at once;
- then released: dropped, garbage-collected, and the GPU's cached blocks handed back.

Idle weights give way sooner when memory runs short: before a model loads on a device whose free
memory (the GPU's; the machine's for cpu and mps) would not hold its weights, idle weights on
that device are released, least recently used first. A model in use is never released.
`release_idle_models()` releases every idle model now; at exit everything is dropped.
`local_models()` shows what this process holds and how many times it loaded each.

All the model and tokenizer work of one set of weights happens on its own worker thread: loading,
generating and releasing never race, and the (not thread-safe) fast tokenizer and the torch
random state are only ever touched from there.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from haggler.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_KEEP_ALIVE_S",
    "DTYPES",
    "LocalModelState",
    "Loaded",
    "Weights",
    "WeightsKey",
    "acquire",
    "free_bytes",
    "local_models",
    "release",
    "release_idle_models",
    "state_of",
    "weights_key",
]

T = TypeVar("T")

DEFAULT_KEEP_ALIVE_S = 300.0
# Names a dtype may be given by, and the torch dtype each means ("auto": the checkpoint's own).
DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "auto": "auto",
}
_BYTES_PER_VALUE = {"float32": 4, "float16": 2, "bfloat16": 2}
# Memory a model needs beyond its weights (activations, the KV cache of a batch), as a share.
_HEADROOM = 1.2

# transformers' loading is not thread-safe (several from_pretrained at once can leave meta
# tensors behind); one load at a time also keeps the memory check before it honest.
_LOAD_LOCK = threading.Lock()
# Guards the registry, holder counts and idle timers; never held while loading or generating.
_LOCK = threading.Lock()
_REGISTRY: dict[WeightsKey, Weights] = {}
# Loads per key over the life of the process, kept after the weights themselves are released.
_LOADS: Counter[WeightsKey] = Counter()
_EXIT_HOOKED = False


@dataclass(frozen=True, slots=True)
class WeightsKey:
    """Which weights: a model directory, the torch device they live on, their dtype."""

    path: str  # absolute, symlinks resolved
    device: str  # resolved: "cpu", "cuda:0", "mps"
    dtype: str  # "float32", "bfloat16", "float16", or "auto" (the checkpoint's own)


@dataclass(frozen=True, slots=True)
class LocalModelState:
    """What this process holds of one local model, at the moment it was asked."""

    path: str
    device: str
    dtype: str
    loaded: bool  # the weights are in memory now
    holders: int  # backends holding them (0: idle, or released)
    loads: int  # times this process has loaded them
    idle_s: float | None  # seconds since the last holder let go; None while held or released


@dataclass(slots=True)
class Loaded:
    """Weights in memory, with what generating from them needs to know."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    pad_id: int
    eos_ids: list[int]
    chat: bool  # the tokenizer has a chat template
    max_positions: int | None = None


class Weights:
    """One model's weights in this process, and the one thread that works on them."""

    def __init__(self, key: WeightsKey) -> None:
        self.key = key
        self.loaded: Loaded | None = None
        self.holders = 0
        self.idle_since: float | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haggler-local")
        self._timer: threading.Timer | None = None
        self._idle_token = 0

    def __repr__(self) -> str:
        return f"Weights({self.key.path!r}, {self.key.device}, {self.key.dtype})"

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run `work(*args)` on these weights' worker thread."""
        return self._executor.submit(work, *args)

    def ensure_loaded(self, model: str) -> Loaded:
        """The weights, loaded first if they are not in memory. Worker thread only; `model`
        names them in errors."""
        loaded = self.loaded
        if loaded is not None:
            return loaded
        with _LOAD_LOCK:
            if self.loaded is None:
                _make_room(self.key)
                self.loaded = _load(self.key, model)
                with _LOCK:
                    _LOADS[self.key] += 1
            return self.loaded


def weights_key(path: str | Path, device: str, dtype: str | None, model: str) -> WeightsKey:
    """The key of `path`'s weights as they would load: device "auto" becomes the device torch
    finds (cuda, else mps, else cpu), dtype None the one that device runs best (bfloat16 on GPUs
    that have it, float16 on other GPUs, float32 elsewhere). Imports torch; `model` names the
    model in errors."""
    resolved = _pick_device(device, model)
    return WeightsKey(
        path=str(Path(path).expanduser().resolve()),
        device=str(resolved),
        dtype=_pick_dtype(dtype, resolved),
    )


def acquire(key: WeightsKey) -> Weights:
    """Hold `key`'s weights (loading is the holder's first call's business); `release` them."""
    global _EXIT_HOOKED
    with _LOCK:
        weights = _REGISTRY.get(key)
        if weights is None:
            weights = _REGISTRY[key] = Weights(key)
            if not _EXIT_HOOKED:
                atexit.register(_drop_all)
                _EXIT_HOOKED = True
        weights.holders += 1
        weights.idle_since = None
        weights._idle_token += 1
        if weights._timer is not None:
            weights._timer.cancel()
            weights._timer = None
    return weights


def release(weights: Weights, keep_alive_s: float) -> None:
    """Let go of `weights`; the last holder to let go leaves them loaded for `keep_alive_s`."""
    with _LOCK:
        weights.holders = max(0, weights.holders - 1)
        if weights.holders:
            return
        weights.idle_since = time.monotonic()
        if keep_alive_s <= 0 or weights.loaded is None:
            _free(weights)
            return
        weights._idle_token += 1
        timer = threading.Timer(keep_alive_s, _expire, args=(weights, weights._idle_token))
        # A waiting timer must not keep the process alive at exit.
        timer.daemon = True
        timer.name = "haggler-local-keep-alive"
        weights._timer = timer
        timer.start()


def local_models() -> list[LocalModelState]:
    """Every local model this process has held, loaded now or not, with its load count."""
    now = time.monotonic()
    with _LOCK:
        keys = list(dict.fromkeys([*_LOADS, *_REGISTRY]))
        return [_state(key, now) for key in keys]


def state_of(key: WeightsKey) -> LocalModelState:
    """What this process holds of `key`'s weights."""
    with _LOCK:
        return _state(key, time.monotonic())


def release_idle_models() -> int:
    """Release every loaded model no backend holds, now; returns how many were released."""
    with _LOCK:
        idle = [w for w in _REGISTRY.values() if w.holders == 0 and w.loaded is not None]
        for weights in idle:
            _free(weights)
    return len(idle)


def free_bytes(device: str) -> int | None:
    """Bytes free for new weights on `device`: the GPU's free memory (and what torch's cache
    holds unused), or the machine's available memory for cpu and mps; None if it cannot tell."""
    if device.startswith("cuda"):
        import torch

        where = torch.device(device)
        free, _total = torch.cuda.mem_get_info(where)
        unused = torch.cuda.memory_reserved(where) - torch.cuda.memory_allocated(where)
        return int(free + unused)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


# --- inside the lock ----------------------------------------------------------------------------


def _state(key: WeightsKey, now: float) -> LocalModelState:
    weights = _REGISTRY.get(key)
    idle_since = weights.idle_since if weights is not None else None
    return LocalModelState(
        path=key.path,
        device=key.device,
        dtype=key.dtype,
        loaded=weights is not None and weights.loaded is not None,
        holders=weights.holders if weights is not None else 0,
        loads=_LOADS[key],
        idle_s=None if idle_since is None else now - idle_since,
    )


def _expire(weights: Weights, token: int) -> None:
    with _LOCK:
        # Held again, or idle again since this timer started: not this timer's to release.
        if weights.holders == 0 and weights._idle_token == token:
            _free(weights)


def _free(weights: Weights) -> None:
    """Drop `weights` from the registry and memory (with _LOCK held)."""
    if _REGISTRY.get(weights.key) is weights:
        del _REGISTRY[weights.key]
    if weights._timer is not None:
        weights._timer.cancel()
        weights._timer = None
    weights.idle_since = None
    loaded, weights.loaded = weights.loaded, None
    on_gpu = loaded is not None and loaded.device.type == "cuda"
    del loaded
    # After any batch still running there (it holds its own reference to the weights): collect
    # what they leave, hand the GPU's cached blocks back, and let the thread end.
    with contextlib.suppress(RuntimeError):  # RuntimeError: the interpreter is shutting down
        weights.submit(_collect, on_gpu)
    weights._executor.shutdown(wait=False)


def _drop_all() -> None:
    # At exit: drop every model before the interpreter (and CUDA) tears down around them.
    with _LOCK:
        for weights in list(_REGISTRY.values()):
            if weights._timer is not None:
                weights._timer.cancel()
            weights.loaded = None
        _REGISTRY.clear()


# --- on a worker thread -------------------------------------------------------------------------


def _collect(on_gpu: bool) -> None:
    gc.collect()
    if on_gpu:
        import torch

        torch.cuda.empty_cache()


def _make_room(key: WeightsKey) -> None:
    """Release idle weights on `key`'s device, least recently used first, while its free memory
    would not hold `key`'s weights."""
    need = _bytes_needed(key)
    if need is None:
        return
    while True:
        free = free_bytes(key.device)
        if free is None or free >= need:
            return
        with _LOCK:
            idle = [
                w
                for w in _REGISTRY.values()
                if w.holders == 0 and w.loaded is not None and w.key.device == key.device
            ]
            if not idle:
                return
            _free(min(idle, key=lambda w: w.idle_since or 0.0))
        _collect(key.device.startswith("cuda"))


def _bytes_needed(key: WeightsKey) -> int | None:
    """About how much memory `key`'s weights take loaded: the size of their files, scaled from
    the checkpoint's dtype to the one asked for, plus headroom."""
    folder = Path(key.path)
    files: list[Path] = []
    # transformers reads safetensors when there are any, else the pickled formats.
    for pattern in ("*.safetensors", "*.bin", "*.pt", "*.pth"):
        files = [f for f in folder.glob(pattern) if f.name != "training_args.bin"]
        if files:
            break
    try:
        size = sum(f.stat().st_size for f in files)
    except OSError:
        return None
    if not size:
        return None
    stored = _checkpoint_dtype(folder)
    if key.dtype in _BYTES_PER_VALUE and stored in _BYTES_PER_VALUE:
        size = size * _BYTES_PER_VALUE[key.dtype] // _BYTES_PER_VALUE[stored]
    return int(size * _HEADROOM)


def _checkpoint_dtype(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    stored = config.get("torch_dtype") or config.get("dtype")
    return DTYPES.get(stored) if isinstance(stored, str) else None


def _load(key: WeightsKey, model: str) -> Loaded:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype: torch.dtype | str = key.dtype if key.dtype == "auto" else getattr(torch, key.dtype)
    device = torch.device(key.device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(key.path, local_files_only=True)
        loaded = AutoModelForCausalLM.from_pretrained(key.path, dtype=dtype, local_files_only=True)
        loaded.to(device)  # type: ignore[arg-type]  # transformers' stubs miss devices
    except Exception as error:
        raise ConfigError(
            f"{model}: cannot load the model ({_one_line(error)}); the directory must hold a "
            f"causal LM and its tokenizer, saved with save_pretrained()"
        ) from None
    loaded.eval()
    eos_ids = _eos_ids(loaded, tokenizer)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eos_ids[0] if eos_ids else 0
    return Loaded(
        model=loaded,
        tokenizer=tokenizer,
        device=device,
        pad_id=pad_id,
        eos_ids=eos_ids,
        chat=bool(getattr(tokenizer, "chat_template", None)),
        max_positions=getattr(loaded.config, "max_position_embeddings", None),
    )


def _pick_device(device: str, model: str) -> torch.device:
    import torch

    if device != "auto":
        try:
            picked = torch.device(device)
        except RuntimeError:
            raise ConfigError(
                f"{model}: unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps"
            ) from None
        if picked.type == "cuda":
            if not torch.cuda.is_available():
                raise ConfigError(
                    f"{model}: device {device!r} asked for but torch sees no CUDA GPU; "
                    f"use device auto or cpu, or install a CUDA build of torch"
                )
            count = torch.cuda.device_count()
            index = torch.cuda.current_device() if picked.index is None else picked.index
            if index >= count:
                raise ConfigError(
                    f"{model}: device {device!r} asked for but torch sees {count} CUDA GPU(s); "
                    f"use cuda:0 to cuda:{count - 1}"
                )
            # "cuda" and "cuda:0" are the same weights: one key, one copy.
            return torch.device("cuda", index)
        if picked.type == "mps" and not torch.backends.mps.is_available():
            raise ConfigError(
                f"{model}: device 'mps' asked for but torch sees no Apple GPU; use auto or cpu"
            )
        return picked
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _pick_dtype(dtype: str | None, device: torch.device) -> str:
    import torch

    if dtype is not None:
        return DTYPES[dtype]
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    # float32 on mps and cpu: half precision there is slower (cpu) or fragile (mps); pass dtype
    # to trade precision for memory.
    return "float32"


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    # Chat checkpoints often end a turn with a token other than the tokenizer's eos (Llama 3's
    # <|eot_id|>); their generation_config lists all of them.
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is None:
        ids: list[int] = []
    elif isinstance(configured, int):
        ids = [configured]
    else:
        ids = list(configured)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _one_line(error: BaseException, limit: int = 200) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
