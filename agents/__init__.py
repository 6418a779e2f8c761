"""Roles: players (negotiators, rule-based and LLM, and plug-in roles) and moderators.

A plug-in role subclasses `Player` and says what it needs of a game with `Requirements`;
`ROLES` is the registry of roles by name (entry-point group `haggler.roles`).
"""

from haggler.agents.actions import Action, ActionKind, parse_action
from haggler.agents.base import (
    Brief,
    Negotiator,
    Player,
    PublicMessage,
    Reply,
    Requirements,
    RoleView,
    Seat,
)
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import LLMModerator, Moderator, RuleModerator
from haggler.agents.roles import ROLES, make_player
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS, Tactic, TimeDependent, TitForTat

__all__ = [
    "ROLES",
    "TACTICS",
    "Action",
    "ActionKind",
    "Brief",
    "LLMModerator",
    "LLMNegotiator",
    "Moderator",
    "Negotiator",
    "Player",
    "PublicMessage",
    "Reply",
    "Requirements",
    "RoleView",
    "RuleModerator",
    "RuleNegotiator",
    "Seat",
    "Tactic",
    "TimeDependent",
    "TitForTat",
    "make_player",
    "parse_action",
]
