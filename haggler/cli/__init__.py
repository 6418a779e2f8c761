"""The `haggler` command and its terminal rendering.

`command` builds the app and holds `main`, the console script; the commands live in one module
per group (`playing`, `tournaments`, `reading`, `forgetting`, `grid`, `probing`) over what they
share (`console`: the terminal and how a command ends; `options`: the store and the filters).
`render` draws stored games on a terminal, `run_summary` lists a store's runs (`haggler runs`).
"""

from haggler.cli.command import app, main

__all__ = ["app", "main"]
