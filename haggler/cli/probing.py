"""`haggler probe` and `haggler unlearn-eval`: probing a stored agent, and forgetting
experiments.
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
from haggler.cli.options import DbOption, existing_store, open_store, output_path


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
    with user_errors():
        from haggler.probe import probe_agent, secret_from_text

        told = secret_from_text(secret, topic=topic, level=level)
        store = existing_store(db)
        try:
            run = run_until_stopped(
                probe_agent(
                    store, agent, told, strategies=strategy, judges=judge, samples=samples,
                    max_queries=max_queries, seed=seed,
                )
            )  # fmt: skip
        finally:
            store.close()
        for name, rate in run.by_strategy.items():
            out.print(f"  {escape_markup(name)}: {rate.format()}", soft_wrap=True)
        overall = run.overall
        out.print(
            f"[dim]stored as run {run.run_id} in {escape_markup(str(db))} (${run.cost_usd:.4f})[/]"
        )
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
    with user_errors():
        from haggler.errors import SpecError
        from haggler.probe.experiment import unfinished_jobs, unlearn_eval
        from haggler.probe.spec import load_unlearn_spec

        output_path(plot, "--plot", (".svg",))
        checked = load_unlearn_spec(spec)
        again = command_again("unlearn-eval", spec, db)
        if executor != "local" or address is not None:
            again += f" --executor {executor}" + (f" --address {address}" if address else "")
        store = open_store(db)
        try:
            try:
                with _AgentProgress() as live:
                    run = run_until_stopped(
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
                    f"{interruption()}: {total - left} of {total} agents are stored finished "
                    f"in {store.path} (those in flight were dropped); run the other {left} "
                    f"with: {escape_markup(again)}",
                    soft_wrap=True,
                )
                raise typer.Exit(interrupted_status()) from None
            elsewhere = f"{run.by_other} by another process, " if run.by_other else ""
            out.print(
                f"{run.agents} agents: {run.skipped_as_done} already done, {run.finished} done "
                f"now, {elsewhere}{run.failed} failed, {run.not_started} not started; "
                f"${run.spent_usd:.4f} spent in all"
            )
            if run.stopped:
                err.print(f"[yellow]{escape_markup(run.stopped)}[/]")
            for failure in run.errors[:3]:
                err.print(f"[yellow]failed:[/] {escape_markup(redacted(failure))}")
            _unlearn_report(store, run.run_id, plot)
            out.print(f"[dim]stored as run {run.run_id} in {store.path}[/]")
            if not run.complete:
                err.print(
                    f"{run.unfinished} of {run.agents} agents are not done yet; run them with: "
                    f"{escape_markup(again)}",
                    soft_wrap=True,
                )
        finally:
            store.close()
        if not run.complete:
            raise typer.Exit(1)


def probe_kind(store: Any, run_id: str) -> str | None:
    """The kind of `run_id` when it is a probe or a forgetting experiment."""
    kind = next((r.kind for r in store.runs() if r.id == run_id), None)
    return kind if kind in ("probe", "unlearn-eval") else None


def probe_report(store: Any, run_id: str, plot: Path | None) -> None:
    if probe_kind(store, run_id) == "unlearn-eval":
        _unlearn_report(store, run_id, plot)
        return
    from haggler.probe.report import probe_results

    if plot is not None:
        from haggler.errors import ConfigError

        raise ConfigError(f"--plot: a probe run ({run_id}) has no plot; an experiment has")
    run = next(r for r in store.runs() if r.id == run_id)
    lines, _ = probe_results(store, run)
    for line in lines or ["no attempt stored"]:
        out.print(escape_markup(line), soft_wrap=True)


def _unlearn_report(store: Any, run_id: str, plot: Path | None) -> None:
    from haggler.probe.plot import plot_report
    from haggler.probe.report import render_report, unlearn_report

    report = unlearn_report(store, run_id)
    wide = Console(width=max(out.width, 150), highlight=False)
    wide.print(render_report(report))
    if plot is not None:
        plot_report(report, plot)
        out.print(f"[dim]plot written to {escape_markup(str(plot))}[/]")


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
