"""Reading one sentence of advice: which tactic levers it moves, which way, and how hard.

A sentence is normalised (`advice_lexicon.normalise`), cut into clauses (at punctuation and
at "and", "but", "then", "rather than", "without", ...), and each clause is read on its own:

1. conditions are set apart ("when the buyer is about to leave", "if time runs out"): what a
   condition says is not advice; a condition about the end of the game turns the clause's
   advice into advice about the deadline lever; other conditions halve its strength (the
   negotiator cannot check them);
2. a part whose subject is the rival ("the seller will come down") is an observation, dropped;
3. cues are found: stances ("be patient"), acts of conceding with their manner ("lower your
   price more gradually"), settings with a direction ("a higher walk-away price"), gains
   ("insist on more money"), the opening ("anchor higher"), the deal ("close the deal");
4. each cue is signed: a negation before it in its clause flips it (two cancel: "don't be
   afraid to hold firm"), except a negated increase of a setting, which means keep it
   ("no need to aim any higher"); an excess ("too", "more than you had to") in a diagnosis
   ("you caved too fast") asks for the other way; hedges ("maybe", "you might consider") and
   diminishers ("a little") halve the strength, intensifiers ("much") raise it by half.

Within a sentence, cues on one lever that agree count once (the strongest), cues that
disagree add up. What a sentence gives is explained cue by cue (`SentenceReading.explain`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from haggler.agents import advice_lexicon as lex

__all__ = ["LEVERS", "Cue", "SentenceReading", "read_sentence", "sentences_of"]

LEVERS = ("firmness", "ambition", "opening", "deadline")

_CLAUSE_BREAK = re.compile(r"[,;:()\u2014\[\]]|\s-\s")
_CONJUNCTIONS = {"and", "but", "yet", "then", "although", "though", "whereas", "plus", "also"}
# Clause openers that keep their own meaning (a negation) in the clause they open.
_NEGATING_OPENERS = {"without", "ratherthan", "insteadof"}
_DETERMINERS = {"the", "your", "this", "that", "a", "an", "its", "my", "our"}
_CONCESSION_TAGS = {lex.CONCEDE, lex.MOVE_NOUN, lex.DOWN_MOVE, lex.UP_MOVE, lex.OWN_PRICE}
_CAUSED_MOVES = {"move", "moving", "come", "concede", "budge", "give", "go", "first", "do",
                 "comedown", "comeup", "giveground", "givein", "backdown", "jumpup", "work",
                 "pay", "earn", "fight", "sweat", "offer", "bid", "raise", "lower", "reduce",
                 "meet", "make", "drop", "cut"}  # fmt: skip
# Acts that, right after the rival, make it the subject: "the buyer gave ground".
_RIVAL_ACTS = (lex.CONCEDE, lex.WALK_OFF, lex.FIRM, lex.HASTE, lex.LOSE_DEAL, lex.KEEP_DEAL)
# Acts told in the past by their very token: a diagnosis even without "you".
_PAST_ACTS = {"lostdeal", "walkedoff", "leftmoney"}
# What a rival may do to the player: letting it is yielding ("don't let the buyer push you").
_PRESSURES = {"push", "rush", "hurry", "pressure", "pressur", "bully", "corner", "talk", "force",
              "railroad", "steamroll", "intimidate"}  # fmt: skip
# Gain verbs that need "for" to be about a gain ("go for more", "hold out for a better price").
_FOR_VERBS = {"go", "hold", "fight", "press", "push", "hope", "holdoutfor"}
# Accepting is a concession too: "accept sooner", "settle faster", "you agreed too quickly".
_ACCEPT_VERBS = {"accept", "agree", "settle", "close", "take", "say"}


@dataclass(frozen=True, slots=True)
class Cue:
    """One piece of a sentence's meaning: `lever` moved `sign` (+1, -1, or 0 to keep it)."""

    lever: str
    sign: int
    weight: float
    words: str
    notes: tuple[str, ...] = ()

    @property
    def effect(self) -> float:
        return self.sign * self.weight


