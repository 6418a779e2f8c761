"""Forgetting for people: a request in words to a reviewed plan and its execution, and an
agent's memory shown with its provenance. What `haggler forget` and `haggler memory` run.

The engine is `haggler.memory.forgetting`; this module joins it to the store's runs (whose
critic re-derives feedback), to the unlearner that reads words, and to the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haggler.errors import ConfigError
from haggler.memory import AgentMemory, MemoryItem
from haggler.memory.forgetting import (
    ForgetPlan,
    ForgetResult,
    Rederiver,
    carry_out,
    load_agents,
    plan_forget,
)
from haggler.memory.forgetting.requests import Scope
from haggler.store.sqlite import Store

__all__ = [
    "Forgotten",
    "ReadRequest",
    "carry_out_for",
    "forget",
    "memory_table",
    "memory_tree",
    "read_request",
]


@dataclass
class ReadRequest:
    """A request read from words and planned over the memories it covers."""

    plan: ForgetPlan
    memories: dict[str, AgentMemory]
    # What reading the words cost (an LLM unlearner's calls).
    calls: int = 0
    cost_usd: float = 0.0


async def read_request(
    store: Store,
    agent: str,
    words: str,
    *,
    level: str | None = None,
    mode: str | None = None,
    purge_record: bool = False,
    unlearner: str = "rule",
) -> ReadRequest:
    """`words` about `agent`'s memory (a name, a prefix of names, or *) as a plan.

    The words may choose the mode (`redact $8`) and ask to purge the record; a `mode` given
    here must agree with them, and `purge_record` purges whatever they say."""
    _check_choices(level, mode)
    from haggler.agents.unlearner import LLMUnlearner, RuleUnlearner
    from haggler.llm.providers import open_backend

    memories = load_agents([agent], store=store)
    backend = None
    try:
        if unlearner == "rule":
            reader: Any = RuleUnlearner()
        else:
            backend = open_backend(unlearner)
            reader = LLMUnlearner(backend)
        read = await reader.plan(words, memories=memories, store=store, level=level, mode=mode)
    finally:
        if backend is not None:
            await backend.aclose()
    request = read.request
    scope = request.scope
    if scope.agents == ("*",) or not set(_owners(scope, memories)) <= set(memories):
        scope = scope.model_copy(update={"agents": tuple(memories)})
    request = request.model_copy(
        update={
            "scope": scope,
            "mode": mode or request.mode,
            "purge_record": purge_record or request.purge_record,
        }
    )
    plan = plan_forget(request, memories=memories, store=store)
    return ReadRequest(
        plan, memories, calls=getattr(read, "calls", 0), cost_usd=getattr(read, "cost_usd", 0.0)
    )


def _check_choices(level: str | None, mode: str | None) -> None:
    from haggler.memory.forgetting import LEVELS, MODES

    if level is not None and level not in LEVELS:
        raise ConfigError(f"level {level!r}: choose one of {', '.join(LEVELS)}")
    if mode is not None and mode not in MODES:
        raise ConfigError(f"mode {mode!r}: choose one of {', '.join(MODES)}")


def _owners(scope: Scope, memories: Mapping[str, AgentMemory]) -> list[str]:
    return [
        o
        for o in memories
        if any(o == a or o.startswith(a.rstrip("/") + "/") for a in scope.agents)
    ]


@dataclass
class Forgotten:
    """What `forget` did: the plan, as a dry run shows it, and its result (None for a dry run)."""

    plan: ForgetPlan
    description: str
    result: ForgetResult | None


async def forget(
    agent: str,
    request: Any,
    *,
    store: Store,
    level: str | None = None,
    mode: str | None = None,
    purge_record: bool = False,
    dry_run: bool = False,
    unlearner: str = "rule",
    vacuum: bool = False,
) -> Forgotten:
    """Make `agent` (a name, a prefix of names, or *) forget `request` — words for the
    unlearner, or a typed request (`haggler.memory.forgetting`) — as `haggler forget` does.

    `mode`, when given, is the request's mode (words that ask for another are refused; a typed
    request takes it); `purge_record` purges the record whatever the request says; `level`
    constrains how words are read (a typed request of another level is refused). Planned
    first; with `dry_run`, only planned. A request that selects nothing is a ConfigError, and
    nothing changes.
    """
    from haggler.memory.forgetting import describe_plan, parse_request

    if isinstance(request, str):
        read = await read_request(
            store, agent, request, level=level, mode=mode, purge_record=purge_record,
            unlearner=unlearner,
        )  # fmt: skip
    else:
        _check_choices(level, mode)
        typed = parse_request(request) if isinstance(request, dict) else request
        if level is not None and typed.level != level:
            raise ConfigError(f"level {level!r} was asked for, but the request is {typed.level}")
        memories = load_agents([agent], store=store)
        typed = typed.model_copy(
            update={
                "scope": typed.scope.model_copy(update={"agents": tuple(memories)}),
                "mode": mode or typed.mode,
                "purge_record": purge_record or typed.purge_record,
            }
        )
        read = ReadRequest(plan_forget(typed, memories=memories, store=store), memories)
    if read.plan.is_empty():
        raise ConfigError(
            f"the request selects nothing in the memory of {agent!r}; check the words "
            "(docs/forgetting.md) or name another agent"
        )
    description = describe_plan(read.plan, read.memories)
    if dry_run:
        return Forgotten(read.plan, description, None)
    return Forgotten(read.plan, description, await carry_out_for(store, read, vacuum=vacuum))


async def carry_out_for(store: Store, read: ReadRequest, *, vacuum: bool = False) -> ForgetResult:
    """Carry out a read request; rederive mode re-makes feedback with each agent's critic."""
    rederive = None
    if read.plan.request.mode == "rederive":
        rederive = await _rederiver(store, read.plan, read.memories)
    try:
        return await carry_out(
            read.plan, memories=read.memories, store=store, rederive=rederive, vacuum=vacuum
        )
    finally:
        if rederive is not None:
            await rederive.aclose()  # type: ignore[attr-defined]


