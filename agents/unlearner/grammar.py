"""The rule-based unlearner's grammar: a forget request in words -> a typed request.

    [forget|erase|delete|remove|unlearn|redact] TARGET [MODIFIERS]

Modifiers (`haggler.agents.unlearner.modifiers`) are read and taken out first; what is left is
the target, tried against the forms below in order. Names resolve against the memories' index
(`haggler.agents.unlearner.names`), never against their content. Words that could mean two
things are refused with both readings named, unless the caller's level decides.
docs/forgetting.md ("Requests in words") describes the grammar for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from haggler.agents.unlearner.builder import Builder, Fact, Request, a_name, first_problem
from haggler.agents.unlearner.facts import (
    is_name,
    risky_pattern,
    several_values,
    topic_pattern,
    value_of,
)
from haggler.agents.unlearner.index import MemoryIndex
from haggler.agents.unlearner.modifiers import ID
from haggler.agents.unlearner.words import (
    MARK,
    NUMBER,
    Term,
    Words,
    round_list,
    shown,
    small_number,
    term_of,
)
from haggler.memory.forgetting.requests import (
    Level,
    Mode,
    NameFact,
    PatternFact,
    PhraseFact,
    ValueFact,
)

__all__ = ["Request", "read_request"]

_I = re.IGNORECASE
_EVERYTHING = (
    r"(?:everything|anything|all(?:\s+(?:of\s+)?(?:the\s+|my\s+|your\s+|its\s+|their\s+)?"
    r"(?:memories|memory|items|notes|games|advice|feedback|lessons))?)"
    r"(?:\s+(?:you|i|it|they|the\s+agents?)\s+(?:know|knows|remember|remembers|learned|learnt|"
    r"have|has))?"
)
_ABOUT = r"(?:about|from|of|concerning|regarding|involving|on|with|related\s+to|to\s+do\s+with)"
_SAID = (
    r"(?:has\s+|had\s+)?(?:said|says|told\s+(?:you|me|us|them|it|(?:the\s+)?[\w-]+)|wrote|"
    r"stated|mentioned|"
    r"revealed|claimed|let\s+slip|disclosed|admitted|shared)(?:\s+to\s+(?:you|me|us))?"
)
_LITERAL_FILLER = re.compile(
    r"(?:\s|\b(?:the|a|any|all|phrase|words?|text|sentences?|pattern|regex|regular|expression|"
    r"anything|everything|whatever|lines?|items?|that|matching|match(?:es)?|says?|saying|"
    r"contain(?:s|ing)?|with|mention(?:s|ing)?|of|about|quote[sd]?)\b)*",
    _I,
)
_FORMS = (
    "a value ($8), a 'quoted phrase', the name Alice, a /pattern/, what the buyer said about "
    "its budget, game ID, turns 3-5 of game ID, round N, lineage ID, everything about X, "
    "everything tagged T, the counterpart of round N"
)


class _Reader(Builder):
    """The forms of the grammar, tried in order on what the modifiers left."""

    # -- the target --------------------------------------------------------------------------

    def read(self) -> Request:
        if not self.core:
            raise self.refuse("it names nothing to forget", f"say what: {_FORMS}")
        forms: list[Callable[[str], Request | None]] = [
            self.said,
            self.literal,
            self.span,
            self.rounds,
            self.lineage,
            self.game,
            self.everything,
            self.mentions,
            self.about,
            self.tagged,
            self.counterpart,
            self.name,
            self.value,
        ]
        for form in forms:
            request = form(self.core)
            if request is not None:
                return request
        return self.bare(self.core)

    def said(self, core: str) -> Request | None:
        roles = "|".join(
            re.escape(r) for r in sorted({"buyer", "seller", *self.names.index.speakers})
        )
        match = re.fullmatch(
            rf"(?:(?:everything|all|anything|things?)\s+)?(?:(?:what|that)\s+)?(?:the\s+)?"
            rf"(?P<role>{roles})\s+{_SAID}(?:\s+(?:about|on|regarding|concerning)\s+(?P<topic>.+))?",
            core,
            _I,
        ) or re.fullmatch(
            rf"(?:the\s+)?(?P<role>{roles})(?:'s|’s)\s+(?:(?:lines|words|messages|statements)"
            rf"(?:\s+(?:about|on)\s+(?P<about>.+))?|(?P<topic>.+))",
            core,
            _I,
        )
        if match is None:
            return None
        role = match["role"].lower()
        topic = match.groupdict().get("about") or match["topic"]
        return self.state(self.topic_fact(topic, role), said_by=role)

    def topic_fact(self, topic: str | None, role: str) -> Fact:
        if topic is None:
            return PatternFact(regex=r"[^\n]+")  # every line the role said
        topic = topic.strip()
        pattern = topic_pattern(topic)
        if pattern is not None:
            return PatternFact(regex=pattern)
        if MARK.fullmatch(topic):
            return self.literal_fact(topic)
        value = value_of(topic)
        if value is not None:
            return ValueFact(value=value)
        if is_name(topic) and len(topic.split()) <= 3:
            return NameFact(name=topic)
        raise self.refuse(
            f"it does not say which of the {role}'s words are about {shown(topic)}",
            "name a topic (its budget, its prices, its costs), quote the words or give a /pattern/",
        )

    def literal_fact(self, mark: str) -> PhraseFact | PatternFact:
        literal = self.words.literal(mark)
        if literal.kind == "phrase":
            return PhraseFact(text=literal.text)
        try:
            fact = PatternFact(regex=literal.text)
        except ValueError as error:
            problem = first_problem(error)
        else:
            problem = risky_pattern(fact.regex) or ""
            if not problem:
                return fact
        raise self.refuse(
            f"/{shown(literal.text, 60)[1:-1]}/ is no usable pattern ({problem})",
            "simplify the pattern, or quote the words instead",
        )

    def literal(self, core: str) -> Request | None:
        marks = MARK.findall(core)
        if not marks:
            return None
        if len(marks) > 1:
            raise self.refuse("it quotes more than one thing", "forget one thing at a time")
        if not _LITERAL_FILLER.fullmatch(MARK.sub(" ", core)):
            return None
        return self.state(self.literal_fact(f"\x00{marks[0]}\x00"))

    def span(self, core: str) -> Request | None:
        match = re.fullmatch(
            rf"(?:the\s+)?turns?\s+(?P<a>{NUMBER})(?:\s*(?P<sep>-|–|to|through|thru|until|and)"
            rf"\s*(?P<b>{NUMBER}))?",
            core,
            _I,
        )
        if match is None:
            return None
        first = small_number(match["a"])
        last = small_number(match["b"]) if match["b"] else first
        if (match["sep"] or "").lower() == "and" and last != first + 1:
            raise self.refuse(
                "it names two spans of turns", "forget one span (turns A-B) at a time"
            )
        if last < first:
            raise self.refuse(f"turns {first}-{last} run backwards", f"write turns {last}-{first}")
        episode = self.take_game("turns belong to one game")
        return self.trajectory(episode=episode, turns=(first, last))

    def rounds(self, core: str) -> Request | None:
        numbers = round_list(core)
        if numbers is None:
            return None
        lineage = self.names.lineage(self.mods.lineage) if self.mods.lineage else None
        self.mods.lineage = None
        if lineage is not None and all(isinstance(n, int) for n in numbers):
            return self.trajectory(lineage=lineage, rounds=tuple(sorted(set(numbers))))
        games = self.names.round_games(numbers, lineage)
        ids = sorted({g.id for g in games})
        if len(ids) == 1:
            return self.trajectory(episode=ids[0])
        lineages = {g.lineage for g in games}
        if None in lineages:
            raise self.refuse(
                "those rounds are several games, and their lineage is not known without the store",
                "open the store, or forget the games one by one",
            )
        if len(lineages) > 1:
            raise self.refuse(
                f"those rounds were played in {len(lineages)} lineages here "
                f"({', '.join(sorted(str(x) for x in lineages))})",
                "add `of lineage ID` or `for agent NAME` to say which",
            )
        rounds = sorted({g.lineage_round for g in games if g.lineage_round is not None})
        return self.trajectory(lineage=lineages.pop(), rounds=tuple(rounds))

    def lineage(self, core: str) -> Request | None:
        match = re.fullmatch(
            rf"(?:the\s+)?(?:whole\s+|entire\s+|this\s+|my\s+|its\s+)*lineage(?:\s+(?P<id>{ID}))?",
            core,
            _I,
        )
        if match is None:
            return None
        ref = match["id"] or self.mods.lineage
        self.mods.lineage = None
        if ref is None:
            known = sorted(
                {g.lineage for g in self.names.index.played if g.lineage and self.names.mine(g)}
            )
            if len(known) != 1:
                raise self.refuse(
                    f"these memories hold {len(known)} lineages", "name one: `lineage ID`"
                )
            ref = known[0]
        return self.trajectory(lineage=self.names.lineage(ref))

    def game(self, core: str) -> Request | None:
        match = re.fullmatch(
            rf"(?:the\s+)?(?:whole\s+|entire\s+)?(?:game|episode|match)\s+(?P<id>{ID})"
            r"(?:\s+and\s+(?:its|the|all)\s+(?:feedback|advice|critiques?|lessons?))?",
            core,
            _I,
        )
        if match is not None:
            if match["id"].lower() in self.names.index.games():
                return self.environment(Term(match["id"].lower(), "game"))
            return self.trajectory(episode=self.names.episode(match["id"]))
        match = re.fullmatch(
            r"(?:the\s+)?(?P<name>[\w:-]+)\s+(?P<noun>games?|markets?|trade)", core, _I
        )
        if match is None:
            return None
        kind = "game" if match["noun"].lower().startswith("game") else None
        return self.environment(Term(match["name"], kind))

    def everything(self, core: str) -> Request | None:
        if not re.fullmatch(_EVERYTHING, core, _I):
            return None
        mods = self.mods
        if mods.episode or mods.round is not None:
            return self.trajectory(episode=self.take_game("everything of one game"))
        if mods.lineage:
            lineage = self.names.lineage(mods.lineage)
            mods.lineage = None
            return self.trajectory(lineage=lineage)
        if mods.game:
            game, mods.game = mods.game, None
            return self.environment(Term(game, "game"))
        raise self.refuse(
            "it asks to forget everything, of nothing in particular",
            "say of what: everything about X, everything in game ID, everything tagged T",
        )

    def mentions(self, core: str) -> Request | None:
        """Every mention of a word, a phrase or an amount: a fact, never an environment."""
        match = re.fullmatch(
            r"(?:(?:every|each|any|all(?:\s+the)?)\s+)?(?:mentions?|occurrences?|instances?)\s+"
            r"of\s+(?P<what>.+)",
            core,
            _I,
        )
        if match is None:
            return None
        what = match["what"].strip()
        if MARK.fullmatch(what):
            return self.state(self.literal_fact(what))
        value = value_of(what)
        if value is not None:
            return self.state(ValueFact(value=value))
        name = term_of(what).name if not MARK.search(what) else ""
        if not name:
            return None
        return self.state(NameFact(name=self.words.restore(name)))

    def about(self, core: str) -> Request | None:
        match = re.fullmatch(
            rf"{_EVERYTHING}\s+(?:(?:tagged|labell?ed|marked)\s+(?:as\s+|with\s+)?|with\s+(?:the\s+)?"
            rf"tags?\s+)(?P<tag>\S+)",
            core,
            _I,
        )
        if match is not None:
            return self.environment(Term(match["tag"], "tag"))
        match = re.fullmatch(rf"{_EVERYTHING}\s+{_ABOUT}\s+(?P<term>.+)", core, _I)
        if match is None:
            return None
        term = match["term"].strip()
        inner = self.said(term) or self.literal(term) or self.tagged(term) or self.counterpart(term)
        if inner is not None:
            return inner
        value = value_of(term)
        if value is not None:
            return self.state(ValueFact(value=value))
        return self.environment(term_of(term))

    def tagged(self, core: str) -> Request | None:
        match = re.fullmatch(
            r"(?:(?:the\s+)?tag\s+|#|(?:(?:items?|memories|notes|anything)\s+)?(?:tagged|labell?ed)"
            r"\s+(?:as\s+|with\s+)?)(?P<tag>[^\s#]+)",
            core,
            _I,
        )
        return None if match is None else self.environment(Term(match["tag"], "tag"))

    def counterpart(self, core: str) -> Request | None:
        match = re.fullmatch(
            r"(?:the\s+)?(?:counterpart|opponent|rival|other\s+side|other\s+party)"
            r"(?:\s+(?P<name>\S+))?",
            core,
            _I,
        )
        if match is None:
            return None
        if match["name"]:
            return self.environment(Term(match["name"], "counterpart"))
        mods, names = self.mods, self.names
        if mods.episode:
            episode = names.episode(mods.episode)
            games = [g for g in names.index.played if g.id == episode]
            what = f"game {mods.episode}"
        elif mods.round is not None:
            lineage = names.lineage(mods.lineage) if mods.lineage else None
            games = names.round_games([mods.round], lineage)
            what = f"round {mods.round}"
        else:
            raise self.refuse(
                "it does not say whose counterpart", "say `the counterpart of round N`"
            )
        found = names.counterpart(games, what)
        # The round or game only said which counterpart: it is forgotten wherever it was met.
        mods.episode = mods.round = mods.lineage = None
        return self.environment(Term(found, "counterpart"))

    def name(self, core: str) -> Request | None:
        match = re.fullmatch(r"(?:the\s+)?(?:name|word|term)\s+(?P<name>.+)", core, _I)
        if match is None:
            return None
        return self.state(NameFact(name=self.words.restore(match["name"]).strip()))

    def value(self, core: str) -> Request | None:
        match = re.fullmatch(
            r"(?:the\s+)?(?:(?:price|amount|value|sum|figure|number|offer|bid|deal|budget|cost|"
            r"quote)\s+(?:of\s+|at\s+|is\s+|was\s+)?)?(?P<amount>.+)",
            core,
            _I,
        )
        assert match is not None
        amount = re.sub(
            r"\s+(?:price|amount|value|sum|figure|offer|bid|deal|budget|cost|quote)$",
            "",
            match["amount"],
            flags=_I,
        )
        count = several_values(amount)
        if count:
            raise self.refuse(f"it names {count} values", "forget one value at a time")
        value = value_of(amount)
        return None if value is None else self.state(ValueFact(value=value))

    def bare(self, core: str) -> Request:
        """Words that fit no form: an environment's name, a name, or (at state level) a phrase."""
        words = self.words.restore(core)
        if self.want == "state":
            return self.state(NameFact(name=words) if _one_word(words) else PhraseFact(text=words))
        if self.want == "trajectory":
            raise self.refuse(
                f"{shown(words)} names no game, lineage, round or span of turns",
                "say `game ID`, `lineage ID`, `round N` or `turns A-B of game ID`",
            )
        term = term_of(core)
        if self.want == "environment" or term.kind is not None:
            return self.environment(term)
        found = self.names.environment(term)
        if found is not None:
            raise self.refuse(
                f"{shown(term.name)} names {_a(found[0])} here and could also be a word in what "
                "was said",
                f"say `everything about {term.name}` for the {found[0]}, `the name {term.name}` "
                "for the word, or give the level",
            )
        if a_name(term.name) and not MARK.search(core):
            return self.state(NameFact(name=term.name))
        raise self.refuse("it is not a request this grammar reads", f"say one of: {_FORMS}")


def read_request(
    words: str, index: MemoryIndex, *, level: Level | None = None, mode: Mode | None = None
) -> Request:
    """The typed request `words` stand for, over the memories of `index`; RequestError when
    they cannot be read, or could be read two ways and `level` does not decide between them."""
    reader = _Reader(Words.read(words), index, level)
    request = reader.read()
    said = reader.mods.modes
    if len(said) > 1:
        raise reader.refuse(f"it asks for {' and '.join(said)} mode", "say one mode")
    if said and mode is not None and said[0] != mode:
        raise reader.refuse(f"the words ask for {said[0]} mode but {mode} was given", "say one")
    return request.model_copy(
        update={"mode": mode or (said[0] if said else "exact"), "purge_record": reader.mods.purge}
    )


def _one_word(text: str) -> bool:
    return len(text.split()) == 1


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"
