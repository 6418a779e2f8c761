"""CSV for tables of dataclass rows holding `Interval`s: four columns per interval.

Each interval becomes `name`, `name_low`, `name_high`, `name_n`, plus one `level` column for
the row; NaN is written as an empty cell, which spreadsheets read as missing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from haggler.evals.stats import Interval
from haggler.store.atomic_file import replace_atomically

__all__ = ["read_rows", "write_rows"]

T = TypeVar("T")
_PARTS = ("", "_low", "_high", "_n")


def _is_interval(field_type: object) -> bool:
    return field_type in ("Interval", Interval)


def _columns(cls: type) -> list[str]:
    names: list[str] = []
    for f in fields(cls):
        names += [f.name + part for part in _PARTS] if _is_interval(f.type) else [f.name]
    return [*names, "level"]


def _cell(value: float) -> str | float:
    return "" if math.isnan(value) else value


def _number(text: str) -> float:
    return math.nan if text == "" else float(text)


def write_rows(rows: Sequence[Any], cls: type, path: str | Path) -> None:
    """Write dataclass `rows` of type `cls` to `path` (whole, or not at all)."""
    with replace_atomically(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_columns(cls))
        for row in rows:
            line: list[str | float | int] = []
            level = math.nan
            for f in fields(cls):
                value = getattr(row, f.name)
                if isinstance(value, Interval):
                    line += [_cell(value.value), _cell(value.low), _cell(value.high), value.n]
                    level = value.level
                elif isinstance(value, float):
                    line.append(_cell(value))
                else:
                    line.append(value)
            writer.writerow([*line, level])


def read_rows(cls: type[T], path: str | Path) -> list[T]:
    """Rows of `cls` written by `write_rows`."""
    rows = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            level = float(line["level"])
            values: dict[str, object] = {}
            for f in fields(cls):  # type: ignore[arg-type]
                if _is_interval(f.type):
                    values[f.name] = Interval(
                        _number(line[f.name]),
                        _number(line[f.name + "_low"]),
                        _number(line[f.name + "_high"]),
                        int(line[f.name + "_n"]),
                        level,
                    )
                elif f.type in ("float", float):
                    values[f.name] = _number(line[f.name])
                elif f.type in ("int", int):
                    values[f.name] = int(line[f.name])
                else:
                    values[f.name] = line[f.name]
            rows.append(cls(**values))
    return rows
