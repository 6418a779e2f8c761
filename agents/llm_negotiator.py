"""A negotiator whose messages come from a language model.

Its prompt is built from its `RoleView` alone, and the player's own instructions if it has
some: the role's own brief (then those instructions) as the system message and the public
conversation, its own lines as the assistant's and the rival's as the user's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haggler.agents.base import Negotiator, Reply, RoleView
from haggler.llm.base import Backend, Message

__all__ = ["LLMNegotiator", "negotiator_prompt"]


def negotiator_prompt(view: RoleView, prompt: str | None = None) -> list[Message]:
    """The chat messages a model playing `view.role` receives; `prompt`, the player's own
    instructions or persona, follows the brief (the game's rules come first)."""
    system = (
        f"{view.brief.text} The game ends without a deal after {view.max_turns} messages "
        f"from the two of you; {view.turns_left} remain."
    )
    if prompt:
        system += f"\n\n{prompt}"
    memory = view.memory
    if memory is not None and memory.history:
        system += f"\n\nWhat you remember from your earlier games:\n\n{memory.history}"
    if memory is not None and memory.goal:
        system += f"\n\n{memory.goal}"
    messages = [Message("system", system)]
    for line in view.public:
        own = line.speaker == view.role
        messages.append(Message("assistant" if own else "user", line.text))
    # Chat APIs want the conversation to open with the user; a role that spoke first gets a cue.
    if len(messages) > 1 and messages[1].role == "assistant":
        messages.insert(1, Message("user", "The negotiation begins. Make your opening."))
    if messages[-1].role == "assistant":
        messages.append(Message("user", "Your turn."))
    if view.correction:
        last = messages[-1]
        note = f"(Moderator, to you only: your last message was not accepted: {view.correction}.)"
        messages[-1] = Message(last.role, f"{last.content}\n\n{note}")
    return messages


class LLMNegotiator(Negotiator):
    def __init__(
        self,
        role: str,
        backend: Backend,
        *,
        params: Mapping[str, Any] | None = None,
        prompt: str | None = None,
    ) -> None:
        self.role = role
        self.backend = backend
        self.prompt = prompt
        # A cap of our own: some providers require one, and litellm's fallback for models it
        # has no card for is the model's whole output window.
        self.params = {"max_tokens": 256} | dict(params or {})
        self.label = backend.model

    async def respond(self, view: RoleView) -> Reply:
        completion = await self.backend.complete(
            negotiator_prompt(view, self.prompt), **self.params
        )
        return Reply(completion.text.strip(), completion)
