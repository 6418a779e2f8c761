"""A plan shown to people before it is carried out: what would be deleted, redacted and
re-derived in each agent's memory, with counts and a few short samples, and what would happen
to the experiment's record.

The text is plain and inert: whatever a model wrote into memory (control characters, terminal
escapes, bidirectional overrides, unpaired surrogates) is shown escaped, never acted on. It is
meant for a terminal or a log; a renderer that reads markup must print it as plain text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.plan import ForgetPlan, OwnerPlan, RecordPlan
from haggler.memory.forgetting.requests import (
    PLACEHOLDER,
    EnvironmentRequest,
    NameFact,
    PhraseFact,
    Scope,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
)
from haggler.memory.items import MemoryItem

__all__ = ["describe_plan", "describe_request", "inert"]

Request: TypeAlias = StateRequest | TrajectoryRequest | EnvironmentRequest
# Character classes shown escaped: control, format (bidi overrides, zero-width), surrogate,
# private-use, unassigned, and line or paragraph separators.
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def inert(text: str, limit: int = 60) -> str:
    """`text` on one line, cut to about `limit` characters, every invisible or controlling
    character escaped (\\n, \\x1b, \\u202e, ...)."""
    cut = text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
    out = []
    for char in cut:
        if unicodedata.category(char) in _HIDDEN:
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def describe_request(request: Request) -> str:
    """The request in one line of words: what, where, at which level and in which mode."""
    if isinstance(request, StateRequest):
        what = _fact(request.fact)
        if request.said_by:
            what += f" said by the {inert(request.said_by, 40)}"
    elif isinstance(request, TrajectoryRequest):
        if request.episode is not None:
            what = f"game {inert(request.episode)}"
            if request.turns is not None:
                what = f"turns {request.turns[0]}-{request.turns[1]} of {what}"
        elif request.rounds is not None:
            rounds = ", ".join(str(r) for r in request.rounds)
            noun = "round" if len(request.rounds) == 1 else "rounds"
            what = f"{noun} {rounds} of lineage {inert(str(request.lineage))}"
        else:
            what = f"lineage {inert(str(request.lineage))}"
    else:
        parts = [
            f"{name} {inert(str(value), 40)}"
            for name, value in (
                ("game", request.game),
                ("item", request.item),
                ("counterpart", request.counterpart),
                ("tag", request.tag),
            )
            if value
        ]
        what = "everything from " + ", ".join(parts)
    record = "; the record purged too" if request.purge_record else ""
    return (
        f"forget {what}{_where(request.scope)} ({request.level} level, {request.mode} mode{record})"
    )


def describe_plan(
    plan: ForgetPlan, memories: Mapping[str, AgentMemory], *, samples: int = 3
) -> str:
    """The dry run of `plan` over `memories` (the agents it was planned for), as text."""
    counts = plan.counts()
    lines = [
        "Dry run: nothing changes until the plan is carried out.",
        f"Request: {describe_request(plan.request)}.",
    ]
    if plan.is_empty():
        lines.append(
            f"Nothing in the memory of the {len(plan.owners)} agent(s) in scope matches: "
            "no item would change."
        )
    else:
        lines.append(
            f"It hits {counts['hit']} item(s) of {counts['agents']} agent(s); it would delete "
            f"{counts['deleted']}, redact {counts['redacted']} and re-derive "
            f"{counts['rederived']}."
        )
    untouched = 0
    for owner in plan.owners:
        if not owner.touched:
            untouched += 1
            continue
        lines.extend(_owner(owner, memories[owner.owner], samples))
    if untouched and not plan.is_empty():
        lines.append(f"{untouched} other agent(s) in scope: nothing hit.")
    lines.extend(_record(plan.record, plan.request, samples))
    return "\n".join(lines)


def _owner(plan: OwnerPlan, memory: AgentMemory, samples: int) -> list[str]:
    lines = [
        f"{inert(plan.owner, 80)}: {len(plan.hits)} hit; delete {len(plan.delete)}, redact "
        f"{len(plan.rewrite)}, re-derive {len(plan.rederive)}"
    ]
    hit = set(plan.hits)
    for action, ids in (("delete", plan.delete), ("redact", list(plan.rewrite))):
        for item_id in ids[:samples]:
            item = memory.get(item_id)
            why = "" if item_id in hit else "  (made under its influence)"
            if action == "delete":
                sample = f'"{inert(item.content)}"'
            else:
                sample = _redaction(item, plan.rewrite[item_id])
            lines.append(f"  {action:<9} {_label(item)}  {sample}{why}")
        if len(ids) > samples:
            lines.append(f"  … and {len(ids) - samples} more to {action}")
    for item_id in plan.rederive[:samples]:
        item = memory.get(item_id)
        lines.append(
            f"  {'re-derive':<9} {_label(item)}  (its critic re-run on the game as it will stand)"
        )
    if len(plan.rederive) > samples:
        lines.append(f"  … and {len(plan.rederive) - samples} more to re-derive")
    return lines


def _label(item: MemoryItem) -> str:
    parts = [f"{item.kind:<8}"]
    if item.round is not None:
        parts.append(f"round {item.round}")
    parts.append(inert(item.env.game, 30))
    if item.episode_id:
        parts.append(inert(item.episode_id, 40))
    return " ".join(parts)


def _redaction(old: MemoryItem, new: MemoryItem) -> str:
    """Where the kept item changes, shown as it will read (the forgotten text is not shown)."""
    if new.content == old.content:
        if dict(new.meta) != dict(old.meta):
            return "(its notes on the game scrubbed)"
        return "(its links to deleted items cut)"
    at = new.content.find(PLACEHOLDER)
    if at < 0:
        return f'now "{inert(new.content)}"'
    start = max(0, at - 25)
    window = new.content[start : at + len(PLACEHOLDER) + 25]
    places = new.content.count(PLACEHOLDER)
    lead = "…" if start else ""
    return f'now "{lead}{inert(window, 80)}…" ({places} place{"s" if places != 1 else ""})'


def _record(record: RecordPlan | None, request: Request, samples: int) -> list[str]:
    if record is None:
        return ["Record: left as it is (ask to purge the record to scrub it too)."]
    lines = []
    if record.delete_episodes:
        lines.append(
            f"Record: delete {len(record.delete_episodes)} game(s) with their turns and "
            f"critiques, leaving a tombstone: {_ids(record.delete_episodes, samples)}"
        )
    if record.blank_episodes:
        lines.append(
            f"Record: blank every text of {len(record.blank_episodes)} game(s), keeping their "
            f"prices and outcomes: {_ids(record.blank_episodes, samples)}"
        )
    if record.blank_turns:
        spans = sorted({f"{a}-{b}" for a, b in record.blank_turns.values()})
        lines.append(
            f"Record: blank turns {', '.join(spans)} of {len(record.blank_turns)} game(s): "
            f"{_ids(sorted(record.blank_turns), samples)}"
        )
    if record.scrub_text is not None:
        where = (
            "every game of the store"
            if record.scrub_episodes is None
            else f"{len(record.scrub_episodes)} game(s)"
        )
        lines.append(f"Record: scrub the fact from the turns and critiques of {where}.")
    return lines or ["Record: nothing in it to purge."]


def _ids(ids: Sequence[str], samples: int) -> str:
    shown = ", ".join(inert(i, 40) for i in ids[:samples])
    return shown + (f", … ({len(ids) - samples} more)" if len(ids) > samples else "")


def _fact(fact: object) -> str:
    if isinstance(fact, ValueFact):
        from haggler.agents.prices import format_price

        return f"the value {format_price(fact.value)}"
    if isinstance(fact, NameFact):
        return f'the name "{inert(fact.name, 60)}"'
    if isinstance(fact, PhraseFact):
        return f'the phrase "{inert(fact.text, 60)}"'
    return f"text matching /{inert(getattr(fact, 'regex', ''), 80)}/"


def _where(scope: Scope) -> str:
    parts = []
    if scope.episode:
        parts.append(f"in game {inert(scope.episode)}")
    if scope.lineage:
        parts.append(f"in lineage {inert(scope.lineage)}")
    if scope.game:
        parts.append(f"in {inert(scope.game, 30)} games")
    if scope.agents == ("*",):
        parts.append("for every agent")
    elif len(scope.agents) == 1:
        parts.append(f"for agent {inert(scope.agents[0], 80)}")
    else:
        parts.append(f"for {len(scope.agents)} agents")
    return " " + " ".join(parts)
