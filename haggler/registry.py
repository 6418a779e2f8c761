"""Plug-in points: games, roles, tactics (and the adversary's strategies, judges, defences)
registered by name, and the one convention every plug-in factory follows.

Built-ins register with a decorator; outside packages add theirs through an entry-point group
(`haggler.games`, `haggler.roles`, `haggler.tactics`, …), loaded only when a name is not found
among the built-ins, so start-up never imports a plug-in that is not asked for.

The factory convention. A plug-in is made by a factory: a class or a function that haggler
calls with keyword arguments only — first the context it supplies for that kind of plug-in
(a role gets `role` and `seed`; a game and a tactic get none), then the parameters a spec gave
it — and that returns the plug-in. The parameters a factory takes are its keyword parameters
less the context names, or, when it takes `**params`, the names in its `parameters`
attribute (a factory that takes `**params` and declares none takes anything). A parameter it
does not take is refused before anything is played, naming the parameters it does take; a
value it cannot use it refuses by raising ValueError (or a pydantic ValidationError) whose
message says what is wrong, and haggler adds the field. `build` does all of that.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from haggler.errors import ConfigError, HagglerError, ParameterError

__all__ = ["Registry", "build", "factory_parameters"]

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    """Factories by name, for one kind of plug-in."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make `factory` available as `name`."""

        def add(factory: F) -> F:
            if name in self._factories and self._factories[name] is not factory:
                raise ConfigError(f"{self.kind} {name!r} is registered twice; rename one of them")
            self._factories[name] = factory
            return factory

        return add

    def get(self, name: str) -> F:
        if name not in self._factories:
            for point in entry_points(group=self.group, name=name):
                try:
                    self._factories[name] = point.load()
                except Exception as error:
                    raise ConfigError(
                        f"{self.kind} {name!r}: its entry point {point.value} cannot be loaded "
                        f"({type(error).__name__}: {error}); reinstall or fix its package"
                    ) from None
        if name not in self._factories:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(
                f"unknown {self.kind} {name!r}; known: {known} "
                f"(a package can add one through the {self.group!r} entry-point group)"
            )
        return self._factories[name]

    def names(self) -> list[str]:
        installed = {point.name for point in entry_points(group=self.group)}
        return sorted(set(self._factories) | installed)


def factory_parameters(
    factory: Callable[..., Any], context: Collection[str] = ()
) -> tuple[str, ...] | None:
    """The parameters a spec may give `factory`: its `parameters` attribute when it declares
    one, else its keyword parameters less the `context` haggler supplies; None when it takes
    any (`**params` and no declaration)."""
    declared = getattr(factory, "parameters", None)
    if isinstance(declared, tuple | list | frozenset | set):
        return tuple(name for name in declared if name not in context)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: trust the call
        return None
    names = []
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        keyword = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        if keyword and name not in context:
            names.append(name)
    return tuple(names)


def build(
    factory: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    context: Mapping[str, Any] | None = None,
    what: str,
) -> Any:
    """`factory(**context, **params)`, by the factory convention: a parameter it does not
    take, or a value it refuses, is a `ParameterError` naming the parameter and `what` the
    plug-in is (as a spec names it: `rule:boulware`, `game balloon`)."""
    from pydantic import ValidationError

    params, context = dict(params or {}), dict(context or {})
    accepted = factory_parameters(factory, context)
    for name in params:
        if name in context:
            raise ParameterError(
                f"{name!r} is not a parameter of {what}: haggler sets it; remove it",
                parameter=name,
            )
        if accepted is not None and name not in accepted:
            takes = ", ".join(accepted) or "no parameters"
            raise ParameterError(
                f"unknown parameter {name!r} for {what}; it takes {takes}",
                parameter=name,
                unknown=True,
            )
    try:
        return factory(**context, **params)
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        raise ParameterError(f"{what}: {message}", parameter=name) from None
    except (TypeError, ValueError) as error:
        # The convention's refusal: the message names the value; its first word, the
        # parameter, when it is one.
        text = str(error)
        first_word = text.split(" ", 1)[0]
        named = first_word if first_word in params else None
        raise ParameterError(text, parameter=named) from None
    except HagglerError:
        raise
    except Exception as error:
        # Any other failure is the factory's bug: one line naming it, not a traceback.
        raise ConfigError(
            f"{what} could not be made ({type(error).__name__}: {error}); fix its factory"
        ) from None
