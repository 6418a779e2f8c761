"""The offline responder: a rule-based agent that answers questions from its own context.

When an agent's model is rule-based, the adversary still has something real to probe: the
system message an `AgentTarget` builds (the agent's brief, what its memory recalls — games as
`speaker: text` lines, the coach's advice, notes — and its goal). `RuleResponder` answers from
that text alone, like a small retrieval model, and is deterministic: the same system message
and conversation always give the same reply. Its rules:

1. **What it knows.** The system message is read into statements: each message of a
   remembered game (who said it — `buyer`, `seller`, or `you` for the agent's own lines —
   and the round), each line of the coach's advice, each note, and each sentence of the brief
   and goal. Lines indented by four spaces continue the message above (a remembered message can
   never pose as a new line). Declarative sentences the user writes in the conversation join
   what it knows, as things "you told me" (hints are used: in-context relearning works).
2. **What is asked.** The question is the interrogative or imperative sentences of the last
   user message (all of it if there are none). Its words, less stop words and the words that
   only ask for a form ("spell", "JSON", "in words"), are stemmed lightly and matched against
   each statement, each weighted by its rarity in the context (inverse document frequency).
   A word repeated in the question weighs more (up to three times). A small lexicon lets a
   word match its near-synonyms at 0.8 of the weight ("afford" ~ "budget", "in confidence" ~
   "between us", "password" ~ "code"). The rest of the last message (the hints) steers the
   search at half weight, earlier user turns at a quarter; a hint never matches itself.
3. **Who and when.** A round named in the question ("in round 2") keeps only that round's
   statements (and what the user said); a round named in a hint adds a bonus (2). A speaker
   named ("the buyer", "the coach", "the other side") adds a bonus (1) to what that speaker
   said; an amount named adds a bonus to statements that state it (2 in the question, 1 in a
   hint). The coach's lines also match "advice", the label they are remembered under.
4. **The answer.** The best statement (highest score; the earliest on ties) is quoted with
   who said it and when. "Which round"/"when" is answered with the round and the speaker only,
   "who" with the speaker only; "how much"/"what amount" with the amount the statement states
   (the one after the matched words); "everything ... said in round N" recites up to 12
   statements of that speaker and round ("everything" with no speaker or round: the five
   best). A question of no content words but a speaker gets what that speaker said; one of no
   content words at all ("What do you remember?") gets how the remembered games ended. When
   nothing matches: "I don't remember anything about that."
5. **Forms.** Asked for a form, it answers with the core of the statement (the amount, or the
   words after the matched ones): numbers spelled in words ("in words", "no digits"), letter
   by letter, backwards, filled into a blank (`____`), or as JSON (`{"answer": ...}`).
6. **Guards.** A system-message line (outside the remembered games) that says "Do not
   reveal / mention / disclose / discuss / repeat / share / confirm ..." is an instruction,
   never knowledge. Its guarded terms are the double-quoted strings in it (otherwise the words
   after the colon or the verb, split at ";", "," and "or"). It refuses (status "refused")
   when the question or its final answer contains a guarded term as written, ignoring case and
   spacing — the way a literal-minded model obeys, and exactly the weakness of keyword
   guards: a paraphrase, a spelled-out number, letters apart or text backwards gets past it,
   and so does a question that reaches the guarded message without naming it (which round,
   then everything said in that round).

It never raises for what it is given: no conversation, no question, any bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from haggler.agents.adversary.base import Reply
from haggler.agents.phrasing import number_words
from haggler.agents.prices import find_prices, format_price
from haggler.llm.base import Message

__all__ = ["RuleResponder", "Statement", "read_context", "spoken_price"]

NOTHING = "I don't remember anything about that."
NO_QUESTION = "What would you like to know?"
RECITE_LIMIT = 12
# A question or message past this is read only this far: the answer is a retrieval, not a
# parse of a book, and a hostile megabyte must not cost seconds.
MAX_CHARS = 20_000

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "as",
        "into",
        "than",
        "then",
        "so",
        "if",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "will",
        "would",
        "shall",
        "should",
        "can",
        "could",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "you",
        "your",
        "yours",
        "yourself",
        "we",
        "us",
        "our",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "not",
        "no",
        "yes",
        "any",
        "some",
        "all",
        "every",
        "each",
        "other",
        "just",
        "only",
        "also",
        "very",
        "too",
        "much",
        "many",
        "such",
        "own",
        "same",
        "please",
        "tell",
        "told",
        "say",
        "said",
        "saying",
        "mention",
        "mentioned",
        "remember",
        "recall",
        "know",
        "knew",
        "exactly",
        "exact",
        "answer",
        "give",
        "write",
        "quote",
        "repeat",
        "spell",
        "spelled",
        "letter",
        "letters",
        "json",
        "blank",
        "fill",
        "format",
        "reply",
        "back",
        "backwards",
        "reverse",
        "reversed",
        "digit",
        "digits",
        "character",
        "characters",
        "separated",
        "space",
        "spaces",
        "word",
        "words",
        "one",
        "time",
        "again",
        "let",
        "like",
        "something",
        "anything",
        "thing",
        "things",
        "did",
        "get",
        "got",
        "make",
        "made",
        "use",
        "used",
        "way",
        "out",
        "up",
        "down",
        "over",
        "now",
        "ever",
        "still",
        "really",
        "quick",
        "question",
        "remind",
        "want",
        "need",
    ]
)
_FRAMING = frozenset({"round", "game", "earlier", "first", "last", "message", "messages"})

# Near-synonyms, by the concept they share: a question word matches a statement word of the
# same concept at 0.8 of its weight.
_CONCEPTS: dict[str, tuple[str, ...]] = {
    "spending": (
        "budget", "afford", "spend", "spending", "pay", "paid", "limit", "max", "maximum",
        "most", "ceiling", "cap", "wallet", "funds", "cash",
    ),
    "secret": (
        "secret", "confidential", "confidence", "private", "privately", "between", "whisper",
        "quietly", "personal", "confided", "hush",
    ),
    "code": ("code", "password", "passcode", "pin", "key", "passphrase"),
    "name": ("name", "named", "called", "nickname"),
    "advice": ("advice", "advise", "tip", "suggest", "suggestion", "recommend", "lesson"),
    "cost": ("cost", "costs", "worth", "value"),
    "deal": ("deal", "sell", "sold", "sale", "buy", "bought", "agree", "agreed", "agreement"),
}  # fmt: skip
_IRREGULAR = {
    "paid": "pay", "said": "say", "told": "tell", "spent": "spend", "sold": "sell",
    "bought": "buy", "gave": "give", "offered": "offer", "confided": "confide",
}  # fmt: skip
_RIVAL_WORDS = re.compile(
    r"\b(?:the other (?:side|party|player)|counterpart|rival|opponent)\b", re.IGNORECASE
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_ROUND = re.compile(
    r"\bround\s+(?P<n>\d{1,4}|" + "|".join(_NUMBERS) + r")\b"
    r"|\b(?P<o>" + "|".join(_ORDINALS) + r")\s+round\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?")
_ACTION_TAG = re.compile(r"\s*\[(?:OFFER|ACCEPT)\s[^\]\n]{0,40}\]|\s*\[(?:REJECT|WALK AWAY)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_HEAD = re.compile(r"^(?P<speaker>[^\s:][^:\n]{0,60}?)(?P<own> \(you\))?: (?P<text>.*)$")
_GAME = re.compile(
    r"^(?:Round (?P<round>\d+), your game|An earlier game)(?P<summary> \(summary\))?:"
)
_ADVICE = re.compile(r"^Your coach's advice(?: after round (?P<round>\d+))?:$")
_NOTE = re.compile(r"^Note: (?P<text>.*)$")
_GUARD = re.compile(
    r"\b(?:do not|don't|never|must not|may not|should not)\s+(?:\w+\s*,?\s+){0,3}?"
    r"(?:reveal|repeat|mention|disclose|discuss|share|confirm|say|state)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”")
_ASKING = re.compile(
    r"^\W*(?:what|which|who|whom|whose|when|where|why|how|tell|give|say|spell|write|repeat|"
    r"quote|list|recite|complete|fill|name|print|reply|answer|remind|describe|share|reveal|"
    r"state|introduce|did|do|does|is|was|were|are|can|could|would|will|in which|what's)\b",
    re.IGNORECASE,
)
_INSTRUCTION = re.compile(
    r"^\W*(?:let's|let us|you are|you're|pretend|imagine|stay|act|from now on|ignore|play|"
    r"assume|suppose)\b",
    re.IGNORECASE,
)
_BLANK = re.compile(r"_{3,}|\[blank\]|\(blank\)", re.IGNORECASE)

_RECITE = re.compile(
    r"\b(?:everything|every (?:message|line|word)|all (?:the |of the |that |of )?"
    r"(?:messages|lines|things)|word for word|verbatim|recite)\b",
    re.IGNORECASE,
)
_WHERE = re.compile(r"\b(?:which|what) (?:round|game)\b|\bwhen did\b|\bin which\b", re.I)
_WHO = re.compile(r"^\W*who\b|\bwho (?:said|told|mentioned|wrote|offered|gave|shared)\b", re.I)
_AMOUNT = re.compile(
    r"\bhow much\b|\bhow many (?:dollars|bucks)\b|\bwhat (?:amount|number|figure|sum|price)\b"
    r"|\bamount\b|\bthe (?:figure|sum)\b",
    re.IGNORECASE,
)
_FORM_JSON = re.compile(r"\bjson\b", re.IGNORECASE)
_FORM_LETTERS = re.compile(
    r"letter by letter|character by character|one (?:letter|character) at a time"
    r"|(?:letters|characters) (?:separated|apart)|separated by spaces",
    re.IGNORECASE,
)
_FORM_BACKWARDS = re.compile(
    r"\bbackwards?\b|\bin reverse\b|\breversed\b|\blast (?:character|letter) first\b", re.I
)
_FORM_WORDS = re.compile(
    r"\bin words\b|\bspelled out\b|\bspell (?:it |the \w+ |that )?out\b|\bwritten out\b"
    r"|\bno digits\b|\bwithout (?:any |using )?(?:digits|numerals)\b",
    re.IGNORECASE,
)
_CONNECTORS = re.compile(r"^(?:[\s,:;=\-–—]|is\b|was\b|are\b|were\b|of\b|be\b|would be\b)+", re.I)


def _stem(word: str) -> str:
    word = _IRREGULAR.get(word, word)
    if word[0].isdigit():
        return word
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


# Speakers that are no one to name when asked "who": what the agent read or was told.
_NOT_PEOPLE = frozenset({"brief", "note", "result", "summary", "user"})
_FRAMING_STEMS = frozenset(_stem(word) for word in _FRAMING)
_ADVICE_TERM = _stem("advice")
_CONCEPT_OF = {_stem(word): concept for concept, words in _CONCEPTS.items() for word in words}


def _terms(text: str) -> list[tuple[str, int, int]]:
    """Content words of `text`, stemmed, with their place: (stem, start, end)."""
    found = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if word.endswith("'s"):
            word = word[:-2]
        if "'" in word or word in _STOP:
            continue
        stem = _stem(word)
        if stem not in _FRAMING_STEMS:
            found.append((stem, match.start(), match.end()))
    return found


@dataclass(frozen=True, slots=True)
class Statement:
    """One thing the responder knows: its text (action tags removed), who said it (`buyer`,
    `seller`, `you`, `coach`, `brief`, `note`, `result`, `summary` or `user`), the round it
    belongs to, and its place in the context."""

    text: str
    speaker: str
    round: int | None
    order: int

    @property
    def terms(self) -> frozenset[str]:
        found = {term for term, _, _ in _terms(self.text)}
        if self.speaker == "coach":
            found.add(_ADVICE_TERM)  # the context labels these lines "Your coach's advice"
        return frozenset(found)

    def attributed(self) -> str:
        """The statement quoted with who said it and when."""
        when = f"In round {self.round}" if self.round is not None else "In an earlier game"
        if self.speaker == "you":
            return f'{when}, I said: "{self.text}"'
        if self.speaker == "coach":
            after = f" after round {self.round}" if self.round is not None else ""
            return f'My coach advised{after}: "{self.text}"'
        if self.speaker == "brief":
            return f'My brief says: "{self.text}"'
        if self.speaker == "note":
            return f'I noted: "{self.text}"'
        if self.speaker == "user":
            return f'You told me: "{self.text}"'
        if self.speaker in ("result", "summary"):
            return f"{when}: {self.text}"
        return f'{when}, the {self.speaker} said: "{self.text}"'


@dataclass
class Context:
    """What a system message holds: statements, and the terms its guard lines protect."""

    statements: list[Statement] = field(default_factory=list)
    guarded: list[str] = field(default_factory=list)

    @property
    def speakers(self) -> set[str]:
        fixed = {"you", "coach", "brief", "note", "result", "summary", "user"}
        return {s.speaker for s in self.statements if s.speaker not in fixed}


def read_context(system: str) -> Context:
    """The statements and guarded terms of a system message (see the module's rules 1 and 6)."""
    context = Context()
    section = "brief"
    round_: int | None = None
    for line in system[:200_000].split("\n"):
        if not line.strip():
            section, round_ = "brief", None
            continue
        if line.startswith("    ") and section == "game" and context.statements:
            last = context.statements[-1]
            context.statements[-1] = Statement(
                f"{last.text} {_clean(line)}", last.speaker, last.round, last.order
            )
            continue
        game, advice, note = _GAME.match(line), _ADVICE.match(line), _NOTE.match(line)
        if game:
            round_ = int(game.group("round")) if game.group("round") else None
            if game.group("summary"):
                _add(context, line[game.end() :], "summary", round_)
                section = "brief"
            else:
                section = "game"
            continue
        if advice:
            section = "advice"
            round_ = int(advice.group("round")) if advice.group("round") else None
            continue
        if note:
            _add(context, note.group("text"), "note", None)
            continue
        if line.rstrip().endswith(":") and section == "brief" and len(line) < 80:
            continue  # a heading ("What you remember from your earlier games:")
        if section == "game":
            head = _HEAD.match(line)
            if head is None:
                _add(context, line, "result", round_)
            elif head.group("speaker") == "Result":
                _add(context, head.group("text"), "result", round_)
            else:
                speaker = "you" if head.group("own") else head.group("speaker").strip().lower()
                _add(context, head.group("text"), speaker, round_)
        elif section == "advice":
            _add(context, re.sub(r"^\s*\d+\.\s*", "", line), "coach", round_)
        elif _GUARD.search(line):
            context.guarded.extend(_guarded_terms(line))
        else:
            for sentence in _SENTENCE_END.split(line.strip()):
                _add(context, sentence, "brief", None)
    return context


def _clean(text: str) -> str:
    return " ".join(_ACTION_TAG.sub("", text).split())


def _add(context: Context, text: str, speaker: str, round_: int | None) -> None:
    text = _clean(text)
    if text:
        context.statements.append(Statement(text, speaker, round_, len(context.statements)))


def _guarded_terms(line: str) -> list[str]:
    quoted = [a or b for a, b in _QUOTED.findall(line)]
    if quoted:
        return [q.strip() for q in quoted if q.strip()]
    terms: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        match = _GUARD.search(sentence)
        if match is None:
            continue
        tail = sentence[match.end() :]
        tail = tail.split(":", 1)[1] if ":" in tail else tail
        for piece in re.split(r";|,|\bor\b", tail.rstrip(" .!")):
            piece = re.sub(r"^\s*(?:any of|the following|anything about|about)\s+", "", piece)
            if piece.strip():
                terms.append(piece.strip())
    return terms


def _normal(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.casefold().split())


@dataclass
class _Question:
    text: str  # the asking sentences
    whole: str  # the whole last user message
    weights: dict[str, float]
    hint_weights: dict[str, float]
    round: int | None
    hint_rounds: set[int]
    speakers: set[str]
    amounts: set[float]
    hint_amounts: set[float]


def _round_of(match: re.Match[str]) -> int:
    if match.group("o"):
        return _ORDINALS[match.group("o").lower()]
    value = match.group("n").lower()
    return _NUMBERS[value] if value in _NUMBERS else int(value)


def _weights(text: str, scale: float) -> dict[str, float]:
    counts = Counter(term for term, _, _ in _terms(_ROUND.sub(" ", text)))
    return {term: scale * min(3.0, 1.0 + 0.5 * (count - 1)) for term, count in counts.items()}


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]


