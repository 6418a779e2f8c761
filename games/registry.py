"""The games haggler knows by name, with their variants.

A game's factory follows haggler's one factory convention (`haggler.registry`): it is called
with the spec's `rules` as keyword arguments (no context of its own) and returns a `Game`;
the rules it takes are its keyword parameters, or its `parameters` attribute when it takes
`**rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from haggler.errors import ParameterError, SpecError
from haggler.games.bargaining import BALLOON, DIAMOND, BargainingGame, BargainingRules
from haggler.games.base import Game
from haggler.registry import Registry, build

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


def _multi_issue(**params: Any) -> Game:
    from haggler.games.multi_issue import BUS_ROUTE, MultiIssueGame, MultiIssueRules

    return MultiIssueGame(MultiIssueRules.model_validate(BUS_ROUTE.model_dump() | params))


_multi_issue.parameters = (  # type: ignore[attr-defined]
    "topic",
    "issues",
    "parties",
    "rounds",
    "needed",
    "veto",
)
GAMES.register("multi-issue")(_multi_issue)


def make_game(
    name: str, params: Mapping[str, Any] | None = None, *, source: str | None = None
) -> Game:
    """The game `name` with `params` over its defaults; SpecError names the bad field."""
    factory = GAMES.get(name)
    params = dict(params or {})
    known = getattr(factory, "parameters", None)
    if known is not None:
        for key in params:
            if key not in known:
                raise SpecError(
                    f"unknown field; remove it or fix its spelling ({name} takes "
                    f"{', '.join(known)})",
                    source=source,
                    field=f"rules.{key}",
                )
    try:
        game = (
            factory(**params) if known is not None else build(factory, params, what=f"game {name}")
        )
    except ParameterError as error:
        field = f"rules.{error.parameter}" if error.parameter else "rules"
        raise SpecError(str(error), source=source, field=field) from None
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
    if not isinstance(game, Game):
        raise SpecError(
            f"the factory of game {name!r} made a {type(game).__name__}, not a Game; return a "
            f"subclass of haggler.games.Game",
            source=source,
            field="game",
        )
    return game
