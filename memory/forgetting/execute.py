"""Carrying out a plan: memories and store changed together, the record purged on request, the
files erased, and an audit row written (counts and hashes, never the forgotten content).

Re-derived feedback is made before anything changes (it may call a model), then every change
lands in one store transaction; the memories in this process follow only once it committed, so
a failure leaves memory and store as they were.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.plan import ForgetPlan, OwnerPlan
from haggler.memory.forgetting.requests import StateRequest, TrajectoryRequest
from haggler.memory.items import MemoryItem
from haggler.memory.tokens import estimate_tokens
from haggler.store.records import ForgettingRecord

if TYPE_CHECKING:
    from haggler.store.sqlite import Store

__all__ = ["ForgetResult", "Rederived", "Rederiver", "Where", "carry_out"]


@dataclass(frozen=True, slots=True)
class Rederived:
    """Feedback made again from what remains, and what making it cost."""

    text: str
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


# Makes a piece of feedback again: (the old feedback, the game it is about as it now stands,
# the advice that stays in the critic's context) -> new feedback, or None when the feedback
# source gives none for that game.
Rederiver = Callable[[MemoryItem, MemoryItem, Sequence[MemoryItem]], Awaitable[Rederived | None]]


@dataclass(frozen=True, slots=True)
class Where:
    """Where a forget request ran, when a run scheduled it."""

    run_id: str | None = None
    lineage_id: str | None = None
    after_round: int | None = None


@dataclass
class ForgetResult:
    forgetting_id: str
    counts: dict[str, float]
    # The database file and its WAL no longer hold removed bytes; None without a store.
    erased: bool | None
    owners: list[str] = field(default_factory=list)
    # The audit row: written to the store when there is one; a tournament, which stores a
    # lineage only when it ends, writes it then.
    record: ForgettingRecord | None = None


def _target(plan: ForgetPlan) -> str:
    request = plan.request
    if isinstance(request, StateRequest):
        return request.fact.kind
    if isinstance(request, TrajectoryRequest):
        if request.turns is not None:
            return "span"
        return "game" if request.episode is not None else "lineage"
    return "environment"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


async def carry_out(
    plan: ForgetPlan,
    *,
    memories: Mapping[str, AgentMemory],
    store: Store | None = None,
    rederive: Rederiver | None = None,
    erase: bool = True,
    vacuum: bool = False,
    where: Where | None = None,
) -> ForgetResult:
    """Apply `plan` to `memories` (and `store`); returns what was done."""
    if (
        plan.request.mode == "rederive"
        and rederive is None
        and any(o.rederive for o in plan.owners)
    ):
        from haggler.errors import ConfigError

        raise ConfigError(
            "rederive mode re-makes feedback with the agent's critic; give one (rederive=...) "
            "or choose exact or redact"
        )
    counts: dict[str, float] = {"calls": 0, "tokens": 0, "cost_usd": 0.0, **plan.counts()}
    made: dict[str, dict[str, MemoryItem]] = {}
    dropped: dict[str, list[str]] = {}
    for owner_plan in plan.owners:
        memory = memories[owner_plan.owner]
        made[owner_plan.owner], dropped[owner_plan.owner] = await _rederive(
            owner_plan, memory, rederive, counts
        )
    hashes = sorted(
        _sha(memories[o.owner].get(i).content)
        for o in plan.owners
        for i in [*o.delete, *o.rewrite, *o.rederive]
    )
    record = ForgettingRecord(
        id=f"fgt-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}",
        created_at=time.time(),
        level=plan.request.level,
        mode=plan.request.mode,
        target=_target(plan),
        owners=[o.owner for o in plan.owners if o.touched],
        purge_record=plan.request.purge_record,
        run_id=where.run_id if where else None,
        lineage_id=where.lineage_id if where else None,
        after_round=where.after_round if where else None,
        counts=counts,
        hashes=hashes,
        plan_sha256=plan.fingerprint(),
    )
    final: dict[str, tuple[list[str], list[MemoryItem]]] = {}
    for owner_plan in plan.owners:
        owner = owner_plan.owner
        gone = [*owner_plan.delete, *dropped[owner]]
        rewritten = {**owner_plan.rewrite, **made[owner]}
        final[owner] = (gone, [_cut(item, set(gone)) for item in rewritten.values()])
    if store is not None:
        with store.atomic():
            # The audit row first: the record's tombstones name it.
            store.add_forgetting(record)
            for owner, (gone, rewritten) in final.items():
                if gone:
                    store.delete_memory(owner, gone, cut_links=True)
                for item in rewritten:
                    store.rewrite_memory(item.to_record())
            if plan.record is not None:
                _purge(plan, store, record.id, counts)
            store.set_forgetting_counts(record.id, counts)
        record.counts = counts
    for owner, (gone, rewritten) in final.items():
        memory = memories[owner]
        memory.drop(gone, cut_links=True)
        for item in rewritten:
            memory.put(item)
    erased: bool | None = None
    if store is not None and erase:
        erased = store.erase(vacuum=vacuum)
        if erased:
            store.mark_erased(record.id)
    return ForgetResult(record.id, counts, erased, record.owners, record)


async def _rederive(
    owner_plan: OwnerPlan,
    memory: AgentMemory,
    rederive: Rederiver | None,
    counts: dict[str, float],
) -> tuple[dict[str, MemoryItem], list[str]]:
    """Feedback made again, oldest first, each seeing the advice re-made before it; and the
    feedback that the source no longer gives (to delete)."""
    made: dict[str, MemoryItem] = {}
    dropped: list[str] = []
    if rederive is None or not owner_plan.rederive:
        return made, dropped
    gone = set(owner_plan.delete)

    def current(item_id: str) -> MemoryItem:
        return made.get(item_id) or owner_plan.rewrite.get(item_id) or memory.get(item_id)

    for feedback_id in owner_plan.rederive:
        old = current(feedback_id)
        about = [s for s, r in old.relations.items() if r == "about" and s not in gone]
        advice = [current(s) for s, r in old.relations.items() if r == "context" and s not in gone]
        episode = current(about[-1])
        new = await rederive(old, episode, advice)
        if new is None:
            dropped.append(feedback_id)
            gone.add(feedback_id)
            continue
        counts["calls"] += new.calls
        counts["tokens"] += new.tokens
        counts["cost_usd"] += new.cost_usd
        text = owner_plan.scrub_text(new.text) if owner_plan.scrub_text else new.text
        meta: dict[str, Any] = dict(old.meta) | {
            "rederived": True,
            "tokens": new.tokens,
            "cost_usd": new.cost_usd,
        }
        made[feedback_id] = replace(old, content=text, tokens=estimate_tokens(text), meta=meta)
    return made, dropped


def _cut(item: MemoryItem, gone: set[str]) -> MemoryItem:
    sources = tuple(s for s in item.sources if s not in gone)
    if sources == item.sources:
        return item
    return replace(item, sources=sources, relations={s: item.relations[s] for s in sources})


def _purge(plan: ForgetPlan, store: Store, forgetting_id: str, counts: dict[str, float]) -> None:
    purge = plan.record
    assert purge is not None
    if purge.delete_episodes:
        counts["games_purged"] = store.purge_episodes(purge.delete_episodes, forgetting_id)
    scrubbed = store.scrub_record(
        episodes=purge.scrub_episodes,
        rewrite=purge.scrub_text,
        blank_turns=purge.blank_turns,
        blank_episodes=purge.blank_episodes,
    )
    for key, value in scrubbed.items():
        counts[f"record_{key}_scrubbed"] = value
