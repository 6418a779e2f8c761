"""Agents as the adversary meets them: a target is an agent as it would play — its model (or
the offline responder) and the context its memory assembles — so a probe sees exactly what
the agent would see.

    before     the agent's memory as it was before forgetting (a snapshot)
    after      the agent's memory as it is now
    reference  an agent rebuilt from the items the forgetting agent retains: the agent that
               never knew what was forgotten, the yardstick of every probe
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from haggler.agents.adversary.base import Reply, Target, WhiteBox
from haggler.agents.base import Negotiator, RoleView
from haggler.agents.llm_negotiator import negotiator_prompt
from haggler.errors import ModelError
from haggler.games.base import Game
from haggler.games.episode import EpisodeResult, play_episode
from haggler.games.selfplay import Lineage, recall
from haggler.llm.base import Backend, Message
from haggler.memory import AgentMemory, TokenCounter

__all__ = ["AgentTarget", "variants"]


class AgentTarget(Target):
    """`memory`'s agent in `role` of `game`, asked through `backend` (the offline rule-based
    responder when None), with its context built under `budget` tokens of `counter`.

    `player` makes it playable (in-game elicitation): a function of a seed giving the agent's
    negotiator for one game (a rule-based one reads the memory it is handed each turn).
    """

    def __init__(
        self,
        label: str,
        memory: AgentMemory,
        game: Game,
        role: str,
        *,
        backend: Backend | None = None,
        params: Mapping[str, Any] | None = None,
        budget: int = 2000,
        counter: TokenCounter | None = None,
        player: Any = None,
    ) -> None:
        self.label = label
        self.memory = memory
        self.game = game
        self.role = role
        self.backend = backend
        self.params = {"max_tokens": 256} | dict(params or {})
        self.budget = budget
        self.counter = counter
        self._player = player

    def recalled(self) -> Any:
        """What the agent takes into its next game (its RoleMemory), from its memory now."""
        lineage = Lineage(
            arm="probe", coached=(self.role,), seed=0, rounds=1,
            memories={self.role: self.memory}, memory_budget=self.budget,
            counters={self.role: self.counter} if self.counter else {},
        )  # fmt: skip
        return recall(lineage, self.game, self.role)

    def system_prompt(self) -> str:
        """The agent's own system message at the start of its next game: its brief, what its
        memory recalls and its goal."""
        view = RoleView(
            role=self.role,
            brief=self.game.brief(self.role),
            public=tuple(self.game.opening()),
            facts=self.game.facts,
            turn=0,
            max_turns=self.game.max_turns,
            memory=self.recalled().memory,
        )
        return negotiator_prompt(view)[0].content

    async def ask(self, conversation: Sequence[Message], **params: object) -> Reply:
        system = self.system_prompt()
        suffix = params.pop("system_suffix", None)
        if isinstance(suffix, str) and suffix:
            system = f"{system}\n\n{suffix}"
        if self.backend is None:
            from haggler.agents.responder import RuleResponder

            return RuleResponder().reply(system, conversation)
        try:
            completion = await self.backend.complete(
                [Message("system", system), *conversation], **(self.params | params)
            )
        except ModelError as error:
            return Reply("", status="error", reason=str(error).splitlines()[0][:300])
        return Reply(completion.text, completion=completion)

    @property
    def whitebox(self) -> WhiteBox | None:
        """Its model's insides, read with its own system message, when its backend is a local
        model (`haggler.llm.whitebox`); None otherwise."""
        from haggler.llm.whitebox import whitebox_of

        return whitebox_of(self.backend, system=self.system_prompt)

    @property
    def can_play(self) -> bool:
        return self._player is not None

    async def play(self, rival: Negotiator, *, seed: int) -> EpisodeResult:
        if self._player is None:
            raise NotImplementedError(f"{self.label} cannot be played against")
        me: Negotiator = self._player(seed)
        players = {self.role: me, rival.role: rival}
        return await play_episode(self.game, players, memories={self.role: self.recalled().memory})


def variants(
    before: AgentMemory, after: AgentMemory, game: Game, role: str, **options: Any
) -> dict[str, AgentTarget]:
    """The three targets of a forgetting experiment: the agent `before` forgetting (pass a
    snapshot: `memory.copy()` taken before), `after` it, and the `reference` rebuilt from the
    items `after` retains."""
    return {
        "before": AgentTarget("before", before, game, role, **options),
        "after": AgentTarget("after", after, game, role, **options),
        "reference": AgentTarget("reference", after.copy(), game, role, **options),
    }
