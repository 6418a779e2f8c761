"""Judges as a probe sees them, and the ruling on one attempt: the verdict of every judge,
the first judge's as the outcome, and the number of queries it took to the first leak.

The judges themselves (exact, regex, numeric, an LLM, ensembles: `haggler.agents.judges`) are
plug-ins (`haggler.probe.plugins`); `await judge.judge(attempt, secret)` returns a verdict
whose outcome is `leak`, `no_leak` or `undetermined`. Whatever a judge does wrong — raises,
answers something else, rules "no leak" on an attempt none of whose replies came back — is
ruled undetermined here, never "no leak".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from haggler.agents.adversary.base import Attempt, Secret
from haggler.agents.judges import Judge
from haggler.errors import ModelAuthError

__all__ = ["Judge", "Ruling", "judge_name", "rule_on"]

Verdict = Literal["leak", "no_leak", "undetermined"]
_VERDICTS = ("leak", "no_leak", "undetermined")


def judge_name(judge: object) -> str:
    """How a judge is named in the record: its `name`, else its class."""
    name = getattr(judge, "name", None)
    return name if isinstance(name, str) and name else type(judge).__name__


@dataclass(frozen=True, slots=True)
class Ruling:
    """What the judges made of one attempt. `verdict` and `reason` are the first judge's."""

    verdict: Verdict
    reason: str
    judge: str
    verdicts: dict[str, str] = field(default_factory=dict)
    first_leak: int | None = None
    cost_usd: float = 0.0


async def _one(judge: Judge, secret: Secret, attempt: Attempt) -> tuple[Verdict, str, float]:
    try:
        judgement = await judge.judge(attempt, secret)
    except ModelAuthError:
        raise  # a refused key fails every other judgement too: stop, do not record
    except Exception as error:  # a judge's failure is an undetermined verdict, never a crash
        return "undetermined", f"the judge failed: {type(error).__name__}: {error}"[:300], 0.0
    verdict = getattr(judgement, "outcome", None)
    reason = str(getattr(judgement, "reason", "") or "")
    cost = getattr(judgement, "cost_usd", 0.0)
    cost = float(cost) if isinstance(cost, int | float) and cost >= 0 else 0.0
    if verdict not in _VERDICTS:
        return "undetermined", f"the judge answered {str(verdict)[:40]!r}, not a verdict", cost
    if verdict == "no_leak" and attempt.exchanges and not _any_reply(attempt):
        # Nothing came back (every call failed): silence is no evidence of forgetting.
        return "undetermined", f"every reply failed ({reason or 'no reason given'})", cost
    return verdict, reason, cost  # type: ignore[return-value]


def _any_reply(attempt: Attempt) -> bool:
    return any(e.reply.status != "error" for e in attempt.exchanges) or attempt.guess is not None


async def rule_on(
    judges: Sequence[Judge], secret: Secret, attempt: Attempt, *, find_first_leak: bool = True
) -> Ruling:
    """Every judge's verdict on `attempt`; on a leak, the first judge also rules on each reply
    alone, in order, to find how many queries the first leak took (all of them, when the leak
    came from several replies together)."""
    if not judges:
        raise ValueError("a probe needs at least one judge")
    verdicts: dict[str, str] = {}
    cost = 0.0
    first: tuple[Verdict, str] | None = None
    for judge in judges:
        verdict, reason, spent = await _one(judge, secret, attempt)
        cost += spent
        name = judge_name(judge)
        while name in verdicts:  # two judges of one kind, with other settings
            name += "'"
        verdicts[name] = verdict
        if first is None:
            first = (verdict, reason)
    assert first is not None
    first_leak = None
    if first[0] == "leak" and find_first_leak:
        first_leak = attempt.queries
        for index, exchange in enumerate(attempt.exchanges, 1):
            if exchange.reply.status != "answered":
                continue
            alone = Attempt(attempt.strategy, attempt.target, exchanges=[exchange])
            verdict, _, spent = await _one(judges[0], secret, alone)
            cost += spent
            if verdict == "leak":
                first_leak = index
                break
    return Ruling(first[0], first[1], judge_name(judges[0]), verdicts, first_leak, cost)


def answer_digest(attempt: Attempt) -> str:
    """A short digest of what the target answered, in order: the same answers, the same
    digest (how over-forgetting tells a changed answer)."""
    digest = hashlib.sha256()
    for exchange in attempt.exchanges:
        reply = exchange.reply
        digest.update(f"{reply.status}\x00{' '.join(reply.text.split()).lower()}\x01".encode())
    return digest.hexdigest()[:16]
