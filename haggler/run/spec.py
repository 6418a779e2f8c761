"""Specs: what to play, by whom, on which models, as pydantic models loaded from YAML.

Every error becomes one `SpecError` line that names the file, the field path and the fix.
Checks that need no network run here (model prefixes, tactic names and parameters, game
rules); checks that need the environment (API keys) run when the backends open, still before
the first call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from haggler.errors import ConfigError, ParameterError, SpecError
from haggler.llm.providers import LOCAL_PREFIX

if TYPE_CHECKING:
    from haggler.llm.local_backend import LocalSettings

__all__ = [
    "FieldError",
    "ForgetStep",
    "GenerationParams",
    "LocalSpec",
    "ModeratorSpec",
    "PlaySpec",
    "RetrySpec",
    "RoleSpec",
    "SelfPlaySpec",
    "UnlearnerSpec",
    "check_play_spec",
    "check_selfplay_spec",
    "load_play_spec",
    "load_selfplay_spec",
    "roles_shorthand",
    "spec_error",
]

RULE_PREFIX = "rule:"
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


# Devices a local model may name; torch knows more, these are the ones haggler runs on.
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


class LocalSpec(BaseModel):
    """How a `local:/path` model runs in this process: `roles.seller.local: {batch_size: 8}`.

    The weights load once per process for each (path, device, dtype) and are shared by every
    role and game that names them; `keep_alive_s` is how long they stay loaded after the last
    game using them ends, so games played one after another do not reload them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The most prompts in one forward pass of the model.
    batch_size: int = Field(8, ge=1, le=1024)
    # How long (milliseconds) a call waits for others to share its batch.
    gather_ms: float = Field(5.0, ge=0, le=10_000)
    device: str = "auto"
    # None: bfloat16 on GPUs that have it, float16 on other GPUs, float32 on cpu and mps.
    dtype: str | None = None
    keep_alive_s: float = Field(300.0, ge=0, le=7 * 24 * 3600)

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not _DEVICE.fullmatch(device):
            raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
        return device

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, dtype: str | None) -> str | None:
        from haggler.llm.local_weights import DTYPES

        if dtype is not None and dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(sorted(DTYPES))}")
        return dtype

    def settings(self) -> LocalSettings:
        """These options as the local backend takes them."""
        from haggler.llm.local_backend import LocalSettings

        return LocalSettings(
            device=self.device,
            dtype=self.dtype,
            max_batch=self.batch_size,
            batch_window_s=self.gather_ms / 1000,
            keep_alive_s=self.keep_alive_s,
        )


class _ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # For rule: models, the tactic's and negotiator's options; otherwise generation options.
    params: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = None
    # The variable holding the key, when not the provider's usual one (never the key itself).
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    # How a local:/path model runs (batch size, gathering window, device, dtype, keep-alive).
    local: LocalSpec | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _factory_by_reference(cls, model: Any) -> Any:
        # In Python, a role's class or factory may stand for its `module:Name` reference.
        if callable(model) and not isinstance(model, str):
            from haggler.agents.roles import reference_of

            try:
                return reference_of(model)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return model

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        model = model.strip()
        try:
            from haggler.agents.roles import is_plugin, load_factory

            if is_plugin(model):
                load_factory(model)
            elif model.startswith(RULE_PREFIX):
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

    @field_validator("local")
    @classmethod
    def _local_model_only(cls, local: LocalSpec | None, info: ValidationInfo) -> LocalSpec | None:
        model = info.data.get("model")
        if local is not None and isinstance(model, str) and not model.startswith(LOCAL_PREFIX):
            raise ValueError(
                f"local options are for local:/path models, not {model!r}; "
                f"remove them or name a local model"
            )
        return local

    @property
    def is_rule(self) -> bool:
        return self.model == "rule" or self.model.startswith(RULE_PREFIX)

    @property
    def is_plugin(self) -> bool:
        """A role plug-in (`role:NAME`, `package.module:Factory`): it calls no model."""
        from haggler.agents.roles import is_plugin

        return is_plugin(self.model)

    @property
    def tactic(self) -> str:
        """The tactic of a rule-based model; plain `rule` concedes linearly."""
        return self.model.removeprefix(RULE_PREFIX).removeprefix("rule") or "linear"

    def generation(self) -> dict[str, Any]:
        return GenerationParams.model_validate(self.params).given()


def roles_shorthand(roles: Any) -> Any:
    """`seller: openai/gpt-4o` is short for `seller: {model: openai/gpt-4o}`; in Python, a
    role's class or factory is short for `{model: TheClass}` too."""
    if isinstance(roles, dict):
        return {
            k: {"model": v} if isinstance(v, str) or callable(v) else v for k, v in roles.items()
        }
    return roles


