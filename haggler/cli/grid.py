"""`haggler selfplay-grid`: the paper's grid of self-play runs, its cost said before it starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from haggler.cli.console import (
    command_again,
    err,
    escape_markup,
    interrupted_status,
    interruption,
    out,
    redacted,
    run_until_stopped,
    user_errors,
)
from haggler.cli.options import DbOption, open_store, require_store


def selfplay_grid(
    spec: Annotated[Path, typer.Argument(help="A YAML grid spec (examples/paper_grid.yaml).")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Play without asking (the estimate is printed).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the cells and the cost estimate; play nothing.")
    ] = False,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Report what the store holds; play nothing.")
    ] = False,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="A folder to write the curves (SVG) and tables (CSV) into: per cell, and the "
            "paired effects per pair and coached role.",
        ),
    ] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """The paper's experiment in full: self-play over model pairs, coached roles and phases
    (main, and unrolled to the first failure), every feedback arm in each; prints what it will
    cost and asks before it starts, then the paper's tables and the paired effects.

    Exit status: 0 every cell is played; 1 some lineages are not (failed, or you declined:
    run the same command again to play them); 2 a mistake to fix, found before anything was
    played (or --yes missing with no terminal to ask on); 130 interrupted (143 by SIGTERM)."""
    with user_errors():
        from haggler.errors import ConfigError
        from haggler.grid import estimate_cells, grid_cells, load_grid_spec
        from haggler.grid.render import render_estimate

        grid = load_grid_spec(spec)
        cells = grid_cells(grid, source=str(spec))
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"--out {folder}: no such folder; create it first")
        again = command_again("selfplay-grid", spec, db)
        if report_only:
            store = require_store(db)
            try:
                _grid_report(store, cells, grid.name, folder)
            finally:
                store.close()
            return
        if dry_run:
            store = require_store(db) if db.exists() else None
            try:
                estimate = run_until_stopped(estimate_cells(cells, grid.estimate, store=store))
            finally:
                if store is not None:
                    store.close()
            _print_cells(cells)
            _show(render_estimate(estimate))
            return
        store = open_store(db)
        try:
            estimate = run_until_stopped(estimate_cells(cells, grid.estimate, store=store))
            _show(render_estimate(estimate))
            if estimate.calls():
                from haggler.grid import check_keys

                run_until_stopped(check_keys([c.cell for c in estimate.cells if c.lineages_left]))
                if not yes and not _confirm_spend():
                    err.print(
                        f"nothing was played; to play it: {escape_markup(again)}", soft_wrap=True
                    )
                    raise typer.Exit(1)
            played = _play_grid(cells, store, again)
            _grid_report(store, cells, grid.name, folder)
            if estimate.calls():
                spent = sum(store.run_cost(c.run_id) for c in cells if _run_exists(store, c.run_id))
                out.print(
                    f"[dim]${spent:.4f} spent on this grid's cells in all (estimated "
                    f"${estimate.usd():.4f} for what was left before this session)[/]"
                )
        finally:
            store.close()
        if not played.complete:
            err.print(
                f"{played.failed} lineage(s) failed; play them again with: {escape_markup(again)}",
                soft_wrap=True,
            )
            raise typer.Exit(1)


def _show(renderable: Any) -> None:
    # Wide tables (a column a round) wrap rather than squeeze in a narrow terminal.
    Console(width=max(out.width, 170), highlight=False).print(renderable)


def _confirm_spend() -> bool:
    import sys

    from haggler.errors import ConfigError

    if not sys.stdin.isatty():
        raise ConfigError("pass --yes to play it (no terminal to ask on); see the estimate above")
    return typer.confirm("Play it?", default=False)


def _run_exists(store: Any, run_id: str) -> bool:
    return any(run.id == run_id for run in store.runs())


def _print_cells(cells: Any) -> None:
    for cell in cells:
        spec = cell.spec
        out.print(
            f"[dim]cell {escape_markup(cell.describe())}: {len(spec.feedback)} arms x "
            f"{spec.lineages} lineages x {spec.rounds} rounds"
            f"{', stopping at the first failure' if spec.stop_at_first_failure else ''} "
            f"-> run {escape_markup(cell.run_id)}[/]",
            soft_wrap=True,
        )


def _play_grid(cells: Any, store: Any, again: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from haggler.errors import HagglerError
    from haggler.grid import cell_progress, run_grid

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    def stored() -> str:
        finished = sum(cell_progress(store, cell).done for cell in cells)
        planned = sum(len(c.spec.feedback) * c.spec.lineages for c in cells)
        return f"the store holds {finished} of {planned} lineages of the grid finished"

    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("grid", total=None)

            def on_cell(index: int, count: int, cell: Any, left: int) -> None:
                progress.update(
                    task,
                    description=f"cell {index + 1}/{count} ({escape_markup(cell.describe())}): games",
                    completed=0,
                    total=None,
                )

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            played = run_until_stopped(
                run_grid(cells, store=store, on_cell=on_cell, progress=advance)
            )
    except KeyboardInterrupt:
        err.print(
            f"{interruption()}: {stored()}; lineages in flight are marked failed "
            f"(interrupted). Continue with: {escape_markup(again)}",
            soft_wrap=True,
        )
        raise typer.Exit(interrupted_status()) from None
    except HagglerError as error:
        if not any(_run_exists(store, c.run_id) and store.lineages(c.run_id) for c in cells):
            raise  # nothing was played: a mistake to fix
        err.print(f"[bold red]error:[/] {escape_markup(redacted(str(error)))}", soft_wrap=True)
        err.print(
            f"{stored()}; once that is fixed, continue with: {escape_markup(again)}", soft_wrap=True
        )
        raise typer.Exit(1) from None
    for done in played.cells:
        if done.failed:
            err.print(
                f"[yellow]{done.failed} lineage(s) of cell {escape_markup(done.cell.describe())} "
                f"failed:[/] {escape_markup(redacted(done.first_error or ''))}",
                soft_wrap=True,
            )
    return played


def _grid_report(store: Any, cells: Any, name: str, folder: Path | None) -> None:
    from haggler.evals.grid_report import render_grid_report
    from haggler.grid import grid_results, write_grid_files

    results = grid_results(store, cells)
    _show(render_grid_report(results, name=name))
    if folder is not None:
        written = write_grid_files(results, folder)
        out.print(f"[dim]{len(written)} files written to {escape_markup(str(folder))}[/]")
