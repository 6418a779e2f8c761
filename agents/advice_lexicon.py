"""The words rule-based negotiators understand in advice: a hand-built lexicon of lever concepts.

Each word (after folding its inflections: -s, -es, -ed, -ing, -er, -est, -ly, -ier, -ily) maps
to a few tags saying what it can mean in coaching language: a stance ("firm", "stubborn"), an
act of conceding ("concede", "cave", "come down"), the manner of an act ("slowly", "tiny"),
a direction of price ("higher", "cheap"), a setting ("walk-away price", "expectations"), a
modifier (negation, hedge, intensifier) or a structural word (a condition, the rival).
Multi-word expressions ("walk-away price", "meet them halfway", "time is running out") are
joined into one token by `PHRASES` before words are looked up.

It is a lexicon, not a model: words it does not list mean nothing to it, and its reading of
a sentence is only as good as these lists and the rules in `advice_reader`.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["PHRASES", "normalise", "shown", "tags_of", "word_stem"]

# --- tags ------------------------------------------------------------------------------------
# Stances: the word itself is advice about a lever.
FIRM = "firm"  # firmness +: firm, stubborn, patient, hold out
SOFT = "soft"  # firmness -: soft, pushover, yielding (as a stance)
HASTE = "haste"  # firmness -: rush, hurry, eager
FLEX = "flex"  # firmness - and ambition -: flexible, compromise, meet halfway
INFLEX = "inflex"  # firmness + and ambition +: inflexible, uncompromising
GREEDY = "greedy"  # ambition +: greedy, ambitious, demanding
MODEST = "modest"  # ambition -: modest, humble, realistic
UNDERSELL = "undersell"  # ambition - as an act: undercut yourself, sell yourself short
PUSH = "push"  # firmness + when pushed harder ("push harder"); "push for" is a gain verb
# Acts of conceding (firmness -, unless their manner is slow or small).
CONCEDE = "concede"  # concede, give ground, cave, yield, budge, give in, back down
DOWN_MOVE = "down_move"  # a price moved down: a seller's concession (come down, lower, cut)
UP_MOVE = "up_move"  # a price moved up: a buyer's concession (come up, raise, increase)
MOVE_NOUN = "move_noun"  # steps, moves, increments, jumps: a concession only with a manner
GIVE = "give"  # a bare "give": a concession when an amount follows ("give a little more")
# The manner of a concession.
SLOW = "slow"  # slowly, gradually, small, tiny, sparingly, later, "only a little"
FAST = "fast"  # quickly, big, large, generously, early, easily, much
# Price and gain.
PRICE_UP = "price_up"  # high, higher, raise, expensive, premium
PRICE_DOWN = "price_down"  # low, lower, cheap, discount
MORE = "more"  # more, extra
LESS = "less"  # less, little
BETTER = "better"  # better, best
WORSE = "worse"  # worse, whatever you can get
OWN_PRICE = "own_price"  # price, offer, bid, ask, counter-offer, number
SETTING_PRICE = "setting_price"  # walk-away, reserve, floor, ceiling, limit, target: price-valued
SETTING_GAIN = "setting_gain"  # expectations, sights, standards: higher means more ambitious
GAIN_VERB = "gain_verb"  # ask for, insist on, demand, expect, settle for, accept, take, get
PAY_VERB = "pay_verb"  # pay, spend (what a buyer gives)
SELL_VERB = "sell_verb"  # sell (what a seller gets)
AIM = "aim"  # aim: price-valued ("aim higher"); "aim high" is also an idiom for ambition
# The opening.
OPEN = "open"  # open, start, begin, anchor, first counter-offer, initial
BOLD = "bold"  # bold, aggressive, stingy (an opening far from the rival)
TIMID = "timid"  # timid, weak, generous (an opening close to the rival)
NEAR = "near"  # close to, near, nearer (the rival)
# The deal and the deadline.
DEAL = "deal"  # deal, sale, agreement
KEEP_DEAL = "keep_deal"  # close, seal, secure, clinch (a deal)
LOSE_DEAL = "lose_deal"  # lose, kill, blow, slip (a deal)
WALK_OFF = "walk_off"  # walk away, leave the table: ending without a deal
DEADLINE = "deadline"  # near the end, time running out, the rival about to leave
# Modifiers.
NEG = "neg"  # not, never, no, avoid, stop, refuse, hesitate, afraid (to)
HEDGE = "hedge"  # maybe, perhaps, might, consider, "it wouldn't hurt to"
INTENS = "intens"  # much, far, a lot, significantly, really, very
DIMIN = "dimin"  # a little, a bit, slightly, a touch
EXCESS = "excess"  # too, overly, "more than you need to": the fix goes the other way
ANY = "any"  # any, further, anymore: "no need to push any harder" means keep
KEEP = "keep"  # keep ... steady, the same, where it is: no change
CHANGE = "change"  # raise, lower, increase, reduce: a change of a setting or a price
# Structure.
SUBORD = "subord"  # when, if, once, whenever, unless, until, before, after, as
UNTIL = "until"
UNLESS = "unless"
TEMPORAL = "temporal"  # before, after: sequence, not a condition
RIVAL = "rival"  # the other side: buyer, seller, they, rival, opponent
SELF = "self"  # you, your, yourself
CAUSE = "cause"  # make, let, get, force (the rival to move)
AUX = "aux"  # is, will, seems, ...: after the rival, the rival is the subject
PAST = "past"  # was, were, had, and irregular past forms: a diagnosis of the last game
ANSWER = "answer"  # answer, respond, reply, counter (with a small one)

_LEXICON: dict[str, frozenset[str]] = {}


def _add(tags: str | tuple[str, ...], *words: str) -> None:
    tags = (tags,) if isinstance(tags, str) else tags
    for word in words:
        _LEXICON[word] = _LEXICON.get(word, frozenset()) | frozenset(tags)


_add(FIRM, "firm", "stubborn", "tough", "hard", "patient", "patience", "resolute", "steadfast",
     "rigid", "unyielding", "immovable", "stern", "holdfirm", "digin", "takeyourtime",
     "innohurry", "waitout", "holdback", "heldfirm", "hardball", "stingy", "assertive", "persistent",
     "determined", "relentless", "tenacious", "wait", "pushback", "unbending")  # fmt: skip
_add(SOFT, "soft", "pushover", "weak", "yielding", "lenient", "pliable", "soften", "loosen")
_add(HASTE, "rush", "hurry", "hasty", "haste", "eager", "desperation", "impatient", "inahurry", "desperate")
_add(FLEX, "flexible", "flexibility", "compromise", "meethalfway", "splitdiff", "middleground",
     "giveandtake", "reasonable", "accommodate", "accommodating", "agreeable", "easygoing")  # fmt: skip
_add(INFLEX, "inflexible", "uncompromising", "unreasonable")
_add(GREEDY, "greedy", "greed", "ambitious", "ambition", "demanding", "aggressive", "bold",
     "bolder")  # fmt: skip
_add(MODEST, "modest", "humble", "realistic", "content", "unambitious")
_add(UNDERSELL, "undercut", "undersell", "sellshort", "leavemoney", "leftmoney", "shortchange",
     "gobelow", "goabove", "payasking")
_add(PUSH, "push")
_add(CONCEDE, "concede", "concession", "giveground", "giveway", "givein", "giveaway", "cave",
     "yield", "budge", "backdown", "fold", "buckle", "relent", "bend", "capitulate", "moving",
     "discount", "cut", "slash", "markdown", "reduction", "cede", "flinch", "blink", "waver")  # fmt: skip
_add(DOWN_MOVE, "comedown", "lower", "drop", "cut", "reduce", "trim", "discount", "slash",
     "shave", "markdown", "decrease", "down", "reduction")  # fmt: skip
_add(UP_MOVE, "comeup", "raise", "increase", "bump", "lift", "up", "jumpup")
_add(MOVE_NOUN, "step", "move", "increment", "jump", "amount", "moving", "stride", "leap", "offer",
     "bid", "counteroffer")
_add(GIVE, "give")
_add(SLOW, "slow", "gradual", "small", "tiny", "little", "sparing", "grudging", "reluctant",
     "careful", "cautious", "late", "rare", "minimal", "fewer", "incremental", "slowdown",
     "onlyalittle", "stingy", "measured", "inch", "baby", "nothing")  # fmt: skip
_add(FAST, "fast", "quick", "big", "large", "generous", "ready", "free", "early", "soon",
     "easy", "much", "alot", "huge", "hasty", "sudden", "rapid", "swift", "sharp", "steep",
     "premature", "lot", "atonce")  # fmt: skip
_add(PRICE_UP, "high", "raise", "increase", "up", "expensive", "premium", "top", "dear",
     "bump", "lift")  # fmt: skip
_add(PRICE_DOWN, "low", "lower", "cheap", "down", "reduce", "decrease", "drop", "cut",
     "discount", "slash", "bargain")  # fmt: skip
_add(MORE, "more", "extra", "most")
_add(LESS, "less", "little", "least")
_add(BETTER, "better", "best", "good", "decent", "strong")
_add(WORSE, "worse", "worst", "whatyoucanget", "whatever", "anything")
_add(OWN_PRICE, "price", "offer", "bid", "ask", "asking", "counteroffer", "counter", "number",
     "quote", "figure", "prices")  # fmt: skip
_add(SETTING_PRICE, "walkaway", "reserve", "floor", "ceiling", "limit", "bottomline", "target",
     "goal", "minimum", "maximum", "budget", "cap")  # fmt: skip
_add(SETTING_GAIN, "expectation", "sight", "standard", "demand", "aspiration", "bar")
_add(GAIN_VERB, "insist", "demand", "expect", "settle", "accept", "take", "get", "ask",
     "want", "hold", "go", "earn", "fight", "press", "push", "hope", "agree", "aim", "name",
     "quote", "propose", "charge", "holdoutfor")  # fmt: skip
_add(PAY_VERB, "pay", "spend", "overpay", "fork", "buy", "purchase")
# "Offer less", "bid lower": a buyer's pay verbs, when they open an imperative clause.
_add(PAY_VERB, "offer", "bid")
_add(SELL_VERB, "sell")
_add(AIM, "aim")
_add(OPEN, "open", "opening", "opener", "start", "begin", "anchor", "initial", "firstoffer",
     "atfirst")  # fmt: skip
_add(BOLD, "bold", "aggressive", "ambitious", "stingy", "strong", "extreme", "lowball")
_add(TIMID, "timid", "weak", "generous", "meek", "soft", "cautious", "shy")
_add(NEAR, "close", "near", "closer", "nearer")
_add(DEAL, "deal", "sale", "agreement", "bargain", "trade")
_add(KEEP_DEAL, "close", "seal", "secure", "clinch", "save", "land", "finish", "closedeal")
_add(LOSE_DEAL, "lose", "kill", "blow", "slip", "ruin", "sink", "break", "scuttle", "losedeal", "lostdeal",
     "miss")  # fmt: skip
_add(WALK_OFF, "walkoff", "walkedoff", "quit", "leave")
_add(DEADLINE, "§end")
_add(NEG, "not", "never", "no", "avoid", "stop", "quit", "refrain", "cease", "neither", "nor",
     "refuse", "hesitate", "afraid", "nothing", "without", "resist", "ratherthan", "insteadof")  # fmt: skip
_add(HEDGE, "maybe", "perhaps", "possibly", "probably", "might", "could", "may", "consider",
     "arguably", "suggest", "try", "wise", "worth", "§hedge", "somewhat")  # fmt: skip
_add(INTENS, "much", "far", "alot", "significantly", "considerably", "substantially", "really",
     "very", "way", "greatly", "hugely", "drastically", "seriously", "lot", "even", "lots",
     "dramatically", "markedly")  # fmt: skip
_add(DIMIN, "alittle", "abit", "slightly", "atouch", "marginally", "atad", "gently", "onlyalittle",
     "somewhat", "mildly")  # fmt: skip
_add(EXCESS, "too", "overly", "overpay", "beyondneed", "overeager", "overconcede", "excessive")
_add(ANY, "any", "further", "anymore", "anyfurther")
_add(KEEP, "steady", "same", "unchanged", "whereitis", "asitis", "asbefore", "consistent",
     "current", "pace")  # fmt: skip
_add(CHANGE, "raise", "lower", "increase", "reduce", "decrease", "drop", "cut", "bump", "lift",
     "set", "move", "adjust")  # fmt: skip
_add(SUBORD, "when", "whenever", "if", "once", "as", "until", "unless", "before", "after",
     "evenif", "evenwhen", "while")  # fmt: skip
_add(UNTIL, "until")
_add(UNLESS, "unless")
_add(TEMPORAL, "before", "after")
_add(RIVAL, "buyer", "seller", "they", "them", "their", "rival", "opponent", "counterpart",
     "otherside", "he", "she", "him", "her")  # fmt: skip
_add(SELF, "you", "your", "yourself", "yours")
_add(CAUSE, "make", "let", "get", "force", "have", "wait", "pressure", "pressur", "push", "press",
     "nudge", "induce", "persuade", "drive", "lead")  # fmt: skip

_AUX_WORDS = frozenset(("is", "are", "will", "would", "does", "did", "has", "had", "can", "seems", "seem",
     "kept", "keeps", "wo", "was", "were", "won", "might", "may", "could", "should", "must",
     "only", "always", "never", "just", "tends", "usually", "refuses", "threatens", "stalls",
     "pushes", "drops", "moves", "makes", "made", "matched", "mirrored", "mirrors", "gives",
     "gave", "holds", "held", "conceded", "concedes", "accepted", "accepts", "offered",
     "offers", "walked", "walks", "came", "comes", "wants", "tried", "tries", "seemed",
     "caved", "budged", "responds", "responded"))  # fmt: skip
_PAST_WORDS = frozenset(("was", "were", "had", "gave", "came", "went", "paid", "held", "took", "made", "sold",
     "let", "got", "left", "did", "began", "stood", "ran", "spent", "cut", "set", "fell", "walkedoff", "lostdeal", "leftmoney", "heldfirm",
     "undercut", "undersold", "overpaid", "shortchanged"))  # fmt: skip
_add(ANSWER, "answer", "respond", "reply", "counter", "match", "return")

# Words whose inflections should not be folded onto another entry ("lower" is its own word,
# not "low" + "er"; "later" is "late" + "er").
_IRREGULAR = {
    "gave": "give", "given": "give", "giving": "give", "came": "come", "went": "go",
    "gone": "go", "paid": "pay", "held": "hold", "took": "take", "taken": "take", "made": "make",
    "sold": "sell", "got": "get", "gotten": "get", "began": "begin", "begun": "begin",
    "stood": "stand", "spent": "spend", "fell": "fall", "bigger": "big", "biggest": "big",
    "larger": "large", "largest": "large", "smaller": "small", "smallest": "small",
    "higher": "high", "highest": "high", "sooner": "soon", "earlier": "early", "later": "late",
    "easier": "easy", "easily": "easy", "greedier": "greedy", "stingier": "stingy",
    "hastily": "hasty", "cheaply": "cheap", "cheaper": "cheap", "cheapest": "cheap",
    "tougher": "tough", "firmer": "firm", "harder": "hard", "bolder": "bold", "boldly": "bold",
    "timidly": "timid", "quicker": "quick", "quickly": "quick", "faster": "fast",
    "slower": "slow", "slowly": "slow", "gradually": "gradual", "generously": "generous",
    "readily": "ready", "freely": "free", "patiently": "patient", "firmly": "firm",
    "stubbornly": "stubborn", "sparingly": "sparing", "grudgingly": "grudging",
    "reluctantly": "reluctant", "carefully": "careful", "cautiously": "cautious",
    "rarely": "rare", "worse": "worse", "better": "better", "best": "best", "less": "less",
    "lower": "lower", "lowest": "low", "closer": "closer", "nearer": "nearer",
    "expectations": "expectation", "sights": "sight", "standards": "standard",
    "demands": "demand", "increments": "increment", "concessions": "concession",
    "conceding": "concede", "conceded": "concede", "concedes": "concede", "caving": "cave",
    "caved": "cave", "caves": "cave", "moving": "moving", "moves": "move", "moved": "move",
    "opening": "opening", "opened": "open", "openers": "opener", "rushed": "rush",
    "rushing": "rush", "hurried": "hurry", "hurrying": "hurry", "overpaying": "overpay",
    "overpaid": "overpay", "raises": "raise", "raised": "raise", "raising": "raise",
    "lowered": "lower", "lowering": "lower", "lowers": "lower", "cuts": "cut",
    "cutting": "cut", "discounts": "discount", "discounted": "discount", "jumps": "jump",
    "steps": "step", "prices": "price", "offers": "offer", "bids": "bid", "increases": "increase",
    "increased": "increase", "asking": "ask", "asked": "ask", "insisting": "insist",
    "settling": "settle", "settled": "settle", "accepting": "accept", "accepted": "accept",
    "paying": "pay", "pays": "pay", "spending": "spend", "selling": "sell", "sells": "sell",
    "starting": "start", "started": "start", "beginning": "begin", "anchoring": "anchor",
    "pushing": "push", "pushed": "push", "dropping": "drop", "dropped": "drop",
    "trimmed": "trim", "trimming": "trim", "budging": "budge", "budged": "budge",
    "yielding": "yielding", "yielded": "yield", "losing": "lose", "lost": "lose",
    "killing": "kill", "slipping": "slip", "sealed": "seal", "closing": "close",
    "closed": "close", "ambitions": "ambition", "aiming": "aim", "aimed": "aim",
    "answering": "answer", "responding": "respond", "undersold": "undersell",
    "shortchanged": "shortchange",
}  # fmt: skip


def word_stem(word: str) -> str:
    """`word` with its inflection folded away, when the lexicon knows the folded form."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in _LEXICON:
        return word
    for suffix, replacements in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            base = word[: -len(suffix)]
            for tail in replacements:
                candidate = base + tail
                if candidate in _LEXICON:
                    return candidate
                # A doubled final consonant: "bigger", "stopping", "slipped".
                doubled = tail == "" and len(base) > 2 and base[-1] == base[-2]
                if doubled and base[:-1] in _LEXICON:
                    return base[:-1]
    return word


_SUFFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ily", ("y",)),
    ("ier", ("y",)),
    ("iest", ("y",)),
    ("ies", ("y",)),
    ("ied", ("y",)),
    ("ness", ("",)),
    ("ity", ("", "e")),
    ("ing", ("", "e")),
    ("est", ("", "e")),
    ("ed", ("", "e")),
    ("er", ("", "e")),
    ("ly", ("", "le", "e")),
    ("es", ("", "e")),
    ("s", ("",)),
)


@lru_cache(maxsize=4096)
def tags_of(word: str) -> frozenset[str]:
    """What `word` can mean in advice (empty when the lexicon does not know it)."""
    tags = _LEXICON.get(word_stem(word), frozenset())
    # Inflected forms that mark structure (the rival as subject, a past-tense diagnosis).
    if word in _AUX_WORDS:
        tags |= {AUX}
    if word in _PAST_WORDS:
        tags |= {PAST}
    return tags


# --- phrases, joined into one token before words are looked up ------------------------------

_RIVAL_NP = r"(?:the (?:buyer|seller|other side|other party|rival|opponent)|them|him|her)"
_TIME_NOUN = r"(?:turns?|messages?|moments?|minutes?|exchanges?|stages?|stretch|seconds?|rounds? of (?:the )?(?:game|talk|haggle))"

PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), token)
    for pattern, token in (
        # The deadline: the end of this game (not "last time", "last round" or "final price").
        (r"\b(?:is |are |was |seems |looks )?(?:about|ready|going|set|poised|likely|close) to (?:leave|walk away|walk off|walk out|walk|quit|give up|end the talk)\b", " §end "),
        (r"\bthreaten(?:s|ed|ing)? to (?:leave|walk away|walk off|walk|go|quit)\b", " §end "),
        (r"\b(?:near(?:ing)?|at|toward|towards|by|close to|around|to|until|till) the (?:very |bitter |)end\b(?: of (?:the |this )?(?:talk|game|negotiation|haggle|haggling|conversation|bargaining))?", " §end "),
        (r"\bthe end of (?:the |this )?(?:talk|game|negotiation|haggle|haggling|conversation|bargaining)\b", " §end "),
        (r"\b(?:the |a |your )?deadlines?(?: (?:nears|approaches|looms|is near|is close|gets close))?\b", " §end "),
        (r"\btime (?:is |starts |begins )?(?:runs?|running|ran|getting|gets) (?:out|short|low|thin)\b", " §end "),
        (r"\b(?:time is|you are|you're) (?:almost|nearly|about) (?:up|out of time)\b", " §end "),
        (r"\bout of time\b", " §end "),
        (r"\b(?:the |your |its )?(?:final|last|closing|dying|remaining) (?:few |couple of |two |one |)" + _TIME_NOUN + r"\b", " §end "),
        (r"\b(?:down to|on) (?:your|the|its) (?:last|final) (?:turn|message|offer|move|chance)\b", " §end "),
        (r"\bwith (?:only |just )?(?:a |one |two |a few |a couple of )?(?:turns?|messages?|exchanges?)(?: or two)? left\b", " §end "),
        (r"\b(?:turns?|messages?|exchanges?|time) (?:is |are )?(?:left|remaining)\b", " §end "),
        (r"\bat the (?:very )?last (?:minute|moment|second)\b", " §end "),
        (r"\blast[- ]minute\b", " §end "),
        (r"\blate in the (?:game|talk|haggle|negotiation|conversation)\b", " §end "),
        # Hedges that contain a negation must be read before the negation is.
        (r"\bit would ?not hurt to\b|\bwould ?not hurt\b|\bnot a bad idea\b", " §hedge "),
        (r"\bif you (?:like|want|wish|can|prefer)\b", " §hedge "),
        (r"\byou (?:may|might) want to\b", " §hedge "),
        # Multi-word lexical items.
        (r"\bwalk[- ]?away (?:price|point|number|line|limit)s?\b", " walkaway "),
        (r"\bwalk-away\b|\bwalkaway\b", " walkaway "),
        (r"\bbottom[- ]line\b", " bottomline "),
        (r"\bcounter[- ]?offers?\b|\bcounter[- ]?bids?\b", " counteroffer "),
        (r"\bsplit(?:ting)? the difference\b", " splitdiff "),
        (r"\bmeet(?:ing)? (?:" + _RIVAL_NP + r" )?(?:half[- ]?way|in the middle|part[- ]?way)\b", " meethalfway "),
        (r"\bmiddle ground\b", " middleground "),
        (r"\bgive and take\b", " giveandtake "),
        (r"\bonly (?:a little|a bit|slightly|a touch)\b", " onlyalittle "),
        (r"\ba little bit\b|\ba little\b", " alittle "),
        (r"\ba (?:bit|tad|touch)\b", " abit "),
        (r"\ba (?:lot|great deal)\b|\blots\b", " alot "),
        (r"\btake your time\b", " takeyourtime "),
        (r"\bin no (?:hurry|rush)\b", " innohurry "),
        (r"\bin (?:such )?a (?:hurry|rush)\b", " inahurry "),
        (r"\bdig (?:in|your heels in|in your heels)\b", " digin "),
        (r"\b(?:held|stood|stayed|hung) (?:firm|fast|tough|steady|strong|your ground|its ground|their ground|the line|out|put|on|back)\b", " heldfirm "),
        (r"\b(?:hold|holding|stand|standing|stay|staying|hang|hanging) (?:firm|fast|tough|steady|strong|your ground|the line|out|put|on|back)\b", " holdfirm "),
        (r"\bholdfirm on\b", " holdback "),
        (r"\bholdfirm for\b", " holdfirm holdoutfor "),
        (r"\b(?:hold|holding|keep|keeping|stick|sticking|stand|standing) (?:to |by |onto |on to )?(?:your|the) (?:price|offer|ask|asking price|guns|position|number|bid)s?\b", " holdfirm "),
        (r"\b(?:stay|staying|remain|remaining) (?:high|higher|up|low|lower)\b", " holdfirm "),
        (r"\btake (?:it )?(?:slow|slowly|easy)\b|\btake (?:more|longer|a while|some) time\b", " takeyourtime "),
        (r"\b(?:push|pushing|pushed) back\b", " pushback "),
        (r"\b(?:go|goes|going|went|come|coming|came|move|moving) (?:lower|cheaper)\b", " comedown "),
        (r"\b(?:go|goes|going|went|come|coming|came|move|moving) higher\b", " comeup "),
        (r"\b(?:go|goes|going|went|drop|drops|dropping|dropped|sell|selling|sold|come|coming|came|fall|settle|settling|settled|dip|dipping) (?:below|under|beneath)\b", " gobelow "),
        (r"\b(?:go|goes|going|went|pay|paying|paid|rise|climb|come|coming|came) (?:above|over|beyond)\b", " goabove "),
        (r"\bat once\b|\ball at once\b", " atonce "),
        (r"\b(?:give|gives|giving|gave|given) up\b", " giveaway "),
        (r"\b(?:take|taking|took|accept|accepting|accepted|grab|grabbing|make|making|get|getting|reach|reaching|strike|striking|do) (?:the|a) (?:deal|sale)\b", " closedeal "),
        (r"\bpart[- ]?way\b", " halfway "),
        (r"\bwait (?:them|it|him|her) out\b|\bwait (?:for )?(?:" + _RIVAL_NP + r" )?to (?:move|come|concede)\b", " waitout "),
        (r"\bslow(?:ing)? down\b", " slowdown "),
        (r"\b(?:give|gives|giving|gave|given) (?:ground|way)\b", " giveground "),
        (r"\b(?:give|gives|giving|gave|given|cave|caves|caving|caved) in\b", " givein "),
        (r"\b(?:give|gives|giving|gave|given) nothing away\b", " not giveaway "),
        (r"\b(?:give|gives|giving|gave|given) ((?:so |too )?much |a lot |alot |anything |something )?away\b", " giveaway \\1"),
        (r"\b(?:back|backs|backing|backed) (?:down|off)\b", " backdown "),
        (r"\b(?:come|comes|coming|came|go|goes|going|went|step|steps|stepping|move|moves|moving|moved|drop|drops|dropping|dropped) down\b", " comedown "),
        (r"\b(?:come|comes|coming|came|go|goes|going|went|step|steps|stepping|move|moves|moving|moved) up\b", " comeup "),
        (r"\b(?:jump|jumps|jumping|jumped) up\b", " jumpup "),
        (r"\b(?:walk|walks|walking|walked) (?:away|off|out)\b|\bleave the table\b", " walkoff "),
        (r"\b(?:close|closes|closing|closed|seal|sealing|secure|securing|clinch|clinching|land|get) the (?:deal|sale)\b", " closedeal "),
        (r"\b(?:lost|killed|blew|ruined|sank) the (?:deal|sale)\b", " lostdeal "),
        (r"\b(?:walked) (?:away|off|out)\b", " walkedoff "),
        (r"\b(?:lose|losing|lost|kill|killing|killed|blow|blowing|blew|ruin|ruining|sink|sinking) the (?:deal|sale)\b", " losedeal "),
        (r"\blet(?:ting)? (?:the|a) (?:deal|sale) (?:slip|fall through|die|collapse|go)(?: away)?\b", " losedeal "),
        (r"\b(?:a|the) (?:small |little |tiny )?gap kill the deal\b", " losedeal "),
        (r"\bsell(?:ing)? yourself short\b", " sellshort "),
        (r"\bleav(?:e|ing) money on the table\b", " leavemoney "),
        (r"\b(?:ended|finished|left|walked away|went home|parted) (?:without|with no) (?:a |any )?(?:deal|sale|agreement)\b", " lostdeal "),
        (r"\b(?:end|ending|ended|finish|finishing|finished|leave|leaving|walk away|walking away|go home|part)? ?(?:without|with no) (?:a |any )?(?:deal|sale|agreement)\b", " losedeal "),
        (r"\b(?:make sure|be sure|ensure) (?:that )?(?:you |to )?(?:close|finish|seal|clinch|land)(?: it| the talk| out)?\b", " closedeal "),
        (r"\b(?:keep|keeping|hold|holding) (?:your )?nerve\b", " holdfirm "),
        (r"\b(?:accept|accepting|accepted|take|taking|took|jump at|jumping at|jumped at|grab|grabbing|grabbed|snap up) (?:the |their |his |her |its )?(?:buyer |seller |other side |rival )?(?:first|opening|initial) (?:offer|bid|price|number|counteroffer|counter[- ]?offer|counter)\b", " givein "),
        (r"\bleft money on the table\b", " leftmoney "),
        (r"\b(?:pay|paying|paid|accept|accepting|accepted|take|taking|took) (?:the )?(?:seller |full |list |sticker )?(?:asking|full|list|sticker) price\b", " payasking "),
        (r"\b(?:ease|eased|easing) (?:up|off)\b|\b(?:loosen|loosened|loosening) up\b", " soften "),
        (r"\b(?:jump|jumps|jumping|jumped|leap|leaping|go straight|skip|skipping) (?:straight )?to (?:the |their |his |her )?(?:buyer |seller |other side |rival )?(?:price|offer|number|ask|bid)\b", " capitulate "),
        (r"\b(?:keep|keeping|put|putting|apply|applying) (?:up )?(?:the )?pressure(?: on)?\b", " pushback "),
        (r"\btake what(?:ever)? you can get\b|\bwhatever you can get\b", " take whatyoucanget "),
        (r"\bmore than (?:you |is |was )?(?:have to|has to|need(?:ed)?(?: to)?|necessary|must|should)\b", " more beyondneed "),
        (r"\brather than\b", " ratherthan "),
        (r"\binstead of\b", " insteadof "),
        (r"\bat (?:the )?first\b|\bat the (?:start|outset|beginning)\b", " atfirst "),
        (r"\bthe other (?:side|party)\b", " otherside "),
        (r"\bwhere (?:it|they) (?:is|are|was|stands?)\b", " whereitis "),
        (r"\bas (?:it|they) (?:is|are)\b", " asitis "),
        (r"\bas before\b", " asbefore "),
        (r"\beven (?:if|though)\b", " evenif "),
        (r"\beven when\b", " evenwhen "),
        (r"\bany (?:more|further)\b", " anyfurther "),
    )
)

