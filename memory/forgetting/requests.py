"""What can be asked to be forgotten, as typed requests: a fact (state), a game or lineage or a
span of turns (trajectory), or everything from an environment — and how (the mode).

Modes and what each guarantees:

- `exact`: the items the request hits and everything whose making they influenced (their
  closure along provenance) are removed. The agent is then, prompt for prompt, an agent rebuilt
  from the retained items alone: nothing it keeps was made under the influence of what it lost.
- `redact`: what the request hits is removed (a fact's occurrences, a game, an environment's
  items); items made under its influence are kept, with the forgotten content scrubbed from
  them (replaced by `PLACEHOLDER`). Behaviour learned from it may remain: what leaks is
  measured, not promised away.
- `rederive`: as redact, but the feedback and notes derived from what is forgotten are removed
  and made again from what remains (the critic re-run on the retained games, with only what
  is retained in its context), and the calls it cost are reported. With the rule-based critic the
  result equals the agent that never saw the forgotten content.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "LEVELS",
    "MODES",
    "PLACEHOLDER",
    "EnvironmentRequest",
    "Fact",
    "ForgetRequest",
    "Level",
    "Mode",
    "NameFact",
    "PatternFact",
    "PhraseFact",
    "Scope",
    "StateRequest",
    "TrajectoryRequest",
    "ValueFact",
    "parse_request",
]

Level = Literal["state", "trajectory", "environment"]
Mode = Literal["exact", "redact", "rederive"]
LEVELS: tuple[Level, ...] = ("state", "trajectory", "environment")
MODES: tuple[Mode, ...] = ("exact", "redact", "rederive")

# What scrubbed content is replaced by: neutral, and the same whatever was forgotten, so its
# length or shape gives nothing away.
PLACEHOLDER = "[forgotten]"


# An id or a name a request gives: an empty one would be a prefix of every id.
Name = Annotated[str, Field(min_length=1, max_length=1000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueFact(_Model):
    """A number, such as a price or a budget, in every form it is spoken: "$8", "8 dollars",
    "eight dollars", "$8.00", a bare "8"."""

    kind: Literal["value"] = "value"
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a value to forget is a finite amount, 0 or more, got {value!r}")
        return value


class NameFact(_Model):
    """A name (a counterpart, a person, an item) as a whole word, in any letter case."""

    kind: Literal["name"] = "name"
    name: str = Field(min_length=1, max_length=200)


class PhraseFact(_Model):
    """A phrase, word for word, in any letter case and spacing."""

    kind: Literal["phrase"] = "phrase"
    text: str = Field(min_length=1, max_length=500)

    @field_validator("text")
    @classmethod
    def _words(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("a phrase to forget needs some words")
        return text


class PatternFact(_Model):
    """A regular expression (Python syntax), matched in any letter case."""

    kind: Literal["pattern"] = "pattern"
    regex: str = Field(min_length=1, max_length=300)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            compiled = re.compile(regex, re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"not a regular expression ({error})") from None
        if compiled.match(""):
            raise ValueError("the pattern matches empty text, so it would match everywhere")
        import regex as engine  # what searches memory with it (see facts.PATTERN_SECONDS)

        try:
            engine.compile(regex, engine.IGNORECASE | engine.VERSION0)
        except engine.error as error:
            raise ValueError(f"not a regular expression haggler can run ({error})") from None
        return regex


Fact = Annotated[ValueFact | NameFact | PhraseFact | PatternFact, Field(discriminator="kind")]


class Scope(_Model):
    """Where to look: which agents (owner names; a name also covers the agents under it,
    `shop` covers `shop/ai/0/seller`; `*` is every agent of the store), narrowed to a game
    (by name), a lineage or one game played (by id)."""

    agents: tuple[str, ...] = ("*",)
    game: Name | None = None
    lineage: Name | None = None
    episode: Name | None = None

    @field_validator("agents")
    @classmethod
    def _some(cls, agents: tuple[str, ...]) -> tuple[str, ...]:
        if not agents or any(not isinstance(a, str) or not a.strip() for a in agents):
            raise ValueError("name at least one agent, or * for every agent of the store")
        return tuple(a.strip() for a in agents)


class _Request(_Model):
    scope: Scope = Field(default_factory=Scope)
    mode: Mode = "exact"
    # Also delete or scrub the experiment's record (games, turns, critiques), not only memory.
    purge_record: bool = False


class StateRequest(_Request):
    """Forget a fact wherever it occurs in scope; `said_by` narrows it to what one role said."""

    level: Literal["state"] = "state"
    fact: Fact
    said_by: Name | None = None


class TrajectoryRequest(_Request):
    """Forget a game (`episode`), a lineage (`lineage`, or some of its `rounds`), or a span of
    turns of one game (`episode` with `turns`: first and last turn index, inclusive)."""

    level: Literal["trajectory"] = "trajectory"
    episode: Name | None = None
    lineage: Name | None = None
    rounds: tuple[int, ...] | None = None
    turns: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _one_trajectory(self) -> TrajectoryRequest:
        if (self.episode is None) == (self.lineage is None):
            raise ValueError("name one trajectory: a game (episode) or a lineage, not both")
        if self.turns is not None:
            if self.episode is None:
                raise ValueError("turns are a span of one game: give the game (episode) too")
            first, last = self.turns
            if first < 0 or last < first:
                raise ValueError(
                    f"turns must be [first, last] with 0 <= first <= last, got {list(self.turns)}"
                )
        if self.rounds is not None:
            if self.lineage is None:
                raise ValueError("rounds belong to a lineage: give the lineage too")
            if not self.rounds or min(self.rounds) < 1:
                raise ValueError("rounds count from 1")
        return self


class EnvironmentRequest(_Request):
    """Forget everything from an environment: a game, an item, a counterpart or a user's tag
    (all that are given must match)."""

    level: Literal["environment"] = "environment"
    game: Name | None = None
    item: Name | None = None
    counterpart: Name | None = None
    tag: Name | None = None

    @model_validator(mode="after")
    def _something(self) -> EnvironmentRequest:
        if not any((self.game, self.item, self.counterpart, self.tag)):
            raise ValueError("name the environment: a game, an item, a counterpart or a tag")
        return self


ForgetRequest = Annotated[
    StateRequest | TrajectoryRequest | EnvironmentRequest, Field(discriminator="level")
]


def parse_request(data: object) -> StateRequest | TrajectoryRequest | EnvironmentRequest:
    """A typed request from plain data (JSON, YAML); pydantic's ValidationError if malformed."""
    from pydantic import TypeAdapter

    return TypeAdapter(ForgetRequest).validate_python(data)
