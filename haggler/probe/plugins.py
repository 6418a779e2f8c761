"""Where a probe finds its strategies, judges and defences by name.

- Strategies: `STRATEGIES` (`haggler.agents.adversary.base`; entry-point group
  `haggler.strategies`), the built-ins loaded from `haggler.agents.adversary.strategies`.
- Judges: `JUDGES` (entry-point group `haggler.judges`); a factory takes the judge's
  parameters (and `backend=` when the spec names a model) and returns a `Judge`.
- Defences: `DEFENCES` (entry-point group `haggler.defences`); a factory takes the target
  to wrap, the secrets it guards (`secrets=`) and its parameters, and returns a `Target`.
  `none` is no defence at all.

The built-in judges and defences register in the registries of `haggler.agents.judges` and
`haggler.agents.adversary.defences`; built-ins are imported only when a name is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from haggler.agents.adversary.base import STRATEGIES, Secret, Strategy, Target
from haggler.errors import ConfigError
from haggler.probe.judging import Judge
from haggler.registry import Registry

__all__ = [
    "DEFAULT_TEXT_JUDGE",
    "DEFAULT_VALUE_JUDGE",
    "NO_DEFENCE",
    "check_defence",
    "defence_registry",
    "judge_registry",
    "make_defence",
    "make_judge",
    "make_strategies",
    "make_strategy",
    "strategy_names",
]

NO_DEFENCE = "none"
# Judges used when none is named: a number in every spoken form, or the words themselves.
DEFAULT_VALUE_JUDGE = "auto"
DEFAULT_TEXT_JUDGE = "auto"

_STRATEGIES_MODULE = "haggler.agents.adversary.strategies"

def judge_registry() -> Registry[Callable[..., Judge]]:
    """The registry judges are found in (`haggler.agents.judges.JUDGES`)."""
    from haggler.agents.judges import JUDGES

    return JUDGES


def defence_registry() -> Registry[Callable[..., Target]]:
    """The registry defences are found in (`haggler.agents.adversary.defences.DEFENCES`)."""
    from haggler.agents.adversary.defences import DEFENCES

    return DEFENCES


def _builtin(module: str) -> Any:
    # Imported on first use: importing the package registers the built-in strategies.
    return importlib.import_module(module)


def strategy_names() -> list[str]:
    """Every strategy this haggler knows: built-in, registered, or installed."""
    _builtin(_STRATEGIES_MODULE)
    return STRATEGIES.names()


def make_strategy(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """The strategy `name`, made with `params`."""
    _builtin(_STRATEGIES_MODULE)
    factory = STRATEGIES.get(name)
    try:
        strategy = factory(**(params or {}))
    except TypeError as error:
        raise ConfigError(f"strategy {name!r}: {error}; check its parameters") from None
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy {name!r} made a {type(strategy).__name__}, not a Strategy")
    return strategy


def make_strategies(names: Sequence[str] | None = None) -> list[Strategy]:
    """The strategies `names` (every known one when None), made with their defaults."""
    _builtin(_STRATEGIES_MODULE)
    return [make_strategy(name) for name in (STRATEGIES.names() if names is None else names)]


def make_judge(name: str, params: dict[str, Any] | None = None, **extra: Any) -> Judge:
    """The judge `name` with `params` (and `extra`, such as a model backend)."""
    factory = judge_registry().get(name)
    try:
        return factory(**(params or {}), **extra)
    except TypeError as error:
        raise ConfigError(f"judge {name!r}: {error}; check its parameters") from None


def make_defence(
    name: str, target: Target, secrets: Sequence[Secret], params: dict[str, Any] | None = None
) -> Target:
    """`target` behind the defence `name`, guarding `secrets` (`none`: the target itself)."""
    if name == NO_DEFENCE:
        return target
    factory = defence_registry().get(name)
    try:
        return factory(target, secrets=tuple(secrets), **(params or {}))
    except TypeError as error:
        raise ConfigError(f"defence {name!r}: {error}; check its parameters") from None


def check_defence(name: str) -> None:
    """ConfigError unless a defence `name` is known."""
    if name != NO_DEFENCE:
        defence_registry().get(name)