class RoleSpec(_ModelSpec):
    """Who plays a role: `rule:TACTIC`, `PROVIDER/MODEL`, `local:/path`, or a role plug-in,
    `role:NAME` or `package.module:Factory` (in Python, the class or factory itself); a
    plug-in's `params` are its factory's."""

    # The player's own instructions or persona, added to its model's system prompt (after the
    # role's brief); only that role's model reads it. Rule-based players have no prompt.
    prompt: str | None = Field(None, max_length=100_000)

    @field_validator("prompt")
    @classmethod
    def _prompt_for_a_model(cls, prompt: str | None, info: ValidationInfo) -> str | None:
        if prompt is None:
            return None
        if not prompt.strip():
            raise ValueError("the prompt is empty; write the player's instructions or remove it")
        model = str(info.data.get("model", ""))
        if model == "rule" or model.startswith(RULE_PREFIX):
            raise ValueError(
                f"{model} is rule-based and reads no prompt; remove prompt or name a model"
            )
        return prompt.strip()

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
    # Bounded so that derived seeds (one per lineage and round) fit the store's integers.
    seed: int = Field(0, ge=-(2**40), le=2**40)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    # Unreadable or illegal messages a role may send, each told back to it, before it loses.
    invalid_allowance: int = Field(1, ge=0, le=10)

    @field_validator("roles", mode="before")
    @classmethod
    def _model_shorthand(cls, roles: Any) -> Any:
        return roles_shorthand(roles)

    @field_validator("moderator", mode="before")
    @classmethod
    def _moderator_shorthand(cls, moderator: Any) -> Any:
        return {"model": moderator} if isinstance(moderator, str) else moderator


FeedbackKind = Literal["ai", "none", "constant", "human"]


class CriticSpec(_ModelSpec):
    """Who coaches: `rule` (the offline critic) or a model."""

    model: str = "rule"


class UnlearnerSpec(_ModelSpec):
    """Who reads forget requests written in words: `rule` (the request grammar) or a model."""

    model: str = "rule"


