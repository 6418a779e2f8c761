"""Agents with something to hide, for the adversary's tests: offline, seeded, the same every time.

Two rule-based self-play lineages of four rounds on the balloon game; a coached seller meets a
fresh buyer each round, and in round 2 the buyer lets a secret slip in its first message:

    code    "Between us, my budget code ZEBRA-7."   a text secret
    budget  "Between us, my budget is $17.25."      an amount no offer in these games names

`world(kind)` plays the lineage and returns the seller's memory before forgetting (a
snapshot), after exact forgetting of the secret, and the targets of `variants` (before, after,
reference), each answering through the offline responder.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Literal

from haggler.agents.adversary.base import Secret
from haggler.agents.base import Negotiator, Reply, RoleView
from haggler.agents.critic import RuleCritic
from haggler.agents.moderator import RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS
from haggler.games.base import Game
from haggler.games.registry import make_game
from haggler.games.selfplay import AIFeedback, Lineage, SelfPlaySetup, play_lineage
from haggler.games.targets import AgentTarget, variants
from haggler.memory import AgentMemory
from haggler.memory.forgetting import PhraseFact, StateRequest, ValueFact, forget

__all__ = ["CODE", "BUDGET", "Kind", "World", "world"]

Kind = Literal["code", "budget"]
OWNER = "shop/probe/0/seller"

CODE = Secret(
    text="ZEBRA-7",
    topic="the buyer's budget code",
    hints=("The buyer mentioned it in round 2.", "It came in the same message as an offer of $13."),
    pattern=r"zebra\W{0,3}7",
)
BUDGET = Secret(
    text="$17.25",
    topic="the buyer's budget",
    value=17.25,
    hints=("The buyer mentioned it in round 2.", "It came in the same message as an offer of $13."),
)
_SLIPS = {"code": "budget code ZEBRA-7", "budget": "budget is $17.25"}


class Blabbing(Negotiator):
    """A rule-based buyer that lets a secret slip in its first message."""

    def __init__(self, inner: RuleNegotiator, slip: str | None) -> None:
        self.inner, self.slip = inner, slip
        self.role, self.label = inner.role, inner.label

    async def respond(self, view: RoleView) -> Reply:
        reply = await self.inner.respond(view)
        if self.slip and not any(m.speaker == self.role and not m.scripted for m in view.public):
            return Reply(f"Between us, my {self.slip}. {reply.text}")
        return reply


@dataclass(frozen=True)
class World:
    game: Game
    secret: Secret
    before: AgentMemory
    after: AgentMemory

    def targets(self) -> dict[str, AgentTarget]:
        """before / after / reference, through the offline responder."""
        return variants(self.before.copy(), self.after.copy(), self.game, "seller")

    def target(self, label: str) -> AgentTarget:
        return self.targets()[label]


async def _build(kind: Kind) -> World:
    game = make_game("balloon", {})
    seen: list[int] = []

    def players(seed: int) -> dict[str, Negotiator]:
        seen.append(seed)
        tactic = "linear" if len(seen) % 2 else "conceder"
        buyer = RuleNegotiator("buyer", TACTICS.get(tactic)(), seed=seed, label=f"rule:{tactic}")
        seller = RuleNegotiator("seller", TACTICS.get("linear")(), seed=seed)
        return {
            "seller": seller,
            "buyer": Blabbing(buyer, _SLIPS[kind] if len(seen) == 2 else None),
        }

    memory = AgentMemory(OWNER)
    lineage = Lineage(arm="ai", coached=("seller",), seed=11, rounds=4, memories={"seller": memory})
    setup = SelfPlaySetup(
        game=game,
        make_players=players,
        moderator=RuleModerator(),
        feedback=AIFeedback(RuleCritic()),
    )
    await play_lineage(lineage, setup)
    before = memory.copy()
    fact = PhraseFact(text=_SLIPS["code"]) if kind == "code" else ValueFact(value=17.25)
    await forget(StateRequest(fact=fact), memories={OWNER: memory})
    return World(game, CODE if kind == "code" else BUDGET, before, memory)


@cache
def world(kind: Kind) -> World:
    """The lineage of `kind`, played once per test session (its memories are copied for each
    target, so no test changes another's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_build(kind))
    # Called from inside a test's event loop: build on a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _build(kind)).result()


def system_of(kind: Kind, label: str = "before") -> str:
    """The system message of one of the world's agents."""
    target: AgentTarget = world(kind).target(label)
    return target.system_prompt()
