"""Price and deal rate by round, as an SVG written by hand (or a PNG, when matplotlib is there).

Two panels side by side: the mean deal price of each arm with its confidence interval, and the
deal rate, solid among the lineages that played the round and dashed among all lineages started.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from haggler.errors import ConfigError
from haggler.evals.selfplay import RoundMetrics, arm_labels
from haggler.evals.stats import Interval
from haggler.store.atomic_file import replace_atomically

__all__ = ["nice_ticks", "plot_rounds", "rounds_svg"]

# Colour-blind safe (Okabe & Ito).
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_WIDTH, _HEIGHT = 1000, 440
_PANEL_TOP, _PANEL_BOTTOM = 70, 350  # plot area, in pixels from the top
_PANELS = ((70, 470), (570, 970))  # left and right edges of each plot area
_TITLE = "Self-play: deal price and deal rate by round"


def plot_rounds(rows: Sequence[RoundMetrics], path: str | Path) -> Path:
    """Write the plot to `path` (.svg, or .png with matplotlib installed), whole or not at
    all; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        with replace_atomically(path) as out:
            out.write(_svg(rows))
    elif suffix == ".png":
        try:
            from matplotlib.figure import Figure  # noqa: F401  (only checking it is there)
        except ImportError:
            raise ConfigError(
                f"plot {path}: PNG needs matplotlib (pip install matplotlib); write .svg instead"
            ) from None
        _png(rows, path)
    else:
        raise ConfigError(
            f"plot {path}: unknown image type {suffix or '(none)'!r}; use .svg or .png"
        )
    return path


def _series(rows: Sequence[RoundMetrics]) -> list[tuple[str, list[RoundMetrics]]]:
    # A series per game, arm, coached role and player: nothing is averaged across them.
    labels = arm_labels(rows)
    groups: dict[tuple[str, str, str, str], list[RoundMetrics]] = {}
    for row in rows:
        groups.setdefault(row.series, []).append(row)
    return [
        (labels[key], sorted(members, key=lambda r: r.round)) for key, members in groups.items()
    ]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not high > low:
        low, high = low - 1, high + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}"


class _Panel:
    """Maps data to pixels for one plot area and draws its frame."""

    def __init__(self, left: float, right: float, rounds: int, y_ticks: list[float]) -> None:
        self.left, self.right = left, right
        self.rounds = rounds
        self.y_low, self.y_high = y_ticks[0], y_ticks[-1]
        self.y_ticks = y_ticks

    def x(self, round_: float) -> float:
        # Half a round of margin on each side, so the first and last points clear the axes.
        return self.left + (round_ - 0.5) / self.rounds * (self.right - self.left)

    def y(self, value: float) -> float:
        share = (value - self.y_low) / (self.y_high - self.y_low)
        return _PANEL_BOTTOM - share * (_PANEL_BOTTOM - _PANEL_TOP)

    def frame(self, title: str, y_label: str) -> list[str]:
        out = [
            f'<rect x="{self.left}" y="{_PANEL_TOP}" width="{self.right - self.left}" '
            f'height="{_PANEL_BOTTOM - _PANEL_TOP}" fill="none" stroke="#333"/>',
            _text(title, (self.left + self.right) / 2, _PANEL_TOP - 12, "middle", 14, bold=True),
            _text("round", (self.left + self.right) / 2, _PANEL_BOTTOM + 40, "middle", 12),
        ]
        mid = (_PANEL_TOP + _PANEL_BOTTOM) / 2
        out.append(
            f'<text x="{self.left - 48}" y="{mid}" text-anchor="middle" font-size="12" '
            f'transform="rotate(-90 {self.left - 48} {mid})">{escape(y_label)}</text>'
        )
        for round_ in range(1, self.rounds + 1):
            x = self.x(round_)
            out.append(
                f'<line x1="{x:.1f}" y1="{_PANEL_BOTTOM}" x2="{x:.1f}" '
                f'y2="{_PANEL_BOTTOM + 5}" stroke="#333"/>'
            )
            out.append(_text(str(round_), x, _PANEL_BOTTOM + 19, "middle", 11))
        for tick in self.y_ticks:
            y = self.y(tick)
            out.append(
                f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" '
                'stroke="#ddd"/>'
            )
            out.append(
                f'<line x1="{self.left - 5}" y1="{y:.1f}" x2="{self.left}" y2="{y:.1f}" '
                'stroke="#333"/>'
            )
            out.append(_text(_fmt(tick), self.left - 8, y + 4, "end", 11))
        return out

    def line(
        self, points: list[tuple[float, float]], colour: str, name: str, dashed: bool
    ) -> list[str]:
        """A path through the points, broken where a value is missing, with a dot at each."""
        commands, pen_down = [], False
        dots = []
        for round_, value in points:
            if math.isnan(value):
                pen_down = False
                continue
            x, y = self.x(round_), self.y(value)
            commands.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            pen_down = True
            dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        if not commands:
            return []
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        return [
            f'<path class="series" data-arm={quoteattr(name)} d="{" ".join(commands)}" '
            f'fill="none" stroke="{colour}" stroke-width="2"{dash}/>',
            *dots,
        ]

    def error_bar(self, round_: float, interval: Interval, colour: str) -> list[str]:
        if math.isnan(interval.low) or math.isnan(interval.high):
            return []
        x, low, high = self.x(round_), self.y(interval.low), self.y(interval.high)
        return [
            f'<line x1="{x:.1f}" y1="{low:.1f}" x2="{x:.1f}" y2="{high:.1f}" stroke="{colour}"/>',
            f'<line x1="{x - 4:.1f}" y1="{low:.1f}" x2="{x + 4:.1f}" y2="{low:.1f}" stroke="{colour}"/>',
            f'<line x1="{x - 4:.1f}" y1="{high:.1f}" x2="{x + 4:.1f}" y2="{high:.1f}" stroke="{colour}"/>',
        ]


