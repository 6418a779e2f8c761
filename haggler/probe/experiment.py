"""Running a forgetting experiment on the tournament's executor: `haggler unlearn-eval SPEC`.

Each agent is a job (`haggler.probe.job`) with an id derived from what decides its results;
its games and attempts are stored whole when it ends, in one transaction, so a crash —
`kill -9` included — loses only the agents in flight, and rerunning the same spec plays only
those. Agents run concurrently (`concurrency`), each provider within its rate limits; a
budget stops the starting of new agents once reached, and a refused API key stops it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from haggler.errors import ConfigError, SpecError
from haggler.executors import make_executor
from haggler.probe.job import AgentJob, JobResult, expand, play_agent_job
from haggler.probe.spec import UnlearnEvalSpec, check_unlearn_spec
from haggler.store.sqlite import Store

__all__ = [
    "UnlearnEvalProgress",
    "UnlearnEvalRun",
    "current_jobs",
    "run_id_of",
    "unfinished_jobs",
    "unlearn_eval",
]

RUN_KIND = "unlearn-eval"


@dataclass(slots=True)
class UnlearnEvalProgress:
    """Live counts of agents, for a progress display."""

    total: int
    already_done: int
    running: int = 0
    finished: int = 0
    by_other: int = 0
    failed: int = 0
    spent_usd: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class UnlearnEvalRun:
    """How a run of an experiment went; every agent of the spec is counted once:
    agents = skipped_as_done + finished + by_other + failed + not_started."""

    run_id: str
    agents: int
    skipped_as_done: int
    finished: int = 0
    by_other: int = 0
    failed: int = 0
    not_started: int = 0
    spent_usd: float = 0.0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)
    # Agents of the spec the store does not hold finished once the run ended.
    unfinished: int = 0

    @property
    def complete(self) -> bool:
        return self.unfinished == 0


def run_id_of(spec: UnlearnEvalSpec) -> str:
    """An experiment's run is named after it, so a rerun continues it."""
    return f"unlearn-{spec.name}"


def _done_jobs(store: Store, run_id: str) -> set[str]:
    # A job is stored whole: any of its finished games stands for all of them.
    return {match.split("/", 1)[0] for match in store.finished_matches(run_id)}


def unfinished_jobs(
    spec: UnlearnEvalSpec, store: Store, jobs: Sequence[AgentJob] | None = None
) -> list[AgentJob]:
    """The agents of `spec` its run does not hold finished: what a rerun would play."""
    done = _done_jobs(store, run_id_of(spec))
    return [job for job in (expand(spec) if jobs is None else jobs) if job.id not in done]


def current_jobs(run_spec: dict[str, Any]) -> set[str] | None:
    """The job ids of the spec an experiment's run was last run with (None if unreadable):
    an edited spec's earlier agents stay in the store, but only these are reported."""
    from pydantic import ValidationError

    try:
        return {job.id for job in expand(UnlearnEvalSpec.model_validate(run_spec))}
    except ValidationError:
        return None


async def _preflight(spec: UnlearnEvalSpec) -> None:
    """Open every model once (keys, servers), and check that rule-based agents can be asked:
    one clear error before anything runs, not one failed agent after another."""
    from haggler.games.registry import make_game
    from haggler.probe.making import agent_cast, rival_cast
    from haggler.run.cast import MissingKeys

    game = make_game(spec.agents.game, spec.agents.rules)
    opened = []
    try:
        try:
            opened.append(agent_cast(spec, game))
        except MissingKeys as error:
            raise SpecError(str(error), field="agents.model") from None
        except ConfigError as error:
            raise SpecError(str(error), field="agents.model") from None
        for index, round_ in enumerate(spec.agents.rounds):
            try:
                opened.append(rival_cast(spec, game, round_.rival.name))
            except ConfigError as error:
                raise SpecError(str(error), field=f"agents.rounds.{index}.rival") from None
        for where, judge in _named_judges(spec):
            if judge.model is not None and not judge.model.is_rule:
                from haggler.run.cast import Cast
                from haggler.run.spec import PlaySpec

                try:
                    cast = Cast(PlaySpec(), game)
                    opened.append(cast)
                    cast.backend(judge.model)
                except ConfigError as error:
                    raise SpecError(str(error), field=f"{where}.model") from None
        _check_plugins(spec)
    finally:
        for cast in opened:
            await cast.aclose()


def _check_plugins(spec: UnlearnEvalSpec) -> None:
    from haggler.probe.plugins import make_judge, make_strategies, make_strategy

    if spec.strategies == "all":
        strategies = make_strategies()
    else:
        strategies = []
        for index, named in enumerate(spec.strategies):
            try:
                strategies.append(make_strategy(named.name, named.params))
            except ConfigError as error:
                raise SpecError(str(error), field=f"strategies.{index}") from None
    if not strategies:
        raise SpecError(
            "no strategy is installed; name the strategies to run, or install some",
            field="strategies",
        )
    for where, judge in _named_judges(spec):
        if judge.model is None or judge.model.is_rule:
            try:
                make_judge(judge.name, judge.params)
            except ConfigError as error:
                raise SpecError(str(error), field=where) from None


