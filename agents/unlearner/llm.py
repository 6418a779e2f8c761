"""An unlearner on any model: the request grammar as a strict JSON schema, the memories' index
(ids, names and tags, never what was said) and the words go in; one JSON object comes out.

A reply is read strictly (a code fence around it is tolerated, nothing else), validated with
the request models, and when it cannot be used the model is told why and asked again, up to
`attempts` times; then the words are refused with a RequestError. A model may also answer that
the words are unclear, which refuses them at once. No reply, however long or strange, makes
this raise anything but RequestError (or the backend's own ModelError when calls fail).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from haggler.agents.unlearner.base import Request, Unlearner, UnlearnerPlan
from haggler.agents.unlearner.facts import risky_pattern
from haggler.agents.unlearner.index import MemoryIndex, index_memories
from haggler.agents.unlearner.names import Names
from haggler.agents.unlearner.words import Words, refuse, shown
from haggler.llm.base import Message
from haggler.memory.agent_memory import AgentMemory
from haggler.memory.forgetting.requests import (
    ForgetRequest,
    Level,
    Mode,
    PatternFact,
    StateRequest,
)

if TYPE_CHECKING:
    from haggler.llm.base import Backend
    from haggler.store.sqlite import Store

__all__ = ["Answer", "LLMUnlearner", "Spent", "answer_schema", "read_answer"]

# A request is a small object; a reply past this is not one, and is not parsed.
MAX_REPLY = 20_000
# How much of a refused reply is shown back to the model with the reason.
_ECHO = 2_000


class Answer(BaseModel):
    """What the model answers: the request, or why the words cannot be read as one."""

    model_config = ConfigDict(extra="forbid")

    request: ForgetRequest | None = None  # type: ignore[valid-type]
    unclear: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one(self) -> Answer:
        if (self.request is None) == (self.unclear is None):
            raise ValueError('answer with exactly one of "request" and "unclear"')
        return self


def answer_schema() -> dict[str, Any]:
    """The JSON schema the model answers to, derived from the request models."""
    return TypeAdapter(Answer).json_schema()


class Unusable(ValueError):
    """A reply that cannot be used; its message says why, for the model to do better."""


@dataclass
class Spent:
    """Model use over every plan an unlearner made (failed ones included)."""

    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    # Replies that could not be used and were asked again.
    retries: int = 0


_INSTRUCTIONS = """\
You are the unlearner of a framework in which AI agents negotiate and remember what they played. \
A person asks, in words, that agents forget something. You turn the words into one forget \
request, as JSON, which a program plans and shows to the person before anything is forgotten.

Answer with one JSON object and nothing else:
  {{"request": {{...}}}}  the request, following the schema below; or
  {{"unclear": "..."}}    when the words cannot be read as one request, or could mean two \
different things: say what is unclear and how to put it.

