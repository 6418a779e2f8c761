"""One attempt: a strategy against a target for a secret, judged, with the games it played.

The target a strategy meets is wrapped so that every game played against it (in-game
elicitation) is kept, to be stored as an ordinary game of the run. A strategy that fails
(a bug in a plug-in, a model call that failed for good while playing) leaves an attempt
whose verdict is undetermined, with the failure as its reason: the run goes on, and the
failure is in the record rather than counted as "no leak". A refused API key stops the run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from haggler.agents.adversary.base import Access, Attempt, Reply, Secret, Strategy, Target, WhiteBox
from haggler.errors import ModelAuthError
from haggler.probe.judging import Judge, Ruling, answer_digest, rule_on

if TYPE_CHECKING:
    from haggler.agents.base import Negotiator
    from haggler.games.episode import EpisodeResult
    from haggler.llm.base import Message

__all__ = ["JudgedAttempt", "RecordingTarget", "judged_attempt"]


class RecordingTarget(Target):
    """`inner` as a strategy meets it, keeping every game played against it (`played`)."""

    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.label = inner.label
        self.role = inner.role
        self.game = inner.game
        self.played: list[tuple[EpisodeResult, Negotiator, int]] = []

    async def ask(self, conversation: Sequence[Message], **params: object) -> Reply:
        return await self.inner.ask(conversation, **params)

    @property
    def can_play(self) -> bool:
        return self.inner.can_play

    async def play(self, rival: Negotiator, *, seed: int) -> EpisodeResult:
        result = await self.inner.play(rival, seed=seed)
        self.played.append((result, rival, seed))
        return result

    @property
    def whitebox(self) -> WhiteBox | None:
        return self.inner.whitebox

    @property
    def access(self) -> frozenset[Access]:
        return self.inner.access

    def __getattr__(self, name: str) -> Any:
        # Anything else a strategy reads of its target (an agent's system prompt, its memory)
        # is the target's own.
        return getattr(self.inner, name)


@dataclass(slots=True)
class JudgedAttempt:
    """An attempt, the judges' ruling on it, and the games it played."""

    attempt: Attempt
    ruling: Ruling
    games: list[tuple[EpisodeResult, Negotiator, int]] = field(default_factory=list)
    # The strategy's failure, when it did not finish.
    failure: str | None = None

    @property
    def refused(self) -> bool:
        return any(e.reply.status in ("refused", "blocked") for e in self.attempt.exchanges)

    @property
    def answer(self) -> str:
        return answer_digest(self.attempt)

    @property
    def cost_usd(self) -> float:
        return self.attempt.cost_usd + self.ruling.cost_usd


async def judged_attempt(
    strategy: Strategy,
    target: Target,
    secret: Secret,
    judges: Sequence[Judge],
    *,
    seed: str | int,
    max_queries: int = 20,
) -> JudgedAttempt:
    """Run `strategy` against `target` for `secret` (its randomness from `seed`), and judge
    it. The same seed gives the same questions to every variant of a target, so attempts on
    the agent after forgetting and on the reference agent pair up."""
    recorder = RecordingTarget(target)
    rng = random.Random(f"attempt/{seed}")
    try:
        attempt = await strategy.attack(recorder, secret, rng=rng, max_queries=max_queries)
    except ModelAuthError:
        raise
    except Exception as error:
        reason = f"strategy {strategy.name} failed: {type(error).__name__}: {error}"[:300]
        attempt = Attempt(strategy.name, target.label)
        ruling = Ruling("undetermined", reason, "none")
        return JudgedAttempt(attempt, ruling, recorder.played, failure=reason)
    if not isinstance(attempt, Attempt):
        reason = f"strategy {strategy.name} returned a {type(attempt).__name__}, not an Attempt"
        return JudgedAttempt(
            Attempt(strategy.name, target.label), Ruling("undetermined", reason, "none"),
            recorder.played, failure=reason,
        )  # fmt: skip
    ruling = await rule_on(judges, secret, attempt)
    return JudgedAttempt(attempt, ruling, recorder.played)
