"""Plug-in points: games and negotiation tactics registered by name.

Built-ins register with a decorator; outside packages add theirs through an entry-point group
(`haggler.games`, `haggler.tactics`), loaded only when a name is not found among the built-ins,
so start-up never imports a plug-in that is not asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from haggler.errors import ConfigError

__all__ = ["Registry"]

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
                self._factories[name] = point.load()
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