How requests read:
- level "state" forgets a fact wherever it occurs in scope: a value (a price or a budget, said in \
any form: "$8", "8 dollars", "eight dollars"), a name (a whole word), a phrase (words given in \
quotes), or a pattern (a Python regular expression, given between slashes). "said_by" (a \
speaker role, such as "buyer") narrows the fact to what that role said; for a topic such as \
"its budget", give a pattern of how that talk sounds.
- level "trajectory" forgets one game played ("episode": its id, or a prefix the words give), a \
span of its turns ("turns": [first, last], inclusive, as the store numbers turns), a lineage \
("lineage") or some of its rounds ("rounds", counted from 1).
- level "environment" forgets everything from a game (by its name, such as "diamond"), an item \
traded, a counterpart (the other side's label) or a tag; every field given must match.
- "scope" narrows where to look: "agents" (leave it out for the agents of the index; "*" only \
when the words ask for every agent there is), "game" (a game's name), "lineage" or "episode".
- "mode": "exact" unless the words ask to "redact" or "rederive". "purge_record": true only \
when the words ask to purge the experiment's record too.
- Take names and ids from the index or the words; never invent one. "Round N" without a \
lineage means the agents' round N (the "round" of a game in "played"); with a lineage, that \
lineage's round N.
- The request must be at the level given, when one is given.

The JSON schema of your answer:
{schema}
"""


class LLMUnlearner(Unlearner):
    def __init__(
        self,
        backend: Backend,
        *,
        params: Mapping[str, Any] | None = None,
        attempts: int = 3,
        index_limit: int = 200,
    ) -> None:
        if not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts counts replies to read, 1 or more, got {attempts!r}")
        self.backend = backend
        self.params = {"temperature": 0.0, "max_tokens": 800} | dict(params or {})
        self.attempts = attempts
        self.index_limit = index_limit
        self.label = backend.model
        self.spent = Spent()

    async def plan(
        self,
        words: str,
        *,
        memories: Mapping[str, AgentMemory],
        store: Store | None = None,
        level: Level | None = None,
        mode: Mode | None = None,
    ) -> UnlearnerPlan:
        said = Words.read(words)  # the same checks as the grammar's: text, not empty, short
        index = index_memories(memories, store)
        messages = [
            Message("system", instructions()),
            Message("user", prompt(index.compact(self.index_limit), said.cleaned, level, mode)),
        ]
        calls = tokens = 0
        cost = 0.0
        problem = ""
        for attempt in range(1, self.attempts + 1):
            completion = await self.backend.complete(messages, **self.params)
            calls += 1
            tokens += completion.usage.total_tokens
            cost += completion.cost_usd
            self.spent.calls += 1
            self.spent.tokens += completion.usage.total_tokens
            self.spent.cost_usd += completion.cost_usd
            try:
                request = read_answer(completion.text, index, words, level=level, mode=mode)
            except Unusable as error:
                problem = str(error)
                if attempt < self.attempts:
                    self.spent.retries += 1
                messages += [
                    Message("assistant", _echo(completion.text)),
                    Message(
                        "user",
                        f"That reply cannot be used: {problem}. Answer again with one JSON object "
                        "as the schema says, and nothing else.",
                    ),
                ]
                continue
            return UnlearnerPlan(
                words=words,
                request=request,
                unlearner=self.label,
                calls=calls,
                tokens=tokens,
                cost_usd=cost,
                attempts=attempt,
            )
        raise refuse(
            words,
            f"{self.label} gave no usable reading in {self.attempts} replies (the last: {problem})",
            "rephrase the request, or read it with the rule-based unlearner",
        )


def instructions() -> str:
    return _INSTRUCTIONS.format(schema=json.dumps(answer_schema(), separators=(",", ":")))


def prompt(index: MemoryIndex, words: str, level: Level | None, mode: Mode | None) -> str:
    """The user message: the index, the constraints and the words, as one JSON object."""
    return json.dumps(
        {
            "index": index.model_dump(mode="json"),
            "level": level,
            "mode": mode,
            "words": words,
        },
        ensure_ascii=True,
    )


def read_answer(
    text: str,
    index: MemoryIndex,
    words: str,
    *,
    level: Level | None = None,
    mode: Mode | None = None,
) -> Request:
    """The request a reply gives. Unusable when it is not one JSON object of the schema (or not
    at `level`); RequestError when the model says the words are unclear."""
    data = _json_object(text)
    try:
        answer = Answer.model_validate(data)
    except ValidationError as error:
        raise Unusable(_problems(error)) from None
    if answer.unclear is not None:
        raise refuse(
            words,
            f"the unlearner could not read it as one request ({shown(answer.unclear, 200)[1:-1]})",
            "rephrase it",
        )
    request: Request = answer.request  # type: ignore[assignment]
    if level is not None and request.level != level:
        raise Unusable(f'the request must be at level "{level}", not "{request.level}"')
    if isinstance(request, StateRequest) and isinstance(request.fact, PatternFact):
        risk = risky_pattern(request.fact.regex)
        if risk is not None:
            raise Unusable(f"request.fact.regex: {risk}; write a pattern without nested repeats")
    update: dict[str, Any] = {}
    if mode is not None:
        update["mode"] = mode
    scope_said = data.get("request", {}).get("scope")
    scope = request.scope
    if not isinstance(scope_said, dict) or "agents" not in scope_said:
        scope = scope.model_copy(update={"agents": tuple(index.agents) or ("*",)})
    names = Names(index, scope.agents, lambda problem, fix: refuse(words, problem, fix))
    scope = scope.model_copy(
        update={
            "episode": names.episode(scope.episode) if scope.episode else None,
            "lineage": names.lineage(scope.lineage) if scope.lineage else None,
        }
    )
    update["scope"] = scope
    if getattr(request, "episode", None) and request.level == "trajectory":
        update["episode"] = names.episode(request.episode)  # type: ignore[union-attr]
    if getattr(request, "lineage", None) and request.level == "trajectory":
        update["lineage"] = names.lineage(request.lineage)  # type: ignore[union-attr]
    return request.model_copy(update=update)


_FENCE = re.compile(r"\A```[ \t]*(?:json|JSON)?[ \t]*\n?(?P<body>.*?)\n?```\Z", re.DOTALL)


def _json_object(text: object) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        raise Unusable("the reply is empty; answer with one JSON object")
    if len(text) > MAX_REPLY:
        raise Unusable(f"the reply is {len(text)} characters long; a request is a short object")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced is not None:
        body = fenced["body"].strip()
    try:
        data = json.loads(body)
    except RecursionError:
        raise Unusable("the reply nests too deeply to be a request") from None
    except ValueError as error:
        where = (
            f" ({error.msg} at character {error.pos})"
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        raise Unusable(f"the reply is not JSON{where}; answer with the JSON object alone") from None
    if not isinstance(data, dict):
        raise Unusable(f"the reply is a JSON {type(data).__name__}, not an object")
    return data


def _problems(error: ValidationError) -> str:
    """What was wrong with a reply, named by place, without echoing what it held."""
    found = []
    for problem in error.errors()[:4]:
        where = ".".join(shown(str(part), 30)[1:-1] for part in problem["loc"]) or "the answer"
        message = str(problem["msg"]).removeprefix("Value error, ")
        found.append(f"{where}: {shown(message, 160)[1:-1]}")
    more = error.error_count() - len(found)
    return "; ".join(found) + (f" (and {more} more)" if more > 0 else "")


def _echo(text: object) -> str:
    """A refused reply as it goes back to the model: cut, and valid text whatever it held."""
    reply = text if isinstance(text, str) else ""
    if len(reply) > _ECHO:
        reply = reply[:_ECHO] + " …(cut)"
    return reply.encode("utf-8", "replace").decode("utf-8") or "(empty)"
