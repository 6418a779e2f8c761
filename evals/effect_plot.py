"""The paired effect of feedback by round, as an SVG written by hand.

Two panels side by side for one pair and coached role: each arm's difference from the
no-feedback arm in the coached role's surplus over every lineage, and in deal rate, round by
round, with their paired intervals; a line per phase and arm, and the zero line, where no
effect lies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from haggler.evals.paired import PairedEffect
from haggler.evals.plot import nice_ticks
from haggler.evals.stats import Interval
from haggler.store.atomic_file import replace_atomically

__all__ = ["effect_svg", "plot_effects"]

_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_WIDTH, _HEIGHT = 1000, 470
_TOP, _BOTTOM = 70, 350
_PANELS = ((80, 470), (580, 970))


def plot_effects(
    lines: Sequence[tuple[str, Sequence[PairedEffect]]], title: str, path: Path
) -> Path:
    """Write the plot of `lines` (a name and its effects, one per round) to `path` (.svg)."""
    with replace_atomically(path) as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + effect_svg(lines, title) + "\n")
    return path


def _text(content: str, x: float, y: float, anchor: str, size: int, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{weight}>'
        f"{escape(content)}</text>"
    )


class _Panel:
    def __init__(self, left: float, right: float, rounds: int, ticks: list[float]) -> None:
        self.left, self.right, self.rounds, self.ticks = left, right, rounds, ticks

    def x(self, round_: float) -> float:
        return self.left + (round_ - 0.5) / self.rounds * (self.right - self.left)

    def y(self, value: float) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        return _BOTTOM - (value - low) / (high - low) * (_BOTTOM - _TOP)

    def frame(self, title: str, label: str) -> list[str]:
        out = [
            f'<rect x="{self.left}" y="{_TOP}" width="{self.right - self.left}" '
            f'height="{_BOTTOM - _TOP}" fill="none" stroke="#333"/>',
            _text(title, (self.left + self.right) / 2, _TOP - 12, "middle", 14, bold=True),
            _text("round", (self.left + self.right) / 2, _BOTTOM + 40, "middle", 12),
        ]
        mid = (_TOP + _BOTTOM) / 2
        out.append(
            f'<text x="{self.left - 52}" y="{mid}" text-anchor="middle" font-size="12" '
            f'transform="rotate(-90 {self.left - 52} {mid})">{escape(label)}</text>'
        )
        for round_ in range(1, self.rounds + 1):
            out.append(_text(str(round_), self.x(round_), _BOTTOM + 19, "middle", 11))
        for tick in self.ticks:
            y = self.y(tick)
            colour = "#888" if tick == 0 else "#ddd"
            out.append(
                f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" '
                f'stroke="{colour}"/>'
            )
            # `+ 0.0` writes -0.0 as 0.
            out.append(_text(f"{tick + 0.0:g}", self.left - 8, y + 4, "end", 11))
        return out

    def series(self, points: list[tuple[float, Interval]], colour: str, name: str) -> list[str]:
        out, path = [], []
        for round_, interval in points:
            if interval.empty:
                continue
            x, y = self.x(round_), self.y(interval.value)
            path.append(f"{'L' if path else 'M'}{x:.1f},{y:.1f}")
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            if not (math.isnan(interval.low) or math.isnan(interval.high)):
                low, high = self.y(interval.low), self.y(interval.high)
                out.append(
                    f'<line x1="{x:.1f}" y1="{low:.1f}" x2="{x:.1f}" y2="{high:.1f}" '
                    f'stroke="{colour}"/>'
                )
        if path:
            out.insert(
                0,
                f'<path class="series" data-series={quoteattr(name)} d="{" ".join(path)}" '
                f'fill="none" stroke="{colour}" stroke-width="2"/>',
            )
        return out


def _ticks(intervals: list[Interval]) -> list[float]:
    values = [0.0] + [v for i in intervals for v in (i.value, i.low, i.high) if not math.isnan(v)]
    return nice_ticks(min(values), max(values))


def effect_svg(lines: Sequence[tuple[str, Sequence[PairedEffect]]], title: str) -> str:
    """The plot as one `<svg>` element."""
    rounds = max((e.round for _, effects in lines for e in effects), default=1)
    surplus = _Panel(*_PANELS[0], rounds, _ticks([e.surplus for _, es in lines for e in es]))
    rate = _Panel(*_PANELS[1], rounds, _ticks([e.deal_rate for _, es in lines for e in es]))
    body = [_text(title, _WIDTH / 2, 28, "middle", 17, bold=True)]
    body += surplus.frame("Δ surplus, all lineages (± paired CI)", "difference from no feedback")
    body += rate.frame("Δ deal rate (± paired CI)", "difference from no feedback")
    count = len(lines)
    for index, (name, effects) in enumerate(lines):
        colour = _COLOURS[index % len(_COLOURS)]
        shift = (index - (count - 1) / 2) * min(0.08, 0.4 / max(count, 1))
        ordered = sorted(effects, key=lambda e: e.round)
        body += surplus.series([(e.round + shift, e.surplus) for e in ordered], colour, name)
        body += rate.series([(e.round + shift, e.deal_rate) for e in ordered], colour, name)
    x, y = 80.0, _BOTTOM + 72
    for index, (name, _) in enumerate(lines):
        colour = _COLOURS[index % len(_COLOURS)]
        if x + 40 + 7 * len(name) > _WIDTH and x > 80:
            x, y = 80.0, y + 22  # the next row of the legend
        body.append(
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 22:.1f}" y2="{y - 4}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        body.append(_text(name, x + 28, y, "start", 12))
        x += 40 + 7 * len(name)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
            f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
            *body,
            "</svg>",
        ]
    )
