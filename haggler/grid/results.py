"""A grid's results read from the store: each cell's rounds and paired effects, and the files
a report writes (plots and tables)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from haggler.evals.effect_plot import plot_effects
from haggler.evals.grid_report import CellResults, write_effects_csv
from haggler.evals.paired import paired_effects
from haggler.evals.plot import plot_rounds
from haggler.evals.report import write_csv
from haggler.evals.selfplay import round_metrics
from haggler.grid.run import cell_progress
from haggler.grid.spec import Cell
from haggler.store.sqlite import Store

__all__ = ["grid_results", "write_grid_files"]


def grid_results(store: Store, cells: Sequence[Cell]) -> list[CellResults]:
    """Every cell of the grid as the store holds it (a cell not started holds nothing)."""
    results = []
    for cell in cells:
        progress = cell_progress(store, cell)
        result = CellResults(
            pair=cell.pair,
            coached=cell.coached,
            phase=cell.phase,
            run_id=cell.run_id,
            lineages=cell.spec.lineages,
            done=progress.done,
            planned=progress.planned,
        )
        if progress.started:
            result.rows = round_metrics(store, cell.run_id)
            result.effects = paired_effects(store, cell.run_id)
        results.append(result)
    return results


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.") or "cell"


def write_grid_files(results: Sequence[CellResults], folder: Path) -> list[Path]:
    """Into `folder`: per cell, its price and deal-rate curves (`PAIR-COACHED-PHASE.svg`, in
    the unrolled phase the dashed all-lineages line is the survival curve) and its per-round
    table (`.csv`); per pair and coached role, the paired effects by round
    (`PAIR-COACHED-effect.svg`); and every effect in `effects.csv`. Returns what it wrote."""
    written = []
    groups: dict[tuple[str, str], list[CellResults]] = {}
    for result in results:
        groups.setdefault((result.pair, result.coached), []).append(result)
        if not result.rows:
            continue
        stem = _slug(f"{result.pair}-{result.coached}-{result.phase}")
        written.append(plot_rounds(result.rows, folder / f"{stem}.svg"))
        write_csv(result.rows, folder / f"{stem}.csv")
        written.append(folder / f"{stem}.csv")
    for (pair, coached), members in groups.items():
        lines = []
        for result in members:
            by_arm: dict[str, list] = {}
            for effect in result.effects:
                by_arm.setdefault(effect.arm, []).append(effect)
            lines += [
                (f"{arm} − {es[0].baseline} ({result.phase})", es) for arm, es in by_arm.items()
            ]
        if lines:
            path = folder / f"{_slug(f'{pair}-{coached}')}-effect.svg"
            title = f"{pair}, {coached} coached: feedback minus no feedback, paired by seed"
            written.append(plot_effects(lines, title, path))
    if any(result.effects for result in results):
        write_effects_csv(results, folder / "effects.csv")
        written.append(folder / "effects.csv")
    return written
