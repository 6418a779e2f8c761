"""The adversary's black-box strategies, one module per family; importing this package
registers them in `STRATEGIES`. They are also declared in pyproject.toml's
`haggler.strategies` entry-point group, so an installed haggler finds each by name without
importing this package first (after a change to the group, reinstall: `pip install -e .`).

    direct        one plain question                                  single turn
    paraphrase    reworded; JSON, blank, words, letters, backwards    single turn, 7 questions
    multi-hop     where was it said, then everything said there       single turn, 2+ questions
    role-play     a story, a maintenance console, the owner's shoes   single turn, 3 questions
    emphasis      the key term stressed and repeated                  single turn, 2 questions
    relearn-k     k true hints (0, 1, 2), then complete the rest      single turn, 1 question
    escalation    harmless to direct, backtracking on refusals        multi-turn
    voting        N samples in N phrasings, the majority answer       single turn, N questions
    in-game       plays the counterpart and reads the remembered      multi-turn, games
                  limit off the target's offers
    logit-lens    each layer's read-out of the answer (local models)  white box
    steering      AnonAct: the question's activations minus           white box
                  anonymised ones, added at the first token
    min-k         min-k% membership of candidate answers              log-probs

Every black-box strategy works against any `Target`; the white-box ones need a local model (the offline responder, hosted models, local ones)
and sets the attempt's guess from the replies alone.
"""

from haggler.agents.adversary.strategies.direct import DirectQuestion
from haggler.agents.adversary.strategies.emphasis import KeywordEmphasis
from haggler.agents.adversary.strategies.escalation import Escalation
from haggler.agents.adversary.strategies.in_game import InGameElicitation
from haggler.agents.adversary.strategies.multihop import MultiHop
from haggler.agents.adversary.strategies.paraphrase import ParaphraseAndFormat
from haggler.agents.adversary.strategies.relearning import InContextRelearning
from haggler.agents.adversary.strategies.roleplay import RolePlay
from haggler.agents.adversary.strategies.voting import ManySampleVoting
from haggler.agents.adversary.strategies.whitebox import (
    LogitLensReadout,
    MinKMembership,
    SteeringExtraction,
)

__all__ = [
    "DirectQuestion",
    "Escalation",
    "InGameElicitation",
    "InContextRelearning",
    "KeywordEmphasis",
    "LogitLensReadout",
    "ManySampleVoting",
    "MinKMembership",
    "MultiHop",
    "ParaphraseAndFormat",
    "RolePlay",
    "SteeringExtraction",
]