def _dodge(index: int, count: int) -> float:
    """How far (in rounds) to shift series `index` of `count` so error bars do not overlap."""
    return (index - (count - 1) / 2) * min(0.08, 0.4 / count)


def _text(content: str, x: float, y: float, anchor: str, size: int, *, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{weight}>'
        f"{escape(content)}</text>"
    )


def _svg(rows: Sequence[RoundMetrics]) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + rounds_svg(rows) + "\n"


def rounds_svg(rows: Sequence[RoundMetrics]) -> str:
    """The plot as one `<svg>` element, to write to a file or to put in a web page."""
    series = _series(rows)
    rounds = max((r.round for r in rows), default=1)
    bounds = [
        v for r in rows for v in (r.price.value, r.price.low, r.price.high) if not math.isnan(v)
    ]
    price_ticks = nice_ticks(min(bounds, default=0.0), max(bounds, default=1.0))
    price = _Panel(*_PANELS[0], rounds, price_ticks)
    rate = _Panel(*_PANELS[1], rounds, [0.0, 0.25, 0.5, 0.75, 1.0])

    body = [_text(_TITLE, _WIDTH / 2, 28, "middle", 17, bold=True)]
    body += price.frame("Mean deal price (± CI)", "price ($)")
    body += rate.frame("Deal rate", "share of games with a deal")
    for index, (name, members) in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        shift = _dodge(index, len(series))
        for row in members:
            body += price.error_bar(row.round + shift, row.price, colour)
        body += price.line([(r.round + shift, r.price.value) for r in members], colour, name, False)
        body += rate.line(
            [(r.round, r.deal_rate_alive.value) for r in members], colour, name, False
        )
        body += rate.line([(r.round, r.deal_rate_all.value) for r in members], colour, name, True)

    # Legend: one swatch per arm, then the meaning of the two line styles.
    x, y = 70.0, _PANEL_BOTTOM + 72
    for index, (name, _) in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        body.append(
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 22:.1f}" y2="{y - 4}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        body.append(_text(name, x + 28, y, "start", 12))
        x += 40 + 7 * len(name)
    x = max(x + 20, 570.0)
    for label, dash in (("alive", ""), ("all lineages", ' stroke-dasharray="6,4"')):
        body.append(
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 22:.1f}" y2="{y - 4}" '
            f'stroke="#333" stroke-width="2"{dash}/>'
        )
        body.append(_text(label, x + 28, y, "start", 12))
        x += 40 + 7 * len(label)

    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
            f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif">',
            f"<title>{escape(_TITLE)}</title>",
            f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
            *body,
            "</svg>",
        ]
    )


def _png(rows: Sequence[RoundMetrics], path: Path) -> None:
    # The object API, not pyplot: no global backend or figure state is touched.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.4), layout="constrained")
    price_axes, rate_axes = figure.subplots(1, 2)
    series = _series(rows)
    for index, (name, members) in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        rounds = [r.round for r in members]
        shifted = [k + _dodge(index, len(series)) for k in rounds]
        values = [r.price.value for r in members]
        errors = [
            [0.0 if math.isnan(r.price.low) else r.price.value - r.price.low for r in members],
            [0.0 if math.isnan(r.price.high) else r.price.high - r.price.value for r in members],
        ]
        price_axes.errorbar(
            shifted, values, yerr=errors, color=colour, marker="o", capsize=4, label=name
        )
        rate_axes.plot(
            rounds,
            [r.deal_rate_alive.value for r in members],
            color=colour,
            marker="o",
            label=f"{name}: alive",
        )
        rate_axes.plot(
            rounds,
            [r.deal_rate_all.value for r in members],
            color=colour,
            linestyle="--",
            label=f"{name}: all lineages",
        )
    price_axes.set(title="Mean deal price (± CI)", xlabel="round", ylabel="price ($)")
    rate_axes.set(
        title="Deal rate", xlabel="round", ylabel="share of games with a deal", ylim=(0, 1.05)
    )
    for axes in (price_axes, rate_axes):
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(_TITLE)
    with replace_atomically(path, binary=True) as out:
        figure.savefig(out, format="png", dpi=150)
