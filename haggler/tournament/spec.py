"""Tournament specs: players, games, a schedule, repetitions, a budget.

    name: spring-league
    players:
      - {name: gpt4o, model: openai/gpt-4o, params: {temperature: 0.7}}
      - {name: gpt4o-tough, model: openai/gpt-4o, prompt: {file: tough.md}}
      - {name: boulware, model: "rule:boulware"}
      - {name: claude, model: anthropic/claude-3-5-haiku-latest}
    games: [balloon, {game: diamond, rules: {max_exchanges: 8}}]
    # a game of three roles: fix one outside the competition
    # games: [{game: mediated-balloon, roles: {mediator: "role:split-the-difference"}}]
    schedule: round_robin            # or {kind: vs_fixed, opponents: [boulware]}
    repetitions: 5
    budget_usd: 20
    concurrency: 64
    rate_limits: {openai: {rpm: 500, tpm: 200000}}

A tournament's name is its identity in the store: running a spec again with the same name
continues it, playing only the matches that have not finished.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from haggler.errors import ConfigError, SpecError
from haggler.run.spec import (
    CriticSpec,
    FieldError,
    ForgetStep,
    ModeratorSpec,
    PlaySpec,
    RetrySpec,
    RoleSpec,
    UnlearnerSpec,
    check_play_spec,
    read_mapping,
    roles_shorthand,
    spec_error,
)

__all__ = [
    "GameEntry",
    "PlayerSpec",
    "RateLimitSpec",
    "ScheduleSpec",
    "TournamentSpec",
    "check_tournament_spec",
    "load_tournament_spec",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$"
# The most matches one game of a tournament may make (casts times repetitions).
MAX_MATCHES = 1_000_000


class PlayerSpec(RoleSpec):
    """A competitor: a model or a tactic, with its settings and (a model) its own prompt,
    playing either role. In a spec file, `prompt: {file: PATH}` reads the prompt from PATH,
    relative to the spec's folder; the text, not the path, is what the player is."""

    name: str = Field(pattern=_NAME)

    def content(self) -> dict[str, Any]:
        """The player as its match ids see it: its name, model, settings and prompt (not where
        it runs: its server's address, which may move, or a local model's device and batching)."""
        content = self.model_dump(mode="json", exclude={"api_base", "local"})
        if content.get("prompt") is None:
            # Players without a prompt keep the ids they had before prompts existed.
            del content["prompt"]
        return content


class GameEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    game: str = "balloon"
    rules: dict[str, Any] = Field(default_factory=dict)
    # Roles cast the same way in every match of this game, outside the competition (a
    # mediator plug-in, a fixed party): role -> who plays it. The players compete for the rest.
    roles: dict[str, RoleSpec] = Field(default_factory=dict)

    @field_validator("roles", mode="before")
    @classmethod
    def _model_shorthand(cls, roles: Any) -> Any:
        return roles_shorthand(roles)

    def competing_roles(self) -> tuple[str, ...]:
        """The game's roles the players compete for, in the game's order."""
        from haggler.games.registry import make_game

        return tuple(r for r in make_game(self.game, self.rules).roles if r not in self.roles)


class ScheduleSpec(BaseModel):
    """Who meets whom. Every pairing is played in both role assignments."""

    model_config = ConfigDict(extra="forbid")

    # round_robin: every player against every other. vs_fixed: every other player against
    # each of `opponents` (a benchmark panel), never the panel against itself. selfplay: every
    # player, coached in the `coached` role, plays `rounds` rounds of self-play with
    # `feedback` against every other player, who starts fresh each round.
    kind: Literal["round_robin", "vs_fixed", "selfplay"] = "round_robin"
    opponents: list[str] = Field(default_factory=list)
    rounds: int = Field(3, ge=1, le=50)
    feedback: Literal["ai", "none", "constant"] = "ai"
    # The role the coached player takes: any role of every game that the players compete for.
    coached: str = Field("seller", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # None: the coached player's own model critiques it (the paper's choice).
    critic: CriticSpec | None = None
    memory_budget: int = Field(2000, ge=50, le=1_000_000)
    # Forget requests each lineage carries out between rounds, and who reads words.
    forget: list[ForgetStep] = Field(default_factory=list, max_length=100)
    unlearner: UnlearnerSpec = Field(default_factory=UnlearnerSpec)

    @field_validator("critic", "unlearner", mode="before")
    @classmethod
    def _critic_shorthand(cls, critic: Any) -> Any:
        return {"model": critic} if isinstance(critic, str) else critic

    @model_validator(mode="after")
    def _forgetting_fits(self) -> ScheduleSpec:
        for index, step in enumerate(self.forget):
            if self.kind != "selfplay":
                raise ValueError("forget steps belong to a selfplay schedule; set kind: selfplay")
            if step.after_round > self.rounds:
                raise ValueError(
                    f"forget.{index} comes after round {step.after_round}, but a lineage plays "
                    f"{self.rounds}; schedule it after round {self.rounds} at the latest"
                )
            typed = step.typed()
            if typed is not None and typed.purge_record:
                raise ValueError(
                    f"forget.{index}: a tournament stores a lineage only when it ends, so there "
                    "is no record to purge yet; drop purge_record (its forget steps act on "
                    "memory only)"
                )
        return self

    def lineage_content(self) -> dict[str, Any]:
        """What defines a lineage of this schedule, as match ids read it. Forgetting enters
        only when asked for, so the ids of schedules without it stay as they were."""
        exclude = {"kind", "opponents"}
        if not self.forget:
            exclude |= {"forget", "unlearner"}
        return self.model_dump(mode="json", exclude=exclude)


class RateLimitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)


class TournamentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    players: list[PlayerSpec] = Field(min_length=2)
    games: list[GameEntry] = Field(default_factory=lambda: [GameEntry()], min_length=1)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    repetitions: int = Field(1, ge=1, le=100_000)
    seed: int = Field(0, ge=-(2**40), le=2**40)
    # Stop starting new matches once this much has been spent (None: no limit).
    budget_usd: float | None = Field(None, ge=0)
    concurrency: int = Field(16, ge=1, le=4096)
    # Per provider (the model prefix: openai, anthropic, hosted_vllm, …).
    rate_limits: dict[str, RateLimitSpec] = Field(default_factory=dict)
    moderator: ModeratorSpec = Field(default_factory=ModeratorSpec)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    invalid_allowance: int = Field(1, ge=0, le=10)

    @field_validator("games", mode="before")
    @classmethod
    def _game_shorthand(cls, games: Any) -> Any:
        # `games: [balloon, diamond]` is short for `[{game: balloon}, {game: diamond}]`.
        if isinstance(games, list):
            return [{"game": g} if isinstance(g, str) else g for g in games]
        return games

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, schedule: Any) -> Any:
        return {"kind": schedule} if isinstance(schedule, str) else schedule

    @field_validator("moderator", mode="before")
    @classmethod
    def _moderator_shorthand(cls, moderator: Any) -> Any:
        return {"model": moderator} if isinstance(moderator, str) else moderator

    @model_validator(mode="after")
    def _names_make_sense(self) -> TournamentSpec:
        names = [p.name for p in self.players]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise FieldError(f"players.{index}.name", f"player {name!r} is named twice")
        for index, opponent in enumerate(self.schedule.opponents):
            if opponent not in names:
                raise FieldError(
                    f"schedule.opponents.{index}",
                    f"no player named {opponent!r}; players are {', '.join(names)}",
                )
        if self.schedule.kind != "vs_fixed" and self.schedule.opponents:
            raise FieldError(
                "schedule.opponents",
                f"{self.schedule.kind} has no fixed opponents; use kind: vs_fixed",
            )
        if self.schedule.kind == "vs_fixed":
            if not self.schedule.opponents:
                raise FieldError("schedule.opponents", "vs_fixed needs at least one opponent")
            if set(self.schedule.opponents) >= set(names):
                raise FieldError(
                    "schedule.opponents", "every player is an opponent: no one is left to play them"
                )
        return self

    def play_spec(self, game: GameEntry, cast: Mapping[str, PlayerSpec], seed: int) -> PlaySpec:
        """The one game a match plays: `cast` (role -> player) in the roles the players
        compete for, and the game's fixed roles."""
        roles = {
            role: RoleSpec(**player.model_dump(exclude={"name"})) for role, player in cast.items()
        }
        roles |= game.roles
        return PlaySpec(
            game=game.game,
            rules=game.rules,
            roles=roles,
            moderator=self.moderator,
            seed=seed,
            retry=self.retry,
            invalid_allowance=self.invalid_allowance,
        )


def check_tournament_spec(data: dict[str, Any], *, source: str | None = None) -> TournamentSpec:
    """`data` as a TournamentSpec; SpecError names the first problem's field. A player's
    `prompt: {file: PATH}` is read relative to `source`'s folder (or the current one)."""
    data = _read_prompt_files(data, Path(source).parent if source else Path.cwd(), source)
    try:
        spec = TournamentSpec.model_validate(data)
    except ValidationError as error:
        raise spec_error(error, source) from None
    # Every game must be castable by the schedule, and every player must make a playable
    # game of every game in every role it competes for: check each as a play spec.
    for g, game in enumerate(spec.games):
        competing = _castable(spec, g, game, source)
        for p, player in enumerate(spec.players):
            try:
                cast = dict.fromkeys(competing, player)
                check_play_spec(spec.play_spec(game, cast, spec.seed).model_dump())
            except SpecError as error:
                field = _tournament_field(error.field, g, p, fixed=set(game.roles))
                raise SpecError(error.message, source=source, field=field) from None
    return spec


