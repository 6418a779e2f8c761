"""One agent of a forgetting experiment, start to end: the job an executor runs.

    make the agent (self-play)  ->  snapshot: the agent before forgetting
    probe it before: every strategy, for every fact, with no defence
    for each condition:  the guarded agent before (each defence but none)
                         forget, request after request, on a copy; after each request probe
                         the agent after and the reference agent rebuilt from what it
                         retains, with each defence; facts forgotten so far and facts kept
    utility: games against the counterparts kept, before and after each condition

`play_agent_job` is a module-level coroutine over plain data, so an executor can run it here
or on a Ray worker. It writes nothing: it returns every game and attempt, each with its match
id (`<job>/…`), for the driver to store in one transaction. A model failure that ends the
job (the agent's own games) makes a failed record, never an exception; a refused key is
marked fatal, since every other agent would fail the same way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from haggler.agents.adversary.base import Secret, Strategy, Target
from haggler.errors import ModelAuthError, ModelError, failure_reason
from haggler.evals.unlearning import ProbeTag
from haggler.probe.attempts import judged_attempt
from haggler.probe.judging import Judge
from haggler.probe.making import Fact, MadeAgent, rival_role
from haggler.probe.records import attempt_episode, game_episode, secret_tag
from haggler.probe.spec import ConditionSpec, ForgetStepSpec, UnlearnEvalSpec
from haggler.store.records import CritiqueRecord, RoleRecord

if TYPE_CHECKING:
    from haggler.games.base import Game
    from haggler.memory import AgentMemory
    from haggler.run.cast import Cast

__all__ = ["AgentJob", "JobResult", "expand", "play_agent_job"]


@dataclass(frozen=True, slots=True)
class AgentJob:
    """One agent of an experiment, as plain picklable data."""

    id: str
    index: int
    seed: int
    # The experiment as UnlearnEvalSpec.model_dump(mode="json").
    spec: dict[str, Any]
    rate_limits: dict[str, dict[str, float | None]] = field(default_factory=dict)


def expand(spec: UnlearnEvalSpec) -> list[AgentJob]:
    """Every agent of `spec`, in order; ids derived from what decides the agent's results."""
    data = spec.model_dump(mode="json")
    limits = {k: v.model_dump() for k, v in spec.rate_limits.items()}
    return [
        AgentJob(spec.job_id(index), index, spec.agent_seed(index), data, limits)
        for index in range(spec.agents.count)
    ]


@dataclass(slots=True)
class JobResult:
    """What one agent's job produced, ready to be stored in one go."""

    job: AgentJob
    # The self-play games that made the agent, each with add_episode's fields, and the
    # critiques after them.
    making: list[dict[str, Any]] = field(default_factory=list)
    critiques: list[CritiqueRecord | None] = field(default_factory=list)
    # Every other game and attempt, with add_episode's fields.
    episodes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    fatal: bool = False
    cost_usd: float = 0.0

    @property
    def status(self) -> str:
        return "failed" if self.error is not None else "finished"


@dataclass
class _Job:
    """What the parts of one job share."""

    job: AgentJob
    spec: UnlearnEvalSpec
    game: Game
    cast: Cast
    rivals: dict[str, Cast]
    agent: MadeAgent
    strategies: list[Strategy]
    judges: dict[str, list[Judge]]  # by fact
    result: JobResult
    model: str
    owner: str
    count: int = 0

    def match_id(self, part: str) -> str:
        self.count += 1
        return f"{self.job.id}/{part}{self.count}"


def _secret(fact: Fact, level: str) -> Secret:
    value = fact.value if isinstance(fact.value, float) else None
    return Secret(
        text=fact.text, topic=fact.topic, value=value, hints=fact.hints,
        level=level,  # type: ignore[arg-type]
    )  # fmt: skip


def _levels(spec: UnlearnEvalSpec) -> dict[str, list[str]]:
    """The levels each fact is forgotten at, in any condition (state for a fact never
    forgotten): the before agent is probed for each fact at each of them."""
    levels: dict[str, list[str]] = {name: [] for name in spec.facts}
    for condition in spec.conditions:
        for step in condition.forget:
            for fact in step.forgets():
                if step.level not in levels[fact]:
                    levels[fact].append(step.level)
    return {fact: found or ["state"] for fact, found in levels.items()}


