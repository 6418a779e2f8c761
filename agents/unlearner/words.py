"""The words of a forget request, made ready to read: cleaned, quoted phrases and /patterns/
lifted out whole, numbers and ordinals read, and the words shown safely in messages.

The grammar itself is in `haggler.agents.unlearner.grammar`; docs/forgetting.md ("Requests in
words") describes both for people.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from haggler.errors import RequestError

__all__ = [
    "MARK",
    "MAX_WORDS",
    "NUMBER",
    "ORDINAL",
    "Literal",
    "Term",
    "Words",
    "ordinal_value",
    "refuse",
    "round_list",
    "shown",
    "small_number",
    "one_token",
    "term_of",
]

# A request is a sentence; anything longer is not one (and would cost a model a fortune).
MAX_WORDS = 1000

_SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_ORDINALS = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth", "twentieth",
]  # fmt: skip
# A count as people write it in a request: digits, or a word up to twenty.
NUMBER = r"(?:\d{1,6}|" + "|".join(sorted(_SMALL, key=len, reverse=True)) + r")"
ORDINAL = (
    r"(?:\d{1,6}(?:st|nd|rd|th)|"
    + "|".join(sorted(_ORDINALS, key=len, reverse=True))
    + r"|last|latest|final|most\s+recent|previous|newest|oldest|earliest)"
)
# Marks where a lifted literal stood; control characters never survive cleaning, so a
# request cannot forge one.
_MARK = "\x00{}\x00"
MARK = re.compile(r"\x00(\d+)\x00")

_OPENING = {"'": "'", '"': '"', "‘": "’", "“": "”", "«": "»", "`": "`"}
_CLOSES_BEFORE = re.compile(r"$|[\s,.;:!?)\]]")


@dataclass(frozen=True, slots=True)
class Literal:
    """A quoted phrase or a /pattern/, taken from the words as written."""

    kind: str  # "phrase" or "pattern"
    text: str


@dataclass
class Words:
    """A request's words: `original` as given, `cleaned` with control and invisible characters
    made spaces, `text` cleaned with its literals replaced by marks."""

    original: str
    cleaned: str
    text: str
    literals: list[Literal] = field(default_factory=list)

    @classmethod
    def read(cls, words: object) -> Words:
        if not isinstance(words, str):
            raise RequestError(
                f"a forget request in words must be text, got {type(words).__name__}; "
                "write what to forget as a sentence"
            )
        if len(words) > MAX_WORDS:
            raise RequestError(
                f"forget request {shown(words)} is {len(words)} characters long; say what to "
                f"forget in one sentence of at most {MAX_WORDS}"
            )
        cleaned = " ".join(_visible(words).split())
        if not cleaned:
            raise RequestError("the forget request is empty; say what to forget")
        text, literals = _lift(cleaned, words)
        return cls(words, cleaned, text, literals)

    def literal(self, mark: str) -> Literal:
        found = MARK.fullmatch(mark.strip())
        assert found is not None
        return self.literals[int(found.group(1))]

    def restore(self, text: str) -> str:
        """`text` (a part of `self.text`) with its marks put back as the literals were written."""

        def back(match: re.Match[str]) -> str:
            literal = self.literals[int(match.group(1))]
            return f"/{literal.text}/" if literal.kind == "pattern" else f"'{literal.text}'"

        return MARK.sub(back, text)


def refuse(words: str, problem: str, fix: str) -> RequestError:
    """The error for words that cannot be read: what is wrong with them, and what to say."""
    return RequestError(f"forget request {shown(words)}: {problem}; {fix}")


def shown(words: str, limit: int = 80) -> str:
    """`words` quoted for a message: control and invisible characters escaped, cut to `limit`."""
    text = words if len(words) <= limit else words[: limit - 1] + "…"
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return '"' + "".join(out).replace('"', '\\"') + '"'


def small_number(word: str) -> int:
    """A count written as digits or a word up to twenty."""
    word = word.lower()
    return int(word) if word.isdigit() else _SMALL.index(word)


def ordinal_value(word: str) -> int | str:
    """1 for "first" or "1st", ... ; "last" for last, latest, final, most recent, previous,
    newest; 1 for oldest and earliest."""
    word = " ".join(word.lower().split())
    if word in ("oldest", "earliest"):
        return 1
    if word in ("last", "latest", "final", "most recent", "previous", "newest"):
        return "last"
    if word[:-2].isdigit():
        return int(word[:-2])
    return _ORDINALS.index(word) + 1


def _visible(words: str) -> str:
    # Control, format and unpaired surrogate characters become spaces: they carry no meaning
    # in a request and must not reach a pattern or a message.
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c for c in words
    )


def _lift(text: str, words: str) -> tuple[str, list[Literal]]:
    """Quoted phrases and /patterns/ replaced by marks, so no keyword is read inside them."""
    literals: list[Literal] = []
    out: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        starts = at == 0 or text[at - 1] in " ([{"
        if starts and (char in _OPENING or char == "/"):
            closing = "/" if char == "/" else _OPENING[char]
            end = _closing(text, at + 1, closing)
            if end is None:
                if char == "/":
                    out.append(char)  # a slash in a name (shop/A/seller), not a pattern
                    at += 1
                    continue
                raise refuse(
                    words,
                    f"the quote opened with {char} is never closed",
                    f"close it with {closing}",
                )
            body = text[at + 1 : end]
            at = end + 1
            if char == "/":
                at += len(re.match(r"[a-z]*", text[at:]).group(0))  # type: ignore[union-attr]
            if not body.strip():
                raise refuse(words, "it quotes nothing", "put the words to forget in the quotes")
            literals.append(Literal("pattern" if char == "/" else "phrase", body))
            out.append(f" {_MARK.format(len(literals) - 1)} ")
            continue
        out.append(char)
        at += 1
    return " ".join("".join(out).split()), literals


def _closing(text: str, start: int, closing: str) -> int | None:
    at = text.find(closing, start)
    while at >= 0:
        after = at + 1
        if closing == "/":
            flags = re.match(r"[a-z]*", text[after:])
            after += len(flags.group(0)) if flags else 0
        if _CLOSES_BEFORE.match(text, after):
            return at
        at = text.find(closing, at + 1)
    return None


# -- rounds and names as words give them --------------------------------------------------------

_I = re.IGNORECASE
_RANGE = {"-", "–", "to", "through", "thru"}


def round_list(text: str) -> list[int | str] | None:
    """The rounds `text` names: "round 2", "rounds 1 to 3", "rounds 1, 2 and 4", "the second
    round", "the last round", "the first two rounds", "the last 2 rounds"; None if it names
    none. "last" is the last round; "last-K" the K-th before it."""
    match = re.fullmatch(
        rf"(?:the\s+)?(?:whole\s+|entire\s+)?(?:round|game)s?\s+(?P<list>{NUMBER}"
        rf"(?:\s*(?:,|and|&|-|–|to|through|thru)\s*{NUMBER})*)",
        text,
        _I,
    )
    if match is not None:
        parts = re.split(
            r"\s*(,|\band\b|&|-|–|\bto\b|\bthrough\b|\bthru\b)\s*", match["list"], flags=_I
        )
        values = [small_number(p) for p in parts[::2]]
        numbers: list[int | str] = [values[0]]
        for sep, value in zip(parts[1::2], values[1:], strict=True):
            if sep.lower() in _RANGE:
                numbers.extend(range(int(numbers[-1]) + 1, value + 1))
            else:
                numbers.append(value)
        return numbers
    match = re.fullmatch(rf"(?:the\s+)?(?P<o>{ORDINAL})\s+(?:round|game)", text, _I)
    if match is not None:
        return [ordinal_value(match["o"])]
    match = re.fullmatch(
        rf"(?:the\s+)?(?P<end>first|last)\s+(?P<n>{NUMBER})\s+(?:rounds|games)", text, _I
    )
    if match is not None:
        count = small_number(match["n"])
        if match["end"].lower() == "first":
            return list(range(1, count + 1))
        return ["last", *(f"last-{k}" for k in range(1, count))]
    return None


@dataclass(frozen=True, slots=True)
class Term:
    """A name the words give for an environment, and which field they say it is, if they do."""

    name: str
    kind: str | None = None


_KIND_NOUNS = {
    "game": "game", "games": "game", "item": "item", "items": "item",
    "counterpart": "counterpart", "opponent": "counterpart", "rival": "counterpart",
    "tag": "tag",
}  # fmt: skip
_GENERIC_NOUNS = {
    "market", "markets", "trade", "business", "deals", "sales", "negotiations", "stuff",
    "things", "notes", "memories",
}  # fmt: skip
_ARTICLES = {
    "the", "a", "an", "my", "your", "its", "their", "our", "this", "that", "all", "every", "any",
    "of",
}  # fmt: skip


def term_of(text: str) -> Term:
    """An environment's name as words give it: articles, possessives and generic nouns
    ("market", "trade") dropped, a kind noun ("game", "item", "counterpart", "tag") kept."""
    words = re.sub(r"(?:'s|’s)(?=\s|$)", "", text.strip()).split()
    while len(words) > 1 and words[0].lower() in _ARTICLES:
        words = words[1:]
    kind = None
    if len(words) > 1 and words[0].lower() in _KIND_NOUNS:
        kind, words = _KIND_NOUNS[words[0].lower()], words[1:]
        while len(words) > 1 and words[0].lower() in _ARTICLES:
            words = words[1:]
    elif len(words) > 1 and words[-1].lower() in _KIND_NOUNS:
        kind, words = _KIND_NOUNS[words[-1].lower()], words[:-1]
    while len(words) > 1 and words[-1].lower() in _GENERIC_NOUNS:
        words = words[:-1]
    return Term(" ".join(words), kind)


def one_token(name: str) -> bool:
    """Whether `name` could be one name of an environment (a game, a label, a tag) as written:
    one word, of the characters such names are made of."""
    return re.fullmatch(r"[\w:./@+#*-]+", name) is not None