def _named_judges(spec: UnlearnEvalSpec) -> list[tuple[str, Any]]:
    """Every judge the spec names, with where: its own judges or a fact's."""
    named = []
    for fact, fact_spec in spec.facts.items():
        where = f"facts.{fact}.judges" if fact_spec.judges is not None else "judges"
        for index, judge in enumerate(spec.judges_for(fact)):
            if (f"{where}.{index}", judge) not in named:
                named.append((f"{where}.{index}", judge))
    return named


async def unlearn_eval(
    spec: UnlearnEvalSpec | dict[str, Any],
    *,
    store: Store,
    executor: str = "local",
    address: str | None = None,
    on_progress: Callable[[UnlearnEvalProgress], None] | None = None,
) -> UnlearnEvalRun:
    """Make, forget, probe and measure every agent of `spec` not yet finished in `store`.

    Cancelled (Ctrl-C, SIGTERM in the CLI), it stops the agents in flight, stores nothing of
    them, and raises: what finished is stored, and a rerun plays the rest.
    """
    if not isinstance(spec, UnlearnEvalSpec):
        spec = check_unlearn_spec(dict(spec))
    await _preflight(spec)
    run_id = run_id_of(spec)
    store.ensure_run(run_id, RUN_KIND, spec.model_dump(mode="json"))
    jobs = expand(spec)
    todo = unfinished_jobs(spec, store, jobs)
    run = UnlearnEvalRun(run_id, agents=len(jobs), skipped_as_done=len(jobs) - len(todo))
    progress = UnlearnEvalProgress(total=len(jobs), already_done=run.skipped_as_done)
    progress.spent_usd = run.spent_usd = store.run_cost(run_id)

    def tell() -> None:
        if on_progress is not None:
            on_progress(progress)

    def should_start() -> bool:
        if run.stopped is not None:
            return False
        if spec.budget_usd is not None and run.spent_usd >= spec.budget_usd:
            run.stopped = (
                f"budget reached: ${run.spent_usd:.4f} spent of ${spec.budget_usd:.4f}; "
                "raise budget_usd and run again to play the rest"
            )
            return False
        progress.running += 1
        tell()
        return True

    def on_result(job: AgentJob, result: JobResult | BaseException) -> None:
        progress.running -= 1
        if isinstance(result, BaseException):
            run.failed += 1
            progress.failed += 1
            run.errors.append(f"agent {job.index}: {type(result).__name__}: {result}")
            tell()
            return
        stored = store_job(store, run_id, result)
        run.spent_usd += result.cost_usd
        progress.spent_usd = run.spent_usd
        if result.error is not None:
            run.failed += 1
            progress.failed += 1
            run.errors.append(f"agent {job.index}: {result.error}")
            if result.fatal and run.stopped is None:
                run.stopped = f"stopped starting agents: {result.error}"
        elif stored:
            run.finished += 1
            progress.finished += 1
        else:
            run.by_other += 1
            progress.by_other += 1
        tell()

    engine = make_executor(executor, max_concurrency=spec.concurrency, address=address)
    try:
        summary = await engine.run(
            todo, play_agent_job, on_result=on_result, should_start=should_start
        )
    finally:
        await engine.aclose()
    run.not_started = summary.skipped
    run.unfinished = len(unfinished_jobs(spec, store, jobs))
    return run


class _StoredElsewhere(Exception):
    """Another process stored this agent first: undo ours."""


def store_job(store: Store, run_id: str, result: JobResult) -> bool:
    """Store an agent's job whole; False if another process had stored it already. A failed
    job leaves one failed record (its error), so the run shows it and a rerun plays it."""
    job = result.job
    if result.error is not None:
        store.add_episode(
            run_id,
            game=str(job.spec.get("agents", {}).get("game", "balloon")),
            rules={"probe": {"part": "making", "job": job.id, "seed": job.seed}},
            roles={},
            seed=job.seed,
            turns=[],
            outcome=None,
            scores={},
            error=result.error,
            match_id=job.id,
        )
        return True
    try:
        with store.atomic():
            if result.making:
                made = store.add_lineage(
                    run_id,
                    arm="making",
                    coached=str(job.spec["agents"]["role"]),
                    seed=job.seed,
                    games=result.making,
                    critiques=result.critiques,
                )
                if made is None:
                    raise _StoredElsewhere
            for fields in result.episodes:
                if store.add_episode(run_id, **fields) is None:
                    raise _StoredElsewhere
    except _StoredElsewhere:
        return False
    return True
