"""Reading prices out of negotiators' sentences: "$15", "15 dollars", "fifteen", "$1,250.50".

Mentions marked as money (a currency sign or word) are trusted; bare numbers and number words
count only when a message holds no marked mention, since "I've had it for 3 years" is no offer.

A number is read whole or not at all: "$1e308" and "$1.5e3" (e-notation, which nobody haggles
in) are no price rather than $1 and $1.50, and neither is an amount above `MAX_PRICE`
(a 400-digit price would otherwise be read as infinity).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "MAX_PRICE",
    "PriceMention",
    "find_prices",
    "format_price",
    "parse_price",
    "words_to_number",
]

# A trillion dollars: no game's price comes near, and a float still holds every cent of it.
MAX_PRICE = 1e12

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000}
_NUMBER_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
# A run of number words: "twenty-five", "one hundred and fifty", "fifteen". Bounded, so that a
# long reply of repeated number words is read in linear time, not rescanned from every word.
_WORDS = rf"(?:{_NUMBER_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_NUMBER_WORD})){{0,6}}"
# A number ends where no digit, decimal or thousands part, or exponent follows: otherwise a
# shorter reading would match, and "$1.5e3" would be read as $1.50.
_NUMBER_END = r"(?!\d|[.,]\d|[eE][+-]?\d)"
_DIGITS = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+){_NUMBER_END}"
_AMOUNT = rf"(?:{_DIGITS}|{_WORDS})"
_CURRENCY_WORD = r"(?:dollars?|bucks?|usd)\b"

# Nor does a number start inside another: after a sign, a comma or an exponent's "e".
_START = r"(?<![\w.$,+-])"

_MARKED = re.compile(
    rf"(?:\$|\busd\s*)\s*(?P<a>{_DIGITS})(?:\s*{_CURRENCY_WORD})?"
    rf"|{_START}\b(?P<b>{_AMOUNT})\s*{_CURRENCY_WORD}",
    re.IGNORECASE,
)
_BARE = re.compile(rf"{_START}(?P<c>{_DIGITS}|\b{_WORDS}\b)(?![\w%])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PriceMention:
    value: float
    start: int
    end: int
    marked: bool  # written as money ($, dollars, bucks), not a bare number


def words_to_number(text: str) -> float | None:
    """'one hundred and twenty-five' -> 125, 'fifteen fifty' -> 15.5; None if not a number."""
    tokens = [t for t in re.split(r"[\s-]+", text.lower().strip()) if t and t != "and"]
    if not tokens or any(t not in _UNITS and t not in _TENS and t not in _SCALES for t in tokens):
        return None
    if not any(t in _SCALES for t in tokens):
        groups = _small_groups(tokens)
        if groups is None:
            return None
        if len(groups) == 2 and groups[1] < 100:
            # "fifteen fifty", "nineteen ninety-nine": dollars and cents, as people say prices.
            return groups[0] + groups[1] / 100
        return float(groups[0]) if len(groups) == 1 else None
    total = current = 0
    for token in tokens:
        if token in _UNITS:
            current += _UNITS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token == "hundred":
            current = (current or 1) * 100
        else:
            total += (current or 1) * 1000
            current = 0
    return float(total + current)


def _small_groups(tokens: list[str]) -> list[int] | None:
    """Split words below a hundred into numbers: ['fifteen', 'fifty'] -> [15, 50]."""
    groups: list[int] = []
    open_tens = False  # the last group is a bare tens word that a unit may still complete
    for token in tokens:
        if token in _UNITS and open_tens and 1 <= _UNITS[token] <= 9:
            groups[-1] += _UNITS[token]
            open_tens = False
            continue
        groups.append(_UNITS.get(token, _TENS.get(token, 0)))
        open_tens = token in _TENS
    return groups


def _amount(text: str) -> float | None:
    value = (
        float(text.replace(",", ""))
        if text[0].isdigit() or text[0] == "."
        else words_to_number(text)
    )
    if value is None or not math.isfinite(value) or value > MAX_PRICE:
        return None
    return value


def find_prices(text: str) -> list[PriceMention]:
    """Every price mentioned in `text`, in order; money-marked ones win over bare numbers."""
    marked = []
    for match in _MARKED.finditer(text):
        group = "a" if match.group("a") is not None else "b"
        value = _amount(match.group(group))
        if value is not None:
            marked.append(PriceMention(value, match.start(), match.end(), marked=True))
    if marked:
        return marked
    bare = []
    for match in _BARE.finditer(text):
        word = match.group("c")
        if word.lower() == "one":  # "no one would pay that" is not a price
            continue
        value = _amount(word)
        if value is not None:
            bare.append(PriceMention(value, match.start(), match.end(), marked=False))
    return bare


def format_price(price: float) -> str:
    """'$15', '$15.50', '$1,250,000', '$15.125': every digit written, so it reads back exactly.

    Any float can be written, for error messages about a price nobody can pay: one beyond
    `MAX_PRICE` in e-notation ('$1e+308'), which reads back as no price at all, and 'inf' or
    'nan' as themselves.
    """
    if not math.isfinite(price) or abs(price) > MAX_PRICE:
        return f"${price:g}"
    cents = price * 100
    if abs(cents - round(cents)) > 1e-6:
        # Finer than a cent: six decimals at most, so 1.7429999999 reads "$1.743".
        return "$" + f"{price:,.6f}".rstrip("0").rstrip(".")
    return f"${price:,.0f}" if price == int(price) else f"${price:,.2f}"


def parse_price(text: str) -> float | None:
    """The one price in a short expression such as '$15.50' or 'fifteen'; None if there is none."""
    mentions = find_prices(text)
    return mentions[-1].value if mentions else None