@dataclass(frozen=True, slots=True)
class SentenceReading:
    """What a negotiator took from one sentence, and why."""

    text: str
    cues: tuple[Cue, ...]
    # Lever -> signed strength, for the levers the sentence moves.
    effects: dict[str, float] = field(default_factory=dict)
    # Parts of the sentence read but not taken, and why ("about the buyer, not advice").
    set_aside: tuple[str, ...] = ()

    @property
    def used(self) -> bool:
        return any(self.effects.values())

    def explain(self) -> str:
        """One line per cue: the lever, its direction and strength, and how it was read."""
        head = f"{self.text!r}"
        if not self.cues:
            lines = [f"{head}: ignored, no tactic lever in it"]
        else:
            moved = ", ".join(f"{lever} {value:+.2f}" for lever, value in self.effects.items())
            lines = [f"{head}: {moved or 'no net change'}"]
            for cue in self.cues:
                way = {1: "+", -1: "-", 0: "keep"}[cue.sign]
                notes = f" ({'; '.join(cue.notes)})" if cue.notes else ""
                words = lex.shown(cue.words)
                lines.append(f"  {cue.lever} {way} x{cue.weight:g} from {words!r}{lex.shown(notes)}")
        lines.extend(f"  set aside: {lex.shown(reason)}" for reason in self.set_aside)
        return "\n".join(lines)


@dataclass(slots=True)
class _Tok:
    text: str
    tags: frozenset[str]
    index: int

    def has(self, *tags: str) -> bool:
        return any(tag in self.tags for tag in tags)


@dataclass(slots=True)
class _Clause:
    tokens: list[_Tok]
    # Cut from the one before at a conjunction ("and", "but"), not at punctuation.
    conjoined: bool = False
    condition: _Condition | None = None
    # A clause of conditions only ("when the buyer pushes"), or a bare time marker ("near
    # the end"): it governs a neighbouring clause instead of advising.
    governs: bool = False


@dataclass(frozen=True, slots=True)
class _Condition:
    words: str
    deadline: bool
    kind: str  # "if", "until", "unless", "temporal"


