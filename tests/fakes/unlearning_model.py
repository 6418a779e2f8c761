"""A fake unlearning model for the fake LLM server: it cannot understand words, so its 'brain'
is the rule-based grammar, run on the index and words it finds in the prompt, and it answers
the JSON a model would. Some of its replies are spoiled on purpose (prose, the wrong schema,
a fence, a wrong level), so that an LLM unlearner's parsing, validation and retries are
exercised end to end. What it measures is that plumbing, not a model's understanding.

    server.responder = RuleBrain(faults=every_fourth)
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from haggler.agents.unlearner.grammar import read_request
from haggler.agents.unlearner.index import MemoryIndex
from haggler.errors import RequestError
from tests.fakes.llm_server import RecordedRequest, Reply, Text

__all__ = ["SPOILED", "RuleBrain", "spoil_some"]

# Replies that cannot be used, as models send them.
SPOILED = {
    "prose": "Sure! I will forget that for you right away.",
    "schema": json.dumps({"request": {"level": "state", "fact": {"kind": "value", "value": -3}}}),
    "both": json.dumps({"request": None, "unclear": None}),
    "truncated": '{"request": {"level": "trajectory", "episode": "ep-',
    "array": "[1, 2, 3]",
}

# (words, attempt) -> a spoiled reply, "fence" to wrap the good one in a code fence, or None.
Faults = Callable[[str, int], str | None]


def spoil_some(words: str, attempt: int) -> str | None:
    """A fixed mix, by a hash of the words: a quarter answer prose first, a quarter the wrong
    schema first, an eighth fenced, an eighth two spoiled replies before a good one."""
    # Ids differ from world to world; hashed without them, the mix is the same every run.
    steady = re.sub(r"\b(?:ep|lin)-[\w-]+", "ID", words)
    bucket = zlib.crc32(steady.encode("utf-8", "surrogatepass")) % 8
    if bucket in (0, 1) and attempt == 0:
        return SPOILED["prose"]
    if bucket in (2, 3) and attempt == 0:
        return SPOILED["schema"]
    if bucket == 4:
        return "fence"
    if bucket == 5 and attempt < 2:
        return (SPOILED["truncated"], SPOILED["array"])[attempt]
    return None


@dataclass
class RuleBrain:
    faults: Faults | None = None
    # The words of every prompt it answered, in order (one entry per reply).
    heard: list[str] = field(default_factory=list)

    def __call__(self, request: RecordedRequest) -> Reply:
        users = [m["content"] for m in request.messages if m["role"] == "user"]
        attempt = sum(1 for m in request.messages if m["role"] == "assistant")
        prompt = json.loads(users[0])
        words = prompt["words"]
        self.heard.append(words)
        fault = self.faults(words, attempt) if self.faults else None
        if fault is not None and fault != "fence":
            return Text(fault, prompt_tokens=len(users[0]) // 4, completion_tokens=12)
        index = MemoryIndex.model_validate(prompt["index"])
        try:
            read = read_request(words, index, level=prompt["level"], mode=prompt["mode"])
            body = json.dumps({"request": read.model_dump(mode="json")})
        except RequestError as error:
            body = json.dumps({"unclear": str(error)[:500]})
        if fault == "fence":
            body = f"```json\n{body}\n```"
        return Text(body, prompt_tokens=len(users[0]) // 4, completion_tokens=len(body) // 4)
