"""The self-play report: the paper-style before/after table, per-round tables, and CSV.

Every price is shown beside its deal rate, and every later round beside the all-lineages view,
so no average reads better than the games behind it. A run of several games (a tournament on
a self-play schedule) gets its tables game by game: prices of different games never share a
mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from haggler.evals.selfplay import RoundMetrics, arm_labels, games_of, improvement
from haggler.evals.stats import Interval
from haggler.evals.table_csv import read_rows, write_rows

__all__ = ["read_csv", "render_report", "write_csv"]


def _rate(rate: Interval) -> str:
    return "—" if rate.empty else f"{rate.value:.2f}"


def _deals(row: RoundMetrics) -> str:
    """The deal rate among the lineages that played, and among all when the two differ."""
    alive, every = _rate(row.deal_rate_alive), _rate(row.deal_rate_all)
    return alive if alive == every else f"{alive} (all {every})"


Series = tuple[str, str, str, str]


def _groups(rows: Sequence[RoundMetrics]) -> dict[Series, list[RoundMetrics]]:
    groups: dict[Series, list[RoundMetrics]] = {}
    for row in rows:
        groups.setdefault(row.series, []).append(row)
    for members in groups.values():
        members.sort(key=lambda r: r.round)
    return groups


def _summary_table(rows: Sequence[RoundMetrics], game: str) -> Table:
    groups = _groups(rows)
    players = any(row.player for row in rows)
    last_rounds = {members[-1].round for members in groups.values()}
    most = max(last_rounds)
    last_heading = f"round {most}" if len(last_rounds) == 1 else "last round"
    level = round(rows[0].price.level * 100)
    title = "Deal price before and after feedback"
    table = Table(
        title=f"{title}: {game}" if game else title,
        caption=(
            f"price: mean of deals ± {level}% t interval; deals: deal rate of the lineages that "
            "played the round (all: of every lineage started, a stopped one counting as no deal)"
        ),
        caption_justify="left",
    )
    if players:
        table.add_column("player")
    table.add_column("feedback")
    table.add_column("coached")
    table.add_column("lineages", justify="right")
    columns = [(1, "round 1 (before)")]
    if most >= 2:
        columns.append((2, "round 2 (after)"))
    if most >= 3:
        columns.append((0, last_heading))  # 0: each arm's own last round
    for _, heading in columns:
        table.add_column(heading, justify="right")
        table.add_column("deals", justify="right")
    if most >= 2:
        table.add_column("Δ price (first → last)", justify="right")
    for (_, arm, coached, player), members in groups.items():
        by_round = {r.round: r for r in members}
        cells = [player] if players else []
        cells += [arm, coached, str(members[0].lineages)]
        for round_, _ in columns:
            row = by_round.get(round_) if round_ else members[-1]
            if row is None:
                cells += ["—", "—"]
            else:
                price = row.price.format()
                if not round_ and len(last_rounds) > 1:
                    price = f"r{row.round}: {price}"
                cells += [price, _deals(row)]
        if most >= 2:
            change = improvement(members, arm) if len(members) > 1 else None
            cells.append(change.format("+.2f") if change is not None else "—")
        table.add_row(*cells)
    return table


def _round_table(label: str, members: Sequence[RoundMetrics]) -> Table:
    game = f"{members[0].game}, " if members[0].game else ""
    table = Table(title=f"{label}: by round ({game}coached: {members[0].coached})")
    for heading in (
        "round",
        "alive",
        "games",
        "failed",
        "price (alive)",
        "deal rate (alive)",
        "deal rate (all)",
        "surplus (all)",
        "msg chars",
        "tokens",
        "cost $",
    ):
        table.add_column(heading, justify="right")
    for row in members:
        table.add_row(
            str(row.round),
            f"{row.alive}/{row.lineages}",
            str(row.games),
            str(row.failed),
            row.price.format(),
            row.deal_rate_alive.format(),
            row.deal_rate_all.format(),
            row.surplus_all.format(),
            "—" if math.isnan(row.msg_chars) else f"{row.msg_chars:.0f}",
            f"{row.tokens:,}",
            f"{row.cost_usd:.4f}",
        )
    return table


def render_report(rows: Sequence[RoundMetrics]) -> RenderableType:
    """Per game: the paper-style table (one row per feedback kind, or per coached player in a
    tournament), then a per-round table for each of its rows."""
    if not rows:
        return Text("No self-play rounds in this run.", style="yellow")
    parts: list[RenderableType] = []
    for game, members in games_of(rows).items():
        labels = arm_labels(members)
        parts.append(_summary_table(members, game))
        parts += [_round_table(labels[key], group) for key, group in _groups(members).items()]
    return Group(*parts)


# -- CSV ---------------------------------------------------------------------------------------


def write_csv(rows: Sequence[RoundMetrics], path: str | Path) -> None:
    """One line per row; each interval as four columns: value, _low, _high, _n."""
    write_rows(rows, RoundMetrics, path)


def read_csv(path: str | Path) -> list[RoundMetrics]:
    """Rows written by `write_csv`."""
    return read_rows(RoundMetrics, path)
