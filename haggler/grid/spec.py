"""Grid specs: the seed paper's whole experiment as one file, and the cells it expands into.

    name: paper
    pairs:
      - {name: gpt-4o, seller: openai/gpt-4o, buyer: anthropic/claude-3-5-haiku-latest}
      - {name: claude, seller: anthropic/claude-3-5-sonnet-latest, buyer: openai/gpt-4o-mini,
         critic: anthropic/claude-3-5-sonnet-latest}
    arms: [ai, none, constant, human]
    coached: [seller, buyer]
    main: {rounds: 2, lineages: 500}
    unrolled: {rounds: 5, lineages: 200, stop_at_first_failure: true}

A cell is one (pair, coached role, phase): a self-play run of every arm on shared lineage
seeds. Its run id holds the grid's name, the cell's coordinates and a digest of what it plays
(models, settings, prompts, rules, arms, rounds, lineages, seed, the human suggestions' text),
never of how it is played (concurrency, retries, a server's address, the variable holding a
key): running the grid again continues each cell, and a cell whose settings changed becomes a
new run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from haggler.errors import SpecError
from haggler.run.spec import (
    CriticSpec,
    FeedbackKind,
    FieldError,
    ModeratorSpec,
    RetrySpec,
    RoleSpec,
    SelfPlaySpec,
    check_selfplay_spec,
    read_mapping,
    spec_error,
)

__all__ = [
    "Cell",
    "EstimateSpec",
    "GridSpec",
    "PairSpec",
    "PhaseSpec",
    "UnrolledSpec",
    "check_grid_spec",
    "grid_cells",
    "load_grid_spec",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
Coached = Literal["seller", "buyer", "both"]
Phase = Literal["main", "unrolled"]


def _model_shorthand(value: Any) -> Any:
    return {"model": value} if isinstance(value, str) else value


class PairSpec(BaseModel):
    """Who meets whom in a cell: the seller's and the buyer's models, and who coaches."""

    model_config = ConfigDict(extra="forbid")

    # Defaults to the two models' names; it names the pair's cells and report rows.
    name: str | None = Field(None, pattern=_NAME)
    seller: RoleSpec
    buyer: RoleSpec
    # None: the coached player's own model coaches it (the paper's choice), or the rule-based
    # critic for rule-based players.
    critic: CriticSpec | None = None
    # None: the grid's moderator.
    moderator: ModeratorSpec | None = None

    @field_validator("seller", "buyer", "critic", "moderator", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `seller: openai/gpt-4o` is short for `seller: {model: openai/gpt-4o}`.
        return _model_shorthand(value)

    def label(self) -> str:
        if self.name is not None:
            return self.name
        tail = [
            spec.model.rsplit("/", 1)[-1].replace(":", "-") for spec in (self.seller, self.buyer)
        ]
        return f"{tail[0]}-vs-{tail[1]}"


class PhaseSpec(BaseModel):
    """How long each lineage of a phase runs, and how many there are per arm."""

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(ge=1, le=100)
    lineages: int = Field(ge=1, le=100_000)
    stop_at_first_failure: bool = False


class UnrolledSpec(PhaseSpec):
    """The paper's unrolled runs: long lineages, each stopping at its first round without a
    valid deal unless told otherwise."""

    stop_at_first_failure: bool = True


class EstimateSpec(BaseModel):
    """What the cost estimate assumes of the models (haggler.grid.cost says how it is used)."""

    model_config = ConfigDict(extra="forbid")

    # Generated messages in a game (both sides); None: half the game's turn limit.
    messages_per_game: int | None = Field(None, ge=2, le=2000)
    # A message's length in round 1. The paper's GPT-4 seller wrote about 320 characters.
    message_chars: int = Field(320, ge=1, le=100_000)
    # How much longer the coached player's messages get each round: the paper's GPT-4 seller
    # went from about 320 to 1050 characters over five rounds, (1050/320) ** (1/4) a round.
    growth: float = Field(round((1050 / 320) ** 0.25, 3), ge=0.1, le=10)
    # A model critic's answer (three suggestions).
    advice_chars: int = Field(300, ge=1, le=100_000)
    # The share of messages sent without an action tag, which a model moderator reads.
    untagged_share: float = Field(0.25, ge=0, le=1)


class GridSpec(BaseModel):
    """The paper's experiment: pairs x coached roles x phases, every arm in each."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    game: str = "balloon"
    rules: dict[str, Any] = Field(default_factory=dict)
    pairs: list[PairSpec] = Field(min_length=1, max_length=100)
    arms: list[FeedbackKind] = Field(
        default_factory=lambda: ["ai", "none"],  # type: ignore[arg-type]
        min_length=1,
    )
    coached: list[Coached] = Field(
        default_factory=lambda: ["seller"],  # type: ignore[arg-type]
        min_length=1,
    )
    main: PhaseSpec | None = Field(default_factory=lambda: PhaseSpec(rounds=2, lineages=500))
    unrolled: UnrolledSpec | None = Field(
        default_factory=lambda: UnrolledSpec(rounds=5, lineages=200)
    )
    moderator: ModeratorSpec = Field(default_factory=ModeratorSpec)
    # One file of suggestions for the human arm, or one per coached role.
    human_feedback: Path | dict[Coached, Path] | None = None
    constant_feedback: str = Field("Nice game. Try to do better than last round.", min_length=1)
    memory_budget: int = Field(2000, ge=50, le=1_000_000)
    # Lineages played at once within a cell; cells are played one after another.
    concurrency: int = Field(8, ge=1, le=1024)
    seed: int = Field(0, ge=-(2**40), le=2**40)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    invalid_allowance: int = Field(1, ge=0, le=10)
    estimate: EstimateSpec = Field(default_factory=EstimateSpec)

    @field_validator("moderator", mode="before")
    @classmethod
    def _moderator_shorthand(cls, value: Any) -> Any:
        return _model_shorthand(value)

    @field_validator("arms", "coached", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("arms", "coached")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each value may appear once, got {value}")
        return value

    @model_validator(mode="after")
    def _sound(self) -> GridSpec:
        if self.main is None and self.unrolled is None:
            raise FieldError("main", "both phases are off; give main, unrolled or both")
        labels = [pair.label() for pair in self.pairs]
        for index, label in enumerate(labels):
            if label in labels[:index]:
                raise FieldError(
                    f"pairs.{index}.name",
                    f"pair {label!r} appears twice; give each pair its own name",
                )
        if isinstance(self.human_feedback, dict) and "human" in self.arms:
            for role in self.coached:
                if role not in self.human_feedback:
                    raise FieldError(
                        "human_feedback",
                        f"no suggestions for the coached {role}; add {role}: FILE",
                    )
        return self

    def phases(self) -> list[tuple[Phase, PhaseSpec]]:
        chosen: list[tuple[Phase, PhaseSpec]] = []
        if self.main is not None:
            chosen.append(("main", self.main))
        if self.unrolled is not None:
            chosen.append(("unrolled", self.unrolled))
        return chosen

    def suggestions_for(self, coached: str) -> Path | None:
        if isinstance(self.human_feedback, dict):
            return self.human_feedback.get(coached)  # type: ignore[call-overload]
        return self.human_feedback


@dataclass(frozen=True, slots=True)
class Cell:
    """One self-play run of the grid: a pair, a coached role, a phase, every arm."""

    pair: str
    coached: str
    phase: str
    spec: SelfPlaySpec
    run_id: str

    def describe(self) -> str:
        return f"{self.pair}, {self.coached} coached, {self.phase}"


def grid_cells(grid: GridSpec, *, source: str | None = None) -> list[Cell]:
    """The grid's cells in the order they are played: the main phase of every pair and coached
    role first (the paper's headline table), then the unrolled runs. SpecError names the grid's
    field when a cell cannot be played (a rule tactic's parameter, a missing file)."""
    cells = []
    for phase, settings in grid.phases():
        for index, pair in enumerate(grid.pairs):
            for coached in grid.coached:
                spec = _cell_spec(grid, pair, index, coached, settings, source)
                label = pair.label()
                run_id = f"grid-{grid.name}-{label}-{coached}-{phase}-{_digest(spec)}"
                cells.append(Cell(label, coached, phase, spec, run_id))
    return cells


def _cell_spec(
    grid: GridSpec,
    pair: PairSpec,
    index: int,
    coached: str,
    phase: PhaseSpec,
    source: str | None,
) -> SelfPlaySpec:
    data: dict[str, Any] = {
        "game": grid.game,
        "rules": grid.rules,
        "roles": {
            "seller": pair.seller.model_dump(exclude_none=True),
            "buyer": pair.buyer.model_dump(exclude_none=True),
        },
        "moderator": (pair.moderator or grid.moderator).model_dump(exclude_none=True),
        "seed": grid.seed,
        "retry": grid.retry.model_dump(),
        "invalid_allowance": grid.invalid_allowance,
        "coached": coached,
        "rounds": phase.rounds,
        "lineages": phase.lineages,
        "feedback": list(grid.arms),
        "constant_feedback": grid.constant_feedback,
        "stop_at_first_failure": phase.stop_at_first_failure,
        "memory_budget": grid.memory_budget,
        "concurrency": grid.concurrency,
    }
    if pair.critic is not None:
        data["critic"] = pair.critic.model_dump(exclude_none=True)
    if "human" in grid.arms:
        suggestions = grid.suggestions_for(coached)
        data["human_feedback"] = str(suggestions) if suggestions is not None else None
    try:
        return check_selfplay_spec(data, source=source)
    except SpecError as error:
        raise SpecError(
            error.message, source=source, field=_grid_field(error.field, index)
        ) from None


def _grid_field(field: str | None, pair: int) -> str | None:
    # A cell's field, said in the grid's terms.
    if field is None:
        return None
    if field.startswith("roles."):
        return f"pairs.{pair}.{field.removeprefix('roles.')}"
    if field.startswith(("critic", "moderator")):
        return f"pairs.{pair}.{field}"
    return field


# How a cell is played, not what it plays: left out of its identity.
_HOW = {"concurrency", "retry", "api_base", "api_key_env"}


def _identity(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _identity(v) for k, v in value.items() if k not in _HOW}
    if isinstance(value, list):
        return [_identity(v) for v in value]
    return value


def _digest(spec: SelfPlaySpec) -> str:
    content = _identity(spec.model_dump(mode="json"))
    if spec.human_feedback is not None:
        # The suggestions themselves, not where the file lies.
        content["human_feedback"] = spec.human_suggestions()
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def check_grid_spec(
    data: dict[str, Any], *, source: str | None = None, base: Path | None = None
) -> GridSpec:
    """`data` as a GridSpec whose every cell can be played; SpecError names the first problem's
    field. `base` is where relative paths (human_feedback) start."""
    try:
        grid = GridSpec.model_validate(data)
    except ValidationError as error:
        raise spec_error(error, source) from None
    from haggler.games.registry import make_game

    grid = _with_paths_from(grid, base or Path())
    game = make_game(grid.game, grid.rules, source=source)
    if not {"seller", "buyer"} <= set(game.roles) or not {
        "seller_opening",
        "buyer_opening",
    } <= set(game.facts):
        raise SpecError(
            f"{grid.game} is not a bargaining game; a grid plays games of a seller and a buyer "
            "with opening prices (balloon, diamond)",
            source=source,
            field="game",
        )
    grid_cells(grid, source=source)
    return grid


def _with_paths_from(grid: GridSpec, base: Path) -> GridSpec:
    """`grid` with its relative file paths made to start at `base` (the spec's folder)."""

    def resolved(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    files = grid.human_feedback
    if files is None:
        return grid
    if isinstance(files, dict):
        moved: Path | dict[Coached, Path] = {role: resolved(p) for role, p in files.items()}
    else:
        moved = resolved(files)
    return grid.model_copy(update={"human_feedback": moved})


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and check a grid spec; relative file paths in it are relative to the spec."""
    source = Path(path)
    return check_grid_spec(read_mapping(source), source=str(source), base=source.parent)