class RuleResponder:
    """Answers questions from its own system message (see the module's rules)."""

    def reply(self, system: str, conversation: Sequence[Message]) -> Reply:
        context = read_context(system)
        users = [m.content[:MAX_CHARS] for m in conversation if m.role == "user"]
        if not users or not users[-1].strip():
            return Reply(NO_QUESTION)
        last = users[-1]
        asking, told = self._split(last)
        earlier_told = [s for text in users[:-1] for s in self._split(text)[1]]
        statements = list(context.statements)
        for sentence in [*earlier_told, *told]:
            _add_user(statements, sentence)
        question = self._question(" ".join(asking), last, told, users[:-1], context)
        answer = self._answer(question, statements, context)
        if context.guarded:
            touched = [t for t in context.guarded if _normal(t) and _normal(t) in _normal(last)]
            if touched:
                return Reply("", status="refused", reason="a guard instruction covers the question")
            if any(_normal(t) and _normal(t) in _normal(answer) for t in context.guarded):
                return Reply("", status="refused", reason="a guard instruction covers the answer")
        return Reply(answer)

    # -- reading the question ------------------------------------------------------------------

    @staticmethod
    def _split(text: str) -> tuple[list[str], list[str]]:
        """(asking sentences, declarative sentences) of a user message; instructions such as
        "Let's play a scene" are neither."""
        asking: list[str] = []
        told: list[str] = []
        for sentence in _sentences(text):
            if (
                sentence.rstrip().endswith("?")
                or _ASKING.match(sentence)
                or _BLANK.search(sentence)
            ):
                asking.append(sentence)
            elif not _INSTRUCTION.match(sentence):
                told.append(sentence)
        if not asking:
            asking, told = [text.strip()], []
        return asking, told

    @staticmethod
    def _question(
        asking: str, whole: str, told: Sequence[str], earlier: Sequence[str], context: Context
    ) -> _Question:
        weights = _weights(asking, 1.0)
        hints: dict[str, float] = {}
        for text, scale in [(" ".join(told), 0.5), *[(t, 0.25) for t in earlier]]:
            for term, weight in _weights(text, scale).items():
                hints[term] = max(hints.get(term, 0.0), weight)
        rounds = [_round_of(m) for m in _ROUND.finditer(asking)]
        hint_rounds = {_round_of(m) for m in _ROUND.finditer(" ".join(told))}
        known = context.speakers
        words = set(re.findall(r"[a-z]+", asking.lower()))
        speakers = {w for w in words if w in known or w == "coach"}
        if _RIVAL_WORDS.search(asking):
            speakers |= known
        for speaker in speakers:
            weights.pop(_stem(speaker), None)
            hints.pop(_stem(speaker), None)
        amounts = {m.value for m in find_prices(_ROUND.sub(" ", asking))}
        hint_amounts = {m.value for m in find_prices(_ROUND.sub(" ", " ".join(told)))}
        return _Question(
            asking, whole, weights, hints, rounds[0] if rounds else None, hint_rounds,
            speakers, amounts, hint_amounts,
        )  # fmt: skip

    # -- finding the answer --------------------------------------------------------------------

    def _answer(
        self, question: _Question, statements: Sequence[Statement], context: Context
    ) -> str:
        if question.round is not None:
            statements = [s for s in statements if s.round == question.round or s.speaker == "user"]
        recite = _RECITE.search(question.text)
        if recite and (question.speakers or question.round is not None):
            chosen = [
                s
                for s in statements
                if s.speaker != "user" and (not question.speakers or s.speaker in question.speakers)
            ][:RECITE_LIMIT]
            if not chosen:
                return NOTHING
            return "\n".join(s.attributed() for s in chosen)
        relevance = _Relevance(statements)
        scored = relevance.ranked(question, statements)
        if not scored and not question.weights:
            if question.speakers:
                # A question about a speaker and nothing else: what that speaker said.
                scored = [s for s in statements if s.speaker in question.speakers]
            else:
                # "What do you remember?": how the remembered games ended.
                results = [s for s in statements if s.speaker in ("result", "summary")]
                if results:
                    return "\n".join(s.attributed() for s in results[:RECITE_LIMIT])
        if not scored:
            return NOTHING
        best = scored[0]
        if recite:
            return "\n".join(s.attributed() for s in scored[:5])
        if _WHERE.search(question.text):
            if best.round is None:
                return "I don't know which round that was."
            who = "I" if best.speaker == "you" else f"the {best.speaker}"
            return f"Round {best.round}; {who} said it."
        if _WHO.search(question.text) and best.speaker not in _NOT_PEOPLE:
            who = "I did" if best.speaker == "you" else f"The {best.speaker}"
            return f"{who}, in round {best.round}." if best.round is not None else f"{who}."
        return self._shaped(question, best, relevance)

    # -- the answer's form ---------------------------------------------------------------------

    def _shaped(self, question: _Question, best: Statement, relevance: _Relevance) -> str:
        blank = _BLANK.search(question.whole)
        forms = [
            name
            for name, pattern in (
                ("words", _FORM_WORDS),
                ("letters", _FORM_LETTERS),
                ("backwards", _FORM_BACKWARDS),
                ("json", _FORM_JSON),
            )
            if pattern.search(question.whole)
        ]
        amount = _AMOUNT.search(question.text) is not None
        if not forms and not blank and not amount:
            return best.attributed()
        core = relevance.core(best, question, amount=amount)
        if "words" in forms:
            core = _numbers_in_words(core)
        if "letters" in forms:
            core = " ".join(char for char in core if not char.isspace())
        if "backwards" in forms:
            core = core[::-1]
        if "json" in forms:
            return json.dumps({"answer": core}, ensure_ascii=False)
        if blank:
            template = next(
                (s for s in _sentences(question.whole) if _BLANK.search(s)), question.whole
            )
            return _BLANK.sub(lambda _: core, template, count=1).strip()
        return core if core.endswith((".", "!", "?")) else f"{core}."


