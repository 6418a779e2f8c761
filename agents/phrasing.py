"""Short sentences for rule-based negotiators, so their messages read like a model's.

Prices come in the shapes people and models write ("$15", "$15.50", "15 dollars", "fifteen
dollars"), which keeps the parser honest in offline games.
"""

from __future__ import annotations

import random

from haggler.agents.prices import format_price

__all__ = ["number_in_words", "number_words", "sentence"]

_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("seller", "offer"): (
        "I can't go that low, but I could do {price}.",
        "How about {price}? It's a really nice {item}.",
        "My best price right now is {price}.",
        "I'd let it go for {price}.",
        "That's too low for me; I can sell it for {price}.",
    ),
    ("buyer", "offer"): (
        "That's more than I want to spend. Would you take {price}?",
        "I can offer {price}.",
        "How about {price}?",
        "I could pay {price} for it.",
        "It's a bit pricey for me; I'll pay {price}.",
    ),
    ("seller", "accept"): (
        "Deal, {price} it is.",
        "All right, I accept {price}.",
        "It's a deal at {price}.",
    ),
    ("buyer", "accept"): (
        "Deal, I'll take it for {price}.",
        "All right, I accept {price}.",
        "It's a deal at {price}.",
    ),
    ("seller", "walk_away"): (
        "That's below what I can accept, so I'll walk away.",
        "We're too far apart; I'm walking away.",
    ),
    ("buyer", "walk_away"): (
        "That's more than it's worth to me, so I'll walk away.",
        "We're too far apart; I'm walking away.",
    ),
}

_SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def number_words(number: int, *, hundred_and: bool = False) -> str:
    """A whole number in English words: 1250 -> 'one thousand two hundred fifty'; with
    `hundred_and`, 125 -> 'one hundred and twenty-five' (as people say prices)."""
    if number < 0:
        return "minus " + number_words(-number, hundred_and=hundred_and)
    if number < 20:
        return _SMALL[number]
    if number < 100:
        tens, units = divmod(number, 10)
        return _TENS[tens - 2] + (f"-{_SMALL[units]}" if units else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        joint = " and " if hundred_and else " "
        return f"{_SMALL[hundreds]} hundred" + (
            joint + number_words(rest, hundred_and=hundred_and) if rest else ""
        )
    size, name = next((size, name) for size, name in _SCALES if number >= size)
    high, rest = divmod(number, size)
    said = f"{number_words(high, hundred_and=hundred_and)} {name}"
    return said + (f" {number_words(rest, hundred_and=hundred_and)}" if rest else "")


def number_in_words(n: int) -> str:
    """0 <= n < 1000 in words: 125 -> 'one hundred and twenty-five'."""
    if not 0 <= n < 1000:
        raise ValueError(f"number_in_words handles 0..999, got {n}")
    return number_words(n, hundred_and=True)


def _spoken(price: float, rng: random.Random, plain_text: bool) -> str:
    # Variety matters only when no tag carries the price: then the parser must read the prose.
    if not plain_text:
        return format_price(price)
    roll = rng.random()
    if price == int(price) and price < 1000 and roll < 0.25:
        return f"{number_in_words(int(price))} dollars"
    if roll < 0.5:
        return f"{format_price(price)[1:]} dollars"
    return format_price(price)


def sentence(
    role: str, kind: str, price: float | None, item: str, rng: random.Random, plain_text: bool
) -> str:
    """One sentence for `role` taking an action of `kind` at `price`."""
    template = rng.choice(_TEMPLATES[(role, kind)])
    spoken = _spoken(price, rng, plain_text) if price is not None else ""
    return template.format(price=spoken, item=item)
