"""The seed paper's experiment in full: a grid of self-play runs over model pairs, coached
roles and phases (main, and unrolled to the first failure), its cost said before it starts.

    grid = load_grid_spec("examples/paper_grid.yaml")
    cells = grid_cells(grid)
    estimate = await estimate_cells(cells, grid.estimate, store=store)
    played = await run_grid(cells, store=store)
    results = grid_results(store, cells)      # rounds and paired effects, cell by cell

Names load on first use: reading a spec imports no graph runtime or model SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "Cell",
    "CellProgress",
    "Estimate",
    "GridRun",
    "GridSpec",
    "ModelCost",
    "cell_progress",
    "check_grid_spec",
    "check_keys",
    "estimate_cells",
    "grid_cells",
    "grid_results",
    "load_grid_spec",
    "run_grid",
    "write_grid_files",
]

_WHERE = {
    "Cell": "haggler.grid.spec",
    "GridSpec": "haggler.grid.spec",
    "check_grid_spec": "haggler.grid.spec",
    "grid_cells": "haggler.grid.spec",
    "load_grid_spec": "haggler.grid.spec",
    "CellProgress": "haggler.grid.run",
    "GridRun": "haggler.grid.run",
    "cell_progress": "haggler.grid.run",
    "check_keys": "haggler.grid.run",
    "run_grid": "haggler.grid.run",
    "Estimate": "haggler.grid.cost",
    "ModelCost": "haggler.grid.cost",
    "estimate_cells": "haggler.grid.cost",
    "grid_results": "haggler.grid.results",
    "write_grid_files": "haggler.grid.results",
}

if TYPE_CHECKING:
    from haggler.grid.cost import Estimate, ModelCost, estimate_cells
    from haggler.grid.results import grid_results, write_grid_files
    from haggler.grid.run import CellProgress, GridRun, cell_progress, check_keys, run_grid
    from haggler.grid.spec import Cell, GridSpec, check_grid_spec, grid_cells, load_grid_spec


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'haggler.grid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
