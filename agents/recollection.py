"""What a rule-based negotiator learns from the games it remembers: a rival's stated limit.

A buyer that said "my budget is $14" or "I can't go above fourteen dollars" told its seller
what buyers like it can pay; a seller that said "I won't sell below $12" told its buyer what
sellers like it will take. A negotiator whose memory recalls such a line sets its walk-away
price from it (see `RuleNegotiator`):

- a stated **limit** ("my budget is $14": the rival can pay $14 and no more) becomes the
  walk-away price: a seller holds out for $14, since buyers like that can pay it, and comes
  down to it if its own reserve was higher, since they cannot pay more; a buyer pays up to a
  remembered floor and no more. A time-dependent tactic's offers are shares of the way from
  the opening to the walk-away price, so every offer, the first concessions included, is set
  from the remembered limit;
- a price the rival said it could **never** pay or take ("I could never pay $20") bounds the
  walk-away price: a seller will not insist on $20 or more, a buyer offers more than a floor
  a seller refused.

The newest stated limit wins; every "never" bound applies. Only the rival's own lines in
remembered games count (not the negotiator's own, not its coach's advice, not summaries), and
only statements: a clause that negates, questions or supposes its price ("my budget is not
$14", "if my budget were $14", "is your limit $14?") is no reading.

Nothing here is stored: the limit is read afresh, each turn, from the history the memory
recalls, so forgetting the game it came from forgets what it taught.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from haggler.agents.prices import find_prices
from haggler.memory.transcript import read_transcript

__all__ = ["LimitStatement", "RivalLimit", "read_limits", "remembered_limit"]

SELLER, BUYER = "seller", "buyer"


@dataclass(frozen=True, slots=True)
class LimitStatement:
    """One statement of a speaker's own limit in a message.

    `value` is the price; `within` says whether the speaker can still do it ("my budget is
    $14": pays $14, not more) or whether it is beyond it ("I could never pay $20"). A buyer's
    statements are ceilings, a seller's floors. `start`/`end` place the price in the text.
    """

    value: float
    within: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RivalLimit:
    """What the remembered games say of rivals in role `rival`: the newest limit they stated
    (`value`), and the tightest price they said was beyond them (`beyond`: the lowest a buyer
    could never pay, the highest a seller could never take); either may be None. `said` is the
    line the newest reading came from."""

    rival: str
    value: float | None
    beyond: float | None
    said: str


# --- the cues -------------------------------------------------------------------------------

# Typographic apostrophes are read as plain ones (same length, so positions stay put).
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# Words that may stand between a cue and its price without changing what it says.
_FILL = (
    r"(?:\s+(?:only|just|about|around|roughly|exactly|precisely|approximately|merely|a mere|"
    r"really|honestly|strictly|of|at|to))*"
)
_FOR = r"(?: for (?:it|this|that|one|the \w+|a \w+))?"
_IS = r"(?:\s+(?:is|was|will be|would be|sits at|stands at|comes to|tops out at)|'s|:)"
# The speaker saying it cannot or will not: "I can't", "I'd never", "I'm not able to".
_NOT_I = (
    r"\bI\s*(?:can't|cannot|can not|can never|couldn't|could not|could never|won't|will not|"
    r"will never|wouldn't|would not|would never|'d never|never|am not able to|'m not able to|"
    r"am unable to|'m unable to|don't|do not)(?:\s+(?:possibly|ever|really))?"
)
_I_CAN = r"\bI\s*(?:can|could|am able to|'m able to|will|'ll|would|'d)"
_PENNY = r"(?: anything| a cent| a penny| a dime| one cent)?"

# Before the price: "<cue> $14". Each list is (pattern, within).
_CEILING_BEFORE: tuple[tuple[str, bool], ...] = (
    (
        r"\bmy (?:total |whole |entire |overall |absolute |maximum |max |top |hard |real )?"
        r"(?:budget|limit|max|maximum|ceiling|cap|top price|spending limit|price limit|"
        r"upper limit|walk-?away(?: price)?|reserve(?: price)?|bottom line)" + _FOR + _IS,
        True,
    ),
    (r"\b(?:a|my) budget of", True),
    (
        r"\b(?:the )?(?:most|max|maximum|highest|furthest|farthest) I\s*(?:can|could|will|would|"
        r"am able to|'m able to|am willing to|'m willing to|'ll|'d) (?:ever )?"
        r"(?:pay|spend|offer|afford|go|do|manage|stretch to)" + _FOR + _IS,
        True,
    ),
    (
        _I_CAN + r" (?:only )?(?:pay|spend|offer|go|stretch|do)(?: to pay)? "
        r"(?:up to|as (?:much|high) as|at most|a maximum of|no more than|no higher than|"
        r"nothing (?:above|over|more than))",
        True,
    ),
    (
        _NOT_I
        + r" (?:go|pay|spend|offer|afford(?: to pay)?|do|stretch)"
        + _PENNY
        + r" (?:above|over|beyond|higher than|more than|past|north of)",
        True,
    ),
    (
        r"\b(?:no more than|no higher than|"
        r"not (?:a|one) (?:cent|penny|dime) (?:more than|over|above))",
        True,
    ),
    (
        r"\bI (?:only |just )?have(?: only| just)?|"
        r"\bI(?:'ve| have) (?:only |just )?got(?: only| just)?",
        True,
    ),
    (r"\ball I (?:have|'ve got|have got|can (?:pay|spend|afford)) is", True),
    (r"\bI(?:'m| am) (?:capped|limited|maxed out) (?:at|to)", True),
    (r"\bI can (?:only afford|afford only|afford at most|afford no more than)", True),
    (_NOT_I + r" (?:pay|afford|spend|do|go to|manage|stretch to)(?: you)?", False),
    (
        r"\b(?:there's |there is )?no way (?:I|I'd|I'll|I would|I will|I could|I can) (?:ever )?"
        r"(?:pay|spend|afford|do|go to)",
        False,
    ),
)
_FLOOR_BEFORE: tuple[tuple[str, bool], ...] = (
    (
        r"\bmy (?:absolute |rock-?bottom |final |lowest |minimum |hard |real )?"
        r"(?:floor|floor price|minimum|min|bottom line|bottom price|lowest price|lowest|limit|"
        r"reserve(?: price)?|walk-?away(?: price)?)" + _FOR + _IS,
        True,
    ),
    (
        r"\b(?:the )?(?:lowest|least|minimum|furthest|farthest) I\s*(?:can|could|will|would|"
        r"am able to|'m able to|am willing to|'m willing to|'ll|'d) (?:ever )?"
        r"(?:go|sell(?: it| this| the \w+)?(?: for)?|accept|take|do|let it go(?: for)?|"
        r"part with it(?: for)?)" + _FOR + _IS,
        True,
    ),
    (
        _I_CAN + r" (?:only )?(?:go|come|drop|sell(?: it)?|let it go|take|accept)(?: it)? "
        r"(?:down to|as low as|no lower than|for no less than|for at least|at least|"
        r"no less than)",
        True,
    ),
    (
        _NOT_I + r" (?:go|sell(?: it| this| the \w+)?|accept|take|drop|come down|let it go|"
        r"part with it|do)(?: for)?"
        + _PENNY
        + r" (?:below|under|lower than|less than|beneath|south of)",
        True,
    ),
    (
        r"\b(?:no less than|no lower than|"
        r"not (?:a|one) (?:cent|penny|dime) (?:less than|under|below))",
        True,
    ),
    (r"\bI (?:need|want|have to get|must get)(?: to get)? at least", True),
    (
        _NOT_I + r" (?:sell(?: it| this| the \w+)?(?: for)?|accept|take|do|go(?: down)? to|"
        r"let it go for|part with it for)",
        False,
    ),
    (
        r"\b(?:there's |there is )?no way (?:I|I'd|I'll|I would|I will|I could|I can) (?:ever )?"
        r"(?:sell(?: it)?(?: for)?|accept|take|go(?: down)? to)",
        False,
    ),
)

# After the price: "$14 <cue>".
_PRICE_VERB = r"^\s*(?:is|'s|was|will be|would be)\s+"
_PRICE_IS = _PRICE_VERB + r"(?:really |absolutely |honestly |truly )?"
_STEP = r"(?:(?:way|much|far|a bit|a little|just|simply|really|well)\s+)?"
_CEILING_AFTER: tuple[tuple[str, bool], ...] = (
    (
        _PRICE_IS + r"(?:my|the) (?:absolute |total |whole |hard |top |maximum |max )?"
        r"(?:budget|limit|max|maximum|ceiling|cap|top|walk-?away(?: price)?|"
        r"(?:most|highest) I (?:can|could) (?:pay|spend|offer|afford|do|go))\b",
        True,
    ),
    (
        r"^\s*(?:is all I (?:have|'ve got|can (?:pay|spend|afford|do))|"
        r"is as (?:high|far) as I (?:can|could) go|"
        r"(?:max|maximum|tops|at most|and not (?:a|one) (?:cent|penny|dime) more)\b)",
        True,
    ),
    (
        _PRICE_VERB + _STEP + r"(?:too (?:much|high|expensive|steep|rich|pricey)|"
        r"(?:more than|above|over|beyond|outside(?: of)?|out of) (?:my|the) "
        r"(?:budget|limit|means|range|price range|max(?:imum)?|reach)|"
        r"more than I (?:can|could) (?:pay|afford|spend|do))\b",
        False,
    ),
)
_FLOOR_AFTER: tuple[tuple[str, bool], ...] = (
    (
        _PRICE_IS + r"(?:my|the) (?:absolute |rock-?bottom |hard |final )?"
        r"(?:floor|minimum|min|bottom line|bottom|lowest|limit|reserve|walk-?away(?: price)?|"
        r"lowest I (?:can|could|will) go|least I (?:can|could|will) (?:take|accept|do))\b",
        True,
    ),
    (
        r"^\s*(?:is (?:as low as|the lowest) I (?:can|could|will) go|"
        r"(?:minimum|at the very least|and not (?:a|one) (?:cent|penny|dime) less)\b)",
        True,
    ),
    (
        _PRICE_VERB
        + _STEP
        + r"(?:too (?:low|little|cheap)|(?:below|under|less than|beneath) (?:my|the) "
        r"(?:floor|minimum|cost|limit|bottom line|reserve)|"
        r"(?:less|lower) than I (?:can|could|will) (?:take|accept|go|do))\b",
        False,
    ),
)


def _compile_before(cues: Sequence[tuple[str, bool]]) -> tuple[tuple[re.Pattern[str], bool], ...]:
    return tuple((re.compile(f"(?:{c}){_FILL}\\s*$", re.IGNORECASE), w) for c, w in cues)


def _compile_after(cues: Sequence[tuple[str, bool]]) -> tuple[tuple[re.Pattern[str], bool], ...]:
    return tuple((re.compile(c, re.IGNORECASE), w) for c, w in cues)


_CUES = {
    BUYER: (_compile_before(_CEILING_BEFORE), _compile_after(_CEILING_AFTER)),
    SELLER: (_compile_before(_FLOOR_BEFORE), _compile_after(_FLOOR_AFTER)),
}

# A clause ends at a sentence's end, a semicolon, a comma or a dash set off by spaces; a
# price's own "." or "," (no space after) does not end it.
_CLAUSE_END = re.compile(r"[.!?;]+(?=\s|$)|,\s|\s[-\u2013\u2014]+\s|\n")
# Within a clause, what came before a conjunction does not bear on what follows it.
_CONJUNCTION = re.compile(r"\b(?:but|and|so|yet|though|although|because|while|however)\b", re.I)
# A clause that denies, doubts or supposes is no statement of a limit.
_UNSAID = re.compile(
    r"n't\b|\b(?:not|never|no|nor|neither|nobody|nothing|none|hardly|"
    r"if|unless|suppose|supposing|whether|pretend|imagine|lie|lying|joke|joking|kidding)\b",
    re.IGNORECASE,
)
_REACH = 160
_TAG = re.compile(r"\[[^\]\n]{0,40}\]")


def read_limits(text: str, speaker: str) -> list[LimitStatement]:
    """Every statement of its own limit that `speaker` ("buyer": ceilings, "seller": floors)
    makes in `text`, in order; none for another role."""
    if speaker not in _CUES:
        return []
    before_cues, after_cues = _CUES[speaker]
    # Action tags are moves, not statements; blank them out where they stand.
    text = _TAG.sub(lambda m: " " * len(m.group()), text.translate(_APOSTROPHES))
    found: list[LimitStatement] = []
    start = 0
    for end in [m.start() for m in _CLAUSE_END.finditer(text)] + [len(text)]:
        clause, offset = text[start:end], start
        question = text[end : end + 1] == "?"
        start = end + 1
        if question or not clause.strip():
            continue
        for mention in find_prices(clause):
            # Cues and what qualifies them stand near their price: looking no further keeps a
            # long clause full of prices from costing time in the square of its length.
            before = clause[max(0, mention.start - _REACH) : mention.start]
            after = clause[mention.end : mention.end + _REACH]
            within = _read_cue(before, after, before_cues, after_cues)
            if within is not None:
                found.append(
                    LimitStatement(
                        mention.value, within, offset + mention.start, offset + mention.end
                    )
                )
    return found


def _read_cue(
    before: str,
    after: str,
    before_cues: Sequence[tuple[re.Pattern[str], bool]],
    after_cues: Sequence[tuple[re.Pattern[str], bool]],
) -> bool | None:
    """Whether the price between `before` and `after` is stated as within the limit (True),
    beyond it (False), or is no limit at all (None)."""
    for pattern, within in before_cues:
        cue = pattern.search(before)
        if cue is not None and _said(before[: cue.start()]):
            return within
    for pattern, within in after_cues:
        if pattern.match(after) is not None and _said(before):
            return within
    return None


def _said(lead: str) -> bool:
    """Whether what leads up to a cue in its clause leaves it a plain statement."""
    return _UNSAID.search(_CONJUNCTION.split(lead)[-1]) is None


# --- reading a recollection -----------------------------------------------------------------

_GAME_LABEL = re.compile(r"(?:Round \d+, your game|An earlier game):\n")
_ADVICE_LABEL = r"Your coach's advice(?: after round \d+)?:\n"
_RIVAL = {SELLER: BUYER, BUYER: SELLER}


def remembered_limit(history: str, me: str, advice: Sequence[str] = ()) -> RivalLimit | None:
    """What `me` ("seller" or "buyer") learns of its rival's limit from `history`, a rendered
    recollection (see `haggler.memory.context`); None when no remembered game states one.

    `advice` is the advice shown in it (`RoleMemory.advice`): its text is set aside first,
    so a coach's words can never pass for a remembered game.
    """
    if me not in _RIVAL or not history:
        return None
    return _remembered_limit(history, me, tuple(advice))


@lru_cache(maxsize=512)
def _remembered_limit(history: str, me: str, advice: tuple[str, ...]) -> RivalLimit | None:
    # A pure function of the recalled text, so caching it keeps nothing the memory does not:
    # a recollection without the game gives another key and another answer.
    for text in advice:
        history = re.sub(_ADVICE_LABEL + re.escape(text), "", history, count=1)
    rival = _RIVAL[me]
    value: float | None = None
    beyond: float | None = None
    said = ""
    # Remembered games hold no blank line (a message's own blank lines are indented), so each
    # block of the recollection is one item, oldest first.
    for block in history.split("\n\n"):
        label = _GAME_LABEL.match(block)
        if label is None:
            continue
        messages, _ = read_transcript(block[label.end() :])
        for message in messages:
            if message.own or message.speaker != rival:
                continue
            for statement in read_limits(message.text, rival):
                said = message.text
                if statement.within:
                    value = statement.value
                elif beyond is None:
                    beyond = statement.value
                elif rival == BUYER:
                    beyond = min(beyond, statement.value)
                else:
                    beyond = max(beyond, statement.value)
    if value is None and beyond is None:
        return None
    return RivalLimit(rival, value, beyond, said)