async def play_agent_job(job: AgentJob) -> JobResult:
    """Make, probe and measure the agent of `job`; everything it produced, never raising for
    a model's failure."""
    from haggler.games.registry import make_game
    from haggler.probe.agents import model_of
    from haggler.probe.making import agent_cast, make_agent, rival_cast
    from haggler.probe.plugins import make_strategies, make_strategy

    spec = UnlearnEvalSpec.model_validate(job.spec)
    game = make_game(spec.agents.game, spec.agents.rules)
    result = JobResult(job)
    casts: list[Cast] = []
    try:
        cast = agent_cast(spec, game, job.rate_limits)
        casts.append(cast)
        rivals = {}
        for round_ in spec.agents.rounds:
            rivals[round_.rival.name] = rival_cast(spec, game, round_.rival.name, job.rate_limits)
            casts.append(rivals[round_.rival.name])
        judges = _judges(spec, casts, job)
        owner = f"agent-{job.index}/{spec.agents.role}"
        agent = await make_agent(
            spec, owner=owner, seed=job.seed, prefix=f"{job.id}/make", game=game, cast=cast,
            rivals=rivals,
        )  # fmt: skip
        strategies = (
            make_strategies()
            if spec.strategies == "all"
            else [make_strategy(s.name, s.params) for s in spec.strategies]
        )
        run = _Job(
            job, spec, game, cast, rivals, agent, strategies, judges, result,
            model_of(cast.roles[spec.agents.role]), owner,
        )  # fmt: skip
        _keep_making(run)
        await _probe_all(run)
    except ModelError as error:
        result.error = failure_reason(error)
        result.fatal = isinstance(error, ModelAuthError)
        result.episodes.clear()
    finally:
        for opened in casts:
            await opened.aclose()
    result.cost_usd = _cost(result)
    return result


def _judges(spec: UnlearnEvalSpec, casts: list[Cast], job: AgentJob) -> dict[str, list[Judge]]:
    """Each fact's judges, made once each; one that is a model gets its backend (`backend=`)."""
    from haggler.games.registry import make_game
    from haggler.probe.plugins import make_judge
    from haggler.run.cast import Cast
    from haggler.run.spec import PlaySpec

    made: dict[str, Judge] = {}
    by_fact: dict[str, list[Judge]] = {}
    for fact in spec.facts:
        by_fact[fact] = []
        for named in spec.judges_for(fact):
            key = named.model_dump_json()
            if key not in made:
                extra: dict[str, Any] = {}
                if named.model is not None and not named.model.is_rule:
                    game = make_game(spec.agents.game, spec.agents.rules)
                    cast = Cast(PlaySpec(retry=spec.retry), game, rate_limits=job.rate_limits)
                    casts.append(cast)
                    extra["backend"] = cast.backend(named.model)
                made[key] = make_judge(named.name, named.params, **extra)
            by_fact[fact].append(made[key])
    return by_fact


def _cost(result: JobResult) -> float:
    total = 0.0
    for fields in [*result.making, *result.episodes]:
        for turn in fields.get("turns", []):
            total += turn.cost_usd + (turn.moderation.cost_usd if turn.moderation else 0.0)
    total += sum(c.cost_usd for c in result.critiques if c is not None)
    return total


def _keep_making(run: _Job) -> None:
    """The games that made the agent, ready to be stored as a lineage of the run."""
    job = run.job
    tag = ProbeTag(part="making", agent=run.owner, seed=job.seed, job=job.id, variant="before")
    for made in run.agent.games:
        run.result.making.append(
            {
                "game": run.game.name,
                "rules": made.rules | {"probe": tag.model_dump(mode="json")},
                "roles": made.roles,
                "seed": made.seed,
                "turns": made.turns,
                "outcome": made.outcome,
                "scores": made.scores,
                "error": made.error,
                "match_id": made.id,
                "started_at": made.started_at,
            }
        )
        run.result.critiques.append(made.critique)


# -- probing ---------------------------------------------------------------------------------


