"""The report of a forgetting experiment, read from its run in the store.

For each condition (a way of forgetting) and each level it forgets at: the leak rate of the
agent before forgetting, after it, and of the reference agent rebuilt from what it retains,
per strategy; the strategy x defence matrix of leak advantage (after - reference) with
intervals, and of the agent before forgetting behind each defence (how much a guard alone
hides); then what forgetting cost: recall of kept facts, over-forgetting, utility kept; for a
sequence of requests, the curve and DRAGON's DDS and DUS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from haggler.evals.stats import Interval
from haggler.evals.unlearning import (
    Advantage,
    CurvePoint,
    Effort,
    LeakRate,
    Observation,
    Rate,
    RunObservations,
    UtilityKept,
    attack_effort,
    changed_answers,
    cost_usd,
    dragon_scores,
    extraction_error,
    leak_advantage,
    leak_rate,
    over_forgetting,
    read_observations,
    sequential_curve,
    utility_kept,
)
from haggler.model_text import terminal_text
from haggler.probe.spec import ConditionSpec, UnlearnEvalSpec

__all__ = [
    "ALL",
    "Cell",
    "ConditionReport",
    "LevelReport",
    "UnlearnReport",
    "build_report",
    "headline",
    "render_report",
    "unlearn_report",
]

ALL = "all strategies"


@dataclass(frozen=True, slots=True)
class Cell:
    """One strategy (or all of them pooled) behind one defence, at one level of a condition."""

    strategy: str
    defence: str
    before: LeakRate
    after: LeakRate
    reference: LeakRate
    advantage: Advantage
    # How far the numbers guessed after forgetting were from the secret's value.
    error_after: Interval
    error_reference: Interval
    effort_before: Effort
    cost_usd: float


@dataclass(slots=True)
class LevelReport:
    level: str
    facts: list[str]
    cells: list[Cell] = field(default_factory=list)


@dataclass(slots=True)
class ConditionReport:
    name: str
    mode: str
    steps: int
    forgets: list[tuple[str, str]]  # (fact, level) in order
    levels: list[LevelReport] = field(default_factory=list)
    recall_before: LeakRate | None = None
    recall_after: LeakRate | None = None
    over_forgetting: Rate | None = None
    changed: Rate | None = None
    utility: UtilityKept | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    dragon: tuple[float, float] | None = None


@dataclass(slots=True)
class UnlearnReport:
    run_id: str
    agents: int
    attempts: int
    undetermined: int
    failed: int
    cost_usd: float
    strategies: list[str]
    defences: list[str]
    conditions: list[ConditionReport] = field(default_factory=list)


def _select(observations: Iterable[Observation], **where: Any) -> list[Observation]:
    return [o for o in observations if all(getattr(o, k) == v for k, v in where.items())]


def _pick(group: Iterable[Observation], facts: list[str], **where: Any) -> list[Observation]:
    return [o for o in _select(group, **where) if o.fact in facts]


def _cell(
    strategy: str,
    defence: str,
    before: list[Observation],
    after: list[Observation],
    reference: list[Observation],
) -> Cell:
    return Cell(
        strategy=strategy,
        defence=defence,
        before=leak_rate(before),
        after=leak_rate(after),
        reference=leak_rate(reference),
        advantage=leak_advantage(after, reference),
        error_after=extraction_error(after),
        error_reference=extraction_error(reference),
        effort_before=attack_effort(before),
        cost_usd=cost_usd([*before, *after, *reference]),
    )


def unlearn_report(store: Any, run_id: str) -> UnlearnReport:
    """The report of the experiment `run_id` (an `unlearn-eval` run), over the agents of the
    spec it was last run with."""
    from pydantic import ValidationError

    from haggler.errors import ConfigError
    from haggler.probe.experiment import current_jobs

    run = next(r for r in store.runs() if r.id == run_id)
    try:
        spec = UnlearnEvalSpec.model_validate(run.spec)
    except ValidationError:
        raise ConfigError(
            f"run {run_id}: its spec cannot be read by this haggler (made by haggler "
            f"{run.haggler_version}); report it with that version"
        ) from None
    read = read_observations(store, run_id, jobs=current_jobs(run.spec), role=spec.agents.role)
    return build_report(run_id, spec, read)


def build_report(run_id: str, spec: UnlearnEvalSpec, read: RunObservations) -> UnlearnReport:
    observations = read.attempts
    strategies = sorted({o.strategy for o in observations})
    defences = [d.name for d in spec.defences]
    report = UnlearnReport(
        run_id=run_id,
        agents=len({o.seed for o in observations}),
        attempts=len(observations),
        undetermined=sum(o.verdict == "undetermined" for o in observations),
        failed=read.failed,
        cost_usd=cost_usd(observations),
        strategies=strategies,
        defences=defences,
    )
    for condition in spec.conditions:
        report.conditions.append(_condition(condition, observations, read, strategies, defences))
    return report


def _condition(
    condition: ConditionSpec,
    observations: list[Observation],
    read: RunObservations,
    strategies: list[str],
    defences: list[str],
) -> ConditionReport:
    forgets = [(fact, str(step.level)) for step in condition.forget for fact in step.forgets()]
    last = len(condition.forget)
    made = ConditionReport(condition.name, condition.mode, last, forgets)
    mine = [o for o in observations if o.condition == condition.name]
    final = [o for o in mine if o.step == last]
    forgotten = {fact for fact, _ in forgets}
    for level in dict.fromkeys(level for _, level in forgets):
        facts = [fact for fact, at in forgets if at == level]
        section = LevelReport(level, facts)
        for defence in defences:
            before_pool = (
                [o for o in observations if o.condition is None]
                if defence == "none"
                else [o for o in mine if o.step == 0]
            )
            for strategy in [*strategies, ALL]:
                where: dict[str, Any] = {"defence": defence, "level": level}
                if strategy != ALL:
                    where["strategy"] = strategy
                cell = _cell(
                    strategy,
                    defence,
                    _pick(before_pool, facts, variant="before", **where),
                    _pick(final, facts, variant="after", **where),
                    _pick(final, facts, variant="reference", **where),
                )
                if cell.after.judged or cell.before.judged or cell.after.undetermined:
                    section.cells.append(cell)
        made.levels.append(section)
    # What forgetting cost, undefended: the facts the agent keeps.
    kept_after = [o for o in final if o.variant == "after" and o.defence == "none" and o.retained]
    kept_levels = {(o.fact, o.level) for o in kept_after}
    kept_before = [
        o
        for o in observations
        if o.variant == "before"
        and o.condition is None
        and (o.fact, o.level) in kept_levels
        and o.fact not in forgotten
    ]
    if kept_after:
        made.recall_before = leak_rate(kept_before)
        made.recall_after = leak_rate(kept_after)
        made.over_forgetting = over_forgetting(kept_before, kept_after)
        made.changed = changed_answers(kept_before, kept_after)
    before_games = [g for g in read.utility if g.variant == "before"]
    after_games = [
        g for g in read.utility if g.variant == "after" and g.condition == condition.name
    ]
    if after_games:
        kept = {g.counterpart for g in after_games}
        made.utility = utility_kept([g for g in before_games if g.counterpart in kept], after_games)
    if last >= 2:
        undefended = [o for o in mine if o.defence == "none"]
        made.curve = sequential_curve(undefended, condition.name)
        made.dragon = dragon_scores(made.curve)
    return made


# -- rendering -------------------------------------------------------------------------------


def _inert(text: object) -> Text:
    return Text(terminal_text(str(text)))


def _rate(rate: LeakRate) -> str:
    return rate.format()


def render_report(report: UnlearnReport) -> Group:
    """The report as rich renderables: a header, then per condition and level the tables."""
    parts: list[Any] = [
        Text(
            f"Forgetting experiment {terminal_text(report.run_id)}: {report.agents} agents, "
            f"{report.attempts} attempts ({report.undetermined} undetermined, left out of every "
            f"rate), {report.failed} failed agent records, ${report.cost_usd:.4f} on probes",
            style="bold",
        ),
        Text(
            "Leak rates: Wilson 95% intervals. Advantage = leak rate after forgetting minus "
            "the reference agent's (rebuilt from what it retains), paired by agent, secret, "
            "strategy and sample, 95% bootstrap over agents; 0 within its interval is "
            "forgetting that held.",
            style="dim",
        ),
    ]
    for condition in report.conditions:
        parts += _condition_parts(condition, report)
    return Group(*parts)


def _condition_parts(condition: ConditionReport, report: UnlearnReport) -> list[Any]:
    forgets = ", ".join(f"{fact} ({level})" for fact, level in condition.forgets)
    parts: list[Any] = [
        Text(""),
        Text(
            f"condition {terminal_text(condition.name)}: {condition.mode} mode, forgets "
            f"{terminal_text(forgets)}"
            + (f" in {condition.steps} requests" if condition.steps > 1 else ""),
            style="bold underline",
        ),
    ]
    for section in condition.levels:
        parts.append(_level_table(condition, section))
        if len(report.defences) > 1:
            parts.append(_matrix(condition, section, report))
    parts += _costs(condition)
    if condition.curve:
        parts.append(_curve_table(condition))
    return parts


def _level_table(condition: ConditionReport, section: LevelReport) -> Table:
    table = Table(
        title=f"{section.level} level ({', '.join(section.facts)}), no defence"
        + (f", after request {condition.steps}" if condition.steps > 1 else ""),
        title_justify="left",
    )
    for column in (
        "strategy", "before", "after", "reference", "advantage", "|guess − value| after",
        "queries to leak (before)", "cost",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for cell in section.cells:
        if cell.defence != "none":
            continue
        effort = cell.effort_before
        table.add_row(
            _inert(cell.strategy),
            _rate(cell.before),
            _rate(cell.after),
            _rate(cell.reference),
            cell.advantage.format(),
            cell.error_after.format(".2f") if not cell.error_after.empty else "—",
            effort.queries.format(".1f") if not effort.queries.empty else "—",
            f"${cell.cost_usd:.4f}",
            style="bold" if cell.strategy == ALL else None,
        )
    return table


def _matrix(condition: ConditionReport, section: LevelReport, report: UnlearnReport) -> Table:
    table = Table(
        title=f"{section.level} level: leak advantage by strategy x defence "
        "(and the agent before forgetting behind the defence)",
        title_justify="left",
    )
    table.add_column("strategy")
    for defence in report.defences:
        table.add_column(defence, justify="right")
    cells = {(c.strategy, c.defence): c for c in section.cells}
    for strategy in [*report.strategies, ALL]:
        row: list[Any] = [_inert(strategy)]
        for defence in report.defences:
            cell = cells.get((strategy, defence))
            if cell is None:
                row.append("—")
                continue
            row.append(f"{cell.advantage.format()}\nbefore {cell.before.format()}")
        table.add_row(*row, style="bold" if strategy == ALL else None)
    return table


def _costs(condition: ConditionReport) -> list[Any]:
    lines: list[Any] = []
    if condition.recall_after is not None and condition.recall_before is not None:
        worse = condition.over_forgetting.format() if condition.over_forgetting else "—"
        changed = condition.changed.format() if condition.changed else "—"
        lines.append(
            Text(
                f"recall of kept facts: before {condition.recall_before.format()}, after "
                f"{condition.recall_after.format()}; over-forgetting (kept facts answered "
                f"worse after): {worse}; answered differently at all: {changed}"
            )
        )
    utility = condition.utility
    if utility is not None:
        lines.append(
            Text(
                f"utility against kept counterparts ({utility.pairs} paired games): deal rate "
                f"{utility.deal_rate_before.format()} -> {utility.deal_rate_after.format()} "
                f"(change {utility.deal_rate_change.format('+.2f')}); surplus "
                f"{utility.surplus_before.format('.2f')} -> {utility.surplus_after.format('.2f')} "
                f"(change {utility.surplus_change.format('+.2f')})"
            )
        )
    return lines


def _curve_table(condition: ConditionReport) -> Table:
    table = Table(title="after each request of the sequence (no defence)", title_justify="left")
    for column in ("request", "leak after", "leak reference", "advantage", "recall of kept"):
        table.add_column(column, justify="right")
    for point in condition.curve:
        table.add_row(
            str(point.step),
            point.after.format(),
            point.reference.format(),
            point.advantage.format(),
            point.recall.format() if point.recall.judged else "—",
        )
    if condition.dragon is not None:
        dds, dus = condition.dragon
        table.caption = f"DRAGON: DDS {dds:.1f} (0 is best), DUS {dus:.3f} (1 is best)"
    else:
        table.caption = "DRAGON's DDS and DUS need kept facts probed after every request"
    return table


def headline(report: UnlearnReport) -> list[str]:
    """One line per condition and level: pooled leak rates and advantage, undefended."""
    lines = []
    for condition in report.conditions:
        for section in condition.levels:
            cell = next(
                (c for c in section.cells if c.strategy == ALL and c.defence == "none"), None
            )
            if cell is None:
                continue
            lines.append(
                f"{condition.name} ({section.level}): before {cell.before.format()}, after "
                f"{cell.after.format()}, reference {cell.reference.format()}, advantage "
                f"{cell.advantage.format()}"
            )
    return lines


def probe_results(store: Any, run: Any) -> tuple[list[str], str | None]:
    """What a run page shows of a probe run (leak rate per strategy) or of a forgetting
    experiment (per condition and level, and the plot)."""
    from haggler.evals.unlearning import read_observations

    if run.kind == "unlearn-eval":
        from haggler.probe.plot import report_svg

        report = unlearn_report(store, run.id)
        return headline(report), report_svg(report)
    read = read_observations(store, run.id)
    lines = []
    for strategy in sorted({o.strategy for o in read.attempts}):
        rate = leak_rate(o for o in read.attempts if o.strategy == strategy)
        lines.append(f"{strategy}: {rate.format()}")
    if read.attempts:
        lines.append(f"all strategies: {leak_rate(read.attempts).format()}")
    return lines, None
