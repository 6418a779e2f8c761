"""A loaded causal LM opened up: its decoder layers, final norm and LM head, and what can be read
from them or written into them. Synchronous torch code, run by `haggler.llm.whitebox` on the
local backend's worker thread (the thread that owns the weights).

A decoder layer's forward returns a tensor in transformers 5 and a tuple whose first item is the
hidden states in transformers 4; every hook here reads and writes both shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from haggler.errors import ConfigError
from haggler.llm.base import Message
from haggler.llm.local_backend import encode_prompt, render_prompt

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["Insides", "layer_output", "with_layer_output"]

# Where decoder-only families keep their blocks and their final norm, under the base model
# (model.model for Llama, Qwen, Mistral, Gemma, Phi-3; model.transformer for GPT-2 and Falcon;
# model.gpt_neox for Pythia; model.model.decoder for OPT).
_LAYER_NAMES = ("layers", "h", "blocks")
_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


def layer_output(output: Any) -> torch.Tensor:
    """The hidden states a decoder layer returned (a tensor, or the first item of a tuple)."""
    return output if not isinstance(output, tuple) else output[0]


def with_layer_output(output: Any, hidden: torch.Tensor) -> Any:
    """`output` with its hidden states replaced by `hidden`, in the shape the layer returned."""
    return hidden if not isinstance(output, tuple) else (hidden, *output[1:])


@dataclass
class Insides:
    """`model`'s decoder layers, final norm and LM head, with `tokenizer` to read them."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    layers: Sequence[torch.nn.Module]
    norm: torch.nn.Module
    head: torch.nn.Module

    @classmethod
    def open(cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> Insides:
        base = getattr(model, getattr(model, "base_model_prefix", "model"), None) or model
        if not any(hasattr(base, n) for n in _LAYER_NAMES) and hasattr(base, "decoder"):
            base = base.decoder  # OPT keeps its blocks one level down
        layers = next((getattr(base, n) for n in _LAYER_NAMES if hasattr(base, n)), None)
        norm = next((getattr(base, n) for n in _NORM_NAMES if hasattr(base, n)), None)
        head = model.get_output_embeddings()
        if layers is None or norm is None or head is None:
            raise ConfigError(
                f"white-box access needs a decoder-only causal LM with its blocks, final norm and "
                f"LM head where transformers keeps them (model.layers, model.norm, lm_head); "
                f"{type(model).__name__} has another layout"
            )
        return cls(model, tokenizer, list(layers), norm, head)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def eos_ids(self) -> set[int]:
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids = {configured} if isinstance(configured, int) else set(configured or ())
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    # --- text to tokens ---

    def encode(self, messages: Sequence[Message], prefix: str = "") -> list[int]:
        """The tokens the model reads for `messages` (as the local backend renders them), with
        the assistant's answer begun by `prefix`."""
        ids = encode_prompt(self.tokenizer, messages)
        return ids + self.answer_tokens(messages, prefix) if prefix else ids

    def continuation(self, messages: Sequence[Message], text: str) -> list[int]:
        """The tokens `text` becomes when it follows the prompt of `messages` (BPE can merge
        across the boundary; if it does, `text` is taken on its own)."""
        prompt = render_prompt(self.tokenizer, messages)
        chat = bool(getattr(self.tokenizer, "chat_template", None))
        alone: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        before = encode_prompt(self.tokenizer, messages)
        joined: list[int] = self.tokenizer(prompt + text, add_special_tokens=not chat)["input_ids"]
        if joined[: len(before)] == before and len(joined) > len(before):
            return joined[len(before) :]
        return alone

    def answer_tokens(self, messages: Sequence[Message], answer: str) -> list[int]:
        """The tokens of `answer` as the model would write it right after the prompt: straight
        after a chat template's assistant header, after a space behind the plain template's
        "Assistant:"."""
        chat = bool(getattr(self.tokenizer, "chat_template", None))
        prompt = render_prompt(self.tokenizer, messages)
        spaced = answer if chat or prompt[-1:].isspace() or answer[:1].isspace() else f" {answer}"
        return self.continuation(messages, spaced)

    def decode(self, ids: Sequence[int]) -> str:
        ends = self.eos_ids
        cut = next((i for i, t in enumerate(ids) if t in ends), len(ids))
        return str(self.tokenizer.decode(list(ids[:cut]), skip_special_tokens=True))

    # --- guards attached to the model (haggler.llm.activation_guard) ---

    @property
    def guards(self) -> list[Any]:
        """The activation guards attached to this model, kept on the model itself so that
        every reader of it sees the same ones."""
        hooked: list[Any] | None = getattr(self.model, "_haggler_guards", None)
        if hooked is None:
            hooked = []
            self.model._haggler_guards = hooked  # type: ignore[assignment]
        return hooked

    @contextmanager
    def guards_off(self) -> Iterator[None]:
        """Every attached guard switched off for the block (to read what they gate on)."""
        on = [g for g in self.guards if g.enabled]
        for guard in on:
            guard.enabled = False
        try:
            yield
        finally:
            for guard in on:
                guard.enabled = True

    @contextmanager
    def prompt_of(self, length: int) -> Iterator[None]:
        """Tell the attached guards that the forward passes of the block read a prompt of
        `length` tokens followed by an answer: they decide on the prompt, as they would have
        before generating that answer."""
        for guard in self.guards:
            guard.prompt_length = length
        try:
            yield
        finally:
            for guard in self.guards:
                guard.prompt_length = None

    # --- reading ---

    @contextmanager
    def captured(self, *, last_only: bool) -> Iterator[list[torch.Tensor]]:
        """Record every decoder layer's output during the forward passes inside the block: one
        tensor per layer, [batch, positions, hidden] (or [batch, hidden] when `last_only`).
        Hooks added later run later, so what is recorded is what the next layer reads, after
        any guard on the layer (`haggler.llm.activation_guard`)."""
        seen: list[torch.Tensor] = []

        def record(_module: Any, _args: Any, output: Any) -> None:
            hidden = layer_output(output)
            seen.append(hidden[:, -1].detach() if last_only else hidden.detach())

        handles = [layer.register_forward_hook(record) for layer in self.layers]
        try:
            yield seen
        finally:
            for handle in handles:
                handle.remove()

    def forward(self, rows: Sequence[Sequence[int]]) -> Any:
        """One forward pass over equal-length rows, no cache."""
        import torch

        ids = torch.tensor([list(r) for r in rows], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            return self.model(input_ids=ids, use_cache=False)

    def hidden_states(self, ids: Sequence[int], *, last_only: bool) -> list[torch.Tensor]:
        """Per layer (1..L) the output of that decoder layer for `ids`, on the CPU in float32:
        [hidden] at the last position when `last_only`, else [positions, hidden]."""
        with self.captured(last_only=last_only) as seen:
            self.forward([ids])
        return [h[0].float().cpu() for h in seen]

    def lens_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The logit lens: hidden states through the final norm and the LM head, in float32."""
        import torch

        with torch.inference_mode():
            return self.head(
                self.norm(hidden.to(self.device, next(self.head.parameters()).dtype))
            ).float()

    def lens_at(self, ids: Sequence[int], positions: Sequence[int]) -> list[torch.Tensor]:
        """Per layer (1..L) the lens logits at `positions` of `ids`: [len(positions), vocab]."""
        with self.captured(last_only=False) as seen:
            self.forward([ids])
        return [self.lens_logits(h[0, list(positions)]).cpu() for h in seen]

    def lens_decode(self, ids: Sequence[int], layers: Sequence[int], max_tokens: int) -> list[str]:
        """For each layer in `layers` (1-based), the text decoded greedily from that layer's
        lens: each step appends the layer's top token and runs the model again. All layers
        step together as one batch (their rows always have the same length)."""
        rows = [list(ids) for _ in layers]
        produced: list[list[int]] = [[] for _ in layers]
        done = [False] * len(layers)
        ends = self.eos_ids
        for _ in range(max_tokens):
            with self.captured(last_only=True) as seen, self.prompt_of(len(ids)):
                self.forward(rows)
            for row, layer in enumerate(layers):
                token = int(self.lens_logits(seen[layer - 1][row]).argmax())
                rows[row].append(token)
                if not done[row]:
                    produced[row].append(token)
                    done[row] = token in ends
            if all(done):
                break
        return [self.decode(p) for p in produced]

    def token_logprobs(self, ids: Sequence[int], start: int) -> list[float]:
        """The model's log-probability of each token of `ids` from index `start` on, given the
        tokens before it."""
        import torch

        start = max(start, 1)
        logits = self.forward([ids]).logits[0].float()
        logprobs = torch.log_softmax(logits[start - 1 : len(ids) - 1], dim=-1)
        targets = torch.tensor(list(ids[start:]), device=logprobs.device)
        return [float(x) for x in logprobs.gather(1, targets[:, None])[:, 0].cpu()]

    # --- writing ---

    @contextmanager
    def added_at_prompt_end(self, layer: int, vector: torch.Tensor) -> Iterator[None]:
        """Add `vector` to decoder layer `layer`'s (1-based) output at the last position of the
        prompt only: the position that produces the first generated token. Forward passes of
        one position (later tokens, read from the cache) are left alone."""

        def add(_module: Any, _args: Any, output: Any) -> Any:
            hidden = layer_output(output)
            if hidden.shape[1] < 2:
                return None
            hidden = hidden.clone()
            hidden[:, -1] += vector.to(hidden.device, hidden.dtype)
            return with_layer_output(output, hidden)

        handle = self.layers[layer - 1].register_forward_hook(add)
        try:
            yield
        finally:
            handle.remove()

    def sample(
        self,
        ids: Sequence[int],
        *,
        samples: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        edit: Callable[[], Any] | None = None,
    ) -> list[str]:
        """`samples` answers to `ids` sampled as one batch under a forked, seeded generator (the
        process's random state is left alone); greedy when `temperature` is 0. `edit` gives a
        context manager to run the generation inside (a steering hook)."""
        import contextlib

        import torch

        device = self.device
        batch = torch.tensor([list(ids)] * samples, dtype=torch.long, device=device)
        options: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "do_sample": temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else next(iter(self.eos_ids), 0),
            "eos_token_id": sorted(self.eos_ids) or None,
        }
        if temperature > 0:
            # Other sampling settings follow the checkpoint's generation_config, as in games.
            options["temperature"] = temperature
        fork = [] if device.type == "cpu" else [device.index or 0]
        with (
            torch.random.fork_rng(
                devices=fork, device_type=None if device.type == "cpu" else device.type
            ),
            torch.inference_mode(),
            edit() if edit is not None else contextlib.nullcontext(),
        ):
            torch.manual_seed(seed)
            output = self.model.generate(  # type: ignore[operator]
                input_ids=batch, attention_mask=torch.ones_like(batch), **options
            )
        return [self.decode(row) for row in output[:, len(ids) :].tolist()]
