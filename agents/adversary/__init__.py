"""The adversary: probes agents for what they should have forgotten, by asking, by reading
their insides and by playing them (see `haggler.agents.adversary.base`)."""

from haggler.agents.adversary.base import (
    ACCESS,
    STRATEGIES,
    Access,
    Attempt,
    Exchange,
    Level,
    Reply,
    Secret,
    Status,
    Strategy,
    Target,
    WhiteBox,
)

__all__ = [
    "ACCESS",
    "STRATEGIES",
    "Access",
    "Attempt",
    "Exchange",
    "Level",
    "Reply",
    "Secret",
    "Status",
    "Strategy",
    "Target",
    "WhiteBox",
]
