"""A small world of agents' memories to measure unlearners against, built offline and the same
every time (only ids differ from build to build; labels name items by what they are).

Four lineages of rule-based self-play in one store, three rounds each, with the rule critic:

    A  balloon, coached seller `shop/A/seller` (rule:boulware) against rule:linear
    B  diamond, coached seller `shop/B/seller` (rule:linear) against rule:tit-for-tat
    C  balloon, both coached: `shop/C/seller` (rule:conceder) against a candid buyer
       `shop/C/buyer` (label candid:linear) that talks about its budget: in round 1
       "My budget is $14, that's all I have.", in round 2 "Honestly, I can't pay more than
       $13.50." and "My name is Bertha, by the way."; in round 3 nothing of the kind.

plus hand-made notes (`NOTES`) carrying distinctive facts, names and tags. `World.select`
turns a hand-written label (`{lineage: A, round: 2, kind: episode}`, `{note: alice}`) into
the items it names, and `World.words` fills a request's `{ep:A2}` / `{lin:B}` placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haggler.agents.base import Negotiator, Reply, RoleView
from haggler.agents.critic import RuleCritic
from haggler.agents.moderator import RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.games.registry import make_game
from haggler.games.selfplay import AIFeedback, Lineage, SelfPlaySetup, play_lineage
from haggler.memory import AgentMemory, Environment
from haggler.store import Store

__all__ = ["NOTES", "World", "build_world"]

Key = tuple[str, str]  # (owner, item id)


@dataclass(frozen=True)
class _LineagePlan:
    key: str
    game: str
    seller: str
    buyer: str
    coached: tuple[str, ...]
    seed: int


LINEAGES = (
    _LineagePlan("A", "balloon", "boulware", "linear", ("seller",), 11),
    _LineagePlan("B", "diamond", "linear", "tit-for-tat", ("seller",), 22),
    _LineagePlan("C", "balloon", "conceder", "candid", ("seller", "buyer"), 33),
)

# What the candid buyer says, by round, before its first offer (and later in the game).
_CANDOUR = {
    1: {1: "My budget is $14, that's all I have."},
    2: {1: "Honestly, I can't pay more than $13.50.", 5: "My name is Bertha, by the way."},
}

# Hand-made notes: key -> (lineage whose memory holds it, role, content, env, tags).
NOTES: dict[str, tuple[str, str, str, Environment, tuple[str, ...]]] = {
    "alice": (
        "A", "seller", "Alice from Springfield paid $42 for a red balloon at the fair.",
        Environment("balloon", "balloon"), ("customer", "vip"),
    ),
    "zorblax": (
        "A", "seller", "The courier Zorblax-9 delivered the balloons late on Tuesday.",
        Environment("balloon", "balloon"), ("logistics",),
    ),
    "bertha": (
        "A", "seller", "Bertha haggles hard and walks away below $12.",
        Environment("balloon", "balloon", "Bertha"), ("market-day",),
    ),
    "final-offer": (
        "A", "seller", "Say 'my final offer' only once per game, or it stops meaning anything.",
        Environment("balloon", "balloon"), (),
    ),
    "supplier": (
        "B", "seller", "Supplier quote: diamonds cost $1,750 wholesale from Antwerp.",
        Environment("diamond", "diamond"), ("supplier", "secret-project"),
    ),
    "ring": (
        "B", "seller", "The ring for Dana must stay under $900.",
        Environment("diamond", "diamond"), ("secret-project", "vip"),
    ),
    "wallet": (
        "C", "buyer", "Budget reminder: keep $14 for the balloon and not a cent more.",
        Environment("balloon", "balloon"), ("budget",),
    ),
}  # fmt: skip


class CandidBuyer(Negotiator):
    """A rule-based buyer that also says things about itself, by round and turn."""

    role = "buyer"
    label = "candid:linear"

    def __init__(self, inner: Negotiator, said: Mapping[int, str]) -> None:
        self.inner = inner
        self.said = dict(said)
        self.spoken = 0

    async def respond(self, view: RoleView) -> Reply:
        reply = await self.inner.respond(view)
        self.spoken += 1
        extra = self.said.get(self.spoken)
        return Reply(f"{extra} {reply.text}", reply.completion) if extra else reply


@dataclass
class World:
    store: Store
    run_id: str
    memories: dict[str, AgentMemory]
    lineages: dict[str, str] = field(default_factory=dict)  # key -> lineage id
    episodes: dict[tuple[str, int], str] = field(default_factory=dict)  # (key, round) -> id
    owners: dict[str, list[str]] = field(default_factory=dict)  # key -> owners
    notes: dict[str, Key] = field(default_factory=dict)

    def memories_of(self, keys: Iterable[str] | None) -> dict[str, AgentMemory]:
        """The memories of lineages `keys` (every memory when None)."""
        if keys is None:
            return dict(self.memories)
        return {o: self.memories[o] for k in keys for o in self.owners[k]}

    def words(self, template: str) -> str:
        """`template` with `{ep:A2}` (a game's id), `{ep-short:A2}` (a prefix of it) and
        `{lin:A}` / `{lin-short:A}` filled in."""

        def fill(match: re.Match[str]) -> str:
            kind, ref = match.group(1), match.group(2)
            if kind.startswith("ep"):
                found = self.episodes[ref[0], int(ref[1:])]
            else:
                found = self.lineages[ref]
            return found[:-6] if kind.endswith("-short") else found

        return re.sub(r"\{(ep|ep-short|lin|lin-short):([A-Z]\d*)\}", fill, template)

    def select(self, label: Mapping[str, Any]) -> set[Key]:
        """The items one hand-written selector names."""
        if "note" in label:
            return {self.notes[str(label["note"])]}
        keys = [str(label["lineage"])] if "lineage" in label else list(self.owners)
        chosen: set[Key] = set()
        for key in keys:
            for owner in self.owners[key]:
                if "role" in label and not owner.endswith("/" + str(label["role"])):
                    continue
                for item in self.memories[owner]:
                    if "kind" in label and item.kind != label["kind"]:
                        continue
                    if "round" in label and item.round != int(label["round"]):
                        continue
                    if "game" in label and item.env.game != label["game"]:
                        continue
                    if item.kind == "note" and "kind" not in label:
                        continue  # notes are named one by one
                    chosen.add((owner, item.id))
        return chosen


async def build_world(path: Path) -> World:
    """Play the lineages and write the notes into a new store at `path` (left open)."""
    store = Store(path)
    run_id = store.start_run("selfplay", {"fixture": "unlearning-world"})
    world = World(store, run_id, {})
    for plan in LINEAGES:
        game = make_game(plan.game)
        memories = {role: AgentMemory(f"shop/{plan.key}/{role}", store) for role in plan.coached}
        rounds_played = 0

        def players(seed: int, plan: _LineagePlan = plan) -> dict[str, Negotiator]:
            nonlocal rounds_played
            rounds_played += 1
            # The labels were written for games of sellers that learn from advice alone, not
            # from the budget the candid buyer states.
            seller = RuleNegotiator(
                "seller", TACTICS.get(plan.seller)(), seed=seed, remembered_limits=False
            )
            if plan.buyer == "candid":
                inner = RuleNegotiator("buyer", TACTICS.get("linear")(), seed=seed)
                return {
                    "seller": seller,
                    "buyer": CandidBuyer(inner, _CANDOUR.get(rounds_played, {})),
                }
            buyer = RuleNegotiator("buyer", TACTICS.get(plan.buyer)(), seed=seed)
            return {"seller": seller, "buyer": buyer}

        lineage = Lineage(
            arm="ai", coached=plan.coached, seed=plan.seed, rounds=3, memories=memories
        )
        setup = SelfPlaySetup(
            game=game,
            make_players=players,
            moderator=RuleModerator(),
            feedback=AIFeedback(RuleCritic()),
            store=store,
            run_id=run_id,
        )
        await play_lineage(lineage, setup)
        assert lineage.id is not None
        world.lineages[plan.key] = lineage.id
        for number, episode_id in store.lineage_rounds(lineage.id).items():
            world.episodes[plan.key, number] = episode_id
        world.owners[plan.key] = [m.owner for m in memories.values()]
        world.memories.update({m.owner: m for m in memories.values()})
    for key, (lineage_key, role, content, env, tags) in NOTES.items():
        memory = world.memories[f"shop/{lineage_key}/{role}"]
        derived = memory.items(kind="episode")[:1] if key == "alice" else []
        note = memory.remember_note(content, env, derived_from=derived, tags=tags)
        world.notes[key] = (memory.owner, note.id)
    return world