def sentences_of(text: str) -> list[str]:
    """The sentences of a piece of advice, list markers ("1.", "-", "*") removed."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:\d+[.)]|[-*\u2022])\s+", "", line)
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            if sentence.strip(" \t.!?"):
                out.append(sentence.strip())
    return out


def read_sentence(sentence: str, role: str) -> SentenceReading:
    """What the negotiator playing `role` takes from `sentence`."""
    text = lex.normalise(sentence)
    hedged = any(lex.HEDGE in lex.tags_of(w) for w in re.findall(r"[a-z§]+", text))
    clauses = _clauses(text)
    aside: list[str] = []
    observed = False
    for clause in clauses:
        clause.tokens, dropped = _without_rival_subject(clause.tokens, role)
        first = clause.tokens[0] if clause.tokens else None
        if (
            observed
            and clause.conjoined
            and first is not None
            and (first.has(lex.AUX, lex.PAST) or first.text.endswith("ed"))
        ):
            # "The buyer conceded quickly and held firm": the rival is still the subject.
            dropped = [f"{' '.join(t.text for t in clause.tokens)!r} is about the rival"]
            clause.tokens = []
        observed = bool(dropped) and not clause.tokens
        aside.extend(dropped)
    _attach_conditions(clauses)
    cues: list[Cue] = []
    for clause in clauses:
        if clause.governs or not clause.tokens:
            continue
        found, dropped = _read_clause(clause, role)
        cues.extend(found)
        aside.extend(dropped)
    if hedged:
        cues = [_weighted(c, 0.5, "hedged: half strength") for c in cues]
    effects: dict[str, float] = {}
    for lever in LEVERS:
        mine = [c for c in cues if c.lever == lever and c.sign != 0]
        signs = {c.sign for c in mine}
        if len(signs) == 1:
            effects[lever] = signs.pop() * max(c.weight for c in mine)
        elif signs:
            effects[lever] = sum(c.effect for c in mine)
    return SentenceReading(
        sentence, tuple(cues), {k: v for k, v in effects.items() if v}, tuple(aside)
    )


# --- clauses and conditions -----------------------------------------------------------------


def _tokens(text: str) -> list[_Tok]:
    words = re.findall(r"[a-z§]+", text)
    return [_Tok(w, lex.tags_of(w), i) for i, w in enumerate(words)]


def _clauses(text: str) -> list[_Clause]:
    clauses: list[_Clause] = []
    for chunk in _CLAUSE_BREAK.split(text):
        current: list[str] = []
        joined = False
        words = re.findall(r"[a-z§]+", chunk)
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            splits = (
                word in _CONJUNCTIONS
                or word in _NEGATING_OPENERS
                or (word == "so" and nxt in {"that", "you", "your", "they", "the", "it"})
            )
            if splits and current:
                clauses.append(_Clause(_tokens(" ".join(current)), conjoined=joined))
                current, joined = [], True
            if word in _CONJUNCTIONS or (word == "so" and splits):
                continue
            current.append(word)
        if current:
            clauses.append(_Clause(_tokens(" ".join(current)), conjoined=joined))
    return clauses


def _subordinator_at(tokens: list[_Tok]) -> int | None:
    for i, tok in enumerate(tokens):
        if not tok.has(lex.SUBORD):
            continue
        if tok.text == "as":
            nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
            if nxt not in {"§end", "the", "you", "soon", "they", "time", "long"}:
                continue
        return i
    return None


def _condition_of(tokens: list[_Tok]) -> _Condition:
    first = tokens[0]
    kind = (
        "until"
        if first.has(lex.UNTIL)
        else "unless"
        if first.has(lex.UNLESS)
        else "temporal"
        if first.has(lex.TEMPORAL) or first.text in {"while", "as"}
        else "if"
    )
    deadline = any(t.has(lex.DEADLINE) for t in tokens)
    return _Condition(" ".join(t.text for t in tokens), deadline, kind)


def _attach_conditions(clauses: list[_Clause]) -> None:
    """Set each condition beside the clause it governs."""
    pending: _Condition | None = None
    last_main: _Clause | None = None
    for clause in clauses:
        tokens = clause.tokens
        lead = next((i for i, t in enumerate(tokens) if not t.has(lex.HEDGE)), len(tokens))
        at = _subordinator_at(tokens)
        if at is not None and at <= lead:
            # The whole clause is a condition: it governs the next clause (or the last).
            clause.governs = True
            pending = _condition_of(tokens[at:])
            continue
        if at is not None:
            clause.condition = _condition_of(tokens[at:])
            clause.tokens = tokens[:at]
        elif _only_a_time_marker(tokens):
            clause.governs = True
            pending = _Condition(" ".join(t.text for t in tokens), True, "if")
            continue
        if pending is not None and clause.condition is None:
            clause.condition = pending
        pending = None
        last_main = clause
    if pending is not None and last_main is not None and last_main.condition is None:
        last_main.condition = pending


def _only_a_time_marker(tokens: list[_Tok]) -> bool:
    # "Near the end," / "In the closing turns," standing before the advice they qualify.
    lever_words = {
        lex.FIRM, lex.SOFT, lex.HASTE, lex.FLEX, lex.INFLEX, lex.CONCEDE, lex.GAIN_VERB,
        lex.PAY_VERB, lex.SELL_VERB, lex.KEEP_DEAL, lex.LOSE_DEAL, lex.WALK_OFF, lex.GIVE,
        lex.DOWN_MOVE, lex.UP_MOVE, lex.GREEDY, lex.MODEST, lex.SETTING_PRICE,
        lex.SETTING_GAIN,
    }  # fmt: skip
    return any(t.has(lex.DEADLINE) for t in tokens) and not any(
        t.has(*lever_words) for t in tokens if t.text not in {"get", "go", "have"}
    )


# --- one clause -----------------------------------------------------------------------------


def _read_clause(clause: _Clause, role: str) -> tuple[list[Cue], list[str]]:
    tokens, aside = clause.tokens, []
    condition = clause.condition
    if condition is not None and condition.kind != "temporal":
        aside.append(f"condition {condition.words!r} is not advice")
    reading = _ClauseReading(tokens, role)
    cues = reading.cues()
    if not cues:
        return [], aside
    deadline_here = any(t.has(lex.DEADLINE) for t in tokens)
    if deadline_here and (condition is None or condition.kind != "unless"):
        # "Accept a bit less near the end": the clause itself is about the end.
        marker = " ".join(t.text for t in tokens if t.has(lex.DEADLINE))
        cues = [_at_the_deadline(c, marker) for c in cues]
    if condition is None:
        return cues, aside
    if condition.deadline and condition.kind == "unless":
        # "Unless time is nearly up, hold your ground": hold it, but not at the very end.
        extra = [
            Cue("deadline", c.sign, c.weight, c.words, (*c.notes, "the exception: the end"))
            for c in cues
            if c.lever in ("firmness", "ambition") and c.sign
        ]
        return cues + extra[:1], aside
    if condition.deadline and condition.kind in ("if", "temporal") and not deadline_here:
        # (A clause that names the end itself was turned to the deadline lever above.)
        return [_at_the_deadline(c, condition.words) for c in cues], aside
    if not condition.deadline and condition.kind == "if":
        note = f"condition {condition.words!r} not tracked: half strength"
        return [_weighted(c, 0.5, note) for c in cues], aside
    return cues, aside


def _without_rival_subject(tokens: list[_Tok], role: str) -> tuple[list[_Tok], list[str]]:
    """The clause without a part whose subject is the rival: what the rival does or did is
    an observation, not advice to the player."""
    own = "seller" if role == "seller" else "buyer"
    for i, tok in enumerate(tokens):
        if not tok.has(lex.RIVAL) or tok.text == own or tok.text in {"them", "him", "her"}:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is None or not (
            nxt.has(lex.AUX, *_RIVAL_ACTS) or nxt.text.endswith("ed") or nxt.text == "only"
        ):
            continue
        before = [t.text for t in tokens[max(0, i - 3) : i]]
        if any(lex.CAUSE in lex.tags_of(w) for w in before) or any(
            w in {"to", "with", "for", "than", "from", "at", "on"} for w in before[-2:]
        ):
            continue
        start = i - 1 if i > 0 and tokens[i - 1].text in _DETERMINERS else i
        dropped = " ".join(t.text for t in tokens[start:])
        return tokens[:start], [f"{dropped!r} is about the {tok.text}, not advice"]
    return tokens, []


def _at_the_deadline(cue: Cue, words: str) -> Cue:
    if cue.lever in ("firmness", "ambition"):
        # Yielding at the end (firmness or ambition down) is deadline flexibility up.
        note = f"only near the end ({words}): the deadline lever"
        return Cue("deadline", -cue.sign, cue.weight, cue.words, (*cue.notes, note))
    return cue


def _weighted(cue: Cue, factor: float, note: str) -> Cue:
    return Cue(cue.lever, cue.sign, cue.weight * factor, cue.words, (*cue.notes, note))


class _ClauseReading:
    """The cues of one clause, found in an order that lets the more specific claim words
    first (a causative before a concession, a gain before a bare direction)."""

    def __init__(self, tokens: list[_Tok], role: str) -> None:
        self.tokens = tokens
        self.role = role
        self.seller = role == "seller"
        self.used: set[int] = set()
        self.found: list[tuple[Cue, int, dict[str, bool]]] = []

    # -- helpers

    def _free(self, *tags: str, after: int = -1) -> list[_Tok]:
        return [
            t for t in self.tokens if t.index > after and t.index not in self.used and t.has(*tags)
        ]

    def _add(self, lever: str, sign: int, anchor: int, words: list[_Tok], **flags: bool) -> None:
        for tok in words:
            self.used.add(tok.index)
        text = " ".join(t.text for t in sorted(words, key=lambda t: t.index))
        self.found.append((Cue(lever, sign, 1.0, text), anchor, flags))

    def _price_sign(self, tok: _Tok) -> int:
        """+1 when the price direction of `tok` is good for the player (up for a seller)."""
        up = tok.has(lex.PRICE_UP) or tok.has(lex.MORE) or tok.text in {"much", "alot", "extra"}
        return (1 if up else -1) * (1 if self.seller else -1)

    def _has_open(self) -> bool:
        for i, tok in enumerate(self.tokens):
            nxt = self.tokens[i + 1] if i + 1 < len(self.tokens) else None
            if tok.text == "first" and nxt is not None and nxt.has(*_CONCESSION_TAGS):
                return True
            if tok.has(lex.OPEN):
                if tok.text in {"start", "begin"} and nxt is not None and (
                    nxt.text.endswith("ing") or nxt.has(lex.CONCEDE, lex.HASTE)
                ):
                    continue  # "start conceding sooner" is about conceding, not the opening
                return True
        return False

    # -- the cues

    def cues(self) -> list[Cue]:
        opening = self._has_open()
        self._causative()
        self._deal()
        self._gains()
        self._settings()
        self._stances(opening)
        self._concession(opening)
        if opening:
            self._opening()
        return [self._signed(cue, anchor, flags) for cue, anchor, flags in self.found]

    def _causative(self) -> None:
        # "Make the buyer move first", "let the seller come to you": the rival concedes first.
        toks = self.tokens
        for i, tok in enumerate(toks):
            if not tok.has(lex.CAUSE) or tok.index in self.used:
                continue
            rest = toks[i + 1 : i + 3]
            rival = next((t for t in rest if t.has(lex.RIVAL)), None)
            if rival is None:
                continue
            pos = toks.index(rival)
            pressure = next(
                (t for t in toks[pos + 1 : pos + 3] if lex.word_stem(t.text) in _PRESSURES), None
            )
            if pressure is not None:
                self._add("firmness", -1, tok.index, [tok, rival, pressure], causative=True)
                for t in toks[pos + 1 :]:
                    self.used.add(t.index)
                continue
            move = next(
                (t for t in toks[pos + 1 : pos + 6]
                 if t.text in _CAUSED_MOVES or lex.word_stem(t.text) in _CAUSED_MOVES),
                None,
            )  # fmt: skip
            if move is not None:
                self._add("firmness", 1, tok.index, [tok, rival, move], causative=True)
                # What follows is the rival's move ("do most of the moving"), not the player's.
                for t in toks[pos + 1 :]:
                    self.used.add(t.index)

    def _deal(self) -> None:
        for tok in self._free(lex.KEEP_DEAL, lex.LOSE_DEAL, lex.WALK_OFF):
            if tok.text in {"closedeal"}:
                self._add("deadline", 1, tok.index, [tok])
            elif tok.text in {"losedeal", "lostdeal", "walkoff", "walkedoff"}:
                self._add("deadline", -1, tok.index, [tok], act=True, past=tok.text in _PAST_ACTS)
            elif tok.has(lex.KEEP_DEAL, lex.LOSE_DEAL):
                deal = next(
                    (t for t in self._free(lex.DEAL, after=tok.index) if t.index <= tok.index + 3),
                    None,
                )
                if deal is not None:
                    sign = 1 if tok.has(lex.KEEP_DEAL) else -1
                    self._add("deadline", sign, tok.index, [tok, deal], act=sign < 0)

    def _gains(self) -> None:
        for verb in self._free(lex.GAIN_VERB, lex.PAY_VERB, lex.SELL_VERB):
            if verb.index in self.used:
                continue
            stem = lex.word_stem(verb.text)
            follows = [t.text for t in self.tokens if t.index == verb.index + 1]
            if stem in _FOR_VERBS and follows != ["for"] and stem != "holdoutfor":
                continue  # "push harder" is a stance, read in _stances
            if stem == "ask" and follows == ["price"]:
                continue  # "a higher asking price": the price, not a request
            if stem in {"offer", "bid"} and not self._imperative(verb):
                continue  # "your offer", "raise your bid": a noun, not "offer less"
            quantities = [
                t
                for t in self._free(lex.MORE, lex.LESS, lex.BETTER, lex.WORSE, lex.PRICE_UP,
                                    lex.PRICE_DOWN, after=verb.index)  # fmt: skip
                if t.text not in {"up", "down"} or verb.has(lex.PAY_VERB)
            ]
            if verb.has(lex.PAY_VERB):
                quantities += self._free(lex.FAST, after=verb.index)
                quantities = [t for t in quantities if t.text in {"much", "alot", "lot"}
                              or not t.has(lex.FAST)]  # fmt: skip
                quantities.sort(key=lambda t: t.index)
            if lex.word_stem(verb.text) == "overpay":
                self._add("ambition", -1 if not self.seller else 0, verb.index, [verb])
                continue
            if not quantities:
                continue
            q = quantities[0]
            notes: dict[str, bool] = {}
            if verb.has(lex.PAY_VERB) or verb.has(lex.SELL_VERB) or q.has(
                lex.PRICE_UP, lex.PRICE_DOWN
            ):
                sign = self._price_sign(q)
                if verb.has(lex.AIM) and q.has(lex.PRICE_UP) and not self.seller:
                    # "Aim higher" is an idiom for ambition; for a buyer it reads both ways.
                    self._add("ambition", 0, verb.index, [verb, q], ambiguous=True)
                    continue
            else:
                sign = 1 if q.has(lex.MORE, lex.BETTER) else -1
            self._add("ambition", sign, verb.index, [verb, q], **notes)

    def _imperative(self, tok: _Tok) -> bool:
        before = [t for t in self.tokens if t.index < tok.index]
        return all(t.has(lex.HEDGE, lex.NEG, lex.INTENS) or t.text in {"do", "just", "then"}
                   for t in before)  # fmt: skip

    def _settings(self) -> None:
        for noun in self._free(lex.SETTING_PRICE, lex.SETTING_GAIN):
            if noun.index in self.used:
                continue
            keep = [t for t in self._free(lex.KEEP) if t.text != "pace"]
            if keep:
                self._add("ambition", 0, noun.index, [noun, *keep], keep=True)
                continue
            directions = [
                t
                for t in self._free(lex.PRICE_UP, lex.PRICE_DOWN, lex.MORE, lex.LESS)
                if t.text not in {"much"}
            ]
            if not directions:
                continue
            d = min(directions, key=lambda t: abs(t.index - noun.index))
            if noun.has(lex.SETTING_GAIN):
                sign = 1 if d.has(lex.PRICE_UP, lex.MORE) else -1
            else:
                sign = self._price_sign(d)
            change = d.has(lex.CHANGE) and d.index < noun.index
            self._add("ambition", sign, noun.index, [d, noun], setting_change=change)

    def _stances(self, opening: bool) -> None:
        for tok in self._free(lex.FLEX, lex.INFLEX):
            sign = 1 if tok.has(lex.INFLEX) else -1
            self._add("firmness", sign, tok.index, [tok])
            self.found.append((Cue("ambition", sign, 1.0, tok.text), tok.index, {}))
        for tok in self._free(lex.UNDERSELL):
            # Selling below, paying above: a worse price than the player should take.
            wrong_role = tok.text in (("goabove", "payasking") if self.seller else ("gobelow",))
            self._add("ambition", 0 if wrong_role else -1, tok.index, [tok], act=True,
                      past=tok.text in _PAST_ACTS)  # fmt: skip
        if not opening:
            for tok in self._free(lex.GREEDY, lex.MODEST):
                self._add("ambition", 1 if tok.has(lex.GREEDY) else -1, tok.index, [tok])
        for tok in self._free(lex.PUSH):
            self._add("firmness", 1, tok.index, [tok])
        concession = bool(self._free(lex.CONCEDE, lex.DOWN_MOVE, lex.UP_MOVE, lex.MOVE_NOUN))
        for tok in self._free(lex.FIRM, lex.SOFT, lex.HASTE):
            if concession:
                # "Hold back your concessions", "be stingier with discounts", "rush to drop
                # your price": the stance is the manner of the concession, read there.
                continue
            if opening and tok.has(lex.BOLD, lex.TIMID) and not tok.has(lex.HASTE):
                continue  # "a stingier bid", "so timidly": the opening, read there
            sign = 1 if tok.has(lex.FIRM) else -1
            self._add("opening" if opening and tok.has(lex.FIRM) else "firmness", sign,
                      tok.index, [tok])  # fmt: skip

    def _concession(self, opening: bool) -> None:
        acts = []
        for tok in self._free(lex.CONCEDE, lex.DOWN_MOVE, lex.UP_MOVE, lex.GIVE, lex.ANSWER):
            if tok.text in {"up", "down"}:
                continue
            if tok.has(lex.CONCEDE) or tok.text in {"comedown", "comeup", "jumpup"}:
                if tok.text == "comedown" and not self.seller:
                    continue
                if tok.text in {"comeup", "jumpup"} and self.seller:
                    continue
                acts.append(tok)
            elif tok.has(lex.DOWN_MOVE, lex.UP_MOVE):
                own_way = tok.has(lex.DOWN_MOVE) if self.seller else tok.has(lex.UP_MOVE)
                target = next(
                    (t for t in self.tokens[self.tokens.index(tok) + 1 :][:4]
                     if t.has(lex.OWN_PRICE, lex.SETTING_PRICE, lex.SETTING_GAIN)),
                    None,
                )  # fmt: skip
                noun_form = tok.text.endswith("s") or tok.text in {"cut", "discount"}
                if target is not None and target.has(lex.SETTING_PRICE, lex.SETTING_GAIN):
                    continue  # a setting changed: read in _settings
                if own_way and (target is not None or noun_form or tok.has(lex.CONCEDE)):
                    acts.append(tok)
                elif not own_way and target is not None and target.index not in self.used:
                    # A seller raising its price, a buyer lowering its bid: ambition.
                    lever = "opening" if opening else "ambition"
                    self._add(lever, 1, tok.index, [tok, target], setting_change=True)
            elif tok.has(lex.GIVE):
                # "Give a little more", not "give yourself more room".
                nxt = next((t for t in self.tokens if t.index == tok.index + 1), None)
                if nxt is not None and nxt.has(lex.MORE, lex.LESS, lex.DIMIN, lex.FAST):
                    acts.append(tok)
            elif tok.has(lex.ANSWER):
                one = [t for t in self.tokens if t.index > tok.index and t.text in {"one"}]
                if one:
                    acts.append(tok)
        if not acts and self._manners():
            acts = [t for t in self._free(lex.GAIN_VERB, lex.KEEP_DEAL)
                    if lex.word_stem(t.text) in _ACCEPT_VERBS][:1]  # fmt: skip
        if not acts:
            nouns = self._free(lex.MOVE_NOUN)
            own_nouns = [t for t in nouns if not t.has(lex.DOWN_MOVE, lex.UP_MOVE)]
            if own_nouns and self._manners():
                acts = own_nouns[:1]
        if not acts:
            return
        anchor = acts[0]
        manners = self._manners()
        slow = [t for t in manners if t.has(lex.SLOW)]
        fast = [t for t in manners if t not in slow]
        sign = 1 if slow else -1
        words = [*acts, *(slow if slow else fast)]
        lever = "opening" if opening else "firmness"
        self._add(lever, sign, anchor.index, words, manner=bool(slow or fast))

    def _manners(self) -> list[_Tok]:
        found = []
        previous = ""
        for t in self.tokens:
            if t.index in self.used:
                previous = t.text
                continue
            if t.has(lex.SLOW, lex.FIRM) or t.text in {"holdback", "less"}:
                found.append(_Tok(t.text, t.tags | {lex.SLOW}, t.index))
            elif t.has(lex.FAST, lex.HASTE, lex.SOFT) or t.text == "more":
                # "Less quickly" is slowly.
                found.append(_Tok(t.text, t.tags | {lex.SLOW}, t.index) if previous == "less"
                             else t)  # fmt: skip
            previous = t.text
        return found

    def _opening(self) -> None:
        for tok in self._free(lex.BOLD, lex.TIMID):
            self._add("opening", 1 if tok.has(lex.BOLD) else -1, tok.index, [tok])
        for tok in self._free(lex.NEAR):
            if any(t.has(lex.RIVAL) for t in self.tokens if t.index > tok.index):
                self._add("opening", -1, tok.index, [tok])
        for tok in self._free(lex.PRICE_UP, lex.PRICE_DOWN):
            if tok.text in {"up", "down"}:
                continue
            self._add("opening", self._price_sign(tok), tok.index, [tok])

    # -- signs and strength

    def _signed(self, cue: Cue, anchor: int, flags: dict[str, bool]) -> Cue:
        notes: list[str] = []
        sign = cue.sign
        before = [t.text for t in self.tokens if anchor - 3 <= t.index < anchor]
        if before and before[-1] in {"less", "fewer"} or before[-2:-1] == ["less"]:
            # "Be less stubborn", "a little less demanding": the stance, turned down.
            sign = -sign
            notes.append("'less' turns it down")
        if flags.get("ambiguous"):
            return Cue(cue.lever, 0, 1.0, cue.words, ("reads both ways for a buyer: not taken",))
        if flags.get("keep"):
            return Cue(cue.lever, 0, 1.0, cue.words, ("keep it as it is",))
        negators = [t for t in self.tokens if t.index < anchor and t.has(lex.NEG)]
        negated = len(negators) % 2 == 1
        if negated:
            any_more = any(t.has(lex.ANY) for t in self.tokens)
            if flags.get("setting_change") or any_more:
                words = " ".join(t.text for t in negators)
                return Cue(cue.lever, 0, 1.0, cue.words, (f"{words!r}: keep it, go no further",))
            sign = -sign
            notes.append(f"negated by {' '.join(t.text for t in negators)!r}")
        elif len(negators) >= 2:
            notes.append(f"double negation {' '.join(t.text for t in negators)!r}")
        if not negated and self._excess(cue, flags):
            sign = -sign
            notes.append("an excess: the fix is the other way")
        weight = 1.0
        free = [t for t in self.tokens if t.index not in self.used]
        if any(t.has(lex.INTENS) for t in free):
            weight *= 1.5
            notes.append("intensified")
        if any(t.has(lex.DIMIN) for t in free):
            weight *= 0.5
            notes.append("diminished")
        return Cue(cue.lever, sign, weight, cue.words, tuple(notes))

    def _excess(self, cue: Cue, flags: dict[str, bool]) -> bool:
        if any(t.has(lex.EXCESS) for t in self.tokens):
            return True
        diagnosis = self._diagnosis()
        if flags.get("act") and (diagnosis or flags.get("past")):
            return True  # "you lost the deal", "you walked away": keep the deal next time
        words = {t.text for t in self.tokens}
        comparative = words & {"more", "larger", "bigger", "faster", "quicker", "higher", "lower"}
        return diagnosis and ("so" in words or bool(comparative and "than" in words))

    def _diagnosis(self) -> bool:
        """A statement about what the player did ("you caved", "your limit was too low"):
        the clause opens (after any hedge) with the player as its subject, in the past."""
        lead = [t for t in self.tokens if not t.has(lex.HEDGE)]
        if not lead or not lead[0].has(lex.SELF):
            return False
        return any(t.has(lex.PAST) or t.text.endswith("ed") for t in lead[1:])
