"""Test fakes for probing, so the probe pipeline is tested on its own: small strategies, a
judge, a guard, a target that needs no responder, and a fake model's way of answering
questions from its own prompt (for the fake server). None of them is haggler's real
adversary (`haggler.agents.adversary.strategies`, `haggler.agents.judges`, …): they are
just enough to exercise running, judging, storing and reporting.

`registered()` makes them known by name (all start with `fake-`) in the registries the probe
pipeline reads, for the length of a test, and forgets them afterwards.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from haggler.agents.adversary.base import (
    STRATEGIES,
    Attempt,
    Exchange,
    Reply,
    Secret,
    Strategy,
    Target,
)
from haggler.agents.judges import Judge, Verdict
from haggler.agents.prices import find_prices
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.llm.base import Message
from haggler.probe.plugins import defence_registry, judge_registry
from tests.fakes.llm_server import RecordedRequest, Text

__all__ = [
    "FakeAsk",
    "FakeGuard",
    "FakeJudge",
    "FakePlay",
    "KnowingTarget",
    "answer_from_prompt",
    "register_fakes",
    "registered",
]

QUESTION = "Question:"
_STOP = {"the", "what", "was", "your", "you", "that", "this", "with", "from", "about", "told"}


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP]


class FakeAsk(Strategy):
    """Asks for the secret's topic, `asks` times at most (a test fake)."""

    name = "fake-ask"
    goal = "Ask for the secret's topic outright."
    turns = "single"

    def __init__(self, asks: int = 2) -> None:
        self.asks = asks

    async def attack(
        self, target: Target, secret: Secret, *, rng: random.Random, max_queries: int = 20
    ) -> Attempt:
        attempt = Attempt(self.name, target.label)
        forms = ["{topic}?", "tell me {topic}, please?", "remind me of {topic}?"]
        for k in range(min(self.asks, max_queries)):
            form = forms[(k + rng.randrange(len(forms))) % len(forms)]
            sent = (Message("user", f"{QUESTION} {form.format(topic=secret.topic)}"),)
            reply = await target.ask(sent)
            attempt.exchanges.append(Exchange(sent, reply))
            if reply.status == "answered" and reply.text and "remember" not in reply.text:
                prices = find_prices(reply.text)
                attempt.guess = reply.text
                attempt.guessed_value = prices[0].value if prices else None
                break
        return attempt


class FakeHint(FakeAsk):
    """Asks with the first true hint given (a test fake of in-context relearning)."""

    name = "fake-hint"
    goal = "Ask with one true hint given."
    levels = ("state", "trajectory")

    async def attack(
        self, target: Target, secret: Secret, *, rng: random.Random, max_queries: int = 20
    ) -> Attempt:
        hinted = Secret(
            text=secret.text, value=secret.value, level=secret.level,
            topic=f"{secret.topic} ({secret.hints[0] if secret.hints else 'no hint'})",
        )  # fmt: skip
        attempt = await super().attack(target, hinted, rng=rng, max_queries=max_queries)
        attempt.strategy = self.name
        return attempt


class FakePlay(Strategy):
    """Plays one game against the target as its counterpart, and guesses the target's last
    offer (a test fake of in-game elicitation)."""

    name = "fake-play"
    goal = "Play the target and read its last offer."
    needs = "game"

    async def attack(
        self, target: Target, secret: Secret, *, rng: random.Random, max_queries: int = 20
    ) -> Attempt:
        other = "buyer" if target.role == "seller" else "seller"
        rival = RuleNegotiator(other, TACTICS.get("boulware")(), seed=rng.randrange(1000))
        result = await target.play(rival, seed=rng.randrange(1000))
        offers = [
            t.action.price
            for t in result.turns
            if t.speaker == target.role and t.action is not None and t.action.price is not None
        ]
        attempt = Attempt(self.name, target.label)
        if offers:
            attempt.guessed_value = offers[-1]
            attempt.guess = f"${offers[-1]:g}"
        return attempt


class Broken(Strategy):
    """Raises (a test fake of a plug-in with a bug)."""

    name = "fake-broken"
    goal = "Fail."

    async def attack(
        self, target: Target, secret: Secret, *, rng: random.Random, max_queries: int = 20
    ) -> Attempt:
        raise RuntimeError("this strategy is broken on purpose")


def FakeJudgement(outcome: str, reason: str, cost_usd: float = 0.0) -> Verdict:  # noqa: N802
    return Verdict(outcome, FakeJudge.name, reason, cost_usd=cost_usd)  # type: ignore[arg-type]


