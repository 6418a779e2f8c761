"""The report of a grid of self-play runs: the paper's tables across model pairs.

- Deal price by round, per pair, coached role and arm, each price beside the deal rate of
  every lineage started (a stopped or failed-to-deal lineage counts as no deal), one table a
  phase; in the unrolled phase that deal rate is the survival curve (the share of lineages
  that have made a deal in every round so far).
- Each arm minus the no-feedback arm, round by round, paired by lineage seed (paired t
  intervals, `haggler.evals.paired`): the coached role's surplus over every lineage, the deal
  rate, and the price where both arms dealt.

Prices of different games never share a table: a grid plays one game.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from haggler.evals.paired import PairedEffect
from haggler.evals.selfplay import RoundMetrics
from haggler.evals.stats import Interval
from haggler.evals.table_csv import write_rows

__all__ = [
    "CellEffect",
    "CellResults",
    "cell_effects",
    "effects_table",
    "render_effects",
    "render_grid_report",
    "write_effects_csv",
]


@dataclass(slots=True)
class CellResults:
    """What one cell of a grid holds: its coordinates, its rounds and its paired effects."""

    pair: str
    coached: str
    phase: str
    run_id: str
    lineages: int  # planned per arm
    done: int  # lineages stored finished or stopped, all arms
    planned: int  # lineages of all arms
    rows: list[RoundMetrics] = field(default_factory=list)
    effects: list[PairedEffect] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CellEffect:
    """A paired effect with the cell it was measured in: a row of `effects.csv`."""

    pair: str
    coached: str
    phase: str
    arm: str
    baseline: str
    round: int
    pairs: int
    surplus: Interval
    deal_rate: Interval
    price: Interval
    arm_surplus: float
    baseline_surplus: float


def cell_effects(cells: Sequence[CellResults]) -> list[CellEffect]:
    return [
        CellEffect(
            cell.pair,
            cell.coached,
            cell.phase,
            e.arm,
            e.baseline,
            e.round,
            e.pairs,
            e.surplus,
            e.deal_rate,
            e.price,
            e.arm_surplus,
            e.baseline_surplus,
        )
        for cell in cells
        for e in cell.effects
    ]


def write_effects_csv(cells: Sequence[CellResults], path: str | Path) -> None:
    """Every paired effect of the grid, one line each (intervals as value, _low, _high, _n)."""
    write_rows(cell_effects(cells), CellEffect, path)


def _rate(rate: Interval) -> str:
    return "—" if rate.empty else f"{rate.value:.2f}"


def _price_and_rate(row: RoundMetrics | None) -> str:
    if row is None:
        return "—"
    return f"{row.price.format()} · {_rate(row.deal_rate_all)}"


def _cells_table(cells: Sequence[CellResults], title: str) -> Table:
    table = Table(title=title)
    for heading in ("pair", "coached", "phase", "lineages / arm", "stored", "run"):
        table.add_column(heading, justify="right" if heading in ("stored",) else "left")
    for cell in cells:
        stored = f"{cell.done}/{cell.planned}"
        table.add_row(cell.pair, cell.coached, cell.phase, str(cell.lineages), stored, cell.run_id)
    return table


def _rounds_table(cells: Sequence[CellResults], phase: str) -> Table | None:
    chosen = [cell for cell in cells if cell.phase == phase and cell.rows]
    if not chosen:
        return None
    rounds = max(row.round for cell in chosen for row in cell.rows)
    unrolled = phase == "unrolled"
    level = round(chosen[0].rows[0].price.level * 100)
    game = chosen[0].rows[0].game
    what = "share of lineages still dealing (survival)" if unrolled else "deal rate, all lineages"
    table = Table(
        title=f"Deal price by round, {phase} phase{f' ({game})' if game else ''}",
        caption=(
            f"mean deal price ± {level}% t interval · {what}; a lineage without a deal (or "
            "stopped by the unrolling rule) counts against the rate, never in the price"
        ),
        caption_justify="left",
    )
    for heading in ("pair", "coached", "arm"):
        table.add_column(heading)
    for round_ in range(1, rounds + 1):
        table.add_column(f"round {round_}", justify="right")
    for cell in chosen:
        by_series: dict[str, dict[int, RoundMetrics]] = {}
        for row in cell.rows:
            by_series.setdefault(row.arm, {})[row.round] = row
        for arm, by_round in by_series.items():
            table.add_row(
                cell.pair,
                cell.coached,
                arm,
                *(_price_and_rate(by_round.get(r)) for r in range(1, rounds + 1)),
            )
    return table


def _signed(interval: Interval) -> str:
    return interval.format("+.2f")


def effects_table(
    title: str, effects: Sequence[PairedEffect], phases: Sequence[str] | None = None
) -> Table:
    """Paired effects, a row each (with the phase each was measured in, when given)."""
    level = round(effects[0].surplus.level * 100) if effects else 95
    table = Table(
        title=title,
        caption=(
            f"mean per-seed difference ± {level}% paired t interval. surplus: the coached "
            "role's, over every lineage started (0 without a deal); deal rate: over the same "
            "seeds; price: only where both arms dealt (n such seeds), read beside the other two"
        ),
        caption_justify="left",
    )
    headings = ["phase"] if phases is not None else []
    headings += ["arm", "round", "pairs", "Δ surplus (all)", "Δ deal rate", "Δ price (both dealt)"]
    for heading in headings:
        table.add_column(heading, justify="left" if heading in ("phase", "arm") else "right")
    for index, effect in enumerate(effects):
        price = _signed(effect.price)
        if not effect.price.empty:
            price += f" (n={effect.price.n})"
        cells = [phases[index]] if phases is not None else []
        cells += [
            effect.arm,
            str(effect.round),
            str(effect.pairs),
            _signed(effect.surplus),
            _signed(effect.deal_rate),
            price,
        ]
        table.add_row(*cells)
    return table


def _effects_table(pair: str, coached: str, cells: Sequence[CellResults]) -> Table | None:
    effects = [(cell.phase, e) for cell in cells for e in cell.effects]
    if not effects:
        return None
    baseline = effects[0][1].baseline
    return effects_table(
        f"{pair}, {coached} coached: each arm minus {baseline}, paired by lineage seed",
        [e for _, e in effects],
        [phase for phase, _ in effects],
    )


def render_effects(effects: Sequence[PairedEffect]) -> RenderableType:
    """A self-play run's paired effects: a table per game, coached role and player."""
    groups: dict[tuple[str, str, str], list[PairedEffect]] = {}
    for effect in effects:
        groups.setdefault((effect.game, effect.coached, effect.player), []).append(effect)
    tables = []
    for (game, coached, player), members in groups.items():
        who = f"{player}, " if player else ""
        where = f" ({game})" if game and len({g for g, _, _ in groups}) > 1 else ""
        title = (
            f"{who}{coached} coached{where}: each arm minus {members[0].baseline}, "
            "paired by lineage seed"
        )
        tables.append(effects_table(title, members))
    return Group(*tables)


def render_grid_report(cells: Sequence[CellResults], *, name: str = "") -> RenderableType:
    """The grid's cells, its tables of price by round (per phase), and the paired effects of
    every arm against no feedback (per pair and coached role)."""
    parts: list[RenderableType] = [_cells_table(cells, f"Cells of grid {name}".strip())]
    if not any(cell.rows for cell in cells):
        parts.append(Text("No cell holds a finished round yet.", style="yellow"))
        return Group(*parts)
    for phase in ("main", "unrolled"):
        table = _rounds_table(cells, phase)
        if table is not None:
            parts.append(table)
    seen: dict[tuple[str, str], list[CellResults]] = {}
    for cell in cells:
        seen.setdefault((cell.pair, cell.coached), []).append(cell)
    effects = [_effects_table(pair, coached, group) for (pair, coached), group in seen.items()]
    shown = [table for table in effects if table is not None]
    if shown:
        parts += shown
    elif cells:
        parts.append(
            Text(
                "No arm-against-arm effect: the grid has no `none` arm to set the others against.",
                style="yellow",
            )
        )
    return Group(*parts)
