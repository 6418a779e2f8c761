"""Per-round metrics of a self-play run, read from the store.

Two views of every round, because the paper's later-round averages counted only the games
still being played (survivorship bias):

- alive: the lineages that played this round. `price` and `deal_rate_alive` describe them.
- all: every lineage the arm started, where one that stopped earlier (the unrolling rule ends a
  lineage at its first round without a deal) counts as no deal. `deal_rate_all` and
  `surplus_all` describe them, so a price that rises only because hard bargainers dropped
  out shows up as a falling deal rate and a flat surplus.

A lineage is left out of the all view at a round it has not reached yet (the run is still
going) and once an error ended it: a crash is not a negotiation outcome. Failed games are never
priced; they are counted in `failed`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from haggler.evals.stats import Interval, mean_ci, mean_difference, wilson
from haggler.store.records import EpisodeRecord, LineageRecord, SpeakerTotals
from haggler.store.sqlite import Store

__all__ = ["RoundMetrics", "arm_labels", "improvement", "round_metrics"]

_SELLER = "seller"


@dataclass(frozen=True)
class RoundMetrics:
    """What one arm's lineages did in one round."""

    arm: str
    round: int
    coached: str
    lineages: int  # started in the arm
    alive: int  # played this round (a game finished, failed or in flight)
    games: int  # finished games this round
    deals: int
    failed: int  # failed games this round: priced nowhere
    price: Interval  # deal price among the games played this round (survivors)
    deal_rate_alive: Interval  # deals / finished games this round
    deal_rate_all: Interval  # deals / lineages started; an ended lineage counts as no deal
    surplus_all: Interval  # the coached role's surplus over all lineages, 0 without a deal
    msg_chars: float  # mean length of the coached role's generated, accepted messages
    tokens: int  # prompt + completion tokens of every turn, moderator readings and critiques
    cost_usd: float


@dataclass
class _Tally:
    alive: int = 0
    games: int = 0
    deals: int = 0
    failed: int = 0
    counted: int = 0  # lineages in the all view
    tokens: int = 0
    cost_usd: float = 0.0

    def __post_init__(self) -> None:
        self.prices: list[float] = []
        self.surplus: list[float] = []
        self.msg_chars = 0
        self.msg_count = 0


def _coached_roles(coached: str) -> set[str]:
    return {"seller", "buyer"} if coached == "both" else {coached}


def _surplus_role(coached: str) -> str:
    # With both players coached there is no single "coached surplus"; the seller's is the
    # paper's headline number (the price it gets), so "both" reports the seller's.
    return _SELLER if coached == "both" else coached


def _lineage_round(episodes: list[EpisodeRecord]) -> EpisodeRecord | None:
    """The game that stands for a lineage's round: a finished one if any (a rerun after a
    failure), else the latest attempt."""
    finished = [e for e in episodes if e.status == "finished"]
    if finished:
        return finished[-1]
    return episodes[-1] if episodes else None


def round_metrics(store: Store, run_id: str) -> list[RoundMetrics]:
    """One row per (arm, round) of self-play run `run_id` (an id or a unique prefix), for rounds
    1 to the most any of the arm's lineages planned; arms in the order they were started.

    An arm whose lineages were coached in different roles gives one set of rows per role.
    """
    run_id = store.resolve_run(run_id)
    lineages = store.lineages(run_id)
    by_lineage_round: dict[tuple[str, int], list[EpisodeRecord]] = {}
    # Games without their turns, and the turns' sums: a 10,000-game run reads in a second.
    totals = store.speaker_totals(run_id)
    for episode in store.run_episodes(run_id, transcripts=False):
        if episode.lineage_id is None or episode.round is None:
            continue
        by_lineage_round.setdefault((episode.lineage_id, episode.round), []).append(episode)

    # What the feedback cost (an LLM critic's calls), by game.
    feedback_spend: dict[str, tuple[int, float]] = {}
    for critique in store.critiques(run_id=run_id):
        tokens, cost = feedback_spend.get(critique.episode_id, (0, 0.0))
        feedback_spend[critique.episode_id] = (
            tokens + critique.prompt_tokens + critique.completion_tokens,
            cost + critique.cost_usd,
        )

    groups: dict[tuple[str, str], list[LineageRecord]] = {}
    for lineage in lineages:
        groups.setdefault((lineage.arm, lineage.coached), []).append(lineage)

    rows = []
    for (arm, coached), members in groups.items():
        coached_roles = _coached_roles(coached)
        surplus_role = _surplus_role(coached)
        for round_ in range(1, max(lin.rounds_planned for lin in members) + 1):
            tally = _Tally()
            for lineage in members:
                attempts = by_lineage_round.get((lineage.id, round_), [])
                _count_lineage(
                    tally, lineage, round_, attempts, totals, coached_roles, surplus_role
                )
                for episode in attempts:
                    tokens, cost = feedback_spend.get(episode.id, (0, 0.0))
                    tally.tokens += tokens
                    tally.cost_usd += cost
            rows.append(
                RoundMetrics(
                    arm=arm,
                    round=round_,
                    coached=coached,
                    lineages=len(members),
                    alive=tally.alive,
                    games=tally.games,
                    deals=tally.deals,
                    failed=tally.failed,
                    price=mean_ci(tally.prices),
                    deal_rate_alive=wilson(tally.deals, tally.games),
                    deal_rate_all=wilson(tally.deals, tally.counted),
                    surplus_all=mean_ci(tally.surplus),
                    msg_chars=tally.msg_chars / tally.msg_count if tally.msg_count else math.nan,
                    tokens=tally.tokens,
                    cost_usd=tally.cost_usd,
                )
            )
    return rows


