"""What coaching did for each coached player of a tournament on a self-play schedule.

A coached player plays a lineage of rounds against each rival (fresh every round) and is
coached between them. Its leaderboard row ranks it over the games of every round; this table
says how far it moved from round 1 to its last round: its own share of the bargaining zone
(so that balloon and diamond games compare), before and after, and the change.

rows = coaching(store, run_id)               # the largest gain first
console.print(render_coaching(rows))
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table

from haggler.evals.ratings import surplus_share
from haggler.evals.selfplay import coached_player, lineage_round, standing_attempts
from haggler.evals.stats import Interval, mean_ci, mean_difference, wilson
from haggler.store.records import EpisodeRecord
from haggler.store.sqlite import Store

__all__ = ["CoachingRow", "coaching", "render_coaching"]


@dataclass(frozen=True)
class CoachingRow:
    """One coached player in one role and feedback arm, over all its lineages."""

    player: str
    coached: str  # the role it was coached in
    arm: str
    lineages: int  # lineages that stand (one per rival, game and repetition)
    last_round: int
    first_share: Interval  # the player's own share of the zone over its round-1 deals
    last_share: Interval  # … over its last-round deals
    gain: Interval  # last - first, Welch's interval (survivors: read it with the deal rates)
    first_deal_rate: Interval
    last_deal_rate: Interval


def coaching(
    store: Store, run_id: str, *, match_ids: Collection[str] | None = None
) -> list[CoachingRow]:
    """One row per (coached player, role, arm) of run `run_id`, the largest gain first; empty
    for a run without tournament lineages. `match_ids` as in `leaderboard`."""
    run_id = store.resolve_run(run_id)
    played_by: dict[str, list[EpisodeRecord]] = {}
    for episode in store.run_episodes(run_id, transcripts=False):
        if episode.lineage_id is None or episode.round is None or episode.match_id is None:
            continue
        if match_ids is not None and episode.match_id not in match_ids:
            continue
        played_by.setdefault(episode.lineage_id, []).append(episode)
    lineages = [lin for lin in store.lineages(run_id) if lin.id in played_by]
    kept, _ = standing_attempts(lineages, played_by)

    groups: dict[tuple[str, str, str], list[list[EpisodeRecord]]] = {}
    for lineage in lineages:
        player = coached_player(lineage, played_by[lineage.id])
        if lineage.id in kept and player:
            key = (player, lineage.coached, lineage.arm)
            groups.setdefault(key, []).append(played_by[lineage.id])

    rows = []
    for (player, role, arm), members in groups.items():
        last = max(e.round or 0 for games in members for e in games)
        first_shares, first_games = _shares(members, 1, role)
        last_shares, last_games = _shares(members, last, role)
        first, after = mean_ci(first_shares), mean_ci(last_shares)
        rows.append(
            CoachingRow(
                player=player,
                coached=role,
                arm=arm,
                lineages=len(members),
                last_round=last,
                first_share=first,
                last_share=after,
                gain=mean_difference(first, after),
                first_deal_rate=wilson(len(first_shares), first_games),
                last_deal_rate=wilson(len(last_shares), last_games),
            )
        )
    rows.sort(key=lambda r: (-r.gain.value if not r.gain.empty else float("inf"), r.player))
    return rows


def _shares(
    lineages: Sequence[Sequence[EpisodeRecord]], round_: int, role: str
) -> tuple[list[float], int]:
    """The coached role's own shares over the deals of `round_`, and the finished games."""
    shares: list[float] = []
    finished = 0
    for games in lineages:
        game = lineage_round([e for e in games if e.round == round_])
        if game is None or game.status != "finished":
            continue
        finished += 1
        share = surplus_share(game.rules, game.outcome)
        if share is not None:
            shares.append(share if role == "seller" else 1 - share)
    return shares, finished


def render_coaching(rows: Sequence[CoachingRow]) -> Table:
    """The table, one line per coached player in the order given."""
    table = Table(
        title="Coached players: before and after feedback",
        caption=(
            "share: the player's own part of the bargaining zone over its deals (mean ± 95% t "
            "interval), so games of different prices compare; gain: last round minus round 1 "
            "(Welch); deals: deal rate of the round's finished games"
        ),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for heading in ("player", "coached", "feedback", "lineages"):
        table.add_column(heading, justify="right" if heading == "lineages" else "left")
    for heading in ("round 1 share", "deals", "last share", "deals", "gain"):
        table.add_column(heading, justify="right")
    for row in rows:
        table.add_row(
            row.player,
            row.coached,
            row.arm,
            str(row.lineages),
            row.first_share.format(),
            _rate(row.first_deal_rate),
            f"r{row.last_round}: {row.last_share.format()}",
            _rate(row.last_deal_rate),
            row.gain.format("+.2f"),
        )
    return table


def _rate(rate: Interval) -> str:
    return "—" if rate.empty else f"{rate.value:.2f}"
