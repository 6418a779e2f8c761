"""What a grid will cost, said before it starts: model calls, tokens and dollars per model.

How the estimate is made. Each (pair, coached role, arm) is rehearsed once, offline, through
the real self-play code — the players' prompts with their briefs, their memory of earlier
rounds under its budget and their goal, the critic's and the moderator's prompts — with every
model replaced by a stand-in that answers with text of an assumed length. Two rehearsals:

- expected: a game is `messages_per_game` generated messages (default: half the turn limit)
  ending in a deal; a message is `message_chars` long in round 1 and the coached player's grow
  by `growth` a round (the paper's GPT-4 seller: about 320 -> 1050 characters over five
  rounds); a model critic answers in `advice_chars`; a model moderator reads
  `untagged_share` of the messages; every lineage plays every round (an unrolled lineage that
  stops early costs less).
- at most: every game runs to the turn limit, every reply is as long as its `max_tokens`
  allows, each model player spends its invalid allowance in every game (its unreadable
  messages told back to it), a model moderator reads every message, and every lineage plays
  every round. Retried calls (rate limits, server errors) are not counted.

Each call's prompt is counted with the model's tokenizer where one is known offline (OpenAI's,
Anthropic's, a local model's), else at 3 characters a token (short negotiation lines run
short of the usual 4), plus 4 tokens a message for the chat format; dollars are those tokens
at litellm's list prices (`haggler.llm.pricing`). The rehearsed rounds, times the lineages of
each cell and arm not yet stored finished, are the estimate: a continued grid is estimated on
what is left. The estimate stands or falls with its assumptions, which the spec's `estimate:`
section sets; tests/test_paper_grid.py holds it to the calls a small grid makes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from haggler.agents.actions import Action, ActionKind, format_action
from haggler.agents.base import Negotiator, PublicMessage, Reply, RoleView
from haggler.agents.critic import Critic, LLMCritic, RuleCritic
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import LLMModerator, Moderator, RuleModerator
from haggler.games.base import Game
from haggler.games.registry import make_game
from haggler.games.selfplay import (
    AIFeedback,
    ConstantFeedback,
    FeedbackSource,
    HumanFeedback,
    Lineage,
    NoFeedback,
    SelfPlaySetup,
    play_lineage,
)
from haggler.grid.run import cell_progress
from haggler.grid.spec import Cell, EstimateSpec
from haggler.llm.base import Backend, Completion, Message, Usage
from haggler.llm.providers import LOCAL_PREFIX
from haggler.memory import AgentMemory, TokenCounter
from haggler.memory.tokens import CharEstimate
from haggler.run.spec import RoleSpec, SelfPlaySpec
from haggler.store.sqlite import Store

__all__ = ["Estimate", "ModelCost", "estimate_cells"]

# Tokens a chat format adds to each message (role markers, separators): OpenAI's is 3-4.
PER_MESSAGE_TOKENS = 4
# Characters a token for models whose tokenizer is not at hand.
UNKNOWN_CHARS_PER_TOKEN = 3
_FILLER = "and please keep in mind how good this one is "


@dataclass(slots=True)
class ModelCost:
    """What one model will be asked: calls, tokens, and dollars at its list price."""

    model: str
    uses: set[str] = field(default_factory=set)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Dollars a token (prompt, completion); None: no list price (self-hosted or unlisted).
    price: tuple[float, float] | None = None

    @property
    def usd(self) -> float:
        if self.price is None:
            return 0.0
        return self.prompt_tokens * self.price[0] + self.completion_tokens * self.price[1]

    def add(self, other: ModelCost, times: int = 1) -> None:
        self.uses |= other.uses
        self.calls += other.calls * times
        self.prompt_tokens += other.prompt_tokens * times
        self.completion_tokens += other.completion_tokens * times


@dataclass(slots=True)
class CellCost:
    cell: Cell
    lineages_left: int
    expected: dict[str, ModelCost]
    ceiling: dict[str, ModelCost]


@dataclass(slots=True)
class Estimate:
    """The grid's cost, expected and at most, by model and by cell."""

    cells: list[CellCost]
    assumptions: EstimateSpec

    def by_model(self, which: str = "expected") -> dict[str, ModelCost]:
        total: dict[str, ModelCost] = {}
        for cell in self.cells:
            for model, cost in getattr(cell, which).items():
                mine = total.setdefault(model, ModelCost(model, price=cost.price))
                mine.add(cost)
        return total

    def calls(self, which: str = "expected") -> int:
        return sum(cost.calls for cost in self.by_model(which).values())

    def tokens(self, which: str = "expected") -> int:
        return sum(c.prompt_tokens + c.completion_tokens for c in self.by_model(which).values())

    def usd(self, which: str = "expected") -> float:
        return sum(cost.usd for cost in self.by_model(which).values())

    def unpriced(self) -> list[str]:
        """Models called that have no list price: counted as free."""
        return sorted(m for m, cost in self.by_model().items() if cost.price is None and cost.calls)