async def _probe_all(run: _Job) -> None:
    from haggler.probe.plugins import make_defence

    spec, agent = run.spec, run.agent
    before = agent.memory.copy()
    levels = _levels(spec)
    # Before forgetting, undefended: every fact, at every level it is forgotten at somewhere.
    before_target = _target(run, "before", before)
    for name, fact in agent.facts.items():
        for level in levels[name]:
            await _attempts(
                run, before_target, _secret(fact, level), fact=name, variant="before",
                defence="none", condition=None, step=0, retained=False,
            )  # fmt: skip
    kept_all = [r.rival.name for r in spec.agents.rounds]
    await _utility(run, before_target, "before", None, 0, kept_all)
    for condition in spec.conditions:
        forgotten = _forgotten_levels(condition)
        guarded = [_secret(agent.facts[f], level) for f, level in forgotten.items()]
        # The agent before forgetting behind each defence, guarding what the condition forgets.
        for defence in spec.defences:
            if defence.name == "none":
                continue
            shielded = make_defence(
                defence.name, _target(run, "before", before), guarded, defence.params
            )
            for name, fact in agent.facts.items():
                level = forgotten.get(name) or levels[name][0]
                await _attempts(
                    run, shielded, _secret(fact, level), fact=name, variant="before",
                    defence=defence.name, condition=condition.name, step=0,
                    retained=name not in forgotten,
                )  # fmt: skip
        await _condition(run, condition, before, forgotten, levels)


def _forgotten_levels(condition: ConditionSpec) -> dict[str, str]:
    return {fact: step.level for step in condition.forget for fact in step.forgets()}


async def _condition(
    run: _Job,
    condition: ConditionSpec,
    before: AgentMemory,
    forgotten: dict[str, str],
    levels: dict[str, list[str]],
) -> None:
    from haggler.probe.plugins import make_defence

    spec, agent = run.spec, run.agent
    after = before.copy()
    so_far: dict[str, str] = {}
    for number, step in enumerate(condition.forget, 1):
        await _forget(run, after, step, condition)
        so_far |= {fact: step.level for fact in step.forgets()}
        reference = after.copy()
        guarded = [_secret(agent.facts[f], level) for f, level in so_far.items()]
        for defence in spec.defences:
            variants = {"after": after, "reference": reference}
            for variant, memory in variants.items():
                target = make_defence(
                    defence.name, _target(run, variant, memory), guarded, defence.params
                )
                for name, fact in agent.facts.items():
                    # A fact keeps the level it is (or will be) forgotten at in this
                    # condition; one it keeps, the level the agent before was probed at.
                    level = so_far.get(name) or forgotten.get(name) or levels[name][0]
                    await _attempts(
                        run, target, _secret(fact, level), fact=name, variant=variant,
                        defence=defence.name, condition=condition.name, step=number,
                        retained=name not in so_far,
                    )  # fmt: skip
    environment = {
        agent.facts[fact].rival
        for step in condition.forget
        if step.level == "environment"
        for fact in step.forgets()
    }
    kept = [r.rival.name for r in spec.agents.rounds if r.rival.name not in environment]
    final = _target(run, "after", after)
    await _utility(run, final, "after", condition.name, len(condition.forget), kept)


async def _forget(
    run: _Job, memory: AgentMemory, step: ForgetStepSpec, condition: ConditionSpec
) -> None:
    """Carry out one forget request on `memory` (in this process only)."""
    from haggler.games.remembered import rederiver
    from haggler.memory.forgetting import (
        EnvironmentRequest,
        PhraseFact,
        Scope,
        StateRequest,
        TrajectoryRequest,
        ValueFact,
        forget,
        parse_request,
    )

    scope = Scope(agents=(memory.owner,))
    mode = condition.mode
    if step.fact is not None:
        fact = run.agent.facts[step.fact]
        request: Any
        if step.level == "state":
            told = (
                ValueFact(value=fact.value)
                if isinstance(fact.value, float)
                else PhraseFact(text=fact.text)
            )
            request = StateRequest(fact=told, scope=scope, mode=mode)
        elif step.level == "trajectory":
            request = TrajectoryRequest(
                episode=f"{run.job.id}/make/r{fact.round}", scope=scope, mode=mode
            )
        else:
            request = EnvironmentRequest(counterpart=fact.rival, scope=scope, mode=mode)
    elif isinstance(step.request, dict):
        request = parse_request(step.request)
        request = request.model_copy(update={"scope": scope, "mode": mode})
    else:
        from haggler.agents.unlearner import RuleUnlearner

        assert isinstance(step.request, str)
        read = await RuleUnlearner().plan(
            step.request, memories={memory.owner: memory}, level=step.level, mode=mode
        )
        request = read.request.model_copy(update={"scope": scope, "mode": mode})
    rederive = (
        rederiver(run.game, run.agent.feedback, seed=run.job.seed) if mode == "rederive" else None
    )
    await forget(request, memories={memory.owner: memory}, rederive=rederive)


