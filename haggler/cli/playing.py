"""`haggler play`, `haggler selfplay` and `haggler report`: one game, a self-play run, and its
report.
"""

from __future__ import annotations

from collections.abc import Callable
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
from haggler.cli.options import DbOption, existing_store, open_store, output_path, require_store
from haggler.cli.probing import probe_kind, probe_report
from haggler.cli.tournaments import current_matches


def play(
    spec: Annotated[
        Path | None, typer.Argument(help="A YAML play spec; the offline default when omitted.")
    ] = None,
    seller: Annotated[
        str | None,
        typer.Option(
            help=(
                "Who plays the seller: rule:TACTIC, PROVIDER/MODEL, local:/path, role:NAME or "
                "package.module:Factory (other roles: in a spec)."
            )
        ),
    ] = None,
    buyer: Annotated[
        str | None, typer.Option(help="Who plays the buyer (the same forms as --seller).")
    ] = None,
    moderator: Annotated[
        str | None, typer.Option(help="Model that reads untagged messages (default: rule).")
    ] = None,
    game: Annotated[
        str | None,
        typer.Option(help="Game to play: balloon, diamond, multi-issue, or a plug-in's."),
    ] = None,
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
    with user_errors():
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
        store = open_store(db)
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
    played = run_until_stopped(play_game(spec, store=store, listeners=listeners))
    result = played.result
    from haggler.store.records import OutcomeRecord

    out.print(outcome_line(OutcomeRecord(**result.outcome.as_dict()), result.scores))
    out.print(f"[dim]stored as game {played.episode_id} (run {played.run_id}) in {store.path}[/]")


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
    with user_errors():
        from haggler.run.spec import check_selfplay_spec, read_mapping

        output_path(plot, "--plot", (".svg", ".png"))
        data = read_mapping(spec)
        overrides = {
            "rounds": rounds,
            "lineages": lineages,
            "feedback": feedback,
            "concurrency": concurrency,
        }
        data |= {key: value for key, value in overrides.items() if value is not None}
        checked = check_selfplay_spec(data, source=str(spec), base=spec.parent)
        store = existing_store(db) if resume is not None else open_store(db)
        try:
            run = _selfplay(
                checked, store, resume=resume, command=command_again("selfplay", spec, db)
            )
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

            run = run_until_stopped(
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
            f"{interruption()}: {_lineage_count(store, started[0])}; lineages in flight are "
            f"marked failed (interrupted). Continue with: "
            f"{escape_markup(f'{command} --resume {started[0]}')}",
            soft_wrap=True,
        )
        raise typer.Exit(interrupted_status()) from None
    except HagglerError as error:
        if not started or not store.lineages(started[0]):
            raise  # nothing was played: a mistake to fix, and no run worth continuing
        err.print(f"[bold red]error:[/] {escape_markup(redacted(str(error)))}", soft_wrap=True)
        err.print(
            f"{_lineage_count(store, started[0])}; once that is fixed, continue with: "
            f"{escape_markup(f'{command} --resume {started[0]}')}",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    if run.already_done:
        out.print(f"[dim]{run.already_done} of {run.planned} lineages were already played[/]")
    for arm, errors in run.failures.items():
        err.print(
            f"[yellow]{len(errors)} lineage(s) of arm {arm} failed:[/] {escape_markup(errors[0])}"
        )
    if run.failed:
        err.print(
            f"{run.failed} of {run.planned} lineages failed; play them again with: "
            f"{escape_markup(f'{command} --resume {run.run_id}')}",
            soft_wrap=True,
        )
    out.print(f"[dim]stored as run {run.run_id} in {store.path}[/]")
    return run


def _lineage_count(store: Any, run_id: str) -> str:
    finished = sum(lin.status in ("finished", "stopped") for lin in store.lineages(run_id))
    spec = next(r for r in store.runs() if r.id == run_id).spec
    planned = len(spec.get("feedback", [])) * int(spec.get("lineages", 0))
    return f"run {run_id} holds {finished} of {planned} lineages finished in {store.path}"


def _report(store: Any, run_id: str, *, plot: Path | None, csv: Path | None) -> None:
    from haggler.evals import games_of, plot_rounds, render_report, round_metrics, write_csv

    rows = round_metrics(store, run_id, match_ids=current_matches(store, run_id))
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
                f"[dim]plot{f' of {escape_markup(game)}' if len(by_game) > 1 else ''} "
                f"written to {escape_markup(str(path))}[/]"
            )
    if csv is not None:
        write_csv(rows, csv)
        out.print(f"[dim]table written to {csv} (a row per game, series and round)[/]")


def _paired_report(store: Any, run_id: str, console: Console) -> None:
    # Arms share lineage seeds: each against no feedback, seed by seed, when there is one.
    from haggler.evals.grid_report import render_effects
    from haggler.evals.paired import paired_effects

    effects = paired_effects(store, run_id, match_ids=current_matches(store, run_id))
    if effects:
        console.print(render_effects(effects))


def _per_game(path: Path, game: str) -> Path:
    """`rounds.svg` for game `diamond`: `rounds-diamond.svg`."""
    import re

    slug = re.sub(r"[^A-Za-z0-9._]+", "-", game).strip("-.") or "game"
    return path.with_name(f"{path.stem}-{slug}{path.suffix}")


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
    with user_errors():
        output_path(plot, "--plot", (".svg", ".png"))
        output_path(csv, "--csv", (".csv",))
        store = require_store(db)
        try:
            run_id = store.resolve_run(run)
            if probe_kind(store, run_id):
                # A forgetting experiment or a probe has its own report.
                output_path(plot, "--plot", (".svg",))
                probe_report(store, run_id, plot)
                return
            _report(store, run_id, plot=plot, csv=csv)
        finally:
            store.close()
