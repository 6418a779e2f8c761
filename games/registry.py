"""The games haggler knows by name, with their variants."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from haggler.errors import SpecError
from haggler.games.bargaining import BALLOON, DIAMOND, BargainingGame, BargainingRules
from haggler.games.base import Game
from haggler.registry import Registry

__all__ = ["GAMES", "make_game"]

GAMES: Registry[Callable[..., Game]] = Registry("game", "haggler.games")


def _bargaining(name: str, defaults: BargainingRules) -> Callable[..., Game]:
    def make(**params: Any) -> Game:
        return BargainingGame(
            BargainingRules.model_validate(defaults.model_dump() | params), name=name
        )

    make.parameters = tuple(BargainingRules.model_fields)  # type: ignore[attr-defined]
    return make


GAMES.register("balloon")(_bargaining("balloon", BALLOON))
GAMES.register("diamond")(_bargaining("diamond", DIAMOND))


def make_game(
    name: str, params: Mapping[str, Any] | None = None, *, source: str | None = None
) -> Game:
    """The game `name` with `params` over its defaults; SpecError names the bad field."""
    factory = GAMES.get(name)
    try:
        return factory(**dict(params or {}))
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(["rules", *(str(p) for p in first["loc"])])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            known = getattr(factory, "parameters", ())
            message = "unknown field; remove it or fix its spelling"
            if known:
                message += f" ({name} takes {', '.join(known)})"
        raise SpecError(message, source=source, field=field) from None
