"""From a request to a plan: which items it hits, and what each mode does to them.

A plan is worked out before anything changes, so it can be shown as a dry run (counts and
samples) and carried out as one transaction. Planning reads only the items a request can
reach: by episode, environment field or tag through the memory's indexes; a fact (state level)
is looked for in every item in scope.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from haggler.errors import ConfigError, StoreError
from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.facts import (
    Span,
    fact_spans,
    fragment_spans,
    fragments_of,
    lines_by,
    scrub,
    states,
    term_spans,
)
from haggler.memory.forgetting.requests import (
    EnvironmentRequest,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
)
from haggler.memory.items import Environment, MemoryItem
from haggler.memory.tokens import estimate_tokens

if TYPE_CHECKING:
    from haggler.store.sqlite import Store

__all__ = ["ForgetPlan", "OwnerPlan", "RecordPlan", "plan_forget", "resolve_agents"]

Request = StateRequest | TrajectoryRequest | EnvironmentRequest


@dataclass
class OwnerPlan:
    """What a request does to one agent's memory."""

    owner: str
    hits: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    # New versions of kept items: scrubbed content (and meta), links to deleted items cut.
    rewrite: dict[str, MemoryItem] = field(default_factory=dict)
    # Feedback to be made again from what remains (rederive mode), oldest first.
    rederive: list[str] = field(default_factory=list)
    # What the forgotten content is scrubbed from a text with (redact and rederive modes).
    scrub_text: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    @property
    def touched(self) -> int:
        return len(self.delete) + len(self.rewrite) + len(self.rederive)


@dataclass
class RecordPlan:
    """What a request does to the experiment's record, when `purge_record` is asked for."""

    # Games deleted whole (turns and critiques with them), leaving a tombstone.
    delete_episodes: list[str] = field(default_factory=list)
    # Games whose texts are scrubbed; None: every game of the store.
    scrub_episodes: list[str] | None = field(default_factory=list)
    # How a text of the record is scrubbed, and which turns are blanked whole (a span).
    scrub_text: Callable[[str], str] | None = None
    blank_turns: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Games whose every text goes (redacting a whole game keeps its numbers, not its words).
    blank_episodes: list[str] = field(default_factory=list)