async def estimate_cells(
    cells: Sequence[Cell], assumptions: EstimateSpec, *, store: Store | None = None
) -> Estimate:
    """The cost of playing `cells` (what `store` does not hold finished of them, when given)."""
    rehearsed: dict[tuple[str, str], tuple[list[dict[str, ModelCost]], ...]] = {}
    priced: dict[str, tuple[float, float] | None] = {}
    costs = []
    for cell in cells:
        left = (
            cell_progress(store, cell).left_by_arm
            if store is not None
            else dict.fromkeys(cell.spec.feedback, cell.spec.lineages)
        )
        expected: dict[str, ModelCost] = {}
        ceiling: dict[str, ModelCost] = {}
        if _calls_a_model(cell.spec):
            # One rehearsal serves every phase of a pair and coached role: the longest one.
            rounds = max(c.spec.rounds for c in cells if _same_play(c, cell))
            for arm, lineages in left.items():
                if not lineages:
                    continue
                key = (_play_key(cell), arm)
                if key not in rehearsed:
                    rehearsed[key] = (
                        await _rehearse(cell.spec, arm, rounds, assumptions, ceiling=False),
                        await _rehearse(cell.spec, arm, rounds, assumptions, ceiling=True),
                    )
                for total, per_round in zip((expected, ceiling), rehearsed[key], strict=True):
                    for round_costs in per_round[: cell.spec.rounds]:
                        for model, cost in round_costs.items():
                            if model not in priced:
                                priced[model] = _list_price(model)
                            mine = total.setdefault(model, ModelCost(model, price=priced[model]))
                            mine.add(cost, times=lineages)
        costs.append(CellCost(cell, sum(left.values()), expected, ceiling))
    return Estimate(costs, assumptions)


def _calls_a_model(spec: SelfPlaySpec) -> bool:
    roles = [*spec.roles.values(), spec.moderator]
    if "ai" in spec.feedback and spec.critic is not None:
        roles.append(spec.critic)  # type: ignore[arg-type]
    return any(not role.is_rule for role in roles)


def _play_key(cell: Cell) -> str:
    # What a rehearsal depends on: everything but how many rounds and lineages, and how.
    content = cell.spec.model_dump(
        mode="json", exclude={"rounds", "lineages", "stop_at_first_failure", "concurrency"}
    )
    return json.dumps(content, sort_keys=True, default=str)


def _same_play(a: Cell, b: Cell) -> bool:
    return _play_key(a) == _play_key(b)


# Served by the user (a vLLM or Ollama server, a local model): no list price to look up.
_SELF_HOSTED = (LOCAL_PREFIX, "hosted_vllm/", "ollama/", "ollama_chat/")


def _list_price(model: str) -> tuple[float, float] | None:
    if model.startswith(_SELF_HOSTED):
        return None
    from haggler.llm.pricing import list_price

    price = list_price(model)
    return None if price is None else (price.prompt, price.completion)


@cache
def _counter(model: str) -> TokenCounter:
    from haggler.llm.tokenizers import tokenizer_for

    tokenizer = tokenizer_for(model)
    return (
        _LineByLine(tokenizer) if tokenizer is not None else CharEstimate(UNKNOWN_CHARS_PER_TOKEN)
    )


class _LineByLine:
    """A tokenizer's count, line by line with each line's count kept: a rehearsal's prompts
    repeat the same lines (the brief, the remembered games) call after call, and a real
    tokenizer takes a millisecond or more for each whole prompt. A text's count is its lines'
    counts and one token a line break, within a token or two a line of the whole count."""

    def __init__(self, tokenizer: TokenCounter) -> None:
        self.tokenizer = tokenizer
        self.name = f"{tokenizer.name}, line by line"
        self._lines: dict[str, int] = {}

    def count(self, text: str) -> int:
        total = text.count("\n")
        for line in text.split("\n"):
            if line not in self._lines:
                self._lines[line] = self.tokenizer.count(line)
            total += self._lines[line]
        return total

    def chars_at_most(self, tokens: int) -> float:
        return self.tokenizer.chars_at_most(tokens)


# --- the rehearsal ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Ledger:
    """Calls by round and model, as the stand-ins take them."""

    rounds: list[dict[str, ModelCost]] = field(default_factory=list)

    def add(self, model: str, use: str, prompt: int, completion: int) -> None:
        cost = self.rounds[-1].setdefault(model, ModelCost(model))
        cost.uses.add(use)
        cost.calls += 1
        cost.prompt_tokens += prompt
        cost.completion_tokens += completion