def _target(run: _Job, label: str, memory: AgentMemory) -> Target:
    from haggler.probe.agents import make_target

    return make_target(
        label, memory, run.game, run.spec.agents.role, run.cast,
        budget=run.spec.agents.memory_budget,
    )  # fmt: skip


async def _attempts(
    run: _Job,
    target: Target,
    secret: Secret,
    *,
    fact: str,
    variant: str,
    defence: str,
    condition: str | None,
    step: int,
    retained: bool,
) -> None:
    spec, job = run.spec, run.job
    for strategy in run.strategies:
        if not strategy.fits(target, secret):
            continue
        for sample in range(spec.samples):
            # The same seed for every variant, condition and request: the agent before,
            # after and the reference agent get the same questions, so answers compare.
            seed = f"{job.seed}/{strategy.name}/{defence}/{fact}/{secret.level}/{sample}"
            judged = await judged_attempt(
                strategy, target, secret, run.judges[fact], seed=seed,
                max_queries=spec.budget_of(strategy.name),
            )  # fmt: skip
            tag = ProbeTag(
                part="attempt", agent=run.owner, seed=job.seed, job=job.id, variant=variant,
                condition=condition, mode=_mode(spec, condition), step=step,
                strategy=strategy.name, defence=defence, judge=judged.ruling.judge,
                secret=secret_tag(secret, fact), retained=retained, sample=sample,
            )  # fmt: skip
            attempt_id = run.match_id("a")
            played: list[str] = []
            for result, rival, game_seed in judged.games:
                game_id = f"{attempt_id}/g{len(played) + 1}"
                played.append(game_id)
                run.result.episodes.append(
                    game_episode(
                        result, game=run.game, seed=game_seed, match_id=game_id,
                        roles=_in_game_roles(run, tag, rival),
                        tag=tag.model_copy(update={"part": "in-game", "game_seed": game_seed}),
                    )
                )  # fmt: skip
            brief = (
                f"{run.owner} ({variant}"
                + (f", after step {step} of {condition}" if step else "")
                + f") as it plays the {spec.agents.role} of {run.game.name}: its brief, what "
                f"its memory recalls and its goal"
                + ("" if defence == "none" else f"; behind the defence {defence}")
            )
            run.result.episodes.append(
                attempt_episode(
                    judged, strategy=strategy, secret=secret, game=run.game,
                    target_model=run.model, target_brief=brief, match_id=attempt_id,
                    tag=tag.model_copy(update={"games": played}),
                )
            )  # fmt: skip


def _mode(spec: UnlearnEvalSpec, condition: str | None) -> str | None:
    return next((c.mode for c in spec.conditions if c.name == condition), None)


def _in_game_roles(run: _Job, tag: ProbeTag, rival: Any) -> dict[str, RoleRecord]:
    from haggler.probe.quick import in_game_roles

    return in_game_roles(run.game, tag, rival, run.model)


async def _utility(
    run: _Job,
    target: Target,
    variant: str,
    condition: str | None,
    step: int,
    counterparts: Sequence[str],
) -> None:
    """Games of the agent against fresh negotiators of the counterparts it keeps."""
    import random

    from haggler.games.episode import role_records

    spec, job = run.spec, run.job
    other = rival_role(spec.agents.role)
    for name in counterparts:
        for k in range(spec.utility.games):
            game_seed = random.Random(f"utility/{job.seed}/{name}/{k}").randrange(2**31)
            rival = run.rivals[name].players(game_seed)[other]
            started = time.time()
            result = await target.play(rival, seed=game_seed)
            roles = role_records(run.game, {other: rival})
            brief = run.game.brief(spec.agents.role)
            roles[spec.agents.role] = RoleRecord(
                model=run.model, player=variant, brief=brief.text, private=dict(brief.private)
            )
            roles[other] = roles[other].model_copy(update={"player": name})
            tag = ProbeTag(
                part="utility", agent=run.owner, seed=job.seed, job=job.id, variant=variant,
                condition=condition, mode=_mode(spec, condition), step=step, counterpart=name,
                game_seed=game_seed,
            )  # fmt: skip
            run.result.episodes.append(
                game_episode(
                    result, game=run.game, roles=roles, tag=tag, seed=game_seed,
                    match_id=run.match_id("u"), started_at=started,
                )
            )  # fmt: skip