class _ByOwner:
    """A rederiver per agent: each agent's feedback is re-made by its own run's critic."""

    def __init__(self, by_item: dict[str, Rederiver], casts: list[Any]) -> None:
        self.by_item = by_item
        self.casts = casts

    async def __call__(self, feedback: MemoryItem, episode: MemoryItem, advice: Any) -> Any:
        return await self.by_item[feedback.owner](feedback, episode, advice)

    async def aclose(self) -> None:
        for cast in self.casts:
            await cast.aclose()


async def _rederiver(
    store: Store, plan: ForgetPlan, memories: Mapping[str, AgentMemory]
) -> _ByOwner:
    from haggler.games.registry import make_game
    from haggler.games.remembered import rederiver
    from haggler.run.cast import Cast
    from haggler.run.experiment import feedback_source
    from haggler.run.spec import SelfPlaySpec

    by_owner: dict[str, Rederiver] = {}
    casts: list[Any] = []
    runs = store.runs()
    for owner_plan in plan.owners:
        if not owner_plan.rederive:
            continue
        owner = owner_plan.owner
        parts = owner.split("/")
        run = next(
            (
                r
                for r in reversed(runs)
                if r.kind == "selfplay" and parts[0] in (r.id, r.spec.get("agent"))
            ),
            None,
        )
        if run is None or len(parts) != 4:
            raise ConfigError(
                f"rederive re-makes {owner!r}'s feedback with its critic, but no self-play run "
                "of this store made that memory; choose --mode exact or redact"
            )
        spec = SelfPlaySpec.model_validate(run.spec)
        game = make_game(spec.game, spec.rules)
        cast = Cast(spec, game)
        casts.append(cast)
        by_owner[owner] = rederiver(game, feedback_source(spec, cast, parts[1]), seed=spec.seed)
    return _ByOwner(by_owner, casts)


# -- showing a memory ------------------------------------------------------------------------


def memory_table(store: Store, agents: list[str]) -> Any:
    """Every agent named (or all) with the size of its memory."""
    from rich.table import Table

    table = Table(title="agents with memory", title_justify="left")
    for column in ("agent", "items", "tokens"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for owner, (items, tokens) in store.memory_sizes(agents).items():
        table.add_row(_inert(owner), str(items), str(tokens))
    return table


def memory_tree(memory: AgentMemory) -> Any:
    """`memory` as a tree of provenance: each item under the newest item it came from, the
    other sources named beside it."""
    from rich.tree import Tree

    root = Tree(
        f"[bold]{_inert(memory.owner)}[/]: {len(memory)} items, "
        f"{sum(i.tokens for i in memory)} tokens (estimated)"
    )
    nodes: dict[str, Any] = {}
    for item in memory:
        parent = nodes.get(item.sources[-1]) if item.sources else None
        node = (parent or root).add(_line(item, memory))
        nodes[item.id] = node
    return root


def _line(item: MemoryItem, memory: AgentMemory) -> str:
    where = f"round {item.round}, " if item.round is not None else ""
    env = item.env
    tags = f", tags {', '.join(item.tags)}" if item.tags else ""
    others = [
        f"{s[-8:]} ({r})"
        for s, r in item.relations.items()
        if s != (item.sources[-1] if item.sources else None)
    ]
    also = f"; also from {', '.join(others)}" if others else ""
    via = f" ({item.relations[item.sources[-1]]})" if item.sources else ""
    game = f", game {item.episode_id}" if item.episode_id else ""
    return _inert(
        f"{item.id} {item.kind}{via}: {where}{item.tokens} tokens, {env.game}"
        f"{'/' + env.item if env.item else ''}{' vs ' + env.counterpart if env.counterpart else ''}"
        f"{game}{tags}{also}"
    )


def _inert(text: str) -> str:
    """Text from a model or a file, safe to print: markup escaped, control characters and
    bidirectional overrides shown escaped (as the dry run shows them)."""
    from rich.markup import escape

    from haggler.memory.forgetting.dry_run import inert

    return escape("\n".join(inert(line, limit=len(line)) for line in text.split("\n")))
