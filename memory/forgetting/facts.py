"""Finding a fact in text, and scrubbing it out.

A value is found in every form a negotiator may say it: "$8", "$8.00", "8 dollars", "eight
dollars", "USD 8", and a bare "8" or "eight" (a bare number counts here even beside money: for
forgetting, finding too much is the safe side). Names match as whole words, phrases word for
word with any spacing, patterns as given; all in any letter case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from haggler.errors import ConfigError
from haggler.memory.forgetting.requests import (
    PLACEHOLDER,
    NameFact,
    PatternFact,
    PhraseFact,
    ValueFact,
)

__all__ = [
    "PATTERN_SECONDS",
    "PatternTooSlow",
    "Span",
    "fact_spans",
    "fragments_of",
    "lines_by",
    "scrub",
    "states",
    "term_spans",
]

Span = tuple[int, int]
AnyFact = ValueFact | NameFact | PhraseFact | PatternFact

# Two amounts within half a cent are the same amount.
_SAME_AMOUNT = 0.005


# How long a pattern may search one text. A pattern is hostile input (a model's, or a slip of a
# person's): `(a|a)+$` takes exponential time on a run of a's in Python's `re`, which cannot be
# interrupted, so patterns run on the `regex` engine, which can.
PATTERN_SECONDS = 2.0


class PatternTooSlow(ConfigError):
    """A pattern took longer than `PATTERN_SECONDS` on one text: it backtracks without bound."""


def fact_spans(fact: AnyFact, text: str) -> list[Span]:
    """Where `fact` occurs in `text`, as (start, end) spans in order, not overlapping.

    A pattern that searches one text for longer than `PATTERN_SECONDS` raises PatternTooSlow.
    """
    if isinstance(fact, ValueFact):
        return _value_spans(fact.value, text)
    if isinstance(fact, PatternFact):
        try:
            found = list(_pattern(fact.regex).finditer(text, timeout=PATTERN_SECONDS))
        except TimeoutError:
            raise PatternTooSlow(
                f"the pattern {fact.regex!r} searched one text for over {PATTERN_SECONDS:g} s "
                "(it backtracks without bound, as `(a|a)+` does); write it without repeats "
                "that can match the same text in several ways"
            ) from None
        return [m.span() for m in found if m.end() > m.start()]
    return [m.span() for m in _compiled(fact).finditer(text) if m.end() > m.start()]


def states(fact: AnyFact, text: str) -> bool:
    """Whether `text` states `fact` as such: a value only as an amount of money ("$8", "8
    dollars"), not as a bare number. For texts beside what was said, such as an item's summary,
    where a bare number is a round or a count ("Round 8: ... after 8 messages")."""
    if isinstance(fact, ValueFact):
        from haggler.agents.prices import find_prices

        return any(m.marked and abs(m.value - fact.value) < _SAME_AMOUNT for m in find_prices(text))
    return bool(fact_spans(fact, text))


def term_spans(terms: Iterable[str], text: str) -> list[Span]:
    """Where any of `terms` (names of an environment) occurs as a whole word."""
    spans: list[Span] = []
    for term in terms:
        if term:
            spans.extend(m.span() for m in _compiled(NameFact(name=term)).finditer(text))
    return _merge(spans)


def scrub(text: str, spans: Sequence[Span]) -> str:
    """`text` with every span replaced by the placeholder."""
    out, at = [], 0
    for start, end in _merge(spans):
        out.append(text[at:start])
        out.append(PLACEHOLDER)
        at = end
    out.append(text[at:])
    return "".join(out)


def lines_by(text: str, speaker: str) -> list[Span]:
    """The spans of the messages `speaker` said in a remembered game (see
    `haggler.memory.transcript`)."""
    from haggler.memory.transcript import read_transcript

    messages, _ = read_transcript(text)
    return [(m.start, m.end) for m in messages if m.speaker == speaker]


def fragments_of(text: str, *, skip: int = 0, min_chars: int = 12) -> list[str]:
    """The verbatim pieces of a forgotten item worth scrubbing from what was made under its
    influence: each message of a remembered game (its text after "speaker: ") but the first
    `skip` (a game's scripted opening, which every game shares), each line of advice, of at
    least `min_chars` characters."""
    from haggler.memory.transcript import read_transcript

    messages, _ = read_transcript(text)
    lines = [m.text for m in messages[skip:]] if messages else text.splitlines()
    pieces = []
    for line in lines:
        for part in line.split("\n"):
            body = re.sub(r"^\s*(?:\d+[.)]\s*|[-*•]\s*)", "", part).strip()
            if len(body) >= min_chars:
                pieces.append(body)
    return pieces


def fragment_spans(fragments: Iterable[str], text: str) -> list[Span]:
    spans = []
    for fragment in fragments:
        start = text.find(fragment)
        while start >= 0:
            spans.append((start, start + len(fragment)))
            start = text.find(fragment, start + len(fragment))
    return _merge(spans)


@lru_cache(maxsize=256)
def _compiled(fact: NameFact | PhraseFact) -> re.Pattern[str]:
    # Escaped words, lookarounds and \s+ between them: linear time, so Python's `re` will do.
    if isinstance(fact, NameFact):
        return re.compile(rf"(?<!\w){re.escape(fact.name.strip())}(?!\w)", re.IGNORECASE)
    spaced = r"\s+".join(re.escape(word) for word in fact.text.split())
    return re.compile(rf"(?<!\w){spaced}(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=256)
def _pattern(regex_text: str) -> Any:
    """A pattern on the `regex` engine, which reads Python's syntax (VERSION0) and can time out."""
    import regex

    return regex.compile(regex_text, regex.IGNORECASE | regex.VERSION0)


def _value_spans(value: float, text: str) -> list[Span]:
    # Money first; then bare numbers in what is left (positions kept by blanking money out).
    from haggler.agents.prices import find_prices

    marked = [m for m in find_prices(text) if m.marked]
    blanked = list(text)
    for mention in marked:
        blanked[mention.start : mention.end] = " " * (mention.end - mention.start)
    bare = [m for m in find_prices("".join(blanked)) if not m.marked]
    return _merge((m.start, m.end) for m in (*marked, *bare) if abs(m.value - value) < _SAME_AMOUNT)


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