def _castable(spec: TournamentSpec, g: int, game: GameEntry, source: str | None) -> tuple[str, ...]:
    """The roles of games[g] the players compete for; SpecError when the schedule cannot cast
    every match of it (too few players, a coached role it does not have)."""
    from haggler.games.registry import make_game

    try:
        made = make_game(game.game, game.rules)
    except SpecError as error:
        raise SpecError(error.message, source=source, field=f"games.{g}.{error.field}") from None
    except ConfigError as error:
        raise SpecError(str(error), source=source, field=f"games.{g}.game") from None
    for role in game.roles:
        if role not in made.roles:
            raise SpecError(
                f"{game.game} has no role {role!r}; its roles are {', '.join(made.roles)}",
                source=source,
                field=f"games.{g}.roles.{role}",
            )
    competing = tuple(r for r in made.roles if r not in game.roles)
    if not competing:
        raise SpecError(
            "every role is fixed, so no player competes; leave at least one role to the players",
            source=source,
            field=f"games.{g}.roles",
        )
    schedule = spec.schedule
    listed = ", ".join(competing)
    if schedule.kind == "selfplay" and schedule.coached not in competing:
        raise SpecError(
            f"{game.game}'s players compete for {listed}, not {schedule.coached!r}; coach one "
            f"of those",
            source=source,
            field="schedule.coached",
        )
    if schedule.kind == "vs_fixed":
        have, who = len(schedule.opponents) + 1, "opponents and one player"
    else:
        have, who = len(spec.players), "players"
    if have < len(competing):
        raise SpecError(
            f"{game.game} has {len(competing)} roles to cast in each match ({listed}) and the "
            f"schedule brings {have} {who}; add players, or cast a role outside the "
            f"competition with games.{g}.roles",
            source=source,
            field=f"games.{g}",
        )
    # Every ordered choice of distinct players grows as a factorial with the roles: counted
    # before the schedule is laid out, or a large table would exhaust memory first.
    k, n = len(competing), len(spec.players)
    if schedule.kind == "selfplay":
        casts = n * math.perm(n - 1, k - 1)
    elif schedule.kind == "vs_fixed":
        panel = len(schedule.opponents)
        casts = (n - panel) * math.perm(panel, k - 1) * k
    else:
        casts = math.perm(n, k)
    matches = casts * spec.repetitions
    if matches > MAX_MATCHES:
        raise SpecError(
            f"{game.game} makes {matches:,} matches ({k} roles cast from {n} players in every "
            f"order, {spec.repetitions} times); keep a game under {MAX_MATCHES:,}: bring fewer "
            f"players, or cast roles outside the competition with games.{g}.roles",
            source=source,
            field=f"games.{g}",
        )
    return competing


def _read_prompt_files(data: Any, base: Path, source: str | None) -> Any:
    """`data` with each player's `prompt: {file: PATH}` replaced by the text of PATH."""
    players = data.get("players") if isinstance(data, dict) else None
    if not isinstance(players, list):
        return data
    read = []
    for index, player in enumerate(players):
        prompt = player.get("prompt") if isinstance(player, dict) else None
        if not isinstance(prompt, dict):
            read.append(player)
            continue
        field = f"players.{index}.prompt"
        if set(prompt) != {"file"} or not isinstance(prompt["file"], str):
            raise SpecError(
                "write the prompt as text, or as {file: PATH} to read it from a file",
                source=source,
                field=field,
            )
        path = base / prompt["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(
                f"{path}: no such file; give its path relative to the spec's folder",
                source=source,
                field=f"{field}.file",
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SpecError(
                f"{path}: cannot read it ({reason}); give a UTF-8 text file",
                source=source,
                field=f"{field}.file",
            ) from None
        read.append(player | {"prompt": text})
    return data | {"players": read}


def _tournament_field(
    field: str | None, game: int, player: int, fixed: Collection[str] = ()
) -> str | None:
    # A play spec's field, said in the tournament's terms.
    if field is None:
        return None
    if field.startswith("roles.") and field.split(".")[1] in fixed:
        return f"games.{game}.{field}"
    if field.startswith("roles."):
        return ".".join([f"players.{player}", *field.split(".")[2:]])
    if field.startswith("rules") or field == "game":
        return f"games.{game}.{field}"
    return field


def load_tournament_spec(path: str | Path) -> TournamentSpec:
    source = Path(path)
    return check_tournament_spec(read_mapping(source), source=str(source))
