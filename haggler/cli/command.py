"""The `haggler` command: play a game, show stored games, export them.

Every error a user can cause ends in one line on stderr and exit status 2; heavy modules
(LangGraph, model SDKs) load only in the commands that need them.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from haggler.errors import HagglerError, TransientModelError

app = typer.Typer(
    name="haggler",
    help="LLM negotiation games with self-play: play, inspect and export games.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

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


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn haggler's errors into one line and an exit status: 2 for what the user can fix."""
    try:
        yield
    except TransientModelError as error:
        err.print(f"[bold red]error:[/] {_escape(_redact(str(error)))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except HagglerError as error:
        err.print(f"[bold red]error:[/] {_escape(_redact(str(error)))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print(f"{_interruption()}; finished games are in the store")
        raise typer.Exit(_interrupted_status()) from None
    except OSError as error:
        # Writing a report, plot or export: the disk said no (full, read-only, a folder).
        where = f"{error.filename}: " if error.filename else ""
        err.print(f"[bold red]error:[/] {_escape(where + (error.strerror or str(error)))}")
        raise typer.Exit(2) from None
    except BaseExceptionGroup as group:
        # Games played at once (asyncio task groups) fail together, grouped: the first failure
        # a user can act on (a full disk under a self-play run) is told as if it came alone.
        first = next((e for e in _leaves(group) if isinstance(e, _TOLD)), None)
        if first is None:
            raise
        with _user_errors():
            raise first from None


_TOLD = (HagglerError, KeyboardInterrupt, OSError)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


def _redact(text: str) -> str:
    from haggler.llm.secrets import redact

    return redact(text)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _open_store(db: Path, *, read_only: bool = False) -> Any:
    from haggler.store.sqlite import Store

    return Store(db, read_only=read_only)


@app.command()
def play(
    spec: Annotated[
        Path | None, typer.Argument(help="A YAML play spec; the offline default when omitted.")
    ] = None,
    seller: Annotated[
        str | None,
        typer.Option(help="Model for the seller: rule:TACTIC, PROVIDER/MODEL or local:/path."),
    ] = None,
    buyer: Annotated[str | None, typer.Option(help="Model for the buyer.")] = None,
    moderator: Annotated[
        str | None, typer.Option(help="Model that reads untagged messages (default: rule).")
    ] = None,
    game: Annotated[str | None, typer.Option(help="Game to play: balloon, diamond, …")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the rule-based roles.")] = None,
    api_base: Annotated[
        str | None,
        typer.Option(
            help="Server for hosted roles without their own api_base (vLLM, Ollama, a proxy)."
        ),
    ] = None,
    db: DbOption = Path("haggler.db"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the outcome.")] = False,
) -> None:
    """Play one game and store it; the transcript is printed as it happens."""
    with _user_errors():
        from haggler.run.spec import check_play_spec, load_play_spec

        _check_flags(seller=seller, buyer=buyer, moderator=moderator)
        data: dict[str, Any] = {}
        source = str(spec) if spec else None
        if spec is not None:
            data = load_play_spec(spec).model_dump(exclude_unset=True)
        roles = dict(data.get("roles", {}))
        for role, model in {"seller": seller, "buyer": buyer}.items():
            if model is not None:
                roles[role] = {"model": model}
        if moderator is not None:
            data["moderator"] = {"model": moderator}
        if api_base:
            roles = {role: _with_api_base(r, api_base) for role, r in roles.items()}
            if "moderator" in data:
                data["moderator"] = _with_api_base(dict(data["moderator"]), api_base)
        if roles:
            data["roles"] = roles
        if game is not None:
            data["game"] = game
        if seed is not None:
            data["seed"] = seed
        checked = check_play_spec(data, source=source)
        store = _open_store(db)
        try:
            _play(checked, store, quiet)
        finally:
            store.close()


def _check_flags(**models: str | None) -> None:
    # A bad model named on the command line is the flag's fault, not the spec file's.
    from pydantic import ValidationError

    from haggler.errors import SpecError
    from haggler.run.spec import RoleSpec, spec_error

    for flag, model in models.items():
        if model is None:
            continue
        try:
            RoleSpec(model=model)
        except ValidationError as error:
            raise spec_error(error, f"--{flag}") from None
        if flag == "moderator" and model.startswith("rule:"):
            raise SpecError("the rule-based moderator is plain `rule`", source="--moderator")


def _output(path: Path | None, flag: str, suffixes: tuple[str, ...] = ()) -> Path | None:
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


def _with_api_base(role_spec: dict[str, Any], api_base: str) -> dict[str, Any]:
    # --api-base serves hosted roles that name no server of their own.
    model = str(role_spec.get("model", ""))
    if role_spec.get("api_base") or model.startswith(("rule", "local:")):
        return role_spec
    return role_spec | {"api_base": api_base}


def _printer(render: Callable[[Any], Any]) -> Callable[[Any], None]:
    # A closed stdout (`haggler play | head`) stops the printing, never the game or its storing.
    closed = False

    def show(turn: Any) -> None:
        nonlocal closed
        if closed:
            return
        try:
            out.print(render(turn))
        except (BrokenPipeError, OSError, SystemExit):
            # rich answers a broken pipe with SystemExit(1): here it must not end the game.
            closed = True

    return show


def _play(spec: Any, store: Any, quiet: bool) -> None:
    from haggler.cli.render import outcome_line, turn_line
    from haggler.run.play import play as play_game

    listeners: list[Callable[[Any], None]] = [] if quiet else [_printer(turn_line)]
    played = _run(play_game(spec, store=store, listeners=listeners))
    result = played.result
    from haggler.store.records import OutcomeRecord

    out.print(outcome_line(OutcomeRecord(**result.outcome.as_dict()), result.scores))
    out.print(f"[dim]stored as game {played.episode_id} (run {played.run_id}) in {store.path}[/]")


@app.command()
def selfplay(
    spec: Annotated[Path, typer.Argument(help="A YAML self-play spec.")],
    rounds: Annotated[int | None, typer.Option(help="Rounds per lineage.")] = None,
    lineages: Annotated[int | None, typer.Option(help="Lineages per feedback arm.")] = None,
    feedback: Annotated[
        str | None, typer.Option(help="Arms to run, comma-separated: ai, none, constant, human.")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Lineages played at once.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Also write the price/deal-rate plot (.svg or .png).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue this run of the same spec (id or prefix): play again, from round 1, "
            "the lineages it does not hold finished."
        ),
    ] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Self-play: rounds of play, critic feedback and memory; prints the paper-style report.

    Exit status: 0 every lineage finished; 1 some did not (continue with --resume); 2 a
    mistake to fix, found before anything was played; 130 interrupted (143 by SIGTERM)."""
    with _user_errors():
        from haggler.run.spec import check_selfplay_spec, read_mapping

        _output(plot, "--plot", (".svg", ".png"))
        data = read_mapping(spec)
        overrides = {
            "rounds": rounds,
            "lineages": lineages,
            "feedback": feedback,
            "concurrency": concurrency,
        }
        data |= {key: value for key, value in overrides.items() if value is not None}
        checked = check_selfplay_spec(data, source=str(spec), base=spec.parent)
        store = _existing_store(db) if resume is not None else _open_store(db)
        try:
            run = _selfplay(checked, store, resume=resume, command=_again("selfplay", spec, db))
            _report(store, run.run_id, plot=plot, csv=None)
        finally:
            store.close()
        if run.failed:
            raise typer.Exit(1)


def _selfplay(spec: Any, store: Any, *, resume: str | None, command: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from haggler.errors import HagglerError
    from haggler.run.experiment import check_continuation
    from haggler.run.experiment import selfplay as run_selfplay

    started: list[str] = []
    if resume is not None:
        started.append(store.resolve_run(resume))
        check_continuation(spec, store, started[0])
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            # It counts games: one per round of every lineage still to play, of every arm.
            task = progress.add_task("games played", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            run = _run(
                run_selfplay(
                    spec,
                    store=store,
                    progress=advance,
                    run_id=started[0] if started else None,
                    on_run=started.append,
                )
            )
    except KeyboardInterrupt:
        if not started:
            raise  # nothing stored yet
        err.print(
            f"{_interruption()}: {_lineage_count(store, started[0])}; lineages in flight are "
            f"marked failed (interrupted). Continue with: "
            f"{_escape(f'{command} --resume {started[0]}')}",
            soft_wrap=True,
        )
        raise typer.Exit(_interrupted_status()) from None
    except HagglerError as error:
        if not started or not store.lineages(started[0]):
            raise  # nothing was played: a mistake to fix, and no run worth continuing
        err.print(f"[bold red]error:[/] {_escape(_redact(str(error)))}", soft_wrap=True)
        err.print(
            f"{_lineage_count(store, started[0])}; once that is fixed, continue with: "
            f"{_escape(f'{command} --resume {started[0]}')}",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    if run.already_done:
        out.print(f"[dim]{run.already_done} of {run.planned} lineages were already played[/]")
    for arm, errors in run.failures.items():
        err.print(f"[yellow]{len(errors)} lineage(s) of arm {arm} failed:[/] {_escape(errors[0])}")
    if run.failed:
        err.print(
            f"{run.failed} of {run.planned} lineages failed; play them again with: "
            f"{_escape(f'{command} --resume {run.run_id}')}",
            soft_wrap=True,
        )
    out.print(f"[dim]stored as run {run.run_id} in {store.path}[/]")
    return run


def _lineage_count(store: Any, run_id: str) -> str:
    finished = sum(lin.status in ("finished", "stopped") for lin in store.lineages(run_id))
    spec = next(r for r in store.runs() if r.id == run_id).spec
    planned = len(spec.get("feedback", [])) * int(spec.get("lineages", 0))
    return f"run {run_id} holds {finished} of {planned} lineages finished in {store.path}"


def _again(command: str, spec: Path, db: Path) -> str:
    """The command line that continues this one's work."""
    import shlex

    return f"haggler {command} {shlex.quote(str(spec))} --db {shlex.quote(str(db))}"


def _report(store: Any, run_id: str, *, plot: Path | None, csv: Path | None) -> None:
    from haggler.evals import games_of, plot_rounds, render_report, round_metrics, write_csv

    rows = round_metrics(store, run_id, match_ids=_current_matches(store, run_id))
    if not rows:
        from haggler.errors import StoreError

        raise StoreError(
            f"run {run_id} holds no self-play rounds; report reads `haggler selfplay` runs and "
            f"tournaments on a self-play schedule (`haggler leaderboard` ranks a tournament)"
        )
    # The paper-style table has ten columns: squeezed into 80, every header gets cut; a
    # narrow terminal wraps the wide lines instead, which stays readable.
    wide = Console(width=max(out.width, 150), highlight=False)
    wide.print(render_report(rows))
    _paired_report(store, run_id, wide)
    if plot is not None:
        # One plot per game: their prices do not share an axis, let alone a mean.
        by_game = games_of(rows)
        for game, members in by_game.items():
            path = plot if len(by_game) == 1 else _per_game(plot, game)
            plot_rounds(members, path)
            out.print(
                f"[dim]plot{f' of {_escape(game)}' if len(by_game) > 1 else ''} "
                f"written to {_escape(str(path))}[/]"
            )
    if csv is not None:
        write_csv(rows, csv)
        out.print(f"[dim]table written to {csv} (a row per game, series and round)[/]")


def _paired_report(store: Any, run_id: str, console: Console) -> None:
    # Arms share lineage seeds: each against no feedback, seed by seed, when there is one.
    from haggler.evals.grid_report import render_effects
    from haggler.evals.paired import paired_effects

    effects = paired_effects(store, run_id, match_ids=_current_matches(store, run_id))
    if effects:
        console.print(render_effects(effects))


def _per_game(path: Path, game: str) -> Path:
    """`rounds.svg` for game `diamond`: `rounds-diamond.svg`."""
    import re

    slug = re.sub(r"[^A-Za-z0-9._]+", "-", game).strip("-.") or "game"
    return path.with_name(f"{path.stem}-{slug}{path.suffix}")


@app.command()
def report(
    run: Annotated[
        str | None, typer.Argument(help="Run id or prefix; the latest run when omitted.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write price and deal rate by round (.svg or .png).")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the per-round table as CSV.")] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """The paper-style table of a self-play run: price and deal rate by round and arm (of a
    probe run or a forgetting experiment: its leak rates)."""
    with _user_errors():
        _output(plot, "--plot", (".svg", ".png"))
        _output(csv, "--csv", (".csv",))
        store = _require_store(db)
        try:
            run_id = store.resolve_run(run)
            if _probe_kind(store, run_id):
                # A forgetting experiment or a probe has its own report.
                _output(plot, "--plot", (".svg",))
                _probe_report(store, run_id, plot)
                return
            _report(store, run_id, plot=plot, csv=csv)
        finally:
            store.close()


@app.command()
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
    with _user_errors():
        from haggler.errors import SpecError
        from haggler.tournament.running import run_tournament, unfinished_matches
        from haggler.tournament.spec import load_tournament_spec

        checked = load_tournament_spec(spec)
        again = _again("tournament", spec, db)
        if executor != "local" or address is not None:
            again += f" --executor {executor}" + (f" --address {address}" if address else "")
        store = _open_store(db)
        try:
            try:
                with _LiveProgress() as live:
                    run = _run(
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
                    f"{_interruption()}: {total - left} of {total} matches are stored finished "
                    f"in {store.path} (those in flight were dropped); play the other {left} "
                    f"with: {_escape(again)}",
                    soft_wrap=True,
                )
                raise typer.Exit(_interrupted_status()) from None
            played_elsewhere = f"{run.by_other} played by another process, " if run.by_other else ""
            out.print(
                f"{run.matches} matches: {run.skipped_as_done} already played, {run.finished} "
                f"played now, {played_elsewhere}{run.failed} failed, {run.not_started} not "
                f"started; ${run.spent_usd:.4f} spent in all"
            )
            if run.stopped:
                err.print(f"[yellow]{_escape(run.stopped)}[/]")
            for failure in run.errors[:3]:
                err.print(f"[yellow]failed:[/] {_escape(_redact(failure))}")
            _leaderboard(store, run.run_id, csv=None, required=False)
            out.print(f"[dim]stored as run {run.run_id} in {store.path}[/]")
            if not run.complete:
                err.print(
                    f"{run.unfinished} of {run.matches} matches are not played yet; play them "
                    f"with: {_escape(again)}",
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

    if kind := _probe_kind(store, run_id):
        from haggler.errors import StoreError

        what = "forgetting experiment" if kind == "unlearn-eval" else "probe run"
        raise StoreError(
            f"run {run_id} is a {what}, which ranks no players; its leak rates: "
            f"haggler report {run_id}"
        )
    current = _current_matches(store, run_id)
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


def _current_matches(store: Any, run_id: str) -> set[str] | None:
    from haggler.tournament.schedule import current_match_ids

    run = next((r for r in store.runs() if r.id == store.resolve_run(run_id)), None)
    if run is None or run.kind != "tournament":
        return None
    return current_match_ids(run.spec)


@app.command("leaderboard")
def leaderboard_command(
    run: Annotated[
        str | None, typer.Argument(help="Tournament run id or prefix; the latest run when omitted.")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Rank a tournament's players: OpenSkill and Bradley–Terry, per role and overall."""
    with _user_errors():
        _output(csv, "--csv", (".csv",))
        store = _require_store(db)
        try:
            _leaderboard(store, store.resolve_run(run), csv=csv)
        finally:
            store.close()


@app.command()
def runs(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead, one object a run.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many runs (the latest).")] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """List the store's runs: kind, size, status, spend, when made and last active."""
    with _user_errors():
        from haggler.cli.run_summary import summarize_runs

        if limit is not None and not 1 <= limit <= 10**9:
            from haggler.errors import ConfigError

            raise ConfigError(f"--limit {limit}: give a number of runs, 1 or more")
        store = _require_store(db)
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
                f"store {_escape(str(db))} holds no runs yet; run `haggler play` first",
                soft_wrap=True,
            )
            return
        from haggler.cli.run_summary import run_table

        wide = Console(width=max(out.width, 140), highlight=False)
        wide.print(run_table(summaries, title=_escape(f"runs in {db}")))


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


@app.command()
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
    with _user_errors():
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
        store = _require_store(db)
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
                wide.print(episode_list(games, title=_escape(title)))
                return
            if game is None and (run is not None or not where.is_empty()):
                run_id = store.resolve_run(run)
                latest = store.find_episodes(run_id, where, limit=1, latest_first=True)
                if not latest:
                    raise _no_games(run_id, where)
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


def _no_games(run: str, where: Any = None) -> HagglerError:
    from haggler.errors import StoreError

    if where is not None and not where.is_empty():
        return StoreError(f"run {run!r} holds no game where {where.describe()}; loosen the filters")
    return StoreError(f"run {run!r} holds no games")


def _existing_store(db: Path) -> Any:
    # For commands that write to a store that must already be there (resuming a run, making
    # agents forget): a missing one is not created.
    if not db.exists():
        from haggler.errors import StoreError

        raise StoreError(f"store {db}: no such file; pass the store that holds it with --db")
    return _open_store(db)


def _require_store(db: Path) -> Any:
    # For commands that only read: a missing store is not created, a read-only one is read.
    return _open_store(db, read_only=True)


@app.command()
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
    with _user_errors():
        from haggler.store.query import GameFilter

        report = _export_kind(output) == "html"
        _output(output, "-o")
        where = GameFilter.of(
            outcome=outcome,
            player=player,
            role=role,
            round=round_,
            text=search,
            lineage=lineage,
            arm=arm,
        )
        store = _require_store(db)
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


@app.command()
def view(
    db_path: Annotated[
        Path | None, typer.Argument(help="The store to read; --db or haggler.db when omitted.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Read runs and games in a local web viewer (127.0.0.1 only; no network needed)."""
    with _user_errors():
        from haggler.errors import ConfigError
        from haggler.view import make_server

        if not 0 <= port <= 65535:
            raise ConfigError(f"--port {port} is not a port; use 1-65535, or 0 for any free one")
        server = make_server(db_path or db, port)
        out.print(f"haggler viewer on {server.url} (reading {server.db}); Ctrl-C stops it")
        # A plain `kill` stops it as Ctrl-C does: the worker process goes with it.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            out.print("viewer stopped")
        finally:
            server.server_close()


@app.command("forget")
def forget_command(
    agent: Annotated[
        str,
        typer.Argument(
            help="Whose memory forgets: an agent's name (a run's agents share a prefix, such as "
            "run-…/ai/0/seller or a named agent), or * for every agent of the store."
        ),
    ],
    request: Annotated[
        str,
        typer.Argument(
            help="What to forget, in words (docs/forgetting.md); with --level, a plain phrase, "
            "value or id will do."
        ),
    ],
    level: Annotated[
        str | None,
        typer.Option(help="state (a fact), trajectory (a game, lineage, turns) or environment."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="exact (remove what it influenced too), redact or rederive; the words may say "
            "it instead, and exact is the default."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be forgotten; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Carry it out without asking.")] = False,
    purge_record: Annotated[
        bool,
        typer.Option(
            "--purge-record", help="Also delete or scrub it from the games, turns and critiques."
        ),
    ] = False,
    vacuum: Annotated[
        bool, typer.Option(help="Also rebuild the database file afterwards (slow on a big store).")
    ] = False,
    unlearner: Annotated[
        str, typer.Option(help="Who reads the request: rule (the grammar) or a model.")
    ] = "rule",
    db: DbOption = Path("haggler.db"),
) -> None:
    """Make agents forget a fact, a game or an environment: shows the plan, then carries it out."""
    with _user_errors():
        import asyncio
        import sys

        from haggler.errors import ConfigError
        from haggler.memory.forgetting import LEVELS, MODES, describe_plan
        from haggler.run.forgetting import carry_out_for, read_request

        if level is not None and level not in LEVELS:
            raise ConfigError(f"--level {level}: choose one of {', '.join(LEVELS)}")
        if mode is not None and mode not in MODES:
            raise ConfigError(f"--mode {mode}: choose one of {', '.join(MODES)}")
        # A dry run only reads; forgetting writes (and refuses a store it cannot write).
        store = _require_store(db) if dry_run else _existing_store(db)
        try:
            read = asyncio.run(
                read_request(
                    store, agent, request, level=level, mode=mode, purge_record=purge_record,
                    unlearner=unlearner,
                )
            )  # fmt: skip
            if read.plan.is_empty():
                raise ConfigError(
                    f"the request selects nothing in the memory of {agent!r}; check the words "
                    "(docs/forgetting.md) or name another agent"
                )
            out.print(_escape(describe_plan(read.plan, read.memories)), soft_wrap=True)
            if dry_run:
                out.print("[dim]dry run: nothing was changed[/]")
                return
            if not yes:
                if not sys.stdin.isatty():
                    raise ConfigError("pass --yes to carry it out (no terminal to ask on)")
                if not typer.confirm("Carry it out?", default=False):
                    out.print("nothing was changed")
                    return
            done = asyncio.run(carry_out_for(store, read, vacuum=vacuum))
        finally:
            store.close()
        counts = done.counts
        out.print(
            f"forgotten ({read.plan.request.mode}): {counts.get('deleted', 0):.0f} items deleted, "
            f"{counts.get('redacted', 0):.0f} redacted, {counts.get('rederived', 0):.0f} "
            f"re-derived across {len(done.owners)} agent(s); audit {done.forgetting_id}"
        )
        if done.erased is False:
            err.print(
                "[yellow]another process holds the store open: the removed bytes leave its "
                "write-ahead log when the last process using the store closes it[/]"
            )


@app.command("memory")
def memory_command(
    agent: Annotated[
        str | None,
        typer.Argument(help="An agent's name (or a prefix of names); all agents when omitted."),
    ] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Show what agents remember: items, sizes, and where each came from (provenance)."""
    with _user_errors():
        from haggler.memory.forgetting import load_agents, resolve_agents
        from haggler.run.forgetting import memory_table, memory_tree

        store = _require_store(db)
        try:
            if agent is None:
                if not store.memory_owners():
                    out.print(f"no agent holds memory in {_escape(str(db))}")
                    return
                out.print(memory_table(store, resolve_agents(["*"], store=store, memories={})))
                return
            memories = load_agents([agent], store=store)
            if len(memories) > 1:
                out.print(memory_table(store, list(memories)))
                return
            (memory,) = memories.values()
            out.print(memory_tree(memory))
        finally:
            store.close()


@app.command("selfplay-grid")
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
    with _user_errors():
        from haggler.errors import ConfigError
        from haggler.grid import estimate_cells, grid_cells, load_grid_spec
        from haggler.grid.render import render_estimate

        grid = load_grid_spec(spec)
        cells = grid_cells(grid, source=str(spec))
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"--out {folder}: no such folder; create it first")
        again = _again("selfplay-grid", spec, db)
        if report_only:
            store = _require_store(db)
            try:
                _grid_report(store, cells, grid.name, folder)
            finally:
                store.close()
            return
        if dry_run:
            store = _require_store(db) if db.exists() else None
            try:
                estimate = _run(estimate_cells(cells, grid.estimate, store=store))
            finally:
                if store is not None:
                    store.close()
            _print_cells(cells)
            _show(render_estimate(estimate))
            return
        store = _open_store(db)
        try:
            estimate = _run(estimate_cells(cells, grid.estimate, store=store))
            _show(render_estimate(estimate))
            if estimate.calls():
                from haggler.grid import check_keys

                _run(check_keys([c.cell for c in estimate.cells if c.lineages_left]))
                if not yes and not _confirm_spend():
                    err.print(f"nothing was played; to play it: {_escape(again)}", soft_wrap=True)
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
                f"{played.failed} lineage(s) failed; play them again with: {_escape(again)}",
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
            f"[dim]cell {_escape(cell.describe())}: {len(spec.feedback)} arms x "
            f"{spec.lineages} lineages x {spec.rounds} rounds"
            f"{', stopping at the first failure' if spec.stop_at_first_failure else ''} "
            f"-> run {_escape(cell.run_id)}[/]",
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
                    description=f"cell {index + 1}/{count} ({_escape(cell.describe())}): games",
                    completed=0,
                    total=None,
                )

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            played = _run(run_grid(cells, store=store, on_cell=on_cell, progress=advance))
    except KeyboardInterrupt:
        err.print(
            f"{_interruption()}: {stored()}; lineages in flight are marked failed "
            f"(interrupted). Continue with: {_escape(again)}",
            soft_wrap=True,
        )
        raise typer.Exit(_interrupted_status()) from None
    except HagglerError as error:
        if not any(_run_exists(store, c.run_id) and store.lineages(c.run_id) for c in cells):
            raise  # nothing was played: a mistake to fix
        err.print(f"[bold red]error:[/] {_escape(_redact(str(error)))}", soft_wrap=True)
        err.print(
            f"{stored()}; once that is fixed, continue with: {_escape(again)}", soft_wrap=True
        )
        raise typer.Exit(1) from None
    for done in played.cells:
        if done.failed:
            err.print(
                f"[yellow]{done.failed} lineage(s) of cell {_escape(done.cell.describe())} "
                f"failed:[/] {_escape(_redact(done.first_error or ''))}",
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
        out.print(f"[dim]{len(written)} files written to {_escape(str(folder))}[/]")


@app.command("probe")
def probe_command(
    agent: Annotated[
        str, typer.Argument(help="The agent to probe, by name, as `haggler memory` lists them.")
    ],
    secret: Annotated[
        str,
        typer.Option(
            help="What it should not know: a price ($14), a name, a phrase, a code.",
            show_default=False,
        ),
    ],
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            help="A strategy to run (repeat for several); every black-box one that fits when "
            "omitted.",
        ),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(help="What the secret is, in words an attacker may ask with."),
    ] = None,
    level: Annotated[
        str, typer.Option(help="The level it was forgotten at: state, trajectory or environment.")
    ] = "state",
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge",
            help="A judge (repeat for several; the first one's verdict counts); numeric for a "
            "price, exact otherwise, when omitted.",
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Attempts per strategy.")] = 5,
    max_queries: Annotated[int, typer.Option(help="Replies one attempt may ask for.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the strategies' choices.")] = 0,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Probe an agent for something it should not know; every attempt is stored as a game of
    a new probe run. Ends with the leak rate and its 95% interval."""
    with _user_errors():
        from haggler.probe import probe_agent, secret_from_text

        told = secret_from_text(secret, topic=topic, level=level)
        store = _existing_store(db)
        try:
            run = _run(
                probe_agent(
                    store, agent, told, strategies=strategy, judges=judge, samples=samples,
                    max_queries=max_queries, seed=seed,
                )
            )  # fmt: skip
        finally:
            store.close()
        for name, rate in run.by_strategy.items():
            out.print(f"  {_escape(name)}: {rate.format()}", soft_wrap=True)
        overall = run.overall
        out.print(f"[dim]stored as run {run.run_id} in {_escape(str(db))} (${run.cost_usd:.4f})[/]")
        if overall is None or overall.interval.empty:
            undetermined = overall.undetermined if overall else 0
            out.print(f"leak rate: — (no attempt could be judged: {undetermined} undetermined)")
            return
        if overall.undetermined:
            out.print(
                f"{overall.undetermined} undetermined verdict(s) left out of the rate "
                f"({overall.judged} judged)"
            )
        interval = overall.interval
        out.print(f"leak rate: {interval.value:.2f} [{interval.low:.2f}, {interval.high:.2f}]")


@app.command("unlearn-eval")
def unlearn_eval_command(
    spec: Annotated[Path, typer.Argument(help="A YAML forgetting-experiment spec.")],
    plot: Annotated[
        Path | None, typer.Option(help="Also write the leak rates by strategy (.svg).")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="Where agents run: local (asyncio) or ray.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="A Ray cluster to join (ray://host:10001 or auto).")
    ] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Run a forgetting experiment (or the rest of it: finished agents are skipped): make the
    agents, make them forget, probe them beside the reference agent, and report.

    Exit status: 0 every agent of the spec is done; 1 some are not (failed, not started:
    run the same command again); 2 a mistake to fix, found before anything ran; 130
    interrupted (143 by SIGTERM)."""
    with _user_errors():
        from haggler.errors import SpecError
        from haggler.probe.experiment import unfinished_jobs, unlearn_eval
        from haggler.probe.spec import load_unlearn_spec

        _output(plot, "--plot", (".svg",))
        checked = load_unlearn_spec(spec)
        again = _again("unlearn-eval", spec, db)
        if executor != "local" or address is not None:
            again += f" --executor {executor}" + (f" --address {address}" if address else "")
        store = _open_store(db)
        try:
            try:
                with _AgentProgress() as live:
                    run = _run(
                        unlearn_eval(
                            checked, store=store, executor=executor, address=address,
                            on_progress=live.update,
                        )
                    )  # fmt: skip
            except SpecError as error:
                raise SpecError(error.message, source=str(spec), field=error.field) from None
            except KeyboardInterrupt:
                from haggler.probe.job import expand

                total = len(expand(checked))
                left = len(unfinished_jobs(checked, store))
                err.print(
                    f"{_interruption()}: {total - left} of {total} agents are stored finished "
                    f"in {store.path} (those in flight were dropped); run the other {left} "
                    f"with: {_escape(again)}",
                    soft_wrap=True,
                )
                raise typer.Exit(_interrupted_status()) from None
            elsewhere = f"{run.by_other} by another process, " if run.by_other else ""
            out.print(
                f"{run.agents} agents: {run.skipped_as_done} already done, {run.finished} done "
                f"now, {elsewhere}{run.failed} failed, {run.not_started} not started; "
                f"${run.spent_usd:.4f} spent in all"
            )
            if run.stopped:
                err.print(f"[yellow]{_escape(run.stopped)}[/]")
            for failure in run.errors[:3]:
                err.print(f"[yellow]failed:[/] {_escape(_redact(failure))}")
            _unlearn_report(store, run.run_id, plot)
            out.print(f"[dim]stored as run {run.run_id} in {store.path}[/]")
            if not run.complete:
                err.print(
                    f"{run.unfinished} of {run.agents} agents are not done yet; run them with: "
                    f"{_escape(again)}",
                    soft_wrap=True,
                )
        finally:
            store.close()
        if not run.complete:
            raise typer.Exit(1)


def _probe_kind(store: Any, run_id: str) -> str | None:
    """The kind of `run_id` when it is a probe or a forgetting experiment."""
    kind = next((r.kind for r in store.runs() if r.id == run_id), None)
    return kind if kind in ("probe", "unlearn-eval") else None


def _probe_report(store: Any, run_id: str, plot: Path | None) -> None:
    if _probe_kind(store, run_id) == "unlearn-eval":
        _unlearn_report(store, run_id, plot)
        return
    from haggler.probe.report import probe_results

    if plot is not None:
        from haggler.errors import ConfigError

        raise ConfigError(f"--plot: a probe run ({run_id}) has no plot; an experiment has")
    run = next(r for r in store.runs() if r.id == run_id)
    lines, _ = probe_results(store, run)
    for line in lines or ["no attempt stored"]:
        out.print(_escape(line), soft_wrap=True)


def _unlearn_report(store: Any, run_id: str, plot: Path | None) -> None:
    from haggler.probe.plot import plot_report
    from haggler.probe.report import render_report, unlearn_report

    report = unlearn_report(store, run_id)
    wide = Console(width=max(out.width, 150), highlight=False)
    wide.print(render_report(report))
    if plot is not None:
        plot_report(report, plot)
        out.print(f"[dim]plot written to {_escape(str(plot))}[/]")


class _AgentProgress:
    """One status line for a forgetting experiment's agents (on stderr)."""

    def __enter__(self) -> _AgentProgress:
        from rich.live import Live

        self._live = Live("", console=err, transient=True, refresh_per_second=4)
        self._live.__enter__()
        return self

    def update(self, progress: Any) -> None:
        done = progress.already_done + progress.finished + progress.by_other
        self._live.update(
            f"agents: {done}/{progress.total} done ({progress.already_done} earlier), "
            f"{progress.running} running, {progress.failed} failed, "
            f"${progress.spent_usd:.4f} spent"
        )

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The signals that stopped this command's run, the latest last.
_stopped_by: list[signal.Signals] = []


def _run(coroutine: Any) -> Any:
    """`asyncio.run`, where SIGTERM (a plain `kill`, a scheduler ending the job) stops the run
    as Ctrl-C does: the main task is cancelled, so what is in flight is marked failed
    ("interrupted") or dropped, never left running, and KeyboardInterrupt is raised."""
    import asyncio

    _stopped_by.clear()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def terminated() -> None:
            _stopped_by.append(signal.SIGTERM)
            task.cancel()

        # Not on the main thread, or no signals here (Windows): Ctrl-C still works.
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, terminated)
        try:
            return await coroutine
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if _stopped_by:
            raise KeyboardInterrupt from None
        raise
    except KeyboardInterrupt:
        _stopped_by.append(signal.SIGINT)
        raise


def _interrupted_status() -> int:
    """128 + the signal's number, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + int(_stopped_by[-1] if _stopped_by else signal.SIGINT)


def _interruption() -> str:
    stopped = _stopped_by[-1] if _stopped_by else signal.SIGINT
    return "interrupted" + (" by SIGTERM" if stopped == signal.SIGTERM else "")


def main() -> None:
    app(prog_name="haggler")


if __name__ == "__main__":  # pragma: no cover
    main()
