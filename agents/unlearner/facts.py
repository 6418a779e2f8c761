"""Facts as requests put them: an amount in any spoken form, a name, and what a role said about
a topic (its budget, its prices, its costs).

A topic becomes a pattern of what talk about it sounds like, from the cue to the end of its
sentence. It needs no content of the memories (an unlearner must not need the secret to forget
it), catches the statement whatever the amount, and leaves the action tag that follows (the
offer, which is no confidence) in place. Narrowed to one role's lines (`said_by`), it selects
the same games as the amounts that role stated would, without reading them first.
"""

from __future__ import annotations

import re
from typing import Any

from haggler.agents.prices import find_prices

__all__ = [
    "BUDGET_PATTERN",
    "COST_PATTERN",
    "MONEY_PATTERN",
    "is_name",
    "risky_pattern",
    "topic_pattern",
    "value_of",
]

_I = re.IGNORECASE
# The rest of a sentence: up to its end, a line's end or an action tag ("$13.50" is one word).
_SENTENCE_TAIL = r"(?:[^.!?\n\[\]]|\.(?=\d))*"

# Kept short: a pattern to forget is at most 300 characters (PatternFact).
_BUDGET_CUES = (
    r"budget|afford|can(?:no|'|’)?t\s(?:go|pay|spend)\s(?:any\s)?(?:more|higher|over|above)|"
    r"all\si(?:'ve|’ve)?\s(?:have|got|can\s(?:pay|spend))|"
    r"(?:my|our)\s(?:limit|max(?:imum)?|ceiling|top\sprice)|"
    r"most\si\sc(?:an|ould)\s(?:pay|spend)|no\smore\sthan|at\smost"
)
BUDGET_PATTERN = rf"\b(?:{_BUDGET_CUES}){_SENTENCE_TAIL}"
MONEY_PATTERN = r"\$\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s*(?:dollars?|bucks?|usd)\b"
COST_PATTERN = rf"\b(?:costs?|paid|wholesale|(?:my|the)\s+(?:price\s+)?floor){_SENTENCE_TAIL}"

_OWNER = r"(?:(?:its|his|her|their|the|your|my)\s+)?"
_TOPICS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            rf"{_OWNER}(?:budget|spending\s+limit|limit|maximum|max|ceiling|means|wallet|"
            r"reservation\s+price)|how\s+much\s+(?:it|he|she|they|you)\s+(?:can|could|would|will)"
            r"\s+(?:pay|spend|afford)|what\s+(?:it|he|she|they)\s+(?:can|could)\s+afford",
            _I,
        ),
        BUDGET_PATTERN,
    ),
    (re.compile(rf"{_OWNER}(?:prices?|offers?|bids?|amounts?)", _I), MONEY_PATTERN),
    (re.compile(rf"{_OWNER}(?:costs?|price\s+floor|floor)", _I), COST_PATTERN),
]


def topic_pattern(topic: str) -> str | None:
    """The pattern of talk about `topic` ("its budget", "the prices"), or None if unknown."""
    for words, pattern in _TOPICS:
        if words.fullmatch(topic.strip()):
            return pattern
    return None


def value_of(text: str) -> float | None:
    """The one amount `text` is, in any spoken form ("$8", "8 dollars", "eight dollars",
    "fifteen fifty", "$1,200", "8"), or None when it is anything more or less."""
    text = text.strip()
    cents = re.fullmatch(
        r"(?P<d>.+?)\s+(?:dollars?|bucks?)\s+(?:and\s+)?(?P<c>\S+(?:[\s-]\S+)?)\s+cents?", text, _I
    )
    if cents is not None:
        dollars, part = value_of(cents["d"]), value_of(cents["c"])
        if dollars is None or part is None or part >= 100 or part != int(part):
            return None
        return dollars + part / 100
    mentions = find_prices(text)
    if len(mentions) != 1:
        return None
    mention = mentions[0]
    rest = (text[: mention.start] + text[mention.end :]).strip(" .!?,")
    if rest and not re.fullmatch(r"(?:dollars?|bucks?|usd)", rest, _I):
        return None
    return mention.value


def several_values(text: str) -> int:
    """How many amounts `text` lists when it is nothing but a list of them ("$8 and $9"): 0
    when it is not such a list."""
    mentions = find_prices(text)
    if len(mentions) < 2:
        return 0
    rest = text
    for mention in reversed(mentions):
        rest = rest[: mention.start] + rest[mention.end :]
    listed = re.fullmatch(r"(?:[\s,&]|\b(?:and|or|dollars?|bucks?|usd)\b)*", rest, _I)
    return len(mentions) if listed else 0


def is_name(text: str) -> bool:
    """A name, as against common words: each word capitalised, or holding a digit or a sign
    ("Alice", "Alice Smith", "Zorblax-9"), and no amount of money."""
    words = text.split()
    if not words or any(m.marked for m in find_prices(text)):
        return False
    return all(
        re.fullmatch(r"\w[\w.'’:@+-]*", w) and (w[0].isupper() or re.search(r"[\d:_@-]", w))
        for w in words
    )


def risky_pattern(regex: str) -> str | None:
    """Why `regex` could take exponential time on a long text (a repeated part that itself
    repeats, as in `(a+)+` or `(\\w+\\s?)*`), or None. Planning runs a pattern over every item in
    scope, so one that backtracks without bound would hang it; a model's pattern is hostile
    input, and a person's may be a slip."""
    try:
        from re import _parser as parser  # the stdlib's own parse tree of a pattern
    except ImportError:  # pragma: no cover - a Python without it: no check rather than none
        return None
    try:
        tree = parser.parse(regex, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError):
        return None  # not compilable: refused for that elsewhere
    if _nested_repeat(list(tree), inside=False):
        return "a repeated part of it repeats itself, which can take exponential time"
    return None


_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def _nested_repeat(items: list[Any], *, inside: bool) -> bool:
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            _, most, sub = av
            many = most > 1
            if many and inside:
                return True
            if _nested_repeat(list(sub), inside=inside or many):
                return True
            continue
        for child in _children(name, av):
            if child is not None and _nested_repeat(list(child), inside=inside):
                return True
    return False


def _children(name: str, av: Any) -> list[Any]:
    if name == "SUBPATTERN":
        return [av[3]]
    if name == "BRANCH":
        return list(av[1])
    if name in ("ASSERT", "ASSERT_NOT"):
        return [av[1]]
    if name == "GROUPREF_EXISTS":
        return [av[1], av[2]]
    if name == "ATOMIC_GROUP":
        return [av]
    return []
