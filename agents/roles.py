"""Players that call no model, made from the references specs name them by.

- `rule` or `rule:TACTIC`: the built-in rule-based negotiator conceding by TACTIC (a name of
  `haggler.agents.tactics.TACTICS`): `RuleNegotiator` at a table of prices, `IssueNegotiator`
  where the role's actions are package proposals. Each says what it needs of a game, and a
  game without it is refused.
- `role:NAME`: a role plug-in registered in `ROLES`, built in or installed by a package
  through the `haggler.roles` entry-point group.
- `package.module:Factory`: a role plug-in imported from Python by its module and name.

A role's factory follows haggler's one factory convention (`haggler.registry`): it is called
with `role=` (the role it plays), `seed=` (for its randomness, when it takes one) and the
spec's `params`, and returns a `Player`. `make_player` builds one and checks what it built.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from haggler.agents.base import Player
from haggler.agents.seat import Seat
from haggler.errors import ConfigError, ParameterError
from haggler.registry import Registry, build, factory_parameters

__all__ = [
    "NEGOTIATOR_OPTIONS",
    "ROLES",
    "ROLE_PREFIX",
    "RULE_PREFIX",
    "is_plugin",
    "is_reference",
    "is_rule",
    "load_factory",
    "make_player",
    "reference_of",
]

ROLES: Registry[Callable[..., Player]] = Registry("role", "haggler.roles")

RULE_PREFIX = "rule:"
ROLE_PREFIX = "role:"
# Options of a rule-based negotiator itself, as opposed to its tactic's.
NEGOTIATOR_OPTIONS = frozenset({"reserve_share", "jitter", "plain_text"})
# `package.module:Name` (dotted on both sides); no slash, so never a provider's model name.
_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def is_rule(model: str) -> bool:
    """`rule` or `rule:TACTIC`: the built-in rule-based negotiator."""
    return model == "rule" or model.startswith(RULE_PREFIX)


def is_reference(model: str) -> bool:
    """`package.module:Factory`, a role plug-in named by where it lives."""
    return not model.startswith(("rule:", "role:", "local:")) and bool(_REFERENCE.fullmatch(model))


def is_plugin(model: str) -> bool:
    """A role plug-in: `role:NAME` or `package.module:Factory`."""
    return model.startswith(ROLE_PREFIX) or is_reference(model)


def reference_of(factory: Callable[..., Any]) -> str:
    """`package.module:Name` for a class or function defined at a module's top level (what a
    spec may name, and what a worker process can import); ConfigError for anything else."""
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", None)
    if not (inspect.isclass(factory) or inspect.isfunction(factory)) or not module or not name:
        raise ConfigError(
            f"{factory!r} is no class or function; pass a player's class or factory, or a "
            f"Player object to play(..., players=...)"
        )
    if "<" in name or module == "__main__":
        raise ConfigError(
            f"{module}:{name} cannot be imported by name; define it at the top level of a "
            f"module (not in __main__, a function or a lambda)"
        )
    return f"{module}:{name}"


def load_factory(model: str) -> Callable[..., Player]:
    """The factory a plug-in reference names; ConfigError saying why when it cannot be had."""
    if model.startswith(ROLE_PREFIX):
        name = model[len(ROLE_PREFIX) :]
        if not name:
            raise ConfigError("write a registered role as role:NAME")
        return ROLES.get(name)
    if not is_reference(model):
        raise ConfigError(
            f"{model!r} names no role plug-in; write role:NAME or package.module:Factory"
        )
    module_name, _, attribute = model.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"{model}: module {module_name} cannot be imported ({error}); install its package "
            f"or fix the name"
        ) from None
    except Exception as error:
        # Its own code failed as it was imported (a syntax error, a raise at the top level).
        raise ConfigError(
            f"{model}: module {module_name} failed as it was imported "
            f"({type(error).__name__}: {error}); fix the module"
        ) from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ConfigError(f"{model}: module {module_name} has no {attribute}; fix the name")
        found = getattr(found, part)
    if not callable(found):
        raise ConfigError(f"{model} is no class or function that makes a player")
    return found  # type: ignore[no-any-return]


def _rule_player(
    model: str, role: str, seed: int, params: Mapping[str, Any], seat: Seat | None
) -> Player:
    from haggler.agents.issue_negotiator import IssueNegotiator
    from haggler.agents.rule_negotiator import RuleNegotiator
    from haggler.agents.tactics import TACTICS

    tactic_name = model.removeprefix(RULE_PREFIX).removeprefix("rule") or "linear"
    factory = TACTICS.get(tactic_name)
    tactic_params = {k: v for k, v in params.items() if k not in NEGOTIATOR_OPTIONS}
    options = {k: v for k, v in params.items() if k in NEGOTIATOR_OPTIONS}
    accepted = factory_parameters(factory) or ()
    for name in tactic_params:
        if name not in accepted:
            takes = ", ".join(sorted({*accepted, *NEGOTIATOR_OPTIONS}))
            raise ParameterError(
                f"unknown parameter {name!r} for {model}; it takes {takes}",
                parameter=name,
                unknown=True,
            )
    tactic = build(factory, tactic_params, what=model)
    packages = seat is not None and any(t.carries == "terms" for t in seat.actions.types)
    negotiator = IssueNegotiator if packages else RuleNegotiator
    try:
        return negotiator(role, tactic, seed=seed, label=f"rule:{tactic_name}", **options)
    except ValueError as error:
        text = str(error)
        named = text.split(" ", 1)[0]
        if named in options:
            raise ParameterError(text, parameter=named) from None
        raise ConfigError(f"{model}: {text}") from None


def _accepts(factory: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def make_player(
    model: str,
    role: str,
    *,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    seat: Seat | None = None,
) -> Player:
    """The player `model` names (`rule:TACTIC`, `role:NAME`, `package.module:Factory`) in
    `role`, seeded with `seed`, made with `params`. `seat`, when given, picks the rule-based
    negotiator that fits the game. A bad parameter is a `ParameterError`; a reference that
    cannot be loaded, or a factory that makes no player of `role`, a `ConfigError`."""
    params = dict(params or {})
    if is_rule(model):
        return _rule_player(model, role, seed, params, seat)
    factory = load_factory(model)
    if not _accepts(factory, "role"):
        raise ConfigError(
            f"{model} takes no `role` argument; a role's factory is called as "
            f"factory(role=..., seed=..., **params) (see docs/plugins.md)"
        )
    context: dict[str, Any] = {"role": role}
    if _accepts(factory, "seed"):
        context["seed"] = seed
    player = build(factory, params, context=context, what=model)
    if not isinstance(player, Player):
        raise ConfigError(
            f"{model} made a {type(player).__name__}, not a Player; a role subclasses "
            f"haggler.agents.Player"
        )
    if getattr(player, "role", None) != role:
        raise ConfigError(
            f"{model} was asked for a player of the {role} and made one for "
            f"{getattr(player, 'role', None)!r}; set self.role from its role argument"
        )
    if not getattr(player, "label", None):
        player.label = model
    return player


def check_players(game: Any, players: Mapping[str, Player] | None) -> dict[str, Player]:
    """`players` (role -> a Player object, from Python) checked against `game`'s seats: each
    names a role of the game, plays that role, and can play its seat; ConfigError otherwise."""
    given = dict(players or {})
    for role, player in given.items():
        if role not in game.roles:
            raise ConfigError(
                f"players: {game.name} has no role {role!r}; its roles are {', '.join(game.roles)}"
            )
        if not isinstance(player, Player):
            raise ConfigError(
                f"players.{role}: a {type(player).__name__} is no Player; pass an object of a "
                f"haggler.agents.Player subclass (or name its class in the spec's roles)"
            )
        if player.role != role:
            raise ConfigError(
                f"players.{role}: the player plays the {player.role!r}; make it for {role!r}"
            )
        if not getattr(player, "label", None):
            player.label = type(player).__name__
        reason = player.cannot_play(game.seat(role))
        if reason is not None:
            raise ConfigError(f"players.{role}: it cannot play the {role} of {game.name}: {reason}")
    return given


def described(spec: Any, given: Mapping[str, Player]) -> dict[str, Any]:
    """`spec` as a run stores it, with the players given as objects named by their labels."""
    described: dict[str, Any] = spec.model_dump(mode="json")
    if given:
        described["players"] = {role: player.label for role, player in given.items()}
    return described
