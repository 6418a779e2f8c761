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

Rows are per game (its name and rules: prices of different games never share a mean), per arm
and coached role, and in a tournament's self-play schedule per coached player too. A lineage
played again after it failed (a rerun of the tournament, `haggler selfplay --resume`) counts
once: the earlier attempt's games are still counted as failed and paid for, never as a lineage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haggler.evals.stats import Interval, mean_ci, mean_difference, wilson
from haggler.store.records import EpisodeRecord, LineageRecord, SpeakerTotals
from haggler.store.sqlite import Store

__all__ = [
    "GameNames",
    "RoundMetrics",
    "arm_labels",
    "games_of",
    "improvement",
    "round_metrics",
]

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
    # The game: its name, with the rules that set it apart when one name has several.
    game: str = ""
    # The coached tournament player; empty outside tournaments.
    player: str = ""

    @property
    def series(self) -> tuple[str, str, str, str]:
        """What the row's rounds belong to: (game, arm, coached role, player)."""
        return (self.game, self.arm, self.coached, self.player)


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
    return {"seller", "buyer"} if coached == "both" else set(coached.split(","))


def _surplus_role(coached: str) -> str:
    # With both players coached there is no single "coached surplus"; the seller's is the
    # paper's headline number (the price it gets), so "both" reports the seller's.
    return _SELLER if coached == "both" else coached.split(",")[0]


def lineage_round(episodes: list[EpisodeRecord]) -> EpisodeRecord | None:
    """The game that stands for a lineage's round: a finished one if any (a rerun after a
    failure), else the latest attempt."""
    finished = [e for e in episodes if e.status == "finished"]
    if finished:
        return finished[-1]
    return episodes[-1] if episodes else None


def round_metrics(
    store: Store, run_id: str, *, match_ids: Collection[str] | None = None
) -> list[RoundMetrics]:
    """One row per (game, arm, coached role, player) and round of run `run_id` (an id or a
    unique prefix): a self-play run, or a tournament on a self-play schedule. Rounds go from 1
    to the most any of the series' lineages planned; series in the order they were started.

    `match_ids` keeps only the lineages of those matches (a tournament whose spec changed under
    the same name still holds its earlier ones).
    """
    run_id = store.resolve_run(run_id)
    played_by: dict[str, list[EpisodeRecord]] = {}
    by_lineage_round: dict[tuple[str, int], list[EpisodeRecord]] = {}
    # Games without their turns, and the turns' sums: a 10,000-game run reads in a second.
    totals = store.speaker_totals(run_id)
    for episode in store.run_episodes(run_id, transcripts=False):
        if episode.lineage_id is None or episode.round is None:
            continue
        played_by.setdefault(episode.lineage_id, []).append(episode)
        by_lineage_round.setdefault((episode.lineage_id, episode.round), []).append(episode)
    lineages = [
        lineage
        for lineage in store.lineages(run_id)
        if match_ids is None or any(e.match_id in match_ids for e in played_by.get(lineage.id, []))
    ]

    # What the feedback cost (an LLM critic's calls), by game.
    feedback_spend: dict[str, tuple[int, float]] = {}
    for critique in store.critiques(run_id=run_id):
        tokens, cost = feedback_spend.get(critique.episode_id, (0, 0.0))
        feedback_spend[critique.episode_id] = (
            tokens + critique.prompt_tokens + critique.completion_tokens,
            cost + critique.cost_usd,
        )

    games = GameNames([e for lineage in lineages for e in played_by.get(lineage.id, [])])
    kept, superseded = standing_attempts(lineages, played_by)
    groups: dict[tuple[str, str, str, str], tuple[list[LineageRecord], list[LineageRecord]]] = {}
    for lineage in lineages:
        played = played_by.get(lineage.id, [])
        key = (
            games.name(played[0] if played else None),
            lineage.arm,
            lineage.coached,
            coached_player(lineage, played),
        )
        group = groups.setdefault(key, ([], []))
        group[0 if lineage.id in kept else 1].append(lineage)

    # Games, arms and roles in the order they were started; a tournament's players by name.
    seen = [list(dict.fromkeys(key[i] for key in groups)) for i in range(3)]

    def order(key: tuple[str, str, str, str]) -> tuple[int, int, int, str]:
        game, arm, coached, player = key
        return (seen[0].index(game), seen[1].index(arm), seen[2].index(coached), player)

    rows = []
    for game, arm, coached, player in sorted(groups, key=order):
        members, earlier = groups[game, arm, coached, player]
        if not members:
            continue
        coached_roles = _coached_roles(coached)
        surplus_role = _surplus_role(coached)
        for round_ in range(1, max(lin.rounds_planned for lin in members) + 1):
            tally = _Tally()
            for lineage in members:
                attempts = by_lineage_round.get((lineage.id, round_), [])
                _count_lineage(
                    tally, lineage, round_, attempts, totals, coached_roles, surplus_role
                )
            for lineage in earlier:
                # Attempts replaced by a later one: failed games and spend, nothing else.
                _count_spend(tally, by_lineage_round.get((lineage.id, round_), []), totals)
            for lineage in [*members, *earlier]:
                for episode in by_lineage_round.get((lineage.id, round_), []):
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
                    game=game,
                    player=player,
                )
            )
    return rows