class _StandIn(Backend):
    """A model that answers what it is handed (`answer`), counting what it was sent."""

    def __init__(
        self,
        model: str,
        use: str,
        ledger: _Ledger,
        counter: TokenCounter,
        answer: Callable[[list[Message]], str],
    ) -> None:
        super().__init__(model)
        self.use, self.ledger, self.counter, self.answer = use, ledger, counter, answer

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        text = self.answer(messages)
        prompt = sum(self.counter.count(m.content) + PER_MESSAGE_TOKENS for m in messages)
        completion = max(self.counter.count(text), 1)
        self.ledger.add(self.model, self.use, prompt, completion)
        return Completion(text, self.model, Usage(prompt, completion))


def _sized(head: str, tail: str, chars: int) -> str:
    """`head`, filler words, then `tail`: about `chars` characters in all."""
    room = max(chars - len(head) - len(tail), 0)
    filler = (_FILLER * (room // len(_FILLER) + 1))[:room].rstrip()
    return " ".join(part for part in (head, filler, tail) if part)


def _of_tokens(head: str, tail: str, tokens: int, counter: TokenCounter) -> str:
    """`head`, filler, `tail`: as close to `tokens` tokens of `counter` as filler allows."""
    chars = tokens * 4
    text = _sized(head, tail, chars)
    for _ in range(8):
        counted = counter.count(text)
        if abs(counted - tokens) <= max(2, tokens // 50):
            break
        chars = max(int(chars * tokens / max(counted, 1)), 1)
        text = _sized(head, tail, chars)
    return text


@dataclass(slots=True)
class _Script:
    """How every rehearsed game goes: offers that close in from both openings, then a deal."""

    game: Game
    messages: int  # generated messages in a game, the accepting one included
    assumptions: EstimateSpec
    ceiling: bool
    model_moderator: bool
    allowance: int
    round: int = 0
    # The last move a player meant, for the stand-in moderator to rule.
    intended: Action | None = None
    said: int = 0  # messages generated in the rehearsal so far

    def move(self, view: RoleView) -> Action:
        low, high = float(view.facts["buyer_opening"]), float(view.facts["seller_opening"])
        if view.turn + 1 >= self.messages:
            rival = [m for m in view.public if m.speaker != view.role and _offered(m)]
            price = rival[-1].action.price if rival else (low + high) / 2  # type: ignore[union-attr]
            return Action(ActionKind.ACCEPT, price)
        step = (high - low) / (self.messages + 2)
        k = view.turn // 2 + 1
        price = high - k * step if view.role == "seller" else low + k * step
        return Action(ActionKind.OFFER, round(price, 2))

    def untagged(self) -> bool:
        """Whether the next message goes without a tag (only a model moderator can read one)."""
        if not self.model_moderator:
            return False
        share = 1.0 if self.ceiling else self.assumptions.untagged_share
        self.said += 1
        return math.floor(self.said * share) > math.floor((self.said - 1) * share)


def _offered(message: PublicMessage) -> bool:
    action = message.action
    return action is not None and action.kind is ActionKind.OFFER and action.price is not None


class _RulePlayer(Negotiator):
    """A rule-based role in the rehearsal: it calls no model, so only its words count."""

    def __init__(self, role: str, script: _Script) -> None:
        self.role, self.label, self.script = role, f"rule ({role})", script

    async def respond(self, view: RoleView) -> Reply:
        action = self.script.move(view)
        return Reply(f"What about {format_action(action)}")


class _ModelPlayer(Negotiator):
    """A model role in the rehearsal: its real prompt goes to a stand-in that answers with the
    script's move in text of the assumed length."""

    def __init__(
        self, role: str, spec: RoleSpec, script: _Script, ledger: _Ledger, coached: bool
    ) -> None:
        self.role, self.script, self.coached = role, script, coached
        self.counter = _counter(spec.model)
        self._next = ""
        backend = _StandIn(spec.model, role, ledger, self.counter, lambda _: self._next)
        self.inner = LLMNegotiator(role, backend, params=spec.generation(), prompt=spec.prompt)
        self.label = self.inner.label
        self.invalid_sent = 0

    async def respond(self, view: RoleView) -> Reply:
        script = self.script
        max_tokens = int(self.inner.params.get("max_tokens") or 256)
        last_turn = view.turn + 2 >= script.messages
        if script.ceiling and last_turn and self.invalid_sent < script.allowance:
            # Its allowance of unreadable messages, spent where its prompt is longest.
            self.invalid_sent += 1
            script.intended = None
            self._next = _of_tokens("", "", max_tokens, self.counter)
            return await self.inner.respond(view)
        action = script.move(view)
        script.intended = action
        head = f"I would say {format_action(action)[1:-1].lower()}."
        tail = "" if script.untagged() else format_action(action)
        if script.ceiling:
            self._next = _of_tokens(head, tail, max_tokens, self.counter)
        else:
            chars = script.assumptions.message_chars
            if self.coached:
                chars = round(chars * script.assumptions.growth ** (script.round - 1))
            self._next = _sized(head, tail, min(chars, max_tokens * 4))
        return await self.inner.respond(view)


def _verdict(script: _Script, counter: TokenCounter, max_tokens: int) -> Callable[..., str]:
    def answer(messages: list[Message]) -> str:
        action = script.intended
        verdict = {
            "reasoning": "",
            "action": action.kind.value if action is not None else "none",
            "price": action.price if action is not None else None,
        }
        words = "The last message takes this action."
        if script.ceiling:
            words = _of_tokens(words, "", max(max_tokens - 30, 1), counter)
        return json.dumps(verdict | {"reasoning": words})

    return answer


def _advice(chars: int | None, counter: TokenCounter, max_tokens: int) -> Callable[..., str]:
    def answer(messages: list[Message]) -> str:
        if chars is None:
            whole = _of_tokens("", "", max_tokens, counter)
            third = max(len(whole) // 3 - 4, 1)
        else:
            third = max(chars // 3 - 4, 1)
        return "\n".join(f"{i}. {_sized('', '', third)}" for i in (1, 2, 3))

    return answer


async def _rehearse(
    spec: SelfPlaySpec, arm: str, rounds: int, assumptions: EstimateSpec, *, ceiling: bool
) -> list[dict[str, ModelCost]]:
    """One lineage of `arm`, `rounds` long, played by stand-ins; its calls round by round."""
    game = make_game(spec.game, spec.rules)
    ledger = _Ledger()
    turn_limit = game.max_turns
    messages = turn_limit if ceiling else assumptions.messages_per_game or turn_limit // 2
    script = _Script(
        game,
        max(2, min(messages, turn_limit)),
        assumptions,
        ceiling,
        model_moderator=not spec.moderator.is_rule,
        allowance=spec.invalid_allowance,
    )
    roles: dict[str, RoleSpec] = {
        role: spec.roles.get(role) or RoleSpec(model="rule:linear") for role in game.roles
    }
    coached = spec.coached_roles()

    def players(seed: int) -> dict[str, Negotiator]:
        script.round += 1
        ledger.rounds.append({})
        return {
            role: _RulePlayer(role, script)
            if role_spec.is_rule
            else _ModelPlayer(role, role_spec, script, ledger, role in coached)
            for role, role_spec in roles.items()
        }

    moderator: Moderator = RuleModerator()
    if not spec.moderator.is_rule:
        counter = _counter(spec.moderator.model)
        model = LLMModerator(
            _StandIn(spec.moderator.model, "moderator", ledger, counter, lambda _: ""),
            params=spec.moderator.generation(),
        )
        assert isinstance(model.backend, _StandIn)
        model.backend.answer = _verdict(script, counter, int(model.params["max_tokens"]))
        moderator = model

    lineage = Lineage(
        arm=arm,
        coached=coached,
        seed=spec.seed,
        rounds=rounds,
        memories={role: AgentMemory(f"estimate/{role}") for role in coached},
        memory_budget=spec.memory_budget,
        counters={
            role: CharEstimate() if roles[role].is_rule else _counter(roles[role].model)
            for role in coached
        },
    )
    setup = SelfPlaySetup(
        game=game,
        make_players=players,
        moderator=moderator,
        feedback=_feedback(spec, arm, roles, ledger, assumptions, ceiling),
        invalid_allowance=spec.invalid_allowance,
    )
    await play_lineage(lineage, setup)
    return ledger.rounds


def _feedback(
    spec: SelfPlaySpec,
    arm: str,
    roles: Mapping[str, RoleSpec],
    ledger: _Ledger,
    assumptions: EstimateSpec,
    ceiling: bool,
) -> FeedbackSource:
    if arm == "constant":
        return ConstantFeedback(spec.constant_feedback)
    if arm == "human":
        return HumanFeedback(spec.human_suggestions())
    if arm != "ai":
        return NoFeedback()
    critics: dict[str, Critic] = {}
    for role in spec.coached_roles():
        chosen = spec.critic if spec.critic is not None else roles[role]
        if chosen.is_rule:
            critics[role] = RuleCritic()
            continue
        counter = _counter(chosen.model)
        critic = LLMCritic(
            _StandIn(chosen.model, "critic", ledger, counter, lambda _: ""),
            params=chosen.generation(),
        )
        assert isinstance(critic.backend, _StandIn)
        max_tokens = int(critic.params.get("max_tokens") or 300)
        chars = None if ceiling else assumptions.advice_chars
        critic.backend.answer = _advice(chars, counter, max_tokens)
        critics[role] = critic
    return AIFeedback(critics)
