"""The report's plot, as an SVG written by hand: one panel per condition and level, the leak
rate of each strategy (and all pooled) before forgetting, after it and of the reference agent,
each with its interval. Forgetting that held puts the after dot level with the reference dot.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from haggler.errors import ConfigError
from haggler.evals.unlearning import LeakRate
from haggler.probe.report import ALL, UnlearnReport
from haggler.store.atomic_file import replace_atomically

__all__ = ["plot_report", "report_svg"]

# Colour-blind safe (Okabe & Ito): before, after, reference.
_SERIES = (("before", "#D55E00"), ("after", "#0072B2"), ("reference", "#009E73"))
_PANEL_W, _PANEL_H = 460, 225
_MARGIN_L, _MARGIN_T, _GAP = 60, 60, 40
_PLOT_TOP, _PLOT_BOTTOM = 40, 190  # within a panel


def plot_report(report: UnlearnReport, path: str | Path) -> Path:
    """Write the plot to `path` (.svg), whole or not at all."""
    path = Path(path)
    if path.suffix.lower() != ".svg":
        raise ConfigError(f"plot {path}: write an .svg file")
    with replace_atomically(path) as out:
        out.write(report_svg(report))
    return path


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11,
          bold: bool = False, rotate: float | None = None) -> str:  # fmt: skip
    weight = ' font-weight="bold"' if bold else ""
    turn = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{weight}{turn}>'
        f"{escape(text)}</text>"
    )


def _panel(
    x0: float, y0: float, title: str, rows: list[tuple[str, dict[str, LeakRate]]]
) -> list[str]:
    out = [_text(x0 + _PANEL_W / 2, y0 + 20, title, bold=True, size=13)]
    top, bottom = y0 + _PLOT_TOP, y0 + _PLOT_BOTTOM
    left, right = x0 + 10, x0 + _PANEL_W - 10
    out.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        'fill="none" stroke="#333"/>'
    )

    def y(value: float) -> float:
        return bottom - value * (bottom - top)

    for tick in (0, 0.25, 0.5, 0.75, 1):
        out.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" stroke="#ddd"/>'
        )
        out.append(_text(left - 4, y(tick) + 4, f"{tick:g}", anchor="end", size=10))
    width = (right - left) / max(1, len(rows))
    for index, (strategy, rates) in enumerate(rows):
        centre = left + width * (index + 0.5)
        for offset, (variant, colour) in zip((-10, 0, 10), _SERIES, strict=True):
            rate = rates.get(variant)
            if rate is None or rate.interval.empty:
                continue
            interval = rate.interval
            cx = centre + offset
            if not (math.isnan(interval.low) or math.isnan(interval.high)):
                out.append(
                    f'<line x1="{cx:.1f}" y1="{y(interval.low):.1f}" x2="{cx:.1f}" '
                    f'y2="{y(interval.high):.1f}" stroke={quoteattr(colour)} stroke-width="2"/>'
                )
            out.append(
                f'<circle cx="{cx:.1f}" cy="{y(interval.value):.1f}" r="4" '
                f"fill={quoteattr(colour)}><title>{escape(strategy)}, {variant}: "
                f"{escape(rate.format())}</title></circle>"
            )
        label = strategy if len(strategy) <= 18 else strategy[:17] + "…"
        out.append(_text(centre, bottom + 14, label, size=10, rotate=20 if len(rows) > 4 else None))
    return out


def report_svg(report: UnlearnReport) -> str:
    panels: list[tuple[str, list[tuple[str, dict[str, LeakRate]]]]] = []
    for condition in report.conditions:
        for section in condition.levels:
            rows = [
                (c.strategy, {"before": c.before, "after": c.after, "reference": c.reference})
                for c in section.cells
                if c.defence == "none"
            ]
            rows.sort(key=lambda row: row[0] == ALL)
            panels.append((f"{condition.name}: {section.level} level ({condition.mode})", rows))
    columns = 2 if len(panels) > 1 else 1
    lines = max(1, math.ceil(len(panels) / columns))
    width = _MARGIN_L + columns * (_PANEL_W + _GAP)
    height = _MARGIN_T + lines * (_PANEL_H + _GAP) + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        _text(width / 2, 24, f"Leak rate by strategy: {report.run_id}", bold=True, size=15),
    ]
    legend_x = _MARGIN_L
    for variant, colour in _SERIES:
        out.append(f'<circle cx="{legend_x}" cy="44" r="5" fill={quoteattr(colour)}/>')
        out.append(_text(legend_x + 10, 48, variant, anchor="start"))
        legend_x += 100
    out.append(_text(legend_x + 10, 48, "(95% Wilson intervals)", anchor="start", size=10))
    for index, (title, rows) in enumerate(panels):
        x0 = _MARGIN_L + (index % columns) * (_PANEL_W + _GAP)
        y0 = _MARGIN_T + (index // columns) * (_PANEL_H + _GAP)
        out += _panel(x0, y0, title, rows)
    if not panels:
        out.append(_text(width / 2, height / 2, "no judged attempt yet"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
