"""A negotiator whose messages come from a language model.

Its prompt is built from its `RoleView` alone, and the player's own instructions if it has
some: the role's own brief (then those instructions) as the system message and the
conversation it may see, its own lines as the assistant's and the others' as the user's. In a
game of two the rival's lines are the user's turns, as the seed paper's prompts had them; at a
larger table the system message names every other role and each of their lines carries its
speaker's name ("mediator: ...").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haggler.agents.base import Player, Reply, RoleView
from haggler.llm.base import Backend, Message

__all__ = ["LLMNegotiator", "negotiator_prompt"]


def negotiator_prompt(view: RoleView, prompt: str | None = None) -> list[Message]:
    """The chat messages a model playing `view.role` receives; `prompt`, the player's own
    instructions or persona, follows the brief (the game's rules come first)."""
    parties = view.roles or ()
    if len(parties) > 2:
        table = ", ".join(f"the {role}" for role in parties if role != view.role)
        system = (
            f"{view.brief.text} You are the {view.role}; at the table with you: {table}. Each "
            f"message of theirs is shown after its speaker's name. The game ends without a "
            f"deal after {view.max_turns} messages from all of you; {view.turns_left} remain"
            + (
                f", {view.own_turns_left} of them yours."
                if view.own_turns_left is not None
                else "."
            )
        )
    else:
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
        if own or len(parties) <= 2:
            messages.append(Message("assistant" if own else "user", line.text))
            continue
        # At a larger table every other speaker is named, and their lines since the role
        # last spoke make one user turn (chat APIs want the turns to alternate).
        labelled = f"{line.speaker}: {line.text}"
        if messages[-1].role == "user" and len(messages) > 1:
            messages[-1] = Message("user", f"{messages[-1].content}\n{labelled}")
        else:
            messages.append(Message("user", labelled))
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


class LLMNegotiator(Player):
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
