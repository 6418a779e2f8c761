"""Which games of a run to list: the filters shared by `haggler show`, the viewer and exports.

A filter becomes one SQL condition, so a page of a 10,000-game run reads only the rows it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from haggler.errors import ConfigError

__all__ = ["LONGEST_VALUE", "OUTCOMES", "GameFilter", "RunFacets", "like_prefix"]

# Beyond any experiment, and within SQLite's integers.
_MOST_ROUNDS = 1_000_000
# Longer than any name or phrase anyone searches for. The search text and the lineage prefix
# become LIKE patterns, which SQLite refuses past 50,000 bytes ("LIKE or GLOB pattern too
# complex"); at most 4 bytes a character, doubled by escaping, this stays far below that.
LONGEST_VALUE = 1_000

# What a game can have come to: an outcome of a finished game (or a probe attempt's verdict),
# or a game that never finished.
OUTCOMES = ("deal", "no_deal", "invalid", "leak", "no_leak", "undetermined", "failed", "running")


@dataclass(frozen=True)
class RunFacets:
    """The values a run's games can be filtered by."""

    roles: list[str]
    # Tournament players, or the models of the roles outside tournaments.
    players: list[str]
    rounds: list[int]
    arms: list[str]


@dataclass(frozen=True)
class GameFilter:
    """Games to keep; a field left None keeps every game. All given fields must hold."""

    outcome: str | None = None
    # A tournament player's name, or a model (`rule:boulware`, `openai/gpt-4o`) outside them.
    player: str | None = None
    # With `player`: the player in this role. With `text`: said by this role. Alone: the
    # games that have this role.
    role: str | None = None
    round: int | None = None
    # Case-insensitive, in the messages and in the critic's feedback.
    text: str | None = None
    # A lineage's id or a prefix of it.
    lineage: str | None = None
    arm: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and len(value) > LONGEST_VALUE:
                what = "search text" if f.name == "text" else f.name
                raise ConfigError(
                    f"{what} of {len(value):,} characters is too long; give at most "
                    f"{LONGEST_VALUE:,}"
                )
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ConfigError(
                f"outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}; pick one of those"
            )
        if self.round is not None and not 1 <= self.round <= _MOST_ROUNDS:
            raise ConfigError(
                f"round {self.round} is not a round; rounds count from 1 to {_MOST_ROUNDS:,}"
            )
        if self.role is not None and not self.role.isidentifier():
            raise ConfigError(f"role {self.role!r} is not a role name such as buyer or seller")

    @classmethod
    def of(cls, **values: Any) -> GameFilter:
        """A filter from loose values (form fields, CLI flags): blanks mean 'any'."""
        known = {f.name for f in fields(cls)}
        kept: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known or value is None:
                continue
            text = str(value).strip()
            if not text:
                continue
            if name == "round":
                try:
                    kept[name] = int(text)
                except ValueError:
                    raise ConfigError(f"round {text!r} is not a whole number") from None
            else:
                kept[name] = text
        return cls(**kept)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def as_params(self) -> dict[str, str]:
        """The fields that are set, as strings (for links and form values)."""
        return {
            f.name: str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    def describe(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in self.as_params().items()) or "all"

    def sql(self) -> tuple[str, list[Any]]:
        """A condition on `episodes e` (without the run) and its parameters."""
        where: list[str] = []
        params: list[Any] = []
        if self.outcome in ("failed", "running"):
            where.append("e.status = ?")
            params.append(self.outcome)
        elif self.outcome is not None:
            where.append("e.status = 'finished' AND e.outcome_kind = ?")
            params.append(self.outcome)
        if self.player is not None:
            if self.role is not None:
                where.append(
                    "(json_extract(e.roles_json, ?) = ? OR json_extract(e.roles_json, ?) = ?)"
                )
                params += [
                    f"$.{self.role}.player",
                    self.player,
                    f"$.{self.role}.model",
                    self.player,
                ]
            else:
                where.append(
                    "EXISTS (SELECT 1 FROM json_each(e.roles_json) r WHERE "
                    "json_extract(r.value, '$.player') = ? OR json_extract(r.value, '$.model') = ?)"
                )
                params += [self.player, self.player]
        elif self.role is not None and self.text is None:
            where.append("json_type(e.roles_json, ?) IS NOT NULL")
            params.append(f"$.{self.role}")
        if self.round is not None:
            where.append("e.round = ?")
            params.append(self.round)
        if self.lineage is not None:
            where.append("(e.lineage_id = ? OR e.lineage_id LIKE ? ESCAPE '\\')")
            params += [self.lineage, like_prefix(self.lineage)]
        if self.arm is not None:
            where.append("e.arm = ?")
            params.append(self.arm)
        if self.text is not None:
            pattern = "%" + _like_escape(self.text) + "%"
            speaker = ""
            if self.role is not None:
                speaker = " AND t.speaker = ?"
            where.append(
                "(EXISTS (SELECT 1 FROM turns t WHERE t.episode_id = e.id"
                f"{speaker} AND t.text LIKE ? ESCAPE '\\') OR EXISTS (SELECT 1 FROM critiques c "
                "WHERE c.episode_id = e.id AND c.text LIKE ? ESCAPE '\\'"
                f"{' AND c.role = ?' if self.role is not None else ''}))"
            )
            if self.role is not None:
                params += [self.role, pattern, pattern, self.role]
            else:
                params += [pattern, pattern]
        return " AND ".join(where) or "1", params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_prefix(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') for strings starting with `text`, taken literally."""
    return _like_escape(text) + "%"
