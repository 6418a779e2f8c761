"""Negotiation actions and the rule-based parser that reads them from a message.

A message should end with a tag: `[OFFER $15]`, `[ACCEPT $15]` (or `[ACCEPT]`), `[REJECT]`,
`[WALK AWAY]`. The last tag wins. A message with no tag is read as free text with a few
conservative cues; what still cannot be read is `None`, which the game turns into a retry and,
past the allowance, an invalid outcome: never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from haggler.agents.prices import PriceMention, find_prices, format_price

__all__ = [
    "ACTION_HELP",
    "Action",
    "ActionKind",
    "format_action",
    "has_tag",
    "parse_action",
    "parse_tag",
    "read_free_text",
]


class ActionKind(StrEnum):
    OFFER = "offer"
    ACCEPT = "accept"
    REJECT = "reject"
    WALK_AWAY = "walk_away"


_STANDARD = {kind.value for kind in ActionKind}


@dataclass(frozen=True, slots=True)
class Action:
    """One move: the four of bargaining are `ActionKind`s; a game may declare others in its
    vocabulary (`haggler.agents.vocabulary`), such as a mediator's "suggest" or a package
    "propose", whose kind is then that plain string."""

    kind: ActionKind | str
    price: float | None = None
    # Where the action came from: an explicit tag, free-text cues, or an LLM moderator's verdict.
    source: Literal["tag", "text", "moderator"] = "tag"
    # What a package proposal settles: one option per issue ({"route": "A2", ...}).
    terms: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        # "offer" and ActionKind.OFFER are one kind: code compares them with `is`.
        if not isinstance(self.kind, ActionKind) and self.kind in _STANDARD:
            object.__setattr__(self, "kind", ActionKind(self.kind))

    @property
    def name(self) -> str:
        """The kind as a plain string, for records and messages."""
        return str(self.kind.value if isinstance(self.kind, ActionKind) else self.kind)

    def as_dict(self) -> dict[str, object]:
        described: dict[str, object] = {
            "kind": self.name,
            "price": self.price,
            "source": self.source,
        }
        if self.terms is not None:
            described["terms"] = dict(self.terms)
        return described


ACTION_HELP = (
    "End every message with exactly one action tag: [OFFER $X] to propose a price, "
    "[ACCEPT $X] to accept the other side's current offer of $X, [REJECT] to turn it down "
    "without a new price, or [WALK AWAY] to leave without a deal."
)

# Only the end of a very long message is read: the action belongs at the end, and parsing
# cost must not grow with whatever a model decides to write before it.
_MAX_READ = 4000

_WALK_CUES = re.compile(
    r"\b(i(?:'m| am| will|'ll)? walk(?:ing)? away|walk away|i(?:'ll| will) pass|"
    r"i(?:'m| am) (?:out|leaving)|goodbye)\b",
    re.IGNORECASE,
)
_ACCEPT_CUES = re.compile(
    r"(^\s*deal\b(?!\s*\?)|\bit'?s a deal\b|\b(?:we|you)(?:'ve| have)? (?:got )?a deal\b|\bi accept\b|"
    r"\baccepted\b|\bagreed\b|^\s*sold\b|\bit'?s sold\b|\bi'?ll take it\b)",
    re.IGNORECASE,
)
_REJECT_CUES = re.compile(
    r"\b(no deal|no way|too (?:high|low|much|little)|i can(?:'t|not) (?:do|accept|go)|"
    r"not acceptable|not accept(?:ing)?|won'?t accept)\b",
    re.IGNORECASE,
)
# "Let's not say goodbye yet", "I won't walk away": a negated exit is no exit.
_NEGATED = re.compile(r"\b(?:not|never|n't|won'?t|don'?t)\b|n't\s", re.IGNORECASE)
# Words that introduce the speaker's own proposal, so "you said $18, I can do $15" reads 15.
_OFFER_CUES = re.compile(
    r"\b(how about|what about|i can do|i could do|i(?:'ll| will| would| can| could)? "
    r"(?:pay|sell|take|go|offer|accept|let it go|part with)|would you (?:take|accept|sell|do)|"
    r"my (?:best |final |last )?(?:offer|price) is|i'?m offering|counter(?:offer)? (?:of|at|with)|"
    r"meet (?:you )?(?:at|in the middle at)|settle (?:on|for|at))(?:\s+[\w']+){0,3}\s*$",
    re.IGNORECASE,
)


def format_action(action: Action) -> str:
    """The tag that writes `action`, e.g. `[OFFER $15]`, `[PROPOSE A2 B1 C3]`."""
    label = action.name.replace("_", " ").upper()
    if action.terms:
        return f"[{label} {' '.join(action.terms.values())}]"
    if action.price is None:
        return f"[{label}]"
    return f"[{label} {format_price(action.price)}]"


def parse_action(text: str) -> Action | None:
    """The action a message takes, or None when it takes none that can be read."""
    return _bargaining().parse(text)


def has_tag(text: str) -> bool:
    """Whether the end of `text` (where actions belong) holds an action tag, readable or not."""
    return _bargaining().has_tag(text)


def parse_tag(text: str) -> Action | None:
    """The action of the last tag in `text`; None if there is none or it lacks its price."""
    return _bargaining().parse_tag(text)


_VOCABULARY: list[Any] = []


def _bargaining() -> Any:
    # The four tags are one vocabulary among those games declare; reading lives there (it
    # imports this module, hence the late import, done once).
    if not _VOCABULARY:
        from haggler.agents.vocabulary import BARGAINING

        _VOCABULARY.append(BARGAINING)
    return _VOCABULARY[0]


def read_free_text(text: str) -> Action | None:
    """The action a message without a tag takes, read from conservative cues; None if unclear."""
    text = text[-_MAX_READ:]
    mentions = find_prices(text)
    rejecting = _REJECT_CUES.search(text) is not None
    if _ACCEPT_CUES.search(text) and not rejecting:
        price = mentions[-1].value if mentions else None
        return Action(ActionKind.ACCEPT, price, source="text")
    cued = _cued(text, mentions)
    if cued:
        # A counter-offer outweighs a threat or a complaint in the same message.
        return Action(ActionKind.OFFER, cued[-1].value, source="text")
    walk = _WALK_CUES.search(text)
    if walk and not _NEGATED.search(text[max(0, walk.start() - 20) : walk.start()]):
        return Action(ActionKind.WALK_AWAY, source="text")
    if rejecting:
        # "I can't accept $18" quotes a price to refuse it, not to offer it.
        return Action(ActionKind.REJECT, source="text")
    if mentions:
        return Action(ActionKind.OFFER, mentions[-1].value, source="text")
    return None


def _cued(text: str, mentions: list[PriceMention]) -> list[PriceMention]:
    # The paper read the last price of a message; a cue such as "how about" is a better signal
    # when a message also quotes the rival's price.
    return [m for m in mentions if _OFFER_CUES.search(text[max(0, m.start - 40) : m.start])]