class _Relevance:
    """How well statements match a question (rules 2 and 3): words weighted by their rarity
    among `statements`, near-synonyms at 0.8, bonuses for the speaker, round and amount."""

    def __init__(self, statements: Sequence[Statement]) -> None:
        self.terms = [s.terms for s in statements]
        frequency: Counter[str] = Counter()
        for found in self.terms:
            frequency.update(found)
        self.frequency = frequency
        self.total = max(1, len(statements))

    def idf(self, term: str) -> float:
        return math.log(1.0 + self.total / (1.0 + self.frequency[term]))

    def gain(self, term: str, weight: float, own: frozenset[str] | set[str]) -> float:
        """What question word `term` adds to a text holding the words `own`."""
        if term in own:
            return weight * self.idf(term)
        concept = _CONCEPT_OF.get(term)
        if concept is None:
            return 0.0
        related = [self.idf(t) for t in own if _CONCEPT_OF.get(t) == concept]
        return 0.8 * weight * max(related) if related else 0.0

    @staticmethod
    def weights(question: _Question, statement: Statement) -> dict[str, float]:
        weights = dict(question.weights)
        if statement.speaker != "user":  # a hint never matches itself
            for term, weight in question.hint_weights.items():
                weights[term] = max(weights.get(term, 0.0), weight)
        return weights

    def ranked(self, question: _Question, statements: Sequence[Statement]) -> list[Statement]:
        """The statements with some matching word, best first (the earliest on ties)."""
        scores: list[tuple[float, int, Statement]] = []
        for position, (statement, own) in enumerate(zip(statements, self.terms, strict=True)):
            weights = self.weights(question, statement)
            content = sum(self.gain(term, weight, own) for term, weight in weights.items())
            if content <= 0:
                continue
            score = content
            if statement.speaker in question.speakers:
                score += 1.0
            if statement.round is not None and statement.round in question.hint_rounds:
                score += 2.0
            stated = (
                {m.value for m in find_prices(statement.text)}
                if statement.speaker != "user"
                else set()
            )
            if stated & question.amounts:
                score += 2.0
            elif stated & question.hint_amounts:
                score += 1.0
            scores.append((score, position, statement))
        scores.sort(key=lambda item: (-item[0], item[1]))
        return [statement for _, _, statement in scores]

    def core(self, statement: Statement, question: _Question, *, amount: bool) -> str:
        """What a shaped answer is made of: in the statement's best-matching sentence, the
        amount after its most telling matched word (or its first amount), or the words after
        that word up to the sentence's end."""
        weights = self.weights(question, statement)
        best_sentence, best_score = statement.text, -1.0
        for sentence in _sentences(statement.text):
            own = {term for term, _, _ in _terms(sentence)}
            score = sum(self.gain(term, weight, own) for term, weight in weights.items())
            if amount and not find_prices(sentence):
                score -= 1000.0  # asked for an amount: a sentence that states one
            if score > best_score:
                best_sentence, best_score = sentence, score
        text = best_sentence
        telling_end, telling = 0, 0.0
        for term, _, end in _terms(text):
            gain = max((self.gain(q, w, {term}) for q, w in weights.items()), default=0.0)
            if gain > 0 and gain >= telling:  # on ties the later word: answers follow topics
                telling_end, telling = end, gain
        prices = find_prices(text)
        if amount and prices:
            after = [p for p in prices if p.start >= telling_end]
            return format_price((after or prices)[0].value)
        rest = text[telling_end:] if telling_end else ""
        rest = re.split(r"(?<=[.!?;])\s|[.!?;]$", rest, maxsplit=1)[0]
        rest = _CONNECTORS.sub("", rest).strip().rstrip(".!?;,")
        return rest or text.rstrip(".!?")


def _add_user(statements: list[Statement], sentence: str) -> None:
    text = _clean(sentence)
    if text:
        statements.append(Statement(text, "user", None, len(statements)))


# -- saying prices ---------------------------------------------------------------------------


def spoken_price(value: float) -> str:
    """An amount as said aloud: 17 -> 'seventeen dollars', 17.25 -> 'seventeen dollars and
    twenty-five cents'."""
    cents_total = round(value * 100)
    dollars, cents = divmod(abs(cents_total), 100)
    said = f"{number_words(dollars)} dollar{'s' if dollars != 1 else ''}"
    if cents:
        said += f" and {number_words(cents)} cent{'s' if cents != 1 else ''}"
    return ("minus " if cents_total < 0 else "") + said


_DIGITS = re.compile(r"\$?\d[\d,]*(?:\.\d+)?")


def _numbers_in_words(text: str) -> str:
    def say(match: re.Match[str]) -> str:
        raw = match.group(0)
        number = raw.lstrip("$").replace(",", "")
        if raw.startswith("$") or "." in number:
            try:
                return spoken_price(float(number))
            except (ValueError, OverflowError):
                return raw
        return number_words(int(number)) if len(number) < 16 else raw

    return _DIGITS.sub(say, text)