class FakeJudge(Judge):
    """Leak when an answered reply (or the guess) holds the secret's text or value; no leak
    otherwise; undetermined when nothing was answered (a test fake)."""

    name = "fake-match"

    def __init__(self, cost_usd: float = 0.0) -> None:
        self.cost_usd = cost_usd

    async def judge(self, attempt: Attempt, secret: Secret) -> Verdict:
        texts = [e.reply.text for e in attempt.answered]
        if attempt.guess:
            texts.append(attempt.guess)
        for text in texts:
            if secret.text.lower() in text.lower():
                return FakeJudgement("leak", f"said {secret.text}", self.cost_usd)
            if secret.value is not None and any(
                abs(p.value - secret.value) < 1e-6 for p in find_prices(text)
            ):
                return FakeJudgement("leak", f"named {secret.value:g}", self.cost_usd)
        guessed, value = attempt.guessed_value, secret.value
        if guessed is not None and value is not None and abs(guessed - value) < 1e-6:
            return FakeJudgement("leak", "guessed the value", self.cost_usd)
        if attempt.exchanges and not attempt.answered:
            return FakeJudgement("undetermined", "nothing was answered", self.cost_usd)
        return FakeJudgement("no_leak", "the secret is in no reply", self.cost_usd)


class FakeGuard(Target):
    """Withholds the reply to any question that names a guarded secret's topic (a test fake
    of an in-context guard, which FakeHint gets around by its hint's extra words)."""

    def __init__(self, inner: Target, *, secrets: Sequence[Secret] = ()) -> None:
        self.inner = inner
        self.label, self.role, self.game = inner.label, inner.role, inner.game
        self.topics = [s.topic.lower() for s in secrets]

    async def ask(self, conversation: Sequence[Message], **params: object) -> Reply:
        asked = conversation[-1].content.lower() if conversation else ""
        # The topic asked about as it is: a hint after it is another question to this guard.
        if any(re.search(re.escape(topic) + r"[?,]", asked) for topic in self.topics):
            return Reply("", status="blocked", reason="the guard matched a forgotten topic")
        return await self.inner.ask(conversation, **params)

    @property
    def can_play(self) -> bool:
        return self.inner.can_play

    async def play(self, rival, *, seed):  # type: ignore[no-untyped-def]
        return await self.inner.play(rival, seed=seed)


class KnowingTarget(Target):
    """A target that needs no responder: it answers a question with the first of its `facts`
    that shares a word with the question, or says it does not remember (a test fake)."""

    def __init__(self, label: str, facts: Sequence[str], game: object, role: str = "seller"):
        self.label, self.role, self.game = label, role, game  # type: ignore[assignment]
        self.facts = list(facts)

    async def ask(self, conversation: Sequence[Message], **params: object) -> Reply:
        asked = set(_words(conversation[-1].content))
        for fact in self.facts:
            if asked & set(_words(fact)):
                return Reply(fact)
        return Reply("I don't remember that.")


def answer_from_prompt(request: RecordedRequest) -> Text | None:
    """A fake model's answer to a probe question (a user message opening with `Question:`):
    the remembered line of its system prompt that shares the most words with the question,
    or "I don't remember that."; None for anything else (then it negotiates)."""
    messages = request.messages
    if not messages or not messages[-1]["content"].startswith(QUESTION):
        return None
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    memory = system.split("What you remember from your earlier games:", 1)
    if len(memory) < 2:
        return Text("I don't remember that.")
    question = messages[-1]["content"].removeprefix(QUESTION)
    asked = set(_words(question))
    # A name asked about counts for more than a common word ("price" is in every game).
    names = {w.lower() for w in re.findall(r"\b[A-Z][a-z]+", question)}
    best, score = None, 0
    for line in memory[1].splitlines():
        said = set(_words(line))
        shared = len(asked & said) + 3 * len(names & said)
        if shared > score:
            best, score = line.strip(), shared
    return Text(best if best else "I don't remember that.", prompt_tokens=80, completion_tokens=12)


def register_fakes() -> None:
    """Make the fakes known by name, in the registries the probe pipeline reads."""
    for name, factory in (
        ("fake-ask", FakeAsk),
        ("fake-hint", FakeHint),
        ("fake-play", FakePlay),
        ("fake-broken", Broken),
    ):
        STRATEGIES.register(name)(factory)
    judge_registry().register("fake-match")(FakeJudge)
    defence_registry().register("fake-guard")(FakeGuard)


@contextmanager
def registered() -> Iterator[None]:
    """The fakes registered while inside, and the registries as they were afterwards."""
    registries = (STRATEGIES, judge_registry(), defence_registry())
    saved = [dict(r._factories) for r in registries]
    register_fakes()
    try:
        yield
    finally:
        for registry, factories in zip(registries, saved, strict=True):
            registry._factories.clear()
            registry._factories.update(factories)
