"""The `haggler` command and its terminal rendering.

`command` holds the commands (a typer app; `main` is the console script), `render` draws
stored games on a terminal, `run_summary` lists a store's runs (`haggler runs`).
"""

from haggler.cli.command import app, main

__all__ = ["app", "main"]
