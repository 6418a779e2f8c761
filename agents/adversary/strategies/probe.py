"""One strategy's run against one target: every question asked, within its query budget."""

from __future__ import annotations

from collections.abc import Sequence

from haggler.agents.adversary.base import Attempt, Exchange, Reply, Strategy, Target
from haggler.errors import ConfigError, ModelError
from haggler.llm.base import Message

__all__ = ["Probe"]


class Probe:
    """Asks `target` on behalf of `strategy`, recording each exchange in `attempt`, and stops
    asking once `max_queries` replies were spent (`ask` then returns None)."""

    def __init__(self, strategy: Strategy, target: Target, max_queries: int) -> None:
        if not isinstance(max_queries, int) or isinstance(max_queries, bool) or max_queries < 1:
            raise ConfigError(
                f"max_queries counts the target's replies a strategy may spend: 1 or more, "
                f"got {max_queries!r}"
            )
        self.target = target
        self.max_queries = max_queries
        self.attempt = Attempt(strategy=strategy.name, target=target.label)
        # A defended target keeps its agent's label; say which defences stood in front of it.
        defences = getattr(target, "defences", ())
        if defences:
            self.attempt.notes["defences"] = list(defences)

    @property
    def left(self) -> int:
        return self.max_queries - self.attempt.queries

    async def ask(self, conversation: Sequence[Message], **params: object) -> Reply | None:
        """The target's reply to `conversation` (ending with the adversary's message)."""
        if self.left <= 0:
            return None
        sent = tuple(conversation)
        try:
            reply = await self.target.ask(sent, **params)
        except ModelError as error:
            # Targets report failed calls as replies; one that raises is answered the same way.
            reply = Reply("", status="error", reason=str(error).splitlines()[0][:300])
        self.attempt.exchanges.append(Exchange(sent, reply))
        return reply

    async def question(self, text: str, **params: object) -> Reply | None:
        """One question in a fresh conversation."""
        return await self.ask([Message("user", text)], **params)