@dataclass
class ForgetPlan:
    request: Request
    owners: list[OwnerPlan]
    record: RecordPlan | None = None

    def counts(self) -> dict[str, int]:
        counts = {
            "agents": len([o for o in self.owners if o.touched]),
            "hit": sum(len(o.hits) for o in self.owners),
            "deleted": sum(len(o.delete) for o in self.owners),
            "redacted": sum(len(o.rewrite) for o in self.owners),
            "rederived": sum(len(o.rederive) for o in self.owners),
        }
        if self.record is not None:
            counts["games_purged"] = len(self.record.delete_episodes)
        return counts

    def fingerprint(self) -> str:
        """A hash of what the plan changes (ids only): the audit's name for it."""
        body = json.dumps(
            [
                [o.owner, sorted(o.delete), sorted(o.rewrite), sorted(o.rederive)]
                for o in self.owners
            ]
            + [sorted(self.record.delete_episodes) if self.record else []],
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()

    def is_empty(self) -> bool:
        """True when the plan changes nothing: no item, and no game of the record (a fact's
        scrubbing of the record is counted only when carried out)."""
        in_record = self.record is not None and bool(
            self.record.delete_episodes
            or self.record.blank_episodes
            or self.record.blank_turns
            or self.record.scrub_text
        )
        return not any(o.touched for o in self.owners) and not in_record


def resolve_agents(
    names: Iterable[str], *, store: Store | None, memories: Mapping[str, AgentMemory]
) -> list[str]:
    """The owners `names` stand for: `*` every agent; a name itself, or the agents under it
    (`shop` -> `shop/ai/0/seller`, ...). An unknown name is a ConfigError."""
    known = set(memories)
    if store is not None:
        known |= set(store.memory_owners())
    chosen: dict[str, None] = {}
    for name in names:
        if name == "*":
            found = sorted(known)
        elif name in known:
            found = [name]
        else:
            found = sorted(o for o in known if o.startswith(name.rstrip("/") + "/"))
        if not found:
            sample = ", ".join(sorted(known)[:5]) or "none"
            raise ConfigError(
                f"no agent {name!r} holds memory here (agents: {sample}"
                f"{', …' if len(known) > 5 else ''}); list them with `haggler memory`"
            )
        chosen.update(dict.fromkeys(found))
    return list(chosen)


def plan_forget(
    request: Request,
    *,
    memories: Mapping[str, AgentMemory],
    store: Store | None = None,
) -> ForgetPlan:
    """The plan for `request` over `memories` (every agent in the request's scope, loaded)."""
    episodes_in_scope = _scope_episodes(request, store, memories)
    owners = []
    for memory in memories.values():
        candidates = _in_scope(request, memory, episodes_in_scope)
        hits, spans = _hits(request, memory, candidates, store)
        owners.append(_owner_plan(request, memory, hits, spans))
    plan = ForgetPlan(request, owners)
    if request.purge_record:
        plan.record = _record_plan(request, plan, memories, store, episodes_in_scope)
    return plan


# -- scope -----------------------------------------------------------------------------------


def _scope_episodes(
    request: Request, store: Store | None, memories: Mapping[str, AgentMemory]
) -> set[str] | None:
    """The games a request's scope (or trajectory) narrows to; None when it does not."""
    scope = request.scope
    games: set[str] | None = None

    def narrow(found: set[str]) -> None:
        nonlocal games
        games = found if games is None else games & found

    if scope.episode is not None:
        narrow({_resolve_episode(store, scope.episode, memories)})
    if scope.lineage is not None:
        narrow(set(_lineage_episodes(store, scope.lineage, None)))
    if isinstance(request, TrajectoryRequest):
        if request.episode is not None:
            narrow({_resolve_episode(store, request.episode, memories)})
        else:
            assert request.lineage is not None
            narrow(set(_lineage_episodes(store, request.lineage, request.rounds)))
    return games


def _resolve_episode(store: Store | None, ref: str, memories: Mapping[str, AgentMemory]) -> str:
    """The game `ref` names: in the record, or (a game whose record is gone, or was never
    kept, as in a tournament's memory) among the games the memories remember."""
    if store is not None:
        try:
            return store.resolve_episode(ref)
        except StoreError:
            pass
    remembered = {
        item.episode_id
        for memory in memories.values()
        for item in memory.of_episode_prefix(ref)
        if item.episode_id
    }
    if ref in remembered or len(remembered) == 1:
        return ref if ref in remembered else next(iter(remembered))
    if remembered:
        raise ConfigError(f"game {ref!r} is ambiguous; give more of its id")
    raise ConfigError(f"no game {ref!r} in the record or in the memories asked about")


def _lineage_episodes(store: Store | None, ref: str, rounds: Iterable[int] | None) -> list[str]:
    if store is None:
        raise ConfigError("a lineage is found through the store: open the store to forget one")
    lineage = store.resolve_lineage(ref)
    played = store.lineage_episodes(lineage)
    if rounds is not None:
        wanted = set(rounds)
        missing = sorted(wanted - {r for r, _ in played})
        if missing:
            raise ConfigError(
                f"lineage {lineage} played no round {missing[0]}; its rounds: "
                f"{', '.join(str(r) for r in sorted({r for r, _ in played})) or 'none'}"
            )
        played = [(r, e) for r, e in played if r in wanted]
    return [episode for _, episode in played]


def _in_scope(request: Request, memory: AgentMemory, episodes: set[str] | None) -> list[MemoryItem]:
    if episodes is not None:
        found = {item.id: item for e in episodes for item in memory.of_episode(e)}
        pool = [found[i] for i in sorted(found, key=memory.position)]
    elif request.scope.game is not None:
        pool = memory.items(env=Environment(request.scope.game))
    else:
        pool = list(memory)
    if request.scope.game is not None:
        pool = [item for item in pool if item.env.game == request.scope.game]
    return pool


# -- hits ------------------------------------------------------------------------------------


def _hits(
    request: Request,
    memory: AgentMemory,
    candidates: list[MemoryItem],
    store: Store | None,
) -> tuple[list[MemoryItem], dict[str, list[Span]]]:
    """The items the request hits, and for partial hits the spans of them it names."""
    if isinstance(request, StateRequest):
        spans: dict[str, list[Span]] = {}
        for item in candidates:
            found = _fact_spans_in(request, item)
            # An item's meta is part of it, and its summary stands in for it in a prompt.
            if found or (request.said_by is None and _in_meta(request, item.meta)):
                spans[item.id] = found
        return [item for item in candidates if item.id in spans], spans
    if isinstance(request, TrajectoryRequest):
        if request.turns is None:
            return candidates, {}
        spans = {}
        for item in candidates:
            if item.kind == "episode":
                spans[item.id] = _turn_spans(item, request.turns)
        return [item for item in candidates if item.id in spans], spans
    return [item for item in candidates if _in_environment(request, item)], {}


def _fact_spans_in(request: StateRequest, item: MemoryItem) -> list[Span]:
    found = fact_spans(request.fact, item.content)
    if request.said_by is None:
        return found
    if item.kind != "episode":
        return []
    lines = lines_by(item.content, request.said_by)
    return [s for s in found if any(a <= s[0] and s[1] <= b for a, b in lines)]


def _in_meta(request: StateRequest, value: Any) -> bool:
    """Whether a string anywhere in `value` (an item's meta) states the fact."""
    if isinstance(value, str):
        return states(request.fact, value)
    if isinstance(value, Mapping):
        return any(_in_meta(request, entry) for entry in value.values())
    if isinstance(value, list | tuple):
        return any(_in_meta(request, entry) for entry in value)
    return False


def _turn_spans(item: MemoryItem, turns: tuple[int, int]) -> list[Span]:
    """Where the messages of turns `turns` (inclusive) stand in a remembered game."""
    from haggler.memory.transcript import read_transcript

    mapping = item.meta.get("turns")
    messages, _ = read_transcript(item.content)
    if not isinstance(mapping, list) or len(mapping) != len(messages):
        raise ConfigError(
            f"the memory of game {item.episode_id} does not say which message is which turn "
            "(it was made by an older haggler); forget the whole game instead"
        )
    return [
        (m.start, m.end)
        for m, turn in zip(messages, mapping, strict=True)
        if isinstance(turn, int) and turns[0] <= turn <= turns[1]
    ]


def _in_environment(request: EnvironmentRequest, item: MemoryItem) -> bool:
    env = item.env
    return (
        (request.game is None or env.game == request.game)
        and (request.item is None or env.item == request.item)
        and (request.counterpart is None or env.counterpart == request.counterpart)
        and (request.tag is None or request.tag in item.tags)
    )


# -- what each mode does ---------------------------------------------------------------------


def _owner_plan(
    request: Request,
    memory: AgentMemory,
    hits: list[MemoryItem],
    spans: dict[str, list[Span]],
) -> OwnerPlan:
    plan = OwnerPlan(memory.owner, hits=[item.id for item in hits])
    if not hits:
        return plan
    descendants = memory.descendants(plan.hits)
    if request.mode == "exact":
        plan.delete = [item.id for item in memory.closure(plan.hits)]
        return plan

    partial = isinstance(request, StateRequest) or (
        isinstance(request, TrajectoryRequest) and request.turns is not None
    )
    # What is scrubbed from the items kept: the fact itself, or the words of what is deleted.
    if isinstance(request, StateRequest):

        def spans_in(text: str) -> list[Span]:
            return fact_spans(request.fact, text)

    else:
        fragments: list[str] = []
        for item in hits:
            if item.id in spans:  # a span of turns: only those messages are forgotten
                source = "\n".join(item.content[a:b] for a, b in spans[item.id])
                fragments.extend(fragments_of(source))
            else:
                scripted = item.meta.get("scripted")
                skip = scripted if isinstance(scripted, int) else 0
                fragments.extend(fragments_of(item.content, skip=skip))
        terms = _environment_terms(request)

        def spans_in(text: str) -> list[Span]:
            return [*fragment_spans(fragments, text), *term_spans(terms, text)]

    deleted: set[str] = set()
    if not partial:
        deleted.update(plan.hits)
    rederive = request.mode == "rederive"
    hit = set(plan.hits)
    # Oldest first, hits among them: advice that itself states the fact is made again too.
    for item in sorted([*hits, *descendants], key=lambda i: memory.position(i.id)):
        if item.id in deleted:
            continue
        about = [s for s, r in item.relations.items() if r == "about"]
        if rederive and item.kind == "note" and item.id not in hit:
            deleted.add(item.id)
        elif rederive and item.kind == "feedback" and not any(a in deleted for a in about):
            plan.rederive.append(item.id)
        elif item.kind == "feedback" and any(a in deleted for a in about):
            # Advice on a game that is gone cannot stand alone, in any mode.
            deleted.add(item.id)
    for item in [*hits, *descendants]:
        if item.id in deleted:
            continue
        own = spans.get(item.id, []) if item.id in spans else spans_in(item.content)
        new = _scrubbed(item, own, spans_in, request, deleted)
        if new is not None:
            plan.rewrite[item.id] = new
    plan.delete = sorted(deleted, key=memory.position)
    if isinstance(request, StateRequest):
        # Advice made again must not state the fact again (a critic's stock phrase, a pool of
        # suggestions). A game's or environment's words are another matter: the critic, reading
        # only what remains, may say a stock sentence it also said about what is gone.
        plan.scrub_text = lambda text: scrub(text, spans_in(text))
    return plan


def _scrubbed(
    item: MemoryItem,
    own: list[Span],
    spans_in: Callable[[str], list[Span]],
    request: Request,
    deleted: set[str],
) -> MemoryItem | None:
    """`item` with the forgotten content scrubbed and links to deleted items cut; None if
    nothing changes."""
    content = scrub(item.content, own) if own else item.content
    meta = _scrubbed_meta(item.meta, spans_in, request)
    sources = tuple(s for s in item.sources if s not in deleted)
    if content == item.content and meta == dict(item.meta) and sources == item.sources:
        return None
    return replace(
        item,
        content=content,
        meta=meta,
        tokens=estimate_tokens(content),
        sources=sources,
        relations={s: item.relations[s] for s in sources},
    )


def _scrubbed_meta(
    meta: Mapping[str, Any], spans_in: Callable[[str], list[Span]], request: Request
) -> dict[str, Any]:
    # Strings lose the forgotten content; a number that is the forgotten value goes too (an
    # episode's price would otherwise set the next goal at the forgotten amount).
    value = (
        request.fact.value
        if isinstance(request, StateRequest) and isinstance(request.fact, ValueFact)
        else None
    )

    def scrubbed(entry: Any) -> Any:
        # Strings wherever they sit: a summary, a list of notes, a nested record.
        if isinstance(entry, str):
            found = spans_in(entry)
            return scrub(entry, found) if found else entry
        if isinstance(entry, Mapping):
            return {key: scrubbed(inner) for key, inner in entry.items()}
        if isinstance(entry, list):
            return [scrubbed(inner) for inner in entry]
        return entry

    out: dict[str, Any] = {}
    for key, entry in meta.items():
        if value is not None and isinstance(entry, int | float) and not isinstance(entry, bool):
            out[key] = None if abs(float(entry) - value) < 0.005 else entry
        else:
            out[key] = scrubbed(entry)
    return out


def _environment_terms(request: Request) -> list[str]:
    if not isinstance(request, EnvironmentRequest):
        return []
    return [t for t in (request.item, request.counterpart) if t]


# -- the record ------------------------------------------------------------------------------


def _record_plan(
    request: Request,
    plan: ForgetPlan,
    memories: Mapping[str, AgentMemory],
    store: Store | None,
    episodes_in_scope: set[str] | None,
) -> RecordPlan:
    if store is None:
        raise ConfigError("purging the record needs the store that holds it")
    record = RecordPlan()
    hit_games = sorted(
        {memories[o.owner].get(i).episode_id or "" for o in plan.owners for i in o.hits} - {""}
    )
    if isinstance(request, StateRequest):
        fact = request.fact
        record.scrub_text = lambda text: scrub(text, fact_spans(fact, text))
        every_agent = request.scope.agents == ("*",)
        if episodes_in_scope is not None:
            record.scrub_episodes = sorted(episodes_in_scope)
        elif every_agent and request.scope.game is None:
            record.scrub_episodes = None  # the whole store
        else:
            # The games the agents in scope remember, within the scope's game if it names one.
            game = request.scope.game
            record.scrub_episodes = sorted(
                {
                    i.episode_id
                    for m in memories.values()
                    for i in (m.items(env=Environment(game)) if game else m)
                    if i.episode_id
                }
            )
        return record
    if isinstance(request, TrajectoryRequest):
        games = sorted(episodes_in_scope or set())
        if request.turns is not None:
            record.blank_turns = {game: request.turns for game in games}
        elif request.mode == "redact":
            record.blank_episodes = games
        else:
            record.delete_episodes = games
        return record
    if request.mode == "redact":
        record.blank_episodes = hit_games
    else:
        record.delete_episodes = hit_games
    return record
