"""The `haggler` command: play a game, show stored games, export them.

This module builds the app from the command groups beside it (`playing`, `tournaments`,
`reading`, `forgetting`, `grid`, `probing`) and holds the entry point, `main`. Every error a
user can cause ends in one line on stderr and exit status 2 (`console.user_errors`); heavy
modules (LangGraph, model SDKs) load only in the commands that need them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from haggler.cli import forgetting, grid, playing, probing, reading, tournaments
from haggler.cli.console import out

app = typer.Typer(
    name="haggler",
    help="LLM negotiation games with self-play: play, inspect and export games.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if not asked:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        out.print(f"haggler {version('haggler')}")
    except PackageNotFoundError:  # a source tree that was never installed
        out.print("haggler (not installed: no version; pip install -e . in the source tree)")
    raise typer.Exit()


@app.callback()
def _haggler(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """LLM negotiation games with self-play: play, inspect and export games."""


# The commands, in the order `haggler --help` lists them.
app.command()(playing.play)
app.command()(playing.selfplay)
app.command()(playing.report)
app.command()(tournaments.tournament)
app.command("leaderboard")(tournaments.leaderboard_command)
app.command()(reading.runs)
app.command()(reading.show)
app.command()(reading.export)
app.command()(reading.view)
app.command("forget")(forgetting.forget_command)
app.command("memory")(forgetting.memory_command)
app.command("selfplay-grid")(grid.selfplay_grid)
app.command("probe")(probing.probe_command)
app.command("unlearn-eval")(probing.unlearn_eval_command)


def main() -> None:
    app(prog_name="haggler")


if __name__ == "__main__":  # pragma: no cover
    main()
