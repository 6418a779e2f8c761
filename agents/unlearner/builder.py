"""Building a typed request from what the grammar read, under the level the caller asked for:
the scope from the modifiers, the level checked, an environment by name or, failing that,
the name as a fact."""

from __future__ import annotations

from typing import TypeAlias

from haggler.agents.unlearner.facts import is_name
from haggler.agents.unlearner.index import MemoryIndex
from haggler.agents.unlearner.modifiers import take_modifiers
from haggler.agents.unlearner.names import Names
from haggler.agents.unlearner.words import Term, Words, refuse, shown
from haggler.errors import RequestError
from haggler.memory.forgetting.requests import (
    EnvironmentRequest,
    Level,
    NameFact,
    PatternFact,
    PhraseFact,
    Scope,
    StateRequest,
    TrajectoryRequest,
    ValueFact,
)

__all__ = ["Builder", "Fact", "Request", "a_name", "first_problem"]

Request: TypeAlias = StateRequest | TrajectoryRequest | EnvironmentRequest
Fact: TypeAlias = ValueFact | NameFact | PhraseFact | PatternFact

# Words that stand for something said before, not for a name.
EMPTY_WORDS = {"it", "that", "this", "them", "those", "these", "something", "stuff", "things"}


class Builder:
    """The words, their modifiers and the names they resolve to; requests built from them."""

    def __init__(self, words: Words, index: MemoryIndex, want: Level | None) -> None:
        self.words = words
        self.want = want
        core, self.mods = take_modifiers(words.text, index.games())
        self.core = core
        self.names = Names(index, self.mods.agents, self.refuse)
        self.agents = self.mods.agents or tuple(index.agents) or ("*",)

    def refuse(self, problem: str, fix: str) -> RequestError:
        return refuse(self.words.original, problem, fix)

    def environment(self, term: Term) -> Request:
        """An environment request for `term`; at state level, or when nothing here is called
        so, the name as a fact (everything about a name is every mention of it)."""
        if self.want == "state":
            return self.state(NameFact(name=term.name))
        if self.want == "trajectory":
            raise self.refuse(
                f"{shown(term.name)} names an environment, not a game, lineage or span of turns",
                "ask at environment level, or name a game by its id",
            )
        found = self.names.environment(term)
        if found is not None:
            field, value = found
            return EnvironmentRequest(scope=self.scope(), **{field: value})
        if self.want is None and term.kind is None and a_name(term.name):
            return self.state(NameFact(name=term.name))
        raise self.refuse(
            f"no game, item, counterpart or tag here is called {shown(term.name)}",
            self.names.known(),
        )

    def state(self, fact: Fact, said_by: str | None = None) -> StateRequest:
        if self.want not in (None, "state"):
            raise self.refuse(
                f"it names a fact (state level), not {_NOUNS[self.want]}",
                "ask at state level, or name what that level forgets",
            )
        return StateRequest(scope=self.scope(), fact=fact, said_by=said_by)

    def trajectory(self, **fields: object) -> TrajectoryRequest:
        if self.want not in (None, "trajectory"):
            raise self.refuse(
                f"it names a game, lineage or span of turns (trajectory level), not "
                f"{_NOUNS[self.want]}",
                "ask at trajectory level",
            )
        try:
            return TrajectoryRequest(scope=self.scope(), **fields)  # type: ignore[arg-type]
        except ValueError as error:
            raise self.refuse(first_problem(error), "see docs/forgetting.md") from None

    def take_game(self, what: str) -> str:
        """The one game the modifiers name (by id, or by round), which the target uses up."""
        mods, names = self.mods, self.names
        if mods.episode:
            episode = names.episode(mods.episode)
        elif mods.round is not None:
            lineage = names.lineage(mods.lineage) if mods.lineage else None
            episode = names.one_game(
                names.round_games([mods.round], lineage), f"round {mods.round}"
            )
            mods.lineage = None
        else:
            raise self.refuse(f"{what}", "add `of game ID` or `of round N`")
        mods.episode = mods.round = None
        return episode

    def scope(self) -> Scope:
        mods, names = self.mods, self.names
        episode = names.episode(mods.episode) if mods.episode else None
        lineage = names.lineage(mods.lineage) if mods.lineage else None
        if mods.round is not None:
            games = names.round_games([mods.round], lineage)
            in_round = names.one_game(games, f"round {mods.round}")
            if episode is not None and episode != in_round:
                raise self.refuse("the game and the round it names differ", "name one of them")
            episode = in_round
        return Scope(agents=self.agents, game=mods.game, lineage=lineage, episode=episode)


_NOUNS: dict[Level, str] = {
    "state": "a fact (state level)",
    "trajectory": "a game, lineage or span of turns (trajectory level)",
    "environment": "an environment (environment level)",
}


def a_name(text: str) -> bool:
    """A proper name of a few words ("Alice", "Zorblax-9", "Alice Smith"), not a common word."""
    return is_name(text) and len(text.split()) <= 3 and text.lower() not in EMPTY_WORDS


def first_problem(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        return str(errors()[0].get("msg", error)).removeprefix("Value error, ")
    return str(error)
