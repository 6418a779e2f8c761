"""Names in a request resolved against the memories' index: game and lineage ids (or unique
prefixes of them), rounds, the counterpart of a round, and environments by name.

A name that could be two things here (a game and a tag, an id prefix of two games, round 2 of
two lineages) is refused with both named; an id these memories do not know is passed on as
written, for the store to know or refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from haggler.agents.unlearner.index import MemoryIndex, PlayedGame
from haggler.agents.unlearner.words import Term, one_token, shown

__all__ = ["Names"]

Refuse = Callable[[str, str], Exception]
FIELDS = ("game", "item", "counterpart", "tag")


class Names:
    def __init__(self, index: MemoryIndex, agents: tuple[str, ...] | None, refuse: Refuse):
        self.index = index
        self.refuse = refuse
        # The agents the words name, as owners of these memories; None for all of them.
        self.agents: set[str] | None = None
        if agents and "*" not in agents:
            self.agents = {
                owner
                for owner in index.agents
                if any(owner == a or owner.startswith(a.rstrip("/") + "/") for a in agents)
            } or set(agents)

    def episode(self, ref: str) -> str:
        found = sorted({g.id for g in self.index.played if g.id.startswith(ref)})
        if ref in found or not found:
            return ref  # the store may know a game these memories do not
        if len(found) > 1:
            raise self.refuse(
                f"game {shown(ref)} could be any of {len(found)} games "
                f"({', '.join(found[:3])}{', …' if len(found) > 3 else ''})",
                "give more of its id",
            )
        return found[0]

    def lineage(self, ref: str) -> str:
        found = [lineage for lineage in self.index.lineages() if lineage.startswith(ref)]
        if ref in found or not found:
            return ref
        if len(found) > 1:
            raise self.refuse(
                f"lineage {shown(ref)} could be any of {', '.join(found[:3])}",
                "give more of its id",
            )
        return found[0]

    def mine(self, game: PlayedGame) -> bool:
        return self.agents is None or bool(self.agents & set(game.counterparts))

    def round_games(self, numbers: list[int | str], lineage: str | None) -> list[PlayedGame]:
        """The games of rounds `numbers`: `lineage`'s own rounds, or the agents' round labels
        (the "Round N" of their recollection) when no lineage is named."""
        if lineage is not None:
            pool = [g for g in self.index.played if g.lineage == lineage]
            if not pool:
                raise self.refuse(
                    f"these memories hold no game of lineage {shown(lineage)}",
                    "check its id with `haggler show --list`",
                )
            labels = sorted({g.lineage_round for g in pool if g.lineage_round is not None})
        else:
            pool = [g for g in self.index.played if self.mine(g)]
            labels = sorted({g.round for g in pool if g.round is not None})
        if not labels:
            raise self.refuse("these memories hold no rounds", "forget a game by its id instead")
        chosen: list[PlayedGame] = []
        for number in numbers:
            wanted: int | str = number
            if isinstance(number, str):  # "last", or "last-K": K rounds before the last
                back = 0 if number == "last" else int(number.split("-")[1])
                wanted = labels[-1 - back] if back < len(labels) else "before the first"
            if wanted not in labels:
                raise self.refuse(
                    f"these memories hold no round {wanted}",
                    f"their rounds are {', '.join(str(r) for r in labels)}",
                )
            chosen += [
                g for g in pool if (g.lineage_round if lineage is not None else g.round) == wanted
            ]
        return chosen

    def one_game(self, games: list[PlayedGame], what: str) -> str:
        ids = sorted({g.id for g in games})
        if len(ids) > 1:
            lineages = sorted({g.lineage or "?" for g in games})
            raise self.refuse(
                f"{what} is {len(ids)} games here (lineages {', '.join(lineages)})",
                "add `of lineage ID`, `in game ID` or `for agent NAME` to say which",
            )
        return ids[0]

    def counterpart(self, games: list[PlayedGame], what: str) -> str:
        found = sorted(
            {
                counterpart
                for g in games
                for owner, counterpart in g.counterparts.items()
                if counterpart and (self.agents is None or owner in self.agents)
            }
        )
        if not found:
            raise self.refuse(f"no counterpart is remembered for {what}", "name it instead")
        if len(found) > 1:
            raise self.refuse(
                f"{what} had {len(found)} counterparts here ({', '.join(found)})",
                "add `for agent NAME`, or name the counterpart",
            )
        return found[0]

    def environment(self, term: Term) -> tuple[str, str] | None:
        """The (field, value) `term` names here, or None when it names nothing here."""
        if term.kind is not None:
            named = self._fields_named(term.name).get(term.kind)
            if named is not None:
                return term.kind, named
            if not one_token(term.name):
                raise self.refuse(f"no {term.kind} here is called {shown(term.name)}", self.known())
            # Not here by that name: as written; the plan will find nothing, or the store more.
            return term.kind, term.name.lower() if term.kind in ("game", "item") else term.name
        fields = self._fields_named(term.name)
        if not fields and len(term.name) > 3 and term.name.lower().endswith("s"):
            fields = self._fields_named(re.sub(r"e?s$", "", term.name, flags=re.IGNORECASE))
        if not fields:
            return None
        if set(fields) == {"game", "item"} and all(
            (e.game == fields["game"]) == (e.item == fields["item"])
            for e in self.index.environments
        ):
            # The game and the item name the same items; the item also scrubs its name.
            return "item", fields["item"]
        if len(fields) > 1:
            raise self.refuse(
                f"{shown(term.name)} is a {' and a '.join(sorted(fields))} here",
                f"say which: {', '.join(_kind_phrase(k, fields[k]) for k in sorted(fields))}",
            )
        return next(iter(fields.items()))

    def known(self) -> str:
        index = self.index
        return (
            f"these memories know games {_listed(index.games())}, items {_listed(index.items())}"
            f", counterparts {_listed(index.counterparts())} and tags {_listed(sorted(index.tags))}"
        )

    def _fields_named(self, name: str) -> dict[str, str]:
        low = name.lower()
        found: dict[str, str] = {}
        for kind, values in (
            ("game", self.index.games()),
            ("item", self.index.items()),
            ("counterpart", self.index.counterparts()),
            ("tag", sorted(self.index.tags)),
        ):
            exact = [v for v in values if v.lower() == low]
            # A counterpart by its tactic or model alone: "tit-for-tat" for rule:tit-for-tat.
            tail = [v for v in values if re.split(r"[:/]", v)[-1].lower() == low]
            match = exact or (tail if kind == "counterpart" and len(tail) == 1 else [])
            if match:
                found[kind] = match[0]
        return found


def _listed(values: list[str]) -> str:
    if not values:
        return "(none)"
    return ", ".join(values[:6]) + (", …" if len(values) > 6 else "")


def _kind_phrase(kind: str, value: str) -> str:
    return {
        "game": f"`the {value} game`",
        "item": f"`the item {value}`",
        "counterpart": f"`the counterpart {value}`",
        "tag": f"`everything tagged {value}`",
    }[kind]