def _count_lineage(
    tally: _Tally,
    lineage: LineageRecord,
    round_: int,
    attempts: list[EpisodeRecord],
    totals: dict[str, dict[str, SpeakerTotals]],
    coached_roles: set[str],
    surplus_role: str,
) -> None:
    for episode in attempts:  # every attempt was paid for, failed or not
        tally.failed += episode.status == "failed"
        for spent in totals.get(episode.id, {}).values():
            tally.tokens += spent.tokens + spent.moderation_tokens
            tally.cost_usd += spent.cost_usd + spent.moderation_cost_usd

    if round_ > lineage.rounds_planned:
        return
    game = _lineage_round(attempts)
    if game is None:
        # Not played: either the lineage ended before this round (a stop counts as no deal)
        # or it has not got here yet / ended in an error (left out of the all view).
        if lineage.status in ("stopped", "finished") and lineage.rounds_played < round_:
            tally.counted += 1
            tally.surplus.append(0.0)
        return
    tally.alive += 1
    if game.status != "finished":
        return  # failed or in flight: neither a deal nor a no-deal
    tally.games += 1
    tally.counted += 1
    outcome = game.outcome
    price = outcome.price if outcome is not None and outcome.kind == "deal" else None
    if price is not None:
        tally.deals += 1
        tally.prices.append(price)
    tally.surplus.append(game.scores.get(surplus_role, 0.0) if price is not None else 0.0)
    for role in coached_roles:
        spoken = totals.get(game.id, {}).get(role)
        if spoken is not None:
            tally.msg_chars += spoken.chars
            tally.msg_count += spoken.messages


def arm_labels(rows: Sequence[RoundMetrics]) -> dict[tuple[str, str], str]:
    """A display name for each (arm, coached) in `rows`, in order: the arm, and the coached
    role too when the rows hold more than one."""
    keys = list(dict.fromkeys((r.arm, r.coached) for r in rows))
    several = len({coached for _, coached in keys}) > 1
    return {(arm, coached): f"{arm} ({coached})" if several else arm for arm, coached in keys}


def improvement(
    rows: Sequence[RoundMetrics],
    arm: str,
    first: int = 1,
    last: int | None = None,
    *,
    coached: str | None = None,
) -> Interval:
    """The change in mean deal price of `arm` from round `first` to round `last` (default: the
    arm's last round), with Welch's interval. Survivors only: read it beside the deal rates.

    Rounds of one lineage are paired, but survivors differ from round to round, so the
    unpaired interval is the honest (and conservative) one.
    """
    chosen = [r for r in rows if r.arm == arm and (coached is None or r.coached == coached)]
    if not chosen:
        known = sorted({f"{r.arm} ({r.coached})" for r in rows})
        raise ValueError(f"no rows for arm {arm!r}; the rows hold {', '.join(known) or 'none'}")
    roles = {r.coached for r in chosen}
    if len(roles) > 1:
        raise ValueError(
            f"arm {arm!r} was coached as {', '.join(sorted(roles))}; pass coached= to pick one"
        )
    by_round = {r.round: r for r in chosen}
    last = max(by_round) if last is None else last
    for round_ in (first, last):
        if round_ not in by_round:
            raise ValueError(f"arm {arm!r} has no round {round_}; it has 1..{max(by_round)}")
    return mean_difference(by_round[first].price, by_round[last].price)
