"""Roles: negotiators (rule-based and LLM) and moderators."""

from haggler.agents.actions import Action, ActionKind, parse_action
from haggler.agents.base import Brief, Negotiator, PublicMessage, Reply, RoleView
from haggler.agents.llm_negotiator import LLMNegotiator
from haggler.agents.moderator import LLMModerator, Moderator, RuleModerator
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS, Tactic, TimeDependent, TitForTat

__all__ = [
    "TACTICS",
    "Action",
    "ActionKind",
    "Brief",
    "LLMModerator",
    "LLMNegotiator",
    "Moderator",
    "Negotiator",
    "PublicMessage",
    "Reply",
    "RoleView",
    "RuleModerator",
    "RuleNegotiator",
    "Tactic",
    "TimeDependent",
    "TitForTat",
    "parse_action",
]
