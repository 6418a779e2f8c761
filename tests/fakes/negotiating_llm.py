"""A responder for FakeLLMServer that negotiates like a model would, from the prompt alone.

It reads its role from the system message, the rival's price from the last user message and
its own from its last assistant message, and answers with a sentence and an action tag. Asked
as a moderator, it answers the JSON verdict the moderator demands; asked as a critic, three
numbered suggestions. It never states anything
from its brief but prices it offers, so any private value found in the other role's requests
leaked through the framework.
"""

from __future__ import annotations

import json

from haggler.agents.prices import find_prices
from tests.fakes.llm_server import RecordedRequest, Text


def _last(messages: list[dict[str, str]], role: str) -> str:
    texts = [m["content"] for m in messages if m["role"] == role]
    return texts[-1] if texts else ""


def _moderate(request: RecordedRequest) -> Text:
    last_line = request.last_user_text.strip().splitlines()[-1]
    lower = last_line.lower()
    prices = find_prices(last_line)
    if "deal" in lower and "no deal" not in lower:
        verdict = {
            "reasoning": "agrees",
            "action": "accept",
            "price": prices[-1].value if prices else None,
        }
    elif prices:
        verdict = {"reasoning": "names a price", "action": "offer", "price": prices[-1].value}
    else:
        verdict = {"reasoning": "nothing", "action": "none", "price": None}
    return Text(json.dumps(verdict), prompt_tokens=120, completion_tokens=20)


def negotiate(request: RecordedRequest, *, tagged: bool = True) -> Text:
    messages = request.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    if system.startswith("You moderate"):
        return _moderate(request)
    if system.startswith("You coach"):
        return Text(
            "1. Hold firm and make the other side move first.\n"
            "2. Concede in smaller steps.\n"
            "3. Aim higher than last time.",
            prompt_tokens=300,
            completion_tokens=30,
        )
    selling = "You are selling" in system
    rival = find_prices(_last(messages, "user"))
    mine = find_prices(_last(messages, "assistant"))
    if not rival:
        return Text("Let me think about that.")
    rival_price = rival[-1].value
    my_price = mine[-1].value if mine else (rival_price * 1.5 if selling else rival_price / 1.5)
    step = abs(my_price - rival_price) / 3
    proposal = round(my_price - step if selling else my_price + step, 2)
    if abs(proposal - rival_price) < 1.0:
        sentence = f"Deal, ${rival_price:g} works for me."
        tag = f" [ACCEPT ${rival_price:g}]"
    else:
        sentence = f"I could do ${proposal:g}."
        tag = f" [OFFER ${proposal:g}]"
    return Text(
        sentence + (tag if tagged else ""), prompt_tokens=50 + len(messages), completion_tokens=12
    )
