"""White-box access to a local model (`local:/path`): what its layers hold, what they would say,
and how they can be pushed, for the adversary's white-box strategies and the activation guard.

A `WhiteBox` works on the very weights a `LocalBackend` loaded for games (one copy per process;
every read runs on the backend's worker thread, between generation batches), and is bound to an
agent's context: the system message a target agent would have is put before every prompt, so a
read-out sees what the agent sees. Methods take a conversation (user and assistant turns, or one
user question as a string).

- `hidden_states`: per decoder layer, its output (the residual stream after that layer).
- `logit_lens`: each layer's hidden state at the prompt's last position through the final norm
  and the LM head, with the rank and probability of an answer's tokens per layer.
- `lens_decode`: the text each layer would write, decoded greedily from its own lens.
- `steering_vector` / `steer`: AnonAct-style extraction; the mean difference between a question's
  activations and those of anonymised versions of it, added at one layer at the position that
  produces the first generated token, answers sampled for a vote.
- `scored_tokens` / `token_logprobs` / `min_k`: log-probabilities of texts' tokens, alone or
  as the answer after a prompt (membership).
- `calibrate_guard` / `attach_guard` / `detach_guard`: the activation guard
  (`haggler.llm.activation_guard`) on this model; attached, it also guards games' generations.

Numbers come back as Python floats or CPU float32 tensors whatever the model's device and dtype.
A read that appends an answer to a prompt (teacher forcing) tells attached guards where the
prompt ends, so they decide as they would before generating that answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from haggler.llm.base import Backend, Message
from haggler.llm.membership import min_k_percent

if TYPE_CHECKING:
    import torch

    from haggler.llm.activation_guard import ActivationGuard
    from haggler.llm.local_backend import LocalBackend
    from haggler.llm.model_insides import Insides

__all__ = [
    "Conversation",
    "LayerReading",
    "LensReading",
    "WhiteBox",
    "whitebox_of",
]

T = TypeVar("T")
# A user question, or user and assistant turns (the bound system message goes before them).
Conversation = str | Sequence[Message]


@dataclass(frozen=True, slots=True)
class LayerReading:
    """What one layer's logit lens says at the prompt's last position.

    `top`: its most likely next tokens (a special one, such as an end of turn, as ""),
    `top_probabilities` theirs. With an answer: `rank`
    (0 = its top token) and `probability` of the answer's first token, and, reading each of
    the answer's tokens after the ones before it (teacher forcing), their `ranks` and the
    summed log-probability.
    """

    layer: int
    top: tuple[str, ...]
    top_probabilities: tuple[float, ...] = ()
    rank: int | None = None
    probability: float | None = None
    ranks: tuple[int, ...] = ()
    logprob: float | None = None


@dataclass(frozen=True, slots=True)
class LensReading:
    """The logit lens of every decoder layer (1..L); the last is the model's own output."""

    answer: str | None
    answer_tokens: tuple[str, ...]
    layers: tuple[LayerReading, ...]

    @property
    def final(self) -> LayerReading:
        return self.layers[-1]

    def best(self) -> LayerReading:
        """The layer that gives the answer's first token the highest probability."""
        if self.answer is None:
            raise ValueError("a lens reading without an answer has no best layer")
        return max(self.layers, key=lambda r: r.probability or 0.0)

    def layers_with_answer_on_top(self, *, rank: int = 0) -> list[int]:
        """The layers whose lens ranks the answer's first token at `rank` or better."""
        return [r.layer for r in self.layers if r.rank is not None and r.rank <= rank]


