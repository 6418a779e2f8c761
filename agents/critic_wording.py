"""What the rule critic can say, in two wordings with the same meaning.

Each piece of advice has a key, a sentence per wording, and the effect it is meant to have on a
rule-based negotiator's levers (what `read_advice` must take from it, tested for every wording
and role). "plain" is the critic's own voice; "reworded" says the same in other words, for the
paraphrased-critic arm of an experiment: if rule-based players learn from meaning rather than
from a shared code, both wordings teach the same.

Placeholders: {rival}; {aim} ("aim higher" for a seller, "aim lower" for a buyer); {better}
and {worse} (the walk-away direction good and bad for the player); {too_far} (a walk-away that
was too ambitious); {open_better}; {ease} (moving the walk-away towards the rival).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["ADVICE", "WORDINGS", "Advice", "say"]

WORDINGS = ("plain", "reworded")


@dataclass(frozen=True, slots=True)
class Advice:
    plain: str
    reworded: str
    # Lever -> the signed strength a rule-based negotiator should read (absent: unchanged).
    effects: MappingProxyType[str, float]


def _advice(plain: str, reworded: str, **effects: float) -> Advice:
    return Advice(plain, reworded, MappingProxyType(effects))


ADVICE: MappingProxyType[str, Advice] = MappingProxyType(
    {
        "tags": _advice(
            "End every message with one clear action tag so your moves count.",
            "Finish each message with a single clear action tag so that every move is counted.",
        ),
        "lost": _advice(
            "You lost the deal; be more flexible, and concede a little more when time runs "
            "short.",
            "That game ended with no deal; be readier to compromise, and give a bit more "
            "ground once time is nearly up.",
            firmness=-1.0,
            ambition=-1.0,
            deadline=1.0,
        ),
        "lost_again": _advice(
            "You lost the deal again; be much more flexible, and concede a little more when "
            "time runs short.",
            "Another game ended with no deal; be far readier to compromise, and give a bit "
            "more ground once time is nearly up.",
            firmness=-1.5,
            ambition=-1.5,
            deadline=1.0,
        ),
        "mirror_lost": _advice(
            "The {rival} only moved when you did; make bigger concessions so it moves too.",
            "The {rival} gave ground only after you did; offer larger concessions so it "
            "answers in kind.",
            firmness=-1.0,
        ),
        "walked": _advice(
            "Your walk-away price was {too_far} for this {rival}; {ease} it a little.",
            "Set a {worse} walk-away price; this {rival} would not meet yours.",
            ambition=-1.0,
        ),
        "mirror_keep": _advice(
            "The {rival} matched each of your concessions step for step; keep a steady pace.",
            "The {rival} answered every move of yours with the same move; keep your current "
            "pace.",
        ),
        "conceded_more": _advice(
            "You conceded more than the {rival} did; hold firm and make the {rival} move first.",
            "Your concessions were larger than the {rival}'s; stand your ground and let the "
            "{rival} come to you.",
            firmness=1.0,
        ),
        "time_much": _advice(
            "You settled with plenty of time to spare; concede much more slowly.",
            "Plenty of turns were still unused; give ground far more gradually.",
            firmness=1.5,
        ),
        "time": _advice(
            "You settled with time to spare; concede more slowly.",
            "Some turns were still unused; give ground more gradually.",
            firmness=1.0,
        ),
        "late_mover": _advice(
            "The {rival} gave ground only near the end; be patient and let it come to you.",
            "The {rival} only moved in its final turns; show more patience.",
            firmness=1.0,
        ),
        "first_move": _advice(
            "Your first counter-offer gave away too much; {open_better} next time.",
            "Your opening concession was too big; make the first one smaller.",
            opening=1.0,
        ),
        "aim_accepted": _advice(
            "You accepted with time to spare; {aim} and set a {better} walk-away price.",
            "There was still time when you accepted; insist on a better price and keep a "
            "{better} walk-away price.",
            ambition=1.0,
        ),
        "aim_taken": _advice(
            "The {rival} took your price with time to spare; {aim} and set a {better} "
            "walk-away price.",
            "The {rival} agreed to your price early; insist on a better price and keep a "
            "{better} walk-away price.",
            ambition=1.0,
        ),
        "aim_yielding": _advice(
            "The {rival} gave ground quickly; {aim} and set a {better} walk-away price.",
            "The {rival} conceded fast; insist on a better price and keep a {better} walk-away "
            "price.",
            ambition=1.0,
        ),
        "dropped": _advice(
            "This deal came in well short of your last one; keep your approach rather than "
            "push further.",
            "The price fell well short of your last deal; stay with your current approach.",
        ),
        "keep_after_loss": _advice(
            "You kept this deal after losing one before; keep your pace and your walk-away "
            "price where they are.",
            "A deal again after a lost one; hold your present pace and walk-away price steady.",
        ),
        "good": _advice(
            "A solid result; keep your current approach.",
            "Well played; no change needed.",
        ),
    }
)

_ROLE_WORDS = {
    "seller": {
        "rival": "buyer",
        "aim": "aim higher",
        "better": "higher",
        "worse": "lower",
        "too_far": "too high",
        "open_better": "open higher",
        "ease": "lower",
    },
    "buyer": {
        "rival": "seller",
        "aim": "aim lower",
        "better": "lower",
        "worse": "higher",
        "too_far": "too low",
        "open_better": "open lower",
        "ease": "raise",
    },
}


def say(key: str, role: str, wording: str = "plain") -> str:
    """Advice `key` for `role`, in `wording`."""
    advice = ADVICE[key]
    text = advice.plain if wording == "plain" else advice.reworded
    return text.format(**_ROLE_WORDS[role])
