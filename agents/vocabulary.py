"""What a game's messages may do: its action vocabulary, and how tags are read from it.

A game declares, for each role, the actions it may take (`Game.actions(role)`). Each
`ActionType` names its tag (`[OFFER $X]`, `[SUGGEST $X]`, `[PROPOSE A1 B2 C3]`), what the tag
carries (nothing, a price, an optional price, or terms: one option per issue) and a short
help line for briefs. `BARGAINING` is the seed paper's four; `SUGGEST` is a mediator's price
suggestion; `propose(options)` is a package offer over named issues.

Reading is the same for every vocabulary: the last tag of the message wins; a message with no
tag is read by the bargaining cues (`read_free_text`), which only ever find the four
bargaining actions. What cannot be read is None: never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from haggler.agents.actions import (
    ACTION_HELP,
    Action,
    ActionKind,
    read_free_text,
)
from haggler.agents.prices import parse_price

__all__ = [
    "BARGAINING",
    "SUGGEST",
    "ActionType",
    "Carries",
    "Vocabulary",
    "propose",
]

Carries = Literal["nothing", "price", "optional_price", "terms"]

# Only the end of a very long message is read (as `parse_action` does): the action belongs at
# the end, and parsing cost must not grow with whatever a model writes before it.
_MAX_READ = 4000
_NEGATIVE = re.compile(r"^-\s*\$?\s*\d|^\$\s*-")
_TERM_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class ActionType:
    """One action a role may take, as its tag writes it."""

    kind: str
    # The tag's word(s), e.g. "OFFER", "WALK AWAY"; read case-blind, spaces as space, _ or -.
    tag: str
    carries: Carries = "nothing"
    # How a brief shows it, e.g. "[OFFER $X] to propose a price".
    help: str = ""
    # An example tag, as corrections quote it: "[OFFER $15]".
    example: str = ""
    # For terms: each issue's options, by issue ({"route": ("A1", "A2", "A3"), ...}).
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.kind):
            raise ValueError(
                f"an action kind is lower-case letters, digits and _, not {self.kind!r}"
            )
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*( [A-Za-z][A-Za-z0-9]*)*", self.tag):
            raise ValueError(f"an action tag is words of letters and digits, not {self.tag!r}")
        if self.carries == "terms" and not self.options:
            raise ValueError(f"{self.kind}: an action that carries terms needs its options")
        if not self.example:
            object.__setattr__(self, "example", self._example())

    def _example(self) -> str:
        if self.carries in ("price", "optional_price"):
            return f"[{self.tag} $15]"
        if self.carries == "terms":
            return f"[{self.tag} {' '.join(labels[0] for labels in self.options.values())}]"
        return f"[{self.tag}]"

    @property
    def key(self) -> str:
        """The tag as the reader normalises it: lower case, its words run together."""
        return "".join(self.tag.lower().split())

    def read(self, content: str) -> Action | None:
        """The action of a tag of this type whose content (after its word) is `content`."""
        content = content.strip()
        if self.carries == "terms":
            terms = self.read_terms(content)
            return Action(self.kind, None, terms=terms) if terms is not None else None
        price = parse_price(content) if content else None
        if _NEGATIVE.match(content):
            return None  # a negative price is no price
        if self.carries == "nothing":
            return Action(self.kind)
        if content and price is None:
            # "[ACCEPT $abc]" names a price nobody can read: not a blanket acceptance.
            return None
        if self.carries == "price" and price is None:
            # An offer must name its price; the game reports the omission back to the speaker.
            return None
        return Action(self.kind, price)

    def read_terms(self, content: str) -> dict[str, str] | None:
        """One option per issue, from labels such as "A2 B1 C3"; None if a label is unknown or
        names an issue twice. Issues left out are the game's to rule on."""
        by_label = {
            label.casefold(): (issue, label)
            for issue, labels in self.options.items()
            for label in labels
        }
        issues = {issue.casefold() for issue in self.options}
        terms: dict[str, str] = {}
        for token in _TERM_SPLIT.split(content):
            token = token.strip(".!?()'\"")
            if not token:
                continue
            # "route=A2" and "route: A2" (or "route = A2") say the same as "A2".
            token = re.split(r"[=:]", token)[-1].strip()
            found = by_label.get(token.casefold())
            if found is None and (not token or token.casefold() in issues):
                continue  # an issue's name before its option, or the "=" between them
            if found is None or found[0] in terms:
                return None
            terms[found[0]] = found[1]
        return terms or None


