"""Specs: what to play, by whom, on which models, as pydantic models loaded from YAML.

Every error becomes one `SpecError` line that names the file, the field path and the fix.
Checks that need no network run here (model prefixes, tactic names and parameters, game
rules); checks that need the environment (API keys) run when the backends open, still before
the first call.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from haggler.errors import ConfigError, SpecError

__all__ = [
    "GenerationParams",
    "ModeratorSpec",
    "PlaySpec",
    "RetrySpec",
    "RoleSpec",
    "load_play_spec",
    "spec_error",
]

RULE_PREFIX = "rule:"
LOCAL_PREFIX = "local:"
DEFAULT_ROLES = {"seller": "rule:boulware", "buyer": "rule:linear"}
# Options of a rule-based negotiator itself, as opposed to its tactic's.
_NEGOTIATOR_OPTIONS = {"reserve_share", "jitter", "plain_text"}


class GenerationParams(BaseModel):
    """Sampling options passed to a model backend."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=32_000)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: list[str] | None = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class RetrySpec(BaseModel):
    """How hard hosted calls are retried on rate limits, timeouts and server errors."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(6, ge=1, le=50)
    initial_wait: float = Field(1.0, ge=0)
    max_wait: float = Field(60.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)


class _ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # For rule: models, the tactic's and negotiator's options; otherwise generation options.
    params: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = None
    # The variable holding the key, when not the provider's usual one (never the key itself).
    api_key_env: str | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        model = model.strip()
        try:
            if model.startswith(RULE_PREFIX):
                from haggler.agents.tactics import TACTICS

                TACTICS.get(model[len(RULE_PREFIX) :])
            elif model.startswith(LOCAL_PREFIX):
                if not model[len(LOCAL_PREFIX) :]:
                    raise ValueError("write a local model as local:/path/to/model")
            elif model != "rule":
                from haggler.llm.providers import split_model_name

                split_model_name(model)
        except ConfigError as error:
            # As a ValueError, pydantic attaches the field path to the message.
            raise ValueError(str(error)) from None
        return model

    @property
    def is_rule(self) -> bool:
        return self.model == "rule" or self.model.startswith(RULE_PREFIX)

    @property
    def tactic(self) -> str:
        """The tactic of a rule-based model; plain `rule` concedes linearly."""
        return self.model.removeprefix(RULE_PREFIX).removeprefix("rule") or "linear"

    def generation(self) -> dict[str, Any]:
        return GenerationParams.model_validate(self.params).given()


class RoleSpec(_ModelSpec):
    """Who plays a role: `rule:TACTIC`, `PROVIDER/MODEL` or `local:/path`."""

    def rule_options(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(tactic parameters, negotiator options) of a rule-based role."""
        tactic = {k: v for k, v in self.params.items() if k not in _NEGOTIATOR_OPTIONS}
        options = {k: v for k, v in self.params.items() if k in _NEGOTIATOR_OPTIONS}
        return tactic, options


class ModeratorSpec(_ModelSpec):
    """Who reads free-form messages: `rule` (text cues) or a model, as in the paper."""

    model: str = "rule"


class PlaySpec(BaseModel):
    """One game: `haggler play SPEC`."""

    model_config = ConfigDict(extra="forbid")

    game: str = "balloon"
    # Overrides of the game's rules, e.g. {seller_cost: 9, max_exchanges: 5}.
    rules: dict[str, Any] = Field(default_factory=dict)
    roles: dict[str, RoleSpec] = Field(
        default_factory=lambda: {r: RoleSpec(model=m) for r, m in DEFAULT_ROLES.items()}
    )
    moderator: ModeratorSpec = Field(default_factory=ModeratorSpec)
    seed: int = 0
    retry: RetrySpec = Field(default_factory=RetrySpec)
    # Unreadable or illegal messages a role may send, each told back to it, before it loses.
    invalid_allowance: int = Field(1, ge=0, le=10)

    @field_validator("roles", mode="before")
    @classmethod
    def _model_shorthand(cls, roles: Any) -> Any:
        # `seller: openai/gpt-4o` is short for `seller: {model: openai/gpt-4o}`.
        if isinstance(roles, dict):
            return {k: {"model": v} if isinstance(v, str) else v for k, v in roles.items()}
        return roles

    @field_validator("moderator", mode="before")
    @classmethod
    def _moderator_shorthand(cls, moderator: Any) -> Any:
        return {"model": moderator} if isinstance(moderator, str) else moderator


def spec_error(error: ValidationError, source: str | None, prefix: str = "") -> SpecError:
    """The first problem in `error` as one SpecError line."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    field = ".".join([prefix, *loc] if prefix else loc) or None
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field; remove it or fix its spelling"
    elif first["type"] == "missing":
        message = "required field is missing"
    return SpecError(message, source=source, field=field)


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise SpecError("file not found; check the path", source=str(path))
    if path.is_dir():
        raise SpecError("is a directory; give a YAML spec file", source=str(path))
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SpecError("not a text file; give a YAML spec", source=str(path)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or "malformed YAML"
        raise SpecError(f"{where}{problem}; fix the YAML syntax", source=str(path)) from None


def load_play_spec(path: str | Path) -> PlaySpec:
    """Read and check a play spec; SpecError names the file and field of the first problem."""
    source = Path(path)
    data = _read_yaml(source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(
            f"the top level must be a mapping (game:, roles:, ...), not {type(data).__name__}",
            source=str(source),
        )
    return check_play_spec(data, source=str(source))


def check_play_spec(data: dict[str, Any], *, source: str | None = None) -> PlaySpec:
    """`data` as a PlaySpec, checked against its game's roles, rules and tactics."""
    try:
        spec = PlaySpec.model_validate(data)
    except ValidationError as error:
        raise spec_error(error, source) from None
    _check_against_game(spec, source)
    return spec


def _check_against_game(spec: PlaySpec, source: str | None) -> None:
    from haggler.agents.tactics import TACTICS
    from haggler.games.registry import make_game

    try:
        game = make_game(spec.game, spec.rules, source=source)
    except ConfigError as error:
        raise SpecError(str(error), source=source, field="game") from None
    for role in spec.roles:
        if role not in game.roles:
            raise SpecError(
                f"{spec.game} has no role {role!r}; its roles are {', '.join(game.roles)}",
                source=source,
                field=f"roles.{role}",
            )
    for role, role_spec in spec.roles.items():
        field = f"roles.{role}.params"
        if role_spec.is_rule:
            tactic, _ = role_spec.rule_options()
            factory = TACTICS.get(role_spec.tactic)
            accepted = set(inspect.signature(factory).parameters)
            unknown = sorted(set(tactic) - accepted)
            if unknown:
                takes = ", ".join(sorted(accepted | _NEGOTIATOR_OPTIONS))
                raise SpecError(
                    f"unknown parameter {unknown[0]!r} for {role_spec.model}; it takes {takes}",
                    source=source,
                    field=field,
                )
        else:
            try:
                role_spec.generation()
            except ValidationError as error:
                raise spec_error(error, source, prefix=field) from None
    if not spec.moderator.is_rule:
        try:
            spec.moderator.generation()
        except ValidationError as error:
            raise spec_error(error, source, prefix="moderator.params") from None
