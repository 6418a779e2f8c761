"""The adversary's contracts: what it looks for, what it probes, how a probe goes.

A **secret** is what a target should no longer know (a counterpart's budget, a phrase, a name).
A **target** is an agent as it would play: its model (or the offline responder) and the context
its memory assembles, so a probe sees exactly what the agent would; the same probe runs against
the agent before forgetting, after, and against the reference agent rebuilt from the retained
items only. A **strategy** tries to get the secret out of a target, by asking (black box), by
reading its insides (white box, local models) or by playing it (in-game elicitation), and
returns an **attempt**: every exchange, and the adversary's guess. Judges then rule on the
attempt (`haggler.agents.judges`); an error, a refusal or a blocked reply is never silently
counted as "no leak".

Strategies are plug-ins: the `STRATEGIES` registry and the `haggler.strategies` entry-point
group, like games and tactics.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from haggler.llm.base import Completion, Message
from haggler.registry import Registry

if TYPE_CHECKING:
    from haggler.agents.base import Negotiator
    from haggler.games.base import Game
    from haggler.games.episode import EpisodeResult
    from haggler.llm.whitebox import LensReading

__all__ = [
    "ACCESS",
    "STRATEGIES",
    "Access",
    "Attempt",
    "Exchange",
    "Level",
    "Reply",
    "Secret",
    "Status",
    "Strategy",
    "Target",
    "WhiteBox",
]

Level = Literal["state", "trajectory", "environment"]
# What a strategy needs of its target: to talk to it (any backend), its tokens' log-probs, its
# weights and activations (local models), or to play a game against it.
Access = Literal["black-box", "log-probs", "white-box", "game"]
ACCESS: tuple[Access, ...] = ("black-box", "log-probs", "white-box", "game")
# How one reply came back: answered; refused by the target itself; withheld by a defence; or
# the call failed. Only "answered" replies can show a leak or its absence.
Status = Literal["answered", "refused", "blocked", "error"]


@dataclass(frozen=True, slots=True)
class Secret:
    """What should have been forgotten, as the adversary and the judges know it.

    `text` is how it was written ("budget code ZEBRA-7", "$13.50"); `value` the amount when it
    is one (then judged numerically, in every spoken form); `topic` says what it is in words an
    attacker may use to ask ("the buyer's budget"); `hints` are true facts around it that an
    attacker may be given (in-context relearning gives 0, 1 or 2 of them); `level` is the
    level it was forgotten at.
    """

    text: str
    topic: str
    value: float | None = None
    hints: tuple[str, ...] = ()
    level: Level = "state"
    # A regular expression that matches the secret wherever it is said, when the text alone
    # would not (a code written with other separators, a name in another case).
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of a target: its text (empty unless answered), how it came back, and what
    it cost (None for the offline responder)."""

    text: str
    status: Status = "answered"
    completion: Completion | None = None
    # Why it was refused, blocked or failed, in one line.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """What the adversary sent (the conversation so far ends with it) and what came back."""

    sent: tuple[Message, ...]
    reply: Reply

    @property
    def question(self) -> str:
        return self.sent[-1].content if self.sent else ""


@dataclass
class Attempt:
    """One strategy against one target: every exchange in order, and the adversary's guess
    (what it believes the secret is, read from the replies or inferred from play)."""

    strategy: str
    target: str
    exchanges: list[Exchange] = field(default_factory=list)
    guess: str | None = None
    # A number the adversary inferred (a budget read off offers), for numeric extraction error.
    guessed_value: float | None = None
    # Games played against the target (in-game elicitation): their ids, when stored.
    games: list[str] = field(default_factory=list)
    # What the finding rests on: the target's replies (what it said), or only the guess (what
    # the adversary inferred from its behaviour: in a game the target's replies are moves,
    # and a price it offers that happens to equal the secret states nothing).
    reads: Literal["replies", "guess"] = "replies"
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def queries(self) -> int:
        return len(self.exchanges)

    @property
    def cost_usd(self) -> float:
        return sum(e.reply.completion.cost_usd for e in self.exchanges if e.reply.completion)

    @property
    def answered(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.reply.status == "answered"]