class WhiteBox:
    """The insides of `backend`'s model, read in the context of `system` (the agent's system
    message, or a function giving it at each call; none for a bare model)."""

    def __init__(
        self,
        backend: LocalBackend,
        *,
        system: str | Callable[[], str] | None = None,
        suffix: str = "",
    ) -> None:
        self.backend = backend
        self._system = system
        self._suffix = suffix

    @property
    def model(self) -> str:
        return self.backend.model

    def extended(self, suffix: str) -> WhiteBox:
        """The same model and context with `suffix` added to the system message (as a defence
        adds its guard instruction to an agent's)."""
        joined = f"{self._suffix}\n\n{suffix}" if self._suffix else suffix
        return WhiteBox(self.backend, system=self._system, suffix=joined)

    def system(self) -> str | None:
        base = self._system() if callable(self._system) else self._system
        if base and self._suffix:
            return f"{base}\n\n{self._suffix}"
        return base or self._suffix or None

    def messages(self, conversation: Conversation) -> list[Message]:
        """What the model reads for `conversation`: the bound system message, then the turns."""
        turns = [Message("user", conversation)] if isinstance(conversation, str) else conversation
        system = self.system()
        return [Message("system", system), *turns] if system else list(turns)

    async def _run(self, work: Callable[[Insides], T]) -> T:
        from haggler.llm.model_insides import Insides

        return await self.backend.on_model(lambda model, tok: work(Insides.open(model, tok)))

    # --- reading ---

    async def depth(self) -> int:
        """The number of decoder layers."""
        return await self._run(lambda insides: len(insides.layers))

    async def hidden_states(
        self, conversation: Conversation, *, last_only: bool = True
    ) -> list[torch.Tensor]:
        """Per decoder layer (1..L, in order), its output for the prompt: [hidden] at the
        prompt's last position, or [positions, hidden] when not `last_only`."""
        messages = self.messages(conversation)
        return await self._run(
            lambda insides: insides.hidden_states(insides.encode(messages), last_only=last_only)
        )

    async def logit_lens(
        self, conversation: Conversation, *, answer: str | None = None, top: int = 5
    ) -> LensReading:
        """Each layer's lens at the prompt's last position; with `answer`, where its tokens
        rank per layer (the answer as the model would write it right after the prompt)."""
        messages = self.messages(conversation)

        def read(insides: Insides) -> LensReading:
            import torch

            prompt = insides.encode(messages)
            tokens = insides.answer_tokens(messages, answer) if answer else []
            ids = prompt + tokens
            positions = list(range(len(prompt) - 1, len(prompt) - 1 + max(1, len(tokens))))
            readings = []
            with insides.prompt_of(len(prompt)):
                lenses = insides.lens_at(ids, positions)
            for layer, logits in enumerate(lenses, start=1):
                logprobs = torch.log_softmax(logits, dim=-1)
                best = logprobs[0].topk(top)
                shown = tuple(
                    str(insides.tokenizer.decode([int(t)], skip_special_tokens=True))
                    for t in best.indices
                )
                chances = tuple(float(p) for p in best.values.exp())
                if not tokens:
                    readings.append(LayerReading(layer, shown, chances))
                    continue
                ranks = tuple(int((logits[i] > logits[i, t]).sum()) for i, t in enumerate(tokens))
                total = float(sum(logprobs[i, t] for i, t in enumerate(tokens)))
                readings.append(
                    LayerReading(
                        layer,
                        shown,
                        chances,
                        rank=ranks[0],
                        probability=float(logprobs[0, tokens[0]].exp()),
                        ranks=ranks,
                        logprob=total,
                    )
                )
            pieces = tuple(str(insides.tokenizer.decode([t])) for t in tokens)
            return LensReading(answer, pieces, tuple(readings))

        return await self._run(read)

    async def lens_decode(
        self,
        conversation: Conversation,
        *,
        layers: Sequence[int] | None = None,
        max_tokens: int = 12,
    ) -> dict[int, str]:
        """What each layer in `layers` (default: all) would answer, decoded greedily from its
        own lens, token by token, with the model run again on what it wrote."""
        messages = self.messages(conversation)

        def decode(insides: Insides) -> dict[int, str]:
            chosen = list(layers) if layers is not None else list(range(1, len(insides.layers) + 1))
            _check_layers(chosen, len(insides.layers))
            texts = insides.lens_decode(insides.encode(messages), chosen, max_tokens)
            return dict(zip(chosen, texts, strict=True))

        return await self._run(decode)

    async def generate(
        self,
        conversation: Conversation,
        *,
        prefix: str = "",
        samples: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 32,
        seed: int = 0,
    ) -> list[str]:
        """Answers as the model writes them (no steering; any attached guard acts), each
        beginning with `prefix` when one is given: the assistant's answer forced to start so."""
        messages = self.messages(conversation)
        return await self._run(
            lambda insides: [
                prefix + text
                for text in insides.sample(
                    insides.encode(messages, prefix),
                    samples=samples,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    seed=seed,
                )
            ]
        )

    async def scored_tokens(
        self, texts: Sequence[str], *, after: Conversation | None = None
    ) -> list[list[tuple[int, float]]]:
        """For each text, its tokens (ids) and the log-probability of each: as a text on its
        own (from the beginning of a document, no system message), or, `after` a
        conversation, as the assistant's answer to it."""
        messages = self.messages(after) if after is not None else None

        def score(insides: Insides) -> list[list[tuple[int, float]]]:
            scored = []
            for text in texts:
                if messages is None:
                    # From the second token on: the first is the bos token, or has no context.
                    ids = insides.tokenizer(text)["input_ids"]
                    start = 1
                    logprobs = insides.token_logprobs(ids, start)
                else:
                    prompt = insides.encode(messages)
                    ids = prompt + insides.answer_tokens(messages, text)
                    start = len(prompt)
                    with insides.prompt_of(start):
                        logprobs = insides.token_logprobs(ids, start)
                scored.append(list(zip(ids[start:], logprobs, strict=True)))
            return scored

        return await self._run(score)

    async def token_logprobs(
        self, texts: Sequence[str], *, after: Conversation | None = None
    ) -> list[list[float]]:
        """For each text, the log-probability of each of its tokens (see `scored_tokens`)."""
        return [[lp for _, lp in row] for row in await self.scored_tokens(texts, after=after)]

    async def min_k(
        self, texts: Sequence[str], *, k: float = 0.2, after: Conversation | None = None
    ) -> list[float]:
        """Each text's min-k% membership score (`haggler.llm.membership`)."""
        return [min_k_percent(lp, k) for lp in await self.token_logprobs(texts, after=after)]

    # --- steering (AnonAct) ---

    async def steering_vector(
        self, conversation: Conversation, anonymised: Sequence[Conversation], *, layer: int
    ) -> torch.Tensor:
        """The mean, over `anonymised` versions of the question, of the difference between the
        question's output of `layer` at its last position and theirs."""
        if not anonymised:
            raise ValueError("a steering vector needs at least one anonymised question")
        question = self.messages(conversation)
        others = [self.messages(a) for a in anonymised]

        def difference(insides: Insides) -> torch.Tensor:
            _check_layers([layer], len(insides.layers))
            own = insides.hidden_states(insides.encode(question), last_only=True)[layer - 1]
            differences = [
                own - insides.hidden_states(insides.encode(o), last_only=True)[layer - 1]
                for o in others
            ]
            return sum(differences[1:], differences[0]) / len(differences)

        return await self._run(difference)

    async def steer(
        self,
        conversation: Conversation,
        vector: torch.Tensor,
        *,
        layer: int,
        scale: float,
        samples: int = 8,
        temperature: float = 1.0,
        max_tokens: int = 16,
        seed: int = 0,
    ) -> list[str]:
        """Answers sampled with `scale * vector` added to `layer`'s output at the position that
        produces the first generated token."""
        messages = self.messages(conversation)

        def sample(insides: Insides) -> list[str]:
            _check_layers([layer], len(insides.layers))
            return insides.sample(
                insides.encode(messages),
                samples=samples,
                temperature=temperature,
                max_tokens=max_tokens,
                seed=seed,
                edit=lambda: insides.added_at_prompt_end(layer, scale * vector),
            )

        return await self._run(sample)

    # --- the activation guard ---

    async def calibrate_guard(
        self,
        forget: Mapping[str, Sequence[Conversation]],
        neutral: Sequence[Conversation],
        *,
        layer: int | None = None,
        strength: float = 4.0,
        target_fpr: float = 0.05,
        window: int = 8,
    ) -> ActivationGuard:
        """An activation guard for this model: one cluster per entry of `forget` (its name and
        the prompts that reach for it), its gate calibrated on `neutral` prompts for a false
        positive rate of at most `target_fpr`; its gate reads a prompt's last `window`
        positions. `layer` defaults to a third of the depth. Guards
        attached to the model are switched off while it reads the prompts."""
        from haggler.llm.activation_guard import ActivationGuard

        forget_messages = {name: [self.messages(p) for p in ps] for name, ps in forget.items()}
        neutral_messages = [self.messages(p) for p in neutral]

        def calibrate(insides: Insides) -> ActivationGuard:
            import torch

            chosen = layer if layer is not None else max(1, len(insides.layers) // 3)
            _check_layers([chosen], len(insides.layers))

            def outputs(prompt: list[Message]) -> torch.Tensor:
                states = insides.hidden_states(insides.encode(prompt), last_only=False)
                return states[chosen - 1][-window:]

            with insides.guards_off():
                forget_reps = {
                    name: torch.stack([outputs(p)[-1] for p in ps])
                    for name, ps in forget_messages.items()
                }
                neutral_reps = [outputs(p) for p in neutral_messages]
            return ActivationGuard.from_representations(
                chosen,
                forget_reps,
                neutral_reps,
                strength=strength,
                target_fpr=target_fpr,
                window=window,
            )

        return await self._run(calibrate)

    async def attach_guard(self, guard: ActivationGuard) -> None:
        """Hook `guard` onto this model: from now on every forward pass goes through it, the
        games' generations included, until `detach_guard` (or `guard.enabled = False`)."""

        def attach(insides: Insides) -> None:
            guard.attach(insides.layers, insides.model)
            insides.guards.append(guard)

        await self._run(attach)

    async def detach_guard(self, guard: ActivationGuard) -> None:
        def detach(insides: Insides) -> None:
            guard.detach()
            if guard in insides.guards:
                insides.guards.remove(guard)

        await self._run(detach)

    async def gate(
        self, conversations: Sequence[Conversation], guard: ActivationGuard
    ) -> list[int]:
        """What `guard`'s gate decides for each prompt (a cluster's index, or -1 to let it
        pass), read with every attached guard switched off."""
        prompts = [self.messages(c) for c in conversations]

        def decide(insides: Insides) -> list[int]:
            with insides.guards_off():
                return [
                    guard.decide(
                        insides.hidden_states(insides.encode(p), last_only=False)[guard.layer - 1][
                            None
                        ]
                    )[0]
                    for p in prompts
                ]

        return await self._run(decide)


def whitebox_of(
    backend: Backend | None, *, system: str | Callable[[], str] | None = None
) -> WhiteBox | None:
    """White-box access to `backend`'s model when it is a local one; None otherwise (hosted and
    served models show only their text, and perhaps log-probs)."""
    from haggler.llm.local_backend import LocalBackend

    if isinstance(backend, LocalBackend):
        return WhiteBox(backend, system=system)
    return None


def _check_layers(layers: Sequence[int], depth: int) -> None:
    wrong = [layer for layer in layers if not 1 <= layer <= depth]
    if wrong:
        raise ValueError(f"layer(s) {wrong} outside the model's decoder layers 1..{depth}")
