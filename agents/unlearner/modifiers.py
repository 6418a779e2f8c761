"""The modifiers of a forget request in words, read and taken out before its target:

where    for agent A [, B]   in A's memory   for every agent
         in|of|from game ID   in|of lineage ID   in|of round N / the Nth round
         in the G games (G a game's name)
how      in redact mode   mode rederive   (exact)   by redacting   by rederiving
record   and purge the record   from the record too   record included
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from haggler.agents.unlearner.words import NUMBER, ORDINAL, ordinal_value, small_number
from haggler.memory.forgetting.requests import Mode

__all__ = ["ID", "Modifiers", "take_modifiers"]

_I = re.IGNORECASE
# An id as the store writes them (ep-…, lin-…) or a prefix of one; agent names may hold slashes.
ID = r"[\w][\w.:+@-]*"
_AGENT = r"[\w.:@+*-][\w./:@+*-]*"

_VERB = re.compile(
    r"^(?:(?:please|now|and|also|then|could\s+you|can\s+you|i\s+want\s+you\s+to)\s+)*"
    r"(?P<verb>forget|erase|delete|remove|unlearn|drop|wipe|redact|scrub)\b(?:\s+about\b)?",
    _I,
)
_MODES: list[tuple[re.Pattern[str], Mode | None]] = [
    (re.compile(r"[(\[]\s*(exact|redact|rederive)\s*[)\]]", _I), None),
    (re.compile(r",?\s*\b(?:in\s+|with\s+)?(exact|redact|rederive)\s+mode\b", _I), None),
    (re.compile(r",?\s*\bmode\s*[:=]?\s*(exact|redact|rederive)\b", _I), None),
    (
        re.compile(r",?\s*\b(?:by\s+|and\s+)?(?:redacting|scrubbing)\b(?:\s+(?:it|them))?", _I),
        "redact",
    ),
    (
        re.compile(
            r",?\s*\b(?:(?:by\s+)?re-?deriving|and\s+re-?derive)\b(?:\s+(?:it|them|(?:the\s+)?"
            r"(?:feedback|advice)))?",
            _I,
        ),
        "rederive",
    ),
]
_PURGE = re.compile(
    r",?\s*\b(?:and\s+)?(?:also\s+)?(?:(?:purge|scrub|wipe|erase|delete|remove)\s+"
    r"(?:it\s+|them\s+)?(?:from\s+)?the\s+(?:record|store)(?:\s+(?:too|as\s+well))?|"
    r"(?:from|in)\s+the\s+(?:record|store)\s+(?:too|as\s+well)|(?:the\s+)?record\s+included)\b",
    _I,
)
_EVERY_AGENT = re.compile(r"\b(?:for|of|from|in)\s+(?:every|all(?:\s+the)?)\s+agents?\b", _I)
_AGENTS = re.compile(
    rf"\b(?:for|of|from|in)\s+(?:the\s+)?agents?\s+"
    rf"(?P<names>{_AGENT}(?:\s*(?:,|\band\b)\s*{_AGENT})*)",
    _I,
)
_MEMORY_OF = re.compile(rf"\bin\s+(?P<name>{_AGENT})(?:'s|’s)\s+memory\b", _I)
_EPISODE = re.compile(
    rf"\b(?:in|of|from|during|within)\s+(?:the\s+)?(?:game|episode|match)\s+(?P<id>{ID})", _I
)
_LINEAGE = re.compile(rf"\b(?:in|of|from|within)\s+(?:the\s+)?lineage\s+(?P<id>{ID})", _I)
_ROUND = re.compile(
    rf"\b(?:in|of|from|during)\s+(?:the\s+)?"
    rf"(?:round\s+(?P<n>{NUMBER})|(?P<o>{ORDINAL})\s+(?:round|game))\b",
    _I,
)
_GAME_NAME = re.compile(
    r"\b(?:in|from|during|of)\s+(?:the\s+|all\s+(?:the\s+)?|every\s+|my\s+|its\s+)?"
    r"(?P<name>[\w:-]+)\s+(?:games?|matches|markets?|negotiations?)\b",
    _I,
)
_TRAILING = re.compile(
    r"(?:[\s,;.!?]+|\b(?:too|as\s+well|also|please|now|for\s+good|forever|completely|"
    r"entirely|altogether|from\s+(?:your|its|their|my)\s+memory|from\s+memory)\b)+$",
    _I,
)


@dataclass
class Modifiers:
    """What the modifiers said; a target that uses one (a round to find a game) clears it."""

    agents: tuple[str, ...] | None = None
    episode: str | None = None
    lineage: str | None = None
    round: int | str | None = None
    game: str | None = None
    modes: tuple[Mode, ...] = ()
    purge: bool = False


def take_modifiers(text: str, games: list[str]) -> tuple[str, Modifiers]:
    """The target that is left of `text` once its verb and modifiers are read, and the
    modifiers; `games` are the game names the memories know (`in game balloon` is a game by
    name, `in game ep-…` one game played)."""
    mods = Modifiers()
    modes: list[Mode] = []
    verb = _VERB.match(text)
    if verb:
        if verb["verb"].lower() in ("redact", "scrub"):
            modes.append("redact")
        text = text[verb.end() :]
    for pattern, fixed in _MODES:
        if (match := pattern.search(text)) is not None:
            modes.append(fixed or match[1].lower())  # type: ignore[arg-type]
            text = _cut(text, match)
    mods.modes = tuple(dict.fromkeys(modes))
    if (match := _PURGE.search(text)) is not None:
        mods.purge = True
        text = _cut(text, match)
    if (match := _EVERY_AGENT.search(text)) is not None:
        mods.agents = ("*",)
        text = _cut(text, match)
    elif (match := _AGENTS.search(text)) is not None:
        mods.agents = tuple(n for n in re.split(r"\s*(?:,|\band\b)\s*", match["names"]) if n)
        text = _cut(text, match)
    elif (match := _MEMORY_OF.search(text)) is not None:
        mods.agents = (match["name"],)
        text = _cut(text, match)
    if (match := _EPISODE.search(text)) is not None:
        if match["id"].lower() in games:
            mods.game = match["id"].lower()
        else:
            mods.episode = match["id"]
        text = _cut(text, match)
    if (match := _LINEAGE.search(text)) is not None:
        mods.lineage = match["id"]
        text = _cut(text, match)
    if (match := _ROUND.search(text)) is not None:
        mods.round = small_number(match["n"]) if match["n"] else ordinal_value(match["o"])
        text = _cut(text, match)
    if (match := _GAME_NAME.search(text)) is not None:
        mods.game = match["name"].lower()
        text = _cut(text, match)
    return _TRAILING.sub("", " ".join(text.split())).strip(), mods


def _cut(text: str, match: re.Match[str]) -> str:
    return f"{text[: match.start()]} {text[match.end() :]}"
