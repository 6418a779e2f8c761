"""What the commands share on their command lines: the store (`--db`) and how it is opened,
the filters of games, and output paths checked before any work is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from haggler.errors import HagglerError

DbOption = Annotated[
    Path,
    typer.Option("--db", envvar="HAGGLER_DB", help="The store (SQLite file).", show_default=True),
]

OutcomeOption = Annotated[
    str | None,
    typer.Option(
        help="Games that came to: deal, no_deal, invalid, failed or running (probe attempts: "
        "leak, no_leak, undetermined)."
    ),
]
PlayerOption = Annotated[
    str | None, typer.Option(help="Games with this player (or model, outside tournaments).")
]
RoleOption = Annotated[
    str | None,
    typer.Option(
        help="With --player: the player in this role; with --search: said by (or feedback "
        "to) this role; alone: games that have this role."
    ),
]
RoundOption = Annotated[int | None, typer.Option("--round", help="Self-play round (from 1).")]
ArmOption = Annotated[str | None, typer.Option(help="Games of this feedback arm.")]
LineageOption = Annotated[
    str | None, typer.Option(help="Games of this self-play lineage (id or prefix).")
]
SearchOption = Annotated[
    str | None,
    typer.Option(help="Words in the messages or the critic's feedback (case folds ASCII only)."),
]


def open_store(db: Path, *, read_only: bool = False) -> Any:
    from haggler.store.sqlite import Store

    return Store(db, read_only=read_only)


def output_path(path: Path | None, flag: str, suffixes: tuple[str, ...] = ()) -> Path | None:
    """Check an output path before any work is done: a typo must not cost a whole run.
    `suffixes`: the kinds of file it may be; any when empty."""
    from haggler.errors import ConfigError

    if path is None:
        return None
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {path}: write a {' or '.join(suffixes)} file")
    if not path.parent.is_dir():
        raise ConfigError(f"{flag} {path}: folder {path.parent} does not exist; create it first")
    if path.suffix.lower() == ".png":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{flag} {path}: PNG needs matplotlib (pip install matplotlib); write .svg instead"
            ) from None
    return path


def no_games(run: str, where: Any = None) -> HagglerError:
    from haggler.errors import StoreError

    if where is not None and not where.is_empty():
        return StoreError(f"run {run!r} holds no game where {where.describe()}; loosen the filters")
    return StoreError(f"run {run!r} holds no games")


def existing_store(db: Path) -> Any:
    # For commands that write to a store that must already be there (resuming a run, making
    # agents forget): a missing one is not created.
    if not db.exists():
        from haggler.errors import StoreError

        raise StoreError(f"store {db}: no such file; pass the store that holds it with --db")
    return open_store(db)


def require_store(db: Path) -> Any:
    # For commands that only read: a missing store is not created, a read-only one is read.
    return open_store(db, read_only=True)