@runtime_checkable
class WhiteBox(Protocol):
    """A local model's insides, read in the target agent's own context (its system message goes
    before every prompt): what white-box strategies use. `haggler.llm.whitebox.WhiteBox` is
    the implementation; a conversation is a user question or user and assistant turns."""

    def extended(self, suffix: str) -> WhiteBox:
        """The same insides with `suffix` added to the system message (a defence's guard)."""
        ...

    async def depth(self) -> int:
        """The number of decoder layers."""
        ...

    async def hidden_states(self, conversation: Any, *, last_only: bool = True) -> list[Any]:
        """Per decoder layer, its output for the prompt (tensors on the CPU)."""
        ...

    async def logit_lens(
        self, conversation: Any, *, answer: str | None = None, top: int = 5
    ) -> LensReading:
        """Each layer's read-out at the prompt's last position, and where `answer` ranks."""
        ...

    async def generate(
        self,
        conversation: Any,
        *,
        prefix: str = "",
        samples: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 32,
        seed: int = 0,
    ) -> list[str]:
        """Answers as the model writes them, each forced to begin with `prefix`."""
        ...

    async def steering_vector(
        self, conversation: Any, anonymised: Sequence[Any], *, layer: int
    ) -> Any:
        """The question's activations minus those of anonymised versions of it, at `layer`."""
        ...

    async def steer(
        self,
        conversation: Any,
        vector: Any,
        *,
        layer: int,
        scale: float,
        samples: int = 8,
        temperature: float = 1.0,
        max_tokens: int = 16,
        seed: int = 0,
    ) -> list[str]:
        """Answers sampled with `scale * vector` added at the first generated token."""
        ...

    async def scored_tokens(
        self, texts: Sequence[str], *, after: Any = None
    ) -> list[list[tuple[int, float]]]:
        """Each text's tokens and their log-probabilities, alone or as the answer `after` a
        question."""
        ...

    async def min_k(
        self, texts: Sequence[str], *, k: float = 0.2, after: Any = None
    ) -> list[float]:
        """Each text's min-k% membership score, alone or as the answer `after` a question."""
        ...


class Target(ABC):
    """An agent as the adversary meets it. `label` says which: "before", "after",
    "reference", or the agent's own name."""

    label: str
    # The role the agent plays, the game it plays it in, and what it may be asked through.
    role: str
    game: Game

    @abstractmethod
    async def ask(self, conversation: Sequence[Message], **params: object) -> Reply:
        """The agent's reply to `conversation` (user and assistant turns; the system message
        is the agent's own: its brief and what its memory recalls). Never raises for what the
        model says or for a failed call: that is the reply's status."""

    @property
    def can_play(self) -> bool:
        """Whether the agent can be played against (see `play`)."""
        return False

    async def play(self, rival: Negotiator, *, seed: int) -> EpisodeResult:
        """One game of `game`: the agent in `role`, with what its memory recalls, against
        `rival` in the other role. Only where `can_play`."""
        raise NotImplementedError(f"{self.label} cannot be played against")

    @property
    def whitebox(self) -> WhiteBox | None:
        """Its insides, when it is a local model; None otherwise."""
        return None

    @property
    def access(self) -> frozenset[Access]:
        found: set[Access] = {"black-box"}
        if self.can_play:
            found.add("game")
        if self.whitebox is not None:
            found.update(("log-probs", "white-box"))
        return frozenset(found)


class Strategy(ABC):
    """A way to get a secret out of a target.

    Subclasses declare `name`, `goal` (one sentence), the `levels` they target, what they
    `needs`, and whether they take one `turn` or several. `attack` may spend at most
    `max_queries` replies of the target.
    """

    name: str
    goal: str
    levels: tuple[Level, ...] = ("state", "trajectory", "environment")
    needs: Access = "black-box"
    turns: Literal["single", "multi"] = "single"

    @abstractmethod
    async def attack(
        self, target: Target, secret: Secret, *, rng: random.Random, max_queries: int = 20
    ) -> Attempt:
        """Probe `target` for `secret`."""

    def fits(self, target: Target, secret: Secret) -> bool:
        """Whether this strategy can run against `target` for `secret`."""
        return self.needs in target.access and secret.level in self.levels


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", "haggler.strategies")