def _match_stem(match_id: str | None) -> str | None:
    # A tournament lineage's games are matches `<id>/r1`, `<id>/r2`, …: `<id>` is the lineage.
    return match_id.rsplit("/r", 1)[0] if match_id else None


_PREFERRED = {"finished": 0, "stopped": 0, "running": 1, "failed": 2}


def standing_attempts(
    lineages: Sequence[LineageRecord], played_by: Mapping[str, Sequence[EpisodeRecord]]
) -> tuple[set[str], set[str]]:
    """(kept, superseded) lineage ids: of the attempts at one planned lineage (same arm,
    coached role, seed and, in a tournament, match), the one that stands is the one that got
    through, else the latest."""
    plans: dict[tuple[str, str, int, str | None], list[LineageRecord]] = {}
    for lineage in lineages:
        played = played_by.get(lineage.id, [])
        stem = _match_stem(played[0].match_id) if played else None
        plans.setdefault((lineage.arm, lineage.coached, lineage.seed, stem), []).append(lineage)
    kept: set[str] = set()
    superseded: set[str] = set()
    for attempts in plans.values():
        best = min(attempts, key=lambda lin: (_PREFERRED[lin.status], -lin.started_at))
        kept.add(best.id)
        superseded.update(lin.id for lin in attempts if lin.id != best.id)
    return kept, superseded


def coached_player(lineage: LineageRecord, played: Sequence[EpisodeRecord]) -> str:
    if lineage.coached not in ("seller", "buyer") or not played:
        return ""
    record = played[0].roles.get(lineage.coached)
    return (record.player or "") if record is not None else ""


class GameNames:
    """A name per game played in a run: the game's name, and the rules that tell apart games
    of one name played with different rules ("balloon (max_exchanges=8)")."""

    def __init__(self, episodes: Sequence[EpisodeRecord]) -> None:
        rules: dict[str, dict[str, dict[str, Any]]] = {}
        for episode in episodes:
            rules.setdefault(episode.game, {})[_rules_key(episode.rules)] = episode.rules
        self._names: dict[tuple[str, str], str] = {}
        for game, variants in rules.items():
            differing = sorted(
                {k for r in variants.values() for k in r if _varies(k, variants.values())}
            )
            for key, variant in variants.items():
                shown = ", ".join(f"{k}={variant.get(k, '—')}" for k in differing)
                self._names[game, key] = f"{game} ({shown})" if shown else game
        self._only = next(iter(self._names.values())) if len(self._names) == 1 else ""

    def name(self, episode: EpisodeRecord | None) -> str:
        if episode is None:  # a lineage with no game stored yet: the run's one game, if one
            return self._only
        return self._names[episode.game, _rules_key(episode.rules)]