class ForgetStep(BaseModel):
    """A forget request a lineage carries out after a round, between the critic and the next
    round: words for the unlearner (`level` and `mode` guide it), or a typed request."""

    model_config = ConfigDict(extra="forbid")

    after_round: int = Field(ge=1, le=100)
    request: str | dict[str, Any]
    level: Literal["state", "trajectory", "environment"] | None = None
    mode: Literal["exact", "redact", "rederive"] | None = None

    @field_validator("request")
    @classmethod
    def _readable(cls, request: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(request, str):
            if not request.strip():
                raise ValueError("say what to forget, in words or as a typed request")
            return request.strip()
        from haggler.memory.forgetting import parse_request

        parse_request(request)  # its ValidationError names the field
        return request

    def typed(self) -> Any:
        """The typed request, or None when it is in words."""
        if isinstance(self.request, str):
            return None
        from haggler.memory.forgetting import parse_request

        return parse_request(self.request)


class SelfPlaySpec(PlaySpec):
    """Rounds of play, feedback and memory: `haggler selfplay SPEC`."""

    # The role coached (any role of the game), a list of roles, or "both" (seller and buyer).
    coached: str | list[str] = "seller"
    rounds: int = Field(3, ge=1, le=100)
    lineages: int = Field(20, ge=1, le=100_000)
    # Arms of the experiment, each played on the same seeds so they compare pair by pair.
    feedback: list[FeedbackKind] = Field(default_factory=lambda: ["ai"], min_length=1)  # type: ignore[arg-type]
    # None: the paper's choice, the coached player's own model (or the rule critic for rules).
    critic: CriticSpec | None = None
    # A text file of human-written suggestions, one a line, for the "human" arm.
    human_feedback: Path | None = None
    constant_feedback: str = Field("Nice game. Try to do better than last round.", min_length=1)
    # The paper's unrolled runs stop a lineage at its first round without a valid deal.
    stop_at_first_failure: bool = False
    memory_budget: int = Field(2000, ge=50, le=1_000_000)
    concurrency: int = Field(8, ge=1, le=1024)
    # Name the coached agent to keep its memory across sessions: a later run with the same
    # name starts from what it remembered.
    agent: str | None = Field(None, min_length=1, max_length=200)
    # Forget requests carried out between rounds, in order, and who reads those in words.
    forget: list[ForgetStep] = Field(default_factory=list, max_length=100)
    unlearner: UnlearnerSpec = Field(default_factory=UnlearnerSpec)

    @field_validator("feedback", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("feedback")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each feedback kind may appear once, got {value}")
        return value

    @field_validator("critic", "unlearner", mode="before")
    @classmethod
    def _critic_shorthand(cls, critic: Any) -> Any:
        return {"model": critic} if isinstance(critic, str) else critic

    @field_validator("forget")
    @classmethod
    def _within_the_rounds(cls, steps: list[ForgetStep], info: Any) -> list[ForgetStep]:
        rounds = info.data.get("rounds")
        for index, step in enumerate(steps):
            if rounds is not None and step.after_round > rounds:
                raise ValueError(
                    f"step {index} comes after round {step.after_round}, but a lineage plays "
                    f"{rounds}; schedule it after round {rounds} at the latest"
                )
        return steps

    def coached_roles(self) -> tuple[str, ...]:
        if isinstance(self.coached, list):
            return tuple(self.coached)
        return ("seller", "buyer") if self.coached == "both" else (self.coached,)

    def human_suggestions(self) -> list[str]:
        """The human-written suggestions, read from `human_feedback`."""
        if self.human_feedback is None:
            raise SpecError("the human arm needs a file of suggestions", field="human_feedback")
        lines = self.human_feedback.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class FieldError(ValueError):
    """Raised by a spec's validator for a problem that belongs to another field than the one
    being validated (a name given twice, a round no fact is said in): `spec_error` names
    `field` rather than where pydantic was."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def spec_error(error: ValidationError, source: str | None, prefix: str = "") -> SpecError:
    """The first problem in `error` as one SpecError line."""
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return SpecError(str(cause), source=source, field=cause.field)
    loc = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    field = ".".join([prefix, *loc] if prefix else loc) or None
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field; remove it or fix its spelling"
    elif first["type"] == "string_pattern_mismatch" and loc and loc[-1] == "api_key_env":
        # Never echo the value: a key pasted here by mistake must not reach the terminal.
        message = "must name an environment variable (letters, digits, _), not hold the key"
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
    except ValueError as error:
        # e.g. an integer of more digits than Python converts
        reason = str(error).split(";")[0].split(":")[0]
        raise SpecError(f"a value cannot be read ({reason}); fix it", source=str(path)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or "malformed YAML"
        raise SpecError(f"{where}{problem}; fix the YAML syntax", source=str(path)) from None


def read_mapping(source: Path) -> dict[str, Any]:
    data = _read_yaml(source)
    if data is None:
        # A file named on purpose that says nothing is a mistake (a save that did not happen,
        # the wrong path), not a request for the defaults; `{}` still asks for those.
        raise SpecError(
            "the file is empty (or holds only comments); write the spec in it", source=str(source)
        )
    if not isinstance(data, dict):
        raise SpecError(
            f"the top level must be a mapping (game:, roles:, ...), not {type(data).__name__}",
            source=str(source),
        )
    return data


def load_play_spec(path: str | Path) -> PlaySpec:
    """Read and check a play spec; SpecError names the file and field of the first problem."""
    source = Path(path)
    return check_play_spec(read_mapping(source), source=str(source))


def check_play_spec(data: dict[str, Any], *, source: str | None = None) -> PlaySpec:
    """`data` as a PlaySpec, checked against its game's roles, rules and tactics."""
    try:
        spec = PlaySpec.model_validate(data)
    except ValidationError as error:
        raise spec_error(error, source) from None
    _check_against_game(spec, source)
    return spec


def load_selfplay_spec(path: str | Path) -> SelfPlaySpec:
    """Read and check a self-play spec; relative file paths in it are relative to the spec."""
    source = Path(path)
    return check_selfplay_spec(read_mapping(source), source=str(source), base=source.parent)


def check_selfplay_spec(
    data: dict[str, Any], *, source: str | None = None, base: Path | None = None
) -> SelfPlaySpec:
    """`data` as a SelfPlaySpec; `base` is where relative paths (human_feedback) start."""
    try:
        spec = SelfPlaySpec.model_validate(data)
    except ValidationError as error:
        raise spec_error(error, source) from None
    game = _check_against_game(spec, source)
    _check_coached(spec, game, source)
    if spec.critic is not None and not spec.critic.is_rule:
        try:
            spec.critic.generation()
        except ValidationError as error:
            raise spec_error(error, source, prefix="critic.params") from None
    if "human" in spec.feedback:
        if spec.human_feedback is None:
            raise SpecError(
                "the human arm needs suggestions; set human_feedback to a text file, one a line",
                source=source,
                field="human_feedback",
            )
        path = (
            spec.human_feedback
            if spec.human_feedback.is_absolute()
            else (base or Path()) / spec.human_feedback
        )
        if not path.is_file():
            raise SpecError(
                f"file {path} not found; give a text file of suggestions, one a line",
                source=source,
                field="human_feedback",
            )
        spec = spec.model_copy(update={"human_feedback": path})
        if not spec.human_suggestions():
            raise SpecError(
                f"file {path} holds no suggestions; write one a line",
                source=source,
                field="human_feedback",
            )
    return spec


def _check_player(
    game: Any, role: str, role_spec: RoleSpec, source: str | None, field: str, default: bool
) -> None:
    # Building the player is the check: its factory, tactic and options validate their own
    # values, and it says whether it can play the seat the game gives it.
    from haggler.agents.roles import make_player

    try:
        player = make_player(role_spec.model, role, params=role_spec.params, seat=game.seat(role))
    except ParameterError as error:
        named = error.parameter and not error.unknown
        where = f"{field}.params.{error.parameter}" if named else f"{field}.params"
        raise SpecError(str(error), source=source, field=where) from None
    except ConfigError as error:
        raise SpecError(str(error), source=source, field=field) from None
    reason = player.cannot_play(game.seat(role))
    if reason is not None:
        who = f"{role_spec.model} (the default)" if default else role_spec.model
        raise SpecError(
            f"{who} cannot play the {role} of {game.name}: {reason}; name a player that can",
            source=source,
            field=field,
        )


def _check_coached(spec: SelfPlaySpec, game: Any, source: str | None) -> None:
    coached = spec.coached_roles()
    if not coached or len(set(coached)) != len(coached):
        raise SpecError(
            f"name each coached role once, got {spec.coached}", source=source, field="coached"
        )
    for role in coached:
        if role not in game.roles:
            raise SpecError(
                f"{spec.game} has no role {role!r} to coach; its roles are {', '.join(game.roles)}",
                source=source,
                field="coached",
            )
    if "ai" in spec.feedback and _rule_critic(spec, game, coached):
        readable = {"seller_opening", "buyer_opening"} <= set(game.facts)
        outside = [role for role in coached if role not in ("seller", "buyer")]
        if not readable or outside:
            what = f"the {outside[0]}" if readable else f"{spec.game}, which has no prices"
            raise SpecError(
                f"the rule critic coaches a seller or a buyer in a bargaining game, not {what}; "
                f"name a model as critic, or use the feedback none, constant or human",
                source=source,
                field="critic" if spec.critic is not None else "feedback",
            )


def _rule_critic(spec: SelfPlaySpec, game: Any, coached: tuple[str, ...]) -> bool:
    # Without a critic of its own, each coached player's model coaches it (the paper's
    # choice): a rule-based player or a plug-in gets the rule critic.
    if spec.critic is not None:
        return spec.critic.is_rule
    for role in coached:
        role_spec = spec.roles.get(role) or RoleSpec(
            model=game.default_players.get(role, "rule:linear")
        )
        if role_spec.is_rule or role_spec.is_plugin:
            return True
    return False


def _check_against_game(spec: PlaySpec, source: str | None) -> Any:
    from haggler.games.registry import make_game

    try:
        game = make_game(spec.game, spec.rules, source=source)
    except ConfigError as error:
        raise SpecError(str(error), source=source, field="game") from None
    defaulted: set[str] = set()
    if "roles" not in spec.model_fields_set:
        # The default cast is the balloon's; another game's roles get that game's defaults.
        spec.roles = {role: r for role, r in spec.roles.items() if role in game.roles}
        defaulted = set(spec.roles)
    for role in spec.roles:
        if role not in game.roles:
            raise SpecError(
                f"{spec.game} has no role {role!r}; its roles are {', '.join(game.roles)}",
                source=source,
                field=f"roles.{role}",
            )
    for role in game.roles:
        role_spec = spec.roles.get(role)
        default = role_spec is None or role in defaulted
        if role_spec is None:
            role_spec = RoleSpec(model=game.default_players.get(role, "rule:linear"))
        field = f"roles.{role}"
        if role_spec.is_rule or role_spec.is_plugin:
            _check_player(game, role, role_spec, source, field, default)
        else:
            try:
                role_spec.generation()
            except ValidationError as error:
                raise spec_error(error, source, prefix=f"{field}.params") from None
    if not spec.moderator.is_rule:
        try:
            spec.moderator.generation()
        except ValidationError as error:
            raise spec_error(error, source, prefix="moderator.params") from None
    return game
