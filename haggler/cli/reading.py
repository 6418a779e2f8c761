"""`haggler runs`, `show`, `export` and `view`: reading a store's runs and games."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from haggler.cli.console import escape_markup, interrupt, out, user_errors
from haggler.cli.options import (
    ArmOption,
    DbOption,
    LineageOption,
    OutcomeOption,
    PlayerOption,
    RoleOption,
    RoundOption,
    SearchOption,
    no_games,
    output_path,
    require_store,
)


def runs(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead, one object a run.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many runs (the latest).")] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """List the store's runs: kind, size, status, spend, when made and last active."""
    with user_errors():
        from haggler.cli.run_summary import summarize_runs

        if limit is not None and not 1 <= limit <= 10**9:
            from haggler.errors import ConfigError

            raise ConfigError(f"--limit {limit}: give a number of runs, 1 or more")
        store = require_store(db)
        try:
            summaries = summarize_runs(store)
        finally:
            store.close()
        if limit is not None:
            summaries = summaries[-limit:]
        if as_json:
            import json

            rows = [summary.model_dump(mode="json") for summary in summaries]
            # Not through rich: the JSON must reach a pipe byte for byte, never wrapped.
            _write_stdout(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
            return
        if not summaries:
            out.print(
                f"store {escape_markup(str(db))} holds no runs yet; run `haggler play` first",
                soft_wrap=True,
            )
            return
        from haggler.cli.run_summary import run_table

        wide = Console(width=max(out.width, 140), highlight=False)
        wide.print(run_table(summaries, title=escape_markup(f"runs in {db}")))


def _write_stdout(text: str) -> None:
    import os
    import sys

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # `haggler runs --json | head`: the reader has what it wanted; no error for that.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def show(
    game: Annotated[
        str | None, typer.Argument(help="Game id or prefix; the latest game when omitted.")
    ] = None,
    run: Annotated[
        str | None, typer.Option(help="List or pick games of this run (id or prefix).")
    ] = None,
    list_games: Annotated[
        bool, typer.Option("--list", help="List the games of a run instead.")
    ] = False,
    outcome: OutcomeOption = None,
    player: PlayerOption = None,
    role: RoleOption = None,
    round_: RoundOption = None,
    search: SearchOption = None,
    lineage: LineageOption = None,
    arm: ArmOption = None,
    compare: Annotated[
        int | None,
        typer.Option(help="Beside the game, round N of the same lineage, side by side."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="With --list: at most this many games (the latest).")
    ] = None,
    briefs: Annotated[bool, typer.Option(help="Also show each role's private brief.")] = False,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Show a stored game (the latest, or the latest the filters keep), list a run's games,
    or put two rounds of a lineage side by side."""
    with user_errors():
        from haggler.cli.render import episode_list, print_episode
        from haggler.store.query import GameFilter

        where = GameFilter.of(
            outcome=outcome,
            player=player,
            role=role,
            round=round_,
            text=search,
            lineage=lineage,
            arm=arm,
        )
        if limit is not None and not 1 <= limit <= 10**9:
            from haggler.errors import ConfigError

            raise ConfigError(f"--limit {limit}: give a number of games, 1 or more")
        store = require_store(db)
        try:
            if list_games:
                run_id = store.resolve_run(run)
                matching = store.count_episodes(run_id, where)
                games = store.find_episodes(run_id, where, limit=limit, latest_first=True)
                games.reverse()
                title = f"games of run {run_id}: {matching} of {store.count_episodes(run_id)}"
                if not where.is_empty():
                    title += f" where {where.describe()}"
                if len(games) < matching:
                    title += f" (the latest {len(games)} shown)"
                wide = Console(width=max(out.width, 120), highlight=False)
                wide.print(episode_list(games, title=escape_markup(title)))
                return
            if game is None and (run is not None or not where.is_empty()):
                run_id = store.resolve_run(run)
                latest = store.find_episodes(run_id, where, limit=1, latest_first=True)
                if not latest:
                    raise no_games(run_id, where)
                episode_id = latest[0].id
            else:
                episode_id = store.resolve_episode(game)
            if compare is not None:
                _show_side_by_side(store, episode_id, compare)
                return
            shown = store.episode(episode_id)
            print_episode(
                out,
                shown,
                show_briefs=briefs,
                critiques=store.critiques(episode_id=episode_id),
                forgetting=store.forgettings_by_round(shown.run_id).get(
                    (shown.lineage_id or "", shown.round or 0), []
                ),
            )
        finally:
            store.close()


def _show_side_by_side(store: Any, episode_id: str, other_round: int) -> None:
    from haggler.cli.render import side_by_side
    from haggler.errors import ConfigError

    episode = store.episode(episode_id)
    if episode.lineage_id is None:
        raise ConfigError(
            f"--compare: game {episode_id} is not a self-play round; pick a game of a lineage"
        )
    rounds = store.lineage_rounds(episode.lineage_id)
    if other_round not in rounds:
        raise ConfigError(
            f"--compare {other_round}: lineage {episode.lineage_id} played rounds "
            f"{', '.join(map(str, sorted(rounds)))}; pick one of those"
        )
    other = store.episode(rounds[other_round])
    left, right = sorted((episode, other), key=lambda e: e.round or 0)
    critiques = {e.id: store.critiques(episode_id=e.id) for e in (left, right)}
    wide = Console(width=max(out.width, 120), highlight=False)
    wide.print(side_by_side(left, right, critiques))


def export(
    run: Annotated[
        str | None, typer.Argument(help="Run id or prefix; the latest run when omitted.")
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The file to write: .jsonl (one game a line; also .json-lines or no suffix) "
            "or .html (a report).",
        ),
    ] = ...,  # type: ignore[assignment]
    outcome: OutcomeOption = None,
    player: PlayerOption = None,
    role: RoleOption = None,
    round_: RoundOption = None,
    search: SearchOption = None,
    lineage: LineageOption = None,
    arm: ArmOption = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Export a run's games (all, or those the filters keep): JSONL, or with -o FILE.html a
    static HTML report that opens from disk (for a very large run, filter first)."""
    with user_errors():
        from haggler.store.query import GameFilter

        report = _export_kind(output) == "html"
        output_path(output, "-o")
        where = GameFilter.of(
            outcome=outcome,
            player=player,
            role=role,
            round=round_,
            text=search,
            lineage=lineage,
            arm=arm,
        )
        store = require_store(db)
        try:
            run_id = store.resolve_run(run)
            if report:
                from haggler.view import write_report

                count = write_report(store, run_id, output, where)
            else:
                from haggler.store.export import export_jsonl

                count = export_jsonl(store, run_id, output, where)
        finally:
            store.close()
        out.print(f"wrote {count} game{'s' if count != 1 else ''} of run {run_id} to {output}")


def _export_kind(output: Path) -> str:
    """JSONL or an HTML report, from the file's suffix; anything else is refused before the
    store is read (`x.csv` once got JSONL under a name that promised CSV)."""
    from haggler.errors import ConfigError

    suffix = output.suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in ("", ".jsonl", ".json-lines"):
        return "jsonl"
    raise ConfigError(
        f"-o {output}: cannot write a {suffix} file; use .jsonl (JSON lines, also .json-lines "
        f"or no suffix) or .html (a report)"
    )


def view(
    db_path: Annotated[
        Path | None, typer.Argument(help="The store to read; --db or haggler.db when omitted.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Read runs and games in a local web viewer (127.0.0.1 only; no network needed)."""
    with user_errors():
        from haggler.errors import ConfigError
        from haggler.view import make_server

        if not 0 <= port <= 65535:
            raise ConfigError(f"--port {port} is not a port; use 1-65535, or 0 for any free one")
        server = make_server(db_path or db, port)
        out.print(f"haggler viewer on {server.url} (reading {server.db}); Ctrl-C stops it")
        # A plain `kill` stops it as Ctrl-C does: the worker process goes with it.
        signal.signal(signal.SIGTERM, interrupt)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            out.print("viewer stopped")
        finally:
            server.server_close()
