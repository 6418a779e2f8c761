"""`haggler tournament` and `haggler leaderboard`: a tournament played and resumed, and its
ratings.
"""

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
from haggler.cli.options import DbOption, open_store, output_path, require_store
from haggler.cli.probing import probe_kind


def tournament(
    spec: Annotated[Path, typer.Argument(help="A YAML tournament spec.")],
    executor: Annotated[
        str, typer.Option(help="Where matches run: local (asyncio) or ray.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="A Ray cluster to join (ray://host:10001 or auto).")
    ] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Play a tournament (or the rest of it: finished matches are skipped), then rank players.

    Exit status: 0 every match of the spec is played; 1 some are not (failed, not started:
    run the same command again to play them); 2 a mistake to fix, found before anything was
    played; 130 interrupted (143 by SIGTERM)."""
    with user_errors():
        from haggler.errors import SpecError
        from haggler.tournament.running import run_tournament, unfinished_matches
        from haggler.tournament.spec import load_tournament_spec

        checked = load_tournament_spec(spec)
        again = command_again("tournament", spec, db)
        if executor != "local" or address is not None:
            again += f" --executor {executor}" + (f" --address {address}" if address else "")
        store = open_store(db)
        try:
            try:
                with _LiveProgress() as live:
                    run = run_until_stopped(
                        run_tournament(
                            checked,
                            store=store,
                            executor=executor,
                            address=address,
                            on_progress=live.update,
                        )
                    )
            except SpecError as error:
                # Problems found while opening the players' models are the spec's too.
                raise SpecError(error.message, source=str(spec), field=error.field) from None
            except KeyboardInterrupt:
                from haggler.tournament.schedule import expand

                total = len(expand(checked))
                left = len(unfinished_matches(checked, store))
                err.print(
                    f"{interruption()}: {total - left} of {total} matches are stored finished "
                    f"in {store.path} (those in flight were dropped); play the other {left} "
                    f"with: {escape_markup(again)}",
                    soft_wrap=True,
                )
                raise typer.Exit(interrupted_status()) from None
            played_elsewhere = f"{run.by_other} played by another process, " if run.by_other else ""
            out.print(
                f"{run.matches} matches: {run.skipped_as_done} already played, {run.finished} "
                f"played now, {played_elsewhere}{run.failed} failed, {run.not_started} not "
                f"started; ${run.spent_usd:.4f} spent in all"
            )
            if run.stopped:
                err.print(f"[yellow]{escape_markup(run.stopped)}[/]")
            for failure in run.errors[:3]:
                err.print(f"[yellow]failed:[/] {escape_markup(redacted(failure))}")
            _leaderboard(store, run.run_id, csv=None, required=False)
            out.print(f"[dim]stored as run {run.run_id} in {store.path}[/]")
            if not run.complete:
                err.print(
                    f"{run.unfinished} of {run.matches} matches are not played yet; play them "
                    f"with: {escape_markup(again)}",
                    soft_wrap=True,
                )
        finally:
            store.close()
        if not run.complete:
            raise typer.Exit(1)


class _LiveProgress:
    """One status line, redrawn as matches start and end (on stderr, so stdout stays clean)."""

    def __enter__(self) -> _LiveProgress:
        from rich.live import Live

        self._live = Live("", console=err, transient=True, refresh_per_second=4)
        self._live.__enter__()
        return self

    def update(self, progress: Any) -> None:
        eta = progress.eta_s()
        left = f", about {eta:.0f}s left" if eta is not None else ""
        done = progress.already_done + progress.finished + progress.by_other
        elsewhere = f", {progress.by_other} by another process" if progress.by_other else ""
        self._live.update(
            f"matches: {done}/{progress.total} done ({progress.already_done} earlier"
            f"{elsewhere}), {progress.running} running, {progress.failed} failed, "
            f"${progress.spent_usd:.4f} spent{left}"
        )

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)


def _leaderboard(store: Any, run_id: str, *, csv: Path | None, required: bool = True) -> None:
    from haggler.evals import (
        coaching,
        leaderboard,
        render_coaching,
        render_leaderboard,
        render_spend,
        spend_by_game_and_role,
        write_leaderboard_csv,
    )

    if kind := probe_kind(store, run_id):
        from haggler.errors import StoreError

        what = "forgetting experiment" if kind == "unlearn-eval" else "probe run"
        raise StoreError(
            f"run {run_id} is a {what}, which ranks no players; its leak rates: "
            f"haggler report {run_id}"
        )
    current = current_matches(store, run_id)
    rows = leaderboard(store, run_id, match_ids=current)
    if not rows and not required:
        out.print("[yellow]no finished game to rank yet[/]")
        return
    if not rows:
        from haggler.errors import StoreError

        raise StoreError(
            f"run {run_id} holds no tournament games; leaderboard reads `haggler tournament` runs"
        )
    wide = Console(width=max(out.width, 150), highlight=False)
    wide.print(render_leaderboard(rows))
    coached = coaching(store, run_id, match_ids=current)
    if coached:
        wide.print(render_coaching(coached))
    wide.print(render_spend(spend_by_game_and_role(store, run_id, match_ids=current)))
    if csv is not None:
        write_leaderboard_csv(rows, csv)
        out.print(f"[dim]leaderboard written to {csv}[/]")


def current_matches(store: Any, run_id: str) -> set[str] | None:
    from haggler.tournament.schedule import current_match_ids

    run = next((r for r in store.runs() if r.id == store.resolve_run(run_id)), None)
    if run is None or run.kind != "tournament":
        return None
    return current_match_ids(run.spec)


def leaderboard_command(
    run: Annotated[
        str | None, typer.Argument(help="Tournament run id or prefix; the latest run when omitted.")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Rank a tournament's players: OpenSkill and Bradley–Terry, per role and overall."""
    with user_errors():
        output_path(csv, "--csv", (".csv",))
        store = require_store(db)
        try:
            _leaderboard(store, store.resolve_run(run), csv=csv)
        finally:
            store.close()