def _rules_key(rules: Mapping[str, Any]) -> str:
    return json.dumps(rules, sort_keys=True, default=str)


def _varies(key: str, variants: Iterable[Mapping[str, Any]]) -> bool:
    return len({json.dumps(v.get(key), sort_keys=True, default=str) for v in variants}) > 1


def _count_lineage(
    tally: _Tally,
    lineage: LineageRecord,
    round_: int,
    attempts: list[EpisodeRecord],
    totals: dict[str, dict[str, SpeakerTotals]],
    coached_roles: set[str],
    surplus_role: str,
) -> None:
    _count_spend(tally, attempts, totals)
    if round_ > lineage.rounds_planned:
        return
    game = lineage_round(attempts)
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


def _count_spend(
    tally: _Tally,
    attempts: Sequence[EpisodeRecord],
    totals: Mapping[str, Mapping[str, SpeakerTotals]],
) -> None:
    for episode in attempts:  # every attempt was paid for, failed or not
        tally.failed += episode.status == "failed"
        for spent in totals.get(episode.id, {}).values():
            tally.tokens += spent.tokens + spent.moderation_tokens
            tally.cost_usd += spent.cost_usd + spent.moderation_cost_usd


def games_of(rows: Sequence[RoundMetrics]) -> dict[str, list[RoundMetrics]]:
    """`rows` split by game, in order: a table or plot per game, never one mean of two."""
    split: dict[str, list[RoundMetrics]] = {}
    for row in rows:
        split.setdefault(row.game, []).append(row)
    return split


def arm_labels(rows: Sequence[RoundMetrics]) -> dict[tuple[str, str, str, str], str]:
    """A display name for each series (`RoundMetrics.series`) in `rows`, in order: what tells
    it apart from the others — the coached player, the arm, the coached role, the game — or
    the arm when nothing does."""
    keys = list(dict.fromkeys(r.series for r in rows))
    varies = [len({key[i] for key in keys}) > 1 for i in range(4)]
    labels = {}
    for game, arm, coached, player in keys:
        head = player if varies[3] else arm
        parts = [arm] if varies[1] and varies[3] else []
        parts += [coached] if varies[2] else []
        parts += [game] if varies[0] else []
        labels[game, arm, coached, player] = f"{head} ({', '.join(parts)})" if parts else head
    return labels


def improvement(
    rows: Sequence[RoundMetrics],
    arm: str,
    first: int = 1,
    last: int | None = None,
    *,
    coached: str | None = None,
    game: str | None = None,
    player: str | None = None,
) -> Interval:
    """The change in mean deal price of `arm` from round `first` to round `last` (default: the
    arm's last round), with Welch's interval. Survivors only: read it beside the deal rates.

    Rounds of one lineage are paired, but survivors differ from round to round, so the
    unpaired interval is the honest (and conservative) one.
    """
    chosen = [
        r
        for r in rows
        if r.arm == arm
        and (coached is None or r.coached == coached)
        and (game is None or r.game == game)
        and (player is None or r.player == player)
    ]
    if not chosen:
        known = sorted({f"{r.arm} ({r.coached})" for r in rows})
        raise ValueError(f"no rows for arm {arm!r}; the rows hold {', '.join(known) or 'none'}")
    for what, values in (
        ("coached as", {r.coached for r in chosen}),
        ("played on", {r.game for r in chosen}),
        ("played by", {r.player for r in chosen}),
    ):
        if len(values) > 1:
            keyword = {"coached as": "coached", "played on": "game", "played by": "player"}[what]
            raise ValueError(
                f"arm {arm!r} was {what} {', '.join(sorted(values))}; pass {keyword}= to pick one"
            )
    by_round = {r.round: r for r in chosen}
    last = max(by_round) if last is None else last
    for round_ in (first, last):
        if round_ not in by_round:
            raise ValueError(f"arm {arm!r} has no round {round_}; it has 1..{max(by_round)}")
    return mean_difference(by_round[first].price, by_round[last].price)
