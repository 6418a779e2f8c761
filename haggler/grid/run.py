"""Playing a grid: its cells one after another, each a self-play run continued where it stopped.

A cell is played by `haggler.run.experiment.selfplay` on its own named run (`Cell.run_id`), so the
grid inherits what self-play guarantees: arms share lineage seeds, a lineage whose calls kept
failing is marked failed while the others go on, an interruption marks the lineages in flight
failed, and continuing a run plays again, from round 1, every lineage it does not hold
finished. A refused key or request stops the grid (every later call would meet it too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from haggler.grid.spec import Cell
from haggler.run.experiment import lineage_seed, selfplay
from haggler.store.sqlite import Store

__all__ = ["CellProgress", "CellRun", "GridRun", "cell_progress", "run_grid"]

# A lineage that got through: it played every round, or stopped at its first failure by rule.
_DONE = ("finished", "stopped")


@dataclass(frozen=True, slots=True)
class CellProgress:
    """How far a cell's run has got, from the store."""

    planned: int  # lineages of every arm
    done: int  # of those, stored finished or stopped
    left_by_arm: dict[str, int]
    started: bool  # the cell's run exists

    @property
    def left(self) -> int:
        return self.planned - self.done


def cell_progress(store: Store, cell: Cell) -> CellProgress:
    """The lineages of `cell` that `store` holds finished, and those left to play, by arm."""
    spec = cell.spec
    seeds = {lineage_seed(spec, index) for index in range(spec.lineages)}
    started = any(run.id == cell.run_id for run in store.runs())
    got_through: set[tuple[str, int]] = set()
    if started:
        got_through = {
            (lineage.arm, lineage.seed)
            for lineage in store.lineages(cell.run_id)
            if lineage.status in _DONE and lineage.seed in seeds
        }
    left = {
        arm: spec.lineages - sum(1 for a, _ in got_through if a == arm) for arm in spec.feedback
    }
    planned = len(spec.feedback) * spec.lineages
    return CellProgress(planned, planned - sum(left.values()), left, started)


@dataclass(slots=True)
class CellRun:
    """What this session did with one cell."""

    cell: Cell
    planned: int
    already_done: int = 0
    played: int = 0
    # Lineages that failed for good (model errors after retries), with the first error.
    failed: int = 0
    first_error: str | None = None


@dataclass(slots=True)
class GridRun:
    cells: list[CellRun] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.cells)

    @property
    def complete(self) -> bool:
        return not self.failed


# Told when a cell starts: (its index from 0, how many cells, the cell, lineages left).
CellStarted = Callable[[int, int, Cell, int], None]
# Told after each game: (games played in this cell, games it plans at most).
GamesPlayed = Callable[[int, int], None]


async def run_grid(
    cells: Sequence[Cell],
    *,
    store: Store,
    on_cell: CellStarted | None = None,
    progress: GamesPlayed | None = None,
) -> GridRun:
    """Play what `store` does not hold finished of every cell, in order. A cell with nothing
    left is not touched; one with lineages left is created (or continued) as a self-play run
    under its own id."""
    grid = GridRun()
    for index, cell in enumerate(cells):
        state = cell_progress(store, cell)
        done = CellRun(cell, state.planned, already_done=state.done)
        grid.cells.append(done)
        if not state.left:
            continue
        if on_cell is not None:
            on_cell(index, len(cells), cell, state.left)
        # Created with the cell's spec, or continued with it: a server's address or the
        # concurrency may have changed since, what is played may not (the id holds its digest).
        store.ensure_run(cell.run_id, "selfplay", cell.spec.model_dump(mode="json"))
        run = await selfplay(cell.spec, store=store, run_id=cell.run_id, progress=progress)
        done.played = sum(len(results) for results in run.lineages.values())
        done.failed = run.failed
        errors = [error for errors in run.failures.values() for error in errors]
        done.first_error = errors[0] if errors else None
    return grid


async def check_keys(cells: Sequence[Cell]) -> None:
    """Open every model the cells name, and close them again: a missing key or a bad server
    address is reported before anything is asked or played, every missing key of every cell
    in one line."""
    from haggler.games.registry import make_game
    from haggler.run.cast import Cast, MissingKeys

    seen: set[str] = set()
    missing: dict[str, list[tuple[str, str]]] = {}
    first: MissingKeys | None = None
    for cell in cells:
        models = cell.spec.model_dump_json(include={"roles", "moderator", "critic", "feedback"})
        if models in seen:
            continue
        seen.add(models)
        try:
            cast = Cast(cell.spec, make_game(cell.spec.game, cell.spec.rules))
        except MissingKeys as error:
            first = first or error
            for env, needs in error.missing.items():
                known = missing.setdefault(env, [])
                known += [need for need in needs if need not in known]
            continue
        await cast.aclose()
    if first is not None:
        raise MissingKeys(missing, first)