class Vocabulary:
    """The actions of a role (or of a whole game): reads and writes their tags."""

    def __init__(self, types: Iterable[ActionType]) -> None:
        self.types: tuple[ActionType, ...] = tuple(types)
        keys = [t.key for t in self.types]
        kinds = [t.kind for t in self.types]
        for values, what in ((keys, "tag"), (kinds, "kind")):
            doubled = sorted({v for v in values if values.count(v) > 1})
            if doubled:
                raise ValueError(f"a vocabulary declares the {what} {doubled[0]!r} twice")
        self._by_key = {t.key: t for t in self.types}
        self._by_kind = {t.kind: t for t in self.types}
        words = sorted((r"[\s_-]*".join(t.tag.lower().split()) for t in self.types), key=len)
        # The tag's content is bounded, so a reply full of unclosed "[offer" still reads in
        # linear time; longer words first, so that no word is read as a prefix of another.
        self._tag = re.compile(
            rf"\[\s*({'|'.join(reversed(words)) or '(?!)'})\b([^\]\[]{{0,200}})\]",
            re.IGNORECASE,
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(t.kind for t in self.types)

    def get(self, kind: str) -> ActionType | None:
        return self._by_kind.get(str(kind))

    def __contains__(self, kind: object) -> bool:
        return str(kind) in self._by_kind

    def __or__(self, other: Vocabulary) -> Vocabulary:
        """Both vocabularies' actions (one type per kind: this one's first)."""
        if other is self or all(t.kind in self._by_kind for t in other.types):
            return self  # every turn asks for the game's vocabulary: no new regex for nothing
        return Vocabulary([*self.types, *(t for t in other.types if t.kind not in self)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.types == other.types

    def __hash__(self) -> int:
        return hash(self.types)

    def __repr__(self) -> str:
        return f"Vocabulary({', '.join(self.kinds)})"

    def only(self, *kinds: str) -> Vocabulary:
        """The part of this vocabulary of `kinds`, in this vocabulary's order."""
        unknown = [k for k in kinds if k not in self]
        if unknown:
            raise ValueError(f"{self!r} has no action {unknown[0]!r}")
        return Vocabulary(t for t in self.types if t.kind in kinds)

    @property
    def is_bargaining(self) -> bool:
        """Whether it holds only the four bargaining actions (what cues and an LLM moderator
        know how to read in free prose)."""
        return set(self.kinds) <= {kind.value for kind in ActionKind}

    def has_tag(self, text: str) -> bool:
        """Whether the end of `text` (where actions belong) holds one of its tags."""
        return self._tag.search(text[-_MAX_READ:]) is not None

    def parse_tag(self, text: str) -> Action | None:
        """The action of the last tag in `text`; None if there is none or it cannot be read."""
        tags = list(self._tag.finditer(text[-_MAX_READ:]))
        if not tags:
            return None
        last = tags[-1]
        key = re.sub(r"[\s_-]+", "", last.group(1).lower())
        return self._by_key[key].read(last.group(2))

    def parse(self, text: str) -> Action | None:
        """The action a message takes: its last tag, else the bargaining cues of its prose
        (when this vocabulary has an offer to read them as), else None."""
        text = text[-_MAX_READ:]
        if self.has_tag(text):
            return self.parse_tag(text)
        if ActionKind.OFFER not in self:
            return None
        return read_free_text(text)

    def examples(self) -> str:
        """Its tags as a correction lists them: "[OFFER $15], [ACCEPT $15], [REJECT] or
        [WALK AWAY]"."""
        shown = [t.example for t in self.types]
        if len(shown) <= 1:
            return "".join(shown)
        return f"{', '.join(shown[:-1])} or {shown[-1]}"

    def help(self) -> str:
        """One sentence for a brief, listing every action and what it does."""
        if self == BARGAINING:
            return ACTION_HELP
        parts = [f"{t.example} {t.help}".strip() for t in self.types]
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])}, or {parts[-1]}"
        return f"End every message with exactly one action tag: {listed}."


BARGAINING = Vocabulary(
    [
        ActionType(ActionKind.OFFER.value, "OFFER", "price", "to propose a price"),
        ActionType(
            ActionKind.ACCEPT.value,
            "ACCEPT",
            "optional_price",
            "to accept the other side's current offer of $X",
        ),
        ActionType(
            ActionKind.REJECT.value, "REJECT", "nothing", "to turn it down without a new price"
        ),
        ActionType(ActionKind.WALK_AWAY.value, "WALK AWAY", "nothing", "to leave without a deal"),
    ]
)

# A mediator's move: a price it puts to both sides, which it cannot accept or make binding.
SUGGEST = ActionType("suggest", "SUGGEST", "price", "to suggest a price to both sides")


def propose(options: Mapping[str, Iterable[str]], tag: str = "PROPOSE") -> ActionType:
    """A package offer over `options` (issue -> its option labels, each label unique)."""
    table = {issue: tuple(labels) for issue, labels in options.items()}
    seen: dict[str, str] = {}
    for issue, labels in table.items():
        if not labels:
            raise ValueError(f"issue {issue!r} has no options")
        for label in labels:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", label):
                raise ValueError(f"option {label!r} of {issue!r}: use letters, digits, _ . -")
            if label.casefold() in seen:
                raise ValueError(f"option {label!r} names an option of {seen[label.casefold()]!r}")
            seen[label.casefold()] = issue
    return ActionType(
        "propose", tag, "terms", "to propose one option for every issue", options=table
    )