_CONTRACTIONS = (
    (re.compile(r"\b(?:won't|wont)\b"), "will not"),
    (re.compile(r"\bcan't\b|\bcannot\b"), "can not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"\b(?:there|it|that|what|he|she)'s\b"), r"\g<0>"),  # handled below
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'ve\b"), " have"),
)


def normalise(text: str) -> str:
    """Lower case, plain apostrophes, contractions spelt out, possessives dropped, and the
    multi-word expressions of `PHRASES` joined into single tokens."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = re.sub(r"[\u2010-\u2015]", "-", text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = re.sub(r"\b(there|it|that|what|he|she|here)'s\b", r"\1 is", text)
    text = re.sub(r"'s\b|s'\B", "", text)  # the buyer's price -> the buyer price
    text = re.sub(r"[ \t]+", " ", text)
    for pattern, token in PHRASES:
        text = re.sub(r"[ \t]+", " ", pattern.sub(token, text))
    return text


# How the joined tokens read in an explanation.
_SHOWN = {
    "§end": "[the end]", "§hedge": "[hedge]", "abit": "a bit", "alittle": "a little",
    "alot": "a lot", "anyfurther": "any further", "asbefore": "as before", "asitis": "as it is",
    "atfirst": "at first", "atonce": "at once", "backdown": "back down",
    "bottomline": "bottom line", "capitulate": "jump to their price", "closedeal": "close the deal",
    "comedown": "come down", "comeup": "come up", "counteroffer": "counter-offer",
    "digin": "dig in", "evenif": "even if", "evenwhen": "even when",
    "giveandtake": "give and take", "giveaway": "give away", "giveground": "give ground",
    "givein": "give in", "goabove": "go above", "gobelow": "go below", "heldfirm": "held firm",
    "holdback": "hold back", "holdfirm": "hold firm", "holdoutfor": "hold out for",
    "inahurry": "in a hurry", "innohurry": "in no hurry", "insteadof": "instead of",
    "jumpup": "jump up", "leavemoney": "leave money on the table",
    "leftmoney": "left money on the table", "losedeal": "lose the deal",
    "lostdeal": "lost the deal", "meethalfway": "meet halfway", "middleground": "middle ground",
    "onlyalittle": "only a little", "otherside": "the other side",
    "payasking": "pay the asking price", "pushback": "push back", "ratherthan": "rather than",
    "sellshort": "sell yourself short", "slowdown": "slow down", "splitdiff": "split the difference",
    "takeyourtime": "take your time", "waitout": "wait them out", "walkaway": "walk-away price",
    "walkedoff": "walked away", "walkoff": "walk away", "whereitis": "where it is",
    "beyondneed": "than needed",
}  # fmt: skip


def shown(words: str) -> str:
    """Normalised words as an explanation shows them."""
    return re.sub(r"[a-z§]+", lambda m: _SHOWN.get(m.group(0), m.group(0)), words)
