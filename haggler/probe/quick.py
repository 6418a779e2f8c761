"""A quick probe of one agent of the store: `haggler probe AGENT --secret TEXT`.

Every strategy asked for (by default every black-box one that fits) tries `samples` times to
get the secret out of the agent as it is now; each attempt is judged and stored as an episode
of a new run of kind `probe`; the leak rate comes with its Wilson interval, undetermined
verdicts counted apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from haggler.agents.adversary.base import Secret, Strategy, Target
from haggler.errors import ConfigError
from haggler.evals.unlearning import LeakRate, Observation, ProbeTag, leak_rate
from haggler.probe.attempts import JudgedAttempt, judged_attempt
from haggler.probe.judging import Judge
from haggler.probe.records import attempt_episode, game_episode, secret_tag
from haggler.store.records import RoleRecord
from haggler.store.sqlite import Store

__all__ = ["ProbeRun", "choose_strategies", "default_judge", "probe_agent", "secret_from_text"]

# Attempts of one strategy at once, against one agent.
_AT_ONCE = 4


@dataclass(slots=True)
class ProbeRun:
    run_id: str
    agent: str
    strategies: list[str]
    # Per strategy, then over all attempts.
    by_strategy: dict[str, LeakRate] = field(default_factory=dict)
    overall: LeakRate | None = None
    cost_usd: float = 0.0


def secret_from_text(
    text: str, *, topic: str | None = None, level: str = "state", value: float | None = None
) -> Secret:
    """The secret `text` as the adversary knows it; a text that is one price (`$14`, `14
    dollars`) is judged as that number."""
    from haggler.agents.prices import find_prices

    if not text.strip():
        raise ConfigError("--secret: give the text of what the agent should not know")
    if level not in ("state", "trajectory", "environment"):
        raise ConfigError(f"--level {level}: choose one of state, trajectory, environment")
    if value is None:
        prices = find_prices(text)
        if len(prices) == 1:
            value = prices[0].value
    return Secret(
        text=text.strip(),
        topic=(topic or "what you remember from your earlier games").strip(),
        value=value,
        level=level,  # type: ignore[arg-type]
    )


def default_judge(secret: Secret) -> str:
    from haggler.probe.plugins import DEFAULT_TEXT_JUDGE, DEFAULT_VALUE_JUDGE

    return DEFAULT_VALUE_JUDGE if secret.value is not None else DEFAULT_TEXT_JUDGE


def choose_strategies(
    names: Sequence[str] | None, target: Target, secret: Secret, agent: str
) -> list[Strategy]:
    """The strategies to run: those named (each must fit), or every black-box one that fits."""
    from haggler.probe.plugins import make_strategies

    if names:
        chosen = make_strategies(list(dict.fromkeys(names)))
        for strategy in chosen:
            if not strategy.fits(target, secret):
                raise ConfigError(
                    f"strategy {strategy.name!r} does not fit agent {agent!r}: it needs "
                    f"{strategy.needs} access (the agent gives {', '.join(sorted(target.access))}) "
                    f"and targets the {', '.join(strategy.levels)} level(s), the secret is "
                    f"{secret.level}; pick another strategy"
                )
        return chosen
    fitting = [s for s in make_strategies() if s.needs == "black-box" and s.fits(target, secret)]
    if not fitting:
        raise ConfigError(
            f"no strategy fits agent {agent!r} for a {secret.level}-level secret (no black-box "
            "strategy is installed that targets that level); name one with --strategy"
        )
    return fitting


async def probe_agent(
    store: Store,
    agent: str,
    secret: Secret,
    *,
    strategies: Sequence[str] | None = None,
    judges: Sequence[str] | None = None,
    samples: int = 5,
    max_queries: int = 20,
    seed: int = 0,
    on_attempt: Callable[[str, JudgedAttempt], None] | None = None,
) -> ProbeRun:
    """Probe `agent` (a memory owner of `store`) for `secret` and store every attempt as an
    episode of a new `probe` run. Everything that can be refused (an unknown agent, strategy
    or judge, a missing key) is refused before the run is started."""
    from haggler.games.registry import make_game
    from haggler.memory import AgentMemory
    from haggler.probe.agents import find_agent, make_target, model_of
    from haggler.probe.plugins import make_judge
    from haggler.run.cast import Cast

    if not 1 <= samples <= 10_000:
        raise ConfigError(f"--samples {samples}: give 1 to 10000 attempts per strategy")
    if not 1 <= max_queries <= 1_000:
        raise ConfigError(f"--max-queries {max_queries}: give 1 to 1000")
    found = find_agent(store, agent)
    game = make_game(found.spec.game, found.spec.rules)
    # A copy: probing reads the agent, and never writes to its memory in the store.
    memory = AgentMemory.load(store, found.owner).copy()
    cast = Cast(found.spec, game)
    try:
        target = make_target(
            found.owner, memory, game, found.role, cast, budget=found.spec.memory_budget
        )
        chosen = choose_strategies(strategies, target, secret, found.owner)
        judge_names = list(judges) if judges else [default_judge(secret)]
        made_judges: list[Judge] = [make_judge(name) for name in judge_names]
        model = model_of(found.role_spec)
        brief = (
            f"{found.owner} as it plays the {found.role} of {game.name} now: its brief, what "
            f"its memory recalls ({len(memory)} items) and its goal"
        )
        run_id = store.start_run(
            "probe",
            {
                "agent": found.owner,
                "model": model,
                "secret": secret_tag(secret).model_dump(mode="json"),
                "strategies": [s.name for s in chosen],
                "judges": judge_names,
                "samples": samples,
                "max_queries": max_queries,
                "seed": seed,
            },
        )
        run = ProbeRun(run_id, found.owner, [s.name for s in chosen])
        limit = asyncio.Semaphore(_AT_ONCE)

        async def one(strategy: Strategy, sample: int) -> JudgedAttempt:
            async with limit:
                return await judged_attempt(
                    strategy, target, secret, made_judges,
                    seed=f"{seed}/{strategy.name}/{sample}", max_queries=max_queries,
                )  # fmt: skip

        observations: list[Observation] = []
        for strategy in chosen:
            done = await asyncio.gather(*(one(strategy, k) for k in range(samples)))
            for sample, judged in enumerate(done):
                tag = ProbeTag(
                    agent=found.owner, variant="agent", strategy=strategy.name,
                    judge=judged.ruling.judge, secret=secret_tag(secret), sample=sample,
                    seed=seed,
                )  # fmt: skip
                _store_attempt(store, run_id, judged, strategy, secret, tag, game, model, brief)
                observations.append(
                    Observation(judged.ruling.verdict, "agent", strategy.name, seed=seed)
                )
                run.cost_usd += judged.cost_usd
                if on_attempt is not None:
                    on_attempt(strategy.name, judged)
            run.by_strategy[strategy.name] = leak_rate(
                o for o in observations if o.strategy == strategy.name
            )
        run.overall = leak_rate(observations)
        return run
    finally:
        await cast.aclose()


def _store_attempt(
    store: Store,
    run_id: str,
    judged: JudgedAttempt,
    strategy: Strategy,
    secret: Secret,
    tag: ProbeTag,
    game: Any,
    model: str,
    brief: str,
) -> None:
    with store.atomic():
        played = []
        for result, rival, game_seed in judged.games:
            in_game = tag.model_copy(update={"part": "in-game", "game_seed": game_seed})
            played.append(
                store.add_episode(
                    run_id,
                    **game_episode(
                        result,
                        game=game,
                        seed=game_seed,
                        tag=in_game,
                        roles=in_game_roles(game, tag, rival, model),
                    ),
                )  # fmt: skip
            )
        store.add_episode(
            run_id,
            **attempt_episode(
                judged, strategy=strategy, secret=secret, game=game, target_model=model,
                target_brief=brief, tag=tag.model_copy(update={"games": played}),
            ),
        )  # fmt: skip


def in_game_roles(game: Any, tag: ProbeTag, rival: Any, model: str) -> dict[str, RoleRecord]:
    """Who played a game against the target: the target's agent, and the adversary."""
    roles = {}
    for role in game.roles:
        brief = game.brief(role)
        if role == rival.role:
            roles[role] = RoleRecord(
                model=str(getattr(rival, "label", "adversary")),
                player=f"adversary:{tag.strategy}",
                brief=brief.text,
                private=dict(brief.private),
            )
        else:
            roles[role] = RoleRecord(
                model=model, player=tag.variant, brief=brief.text, private=dict(brief.private)
            )
    return roles
