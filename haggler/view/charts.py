"""Small inline SVG charts for the viewer: the price trajectory of one game.

Drawn by hand, like `haggler.evals.plot`, so pages need no script library and open offline.
"""

from __future__ import annotations

import math

from haggler.evals.plot import nice_ticks
from haggler.store.records import EpisodeRecord
from haggler.view.html import Markup, el

__all__ = ["ROLE_COLOURS", "price_trajectory"]

# Okabe & Ito colours, by role; a game with more roles cycles through the rest.
ROLE_COLOURS = {"seller": "#D55E00", "buyer": "#0072B2"}
_OTHER_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_W, _H = 520, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 505, 16, 188


def role_colour(role: str, roles: list[str]) -> str:
    if role in ROLE_COLOURS:
        return ROLE_COLOURS[role]
    others = [r for r in roles if r not in ROLE_COLOURS]
    return _OTHER_COLOURS[others.index(role) % len(_OTHER_COLOURS)] if role in others else "#333"


def price_trajectory(episode: EpisodeRecord) -> Markup:
    """Every price put on the table, by turn and role; the deal, if any, as a filled dot."""
    roles = list(episode.roles)
    points: dict[str, list[tuple[int, float]]] = {role: [] for role in roles}
    for turn in episode.transcript:
        if turn.accepted and turn.action is not None and turn.action.price is not None:
            points.setdefault(turn.speaker, []).append((turn.index, turn.action.price))
    prices = [p for series in points.values() for _, p in series]
    if not prices:
        return el("p", "No prices were named in this game.", class_="muted")
    low, high = min(prices), max(prices)
    if not math.isfinite(high - low) or max(abs(low), abs(high)) > 1e15:
        return el("p", "Prices in this game are too far apart to plot.", class_="muted")
    pad = max((high - low) * 0.1, 1.0)
    low, high = low - pad, high + pad
    last = max((t.index for t in episode.transcript), default=1) or 1

    def x(index: float) -> float:
        return _LEFT + (_RIGHT - _LEFT) * index / last

    def y(price: float) -> float:
        return _BOTTOM - (_BOTTOM - _TOP) * (price - low) / (high - low)

    parts: list[Markup] = [
        el("rect", x=0, y=0, width=_W, height=_H, fill="white"),
        el("line", x1=_LEFT, y1=_BOTTOM, x2=_RIGHT, y2=_BOTTOM, stroke="#999"),
        el("line", x1=_LEFT, y1=_TOP, x2=_LEFT, y2=_BOTTOM, stroke="#999"),
        el("text", "turn", x=(_LEFT + _RIGHT) / 2, y=_H - 4, text_anchor="middle", font_size=11),
    ]
    for tick in nice_ticks(low, high):
        if not low <= tick <= high:
            continue
        parts.append(
            el(
                "text",
                f"${tick:g}",
                x=_LEFT - 6,
                y=f"{y(tick) + 4:.1f}",
                text_anchor="end",
                font_size=10,
            )
        )
        parts.append(
            el("line", x1=_LEFT, y1=f"{y(tick):.1f}", x2=_RIGHT, y2=f"{y(tick):.1f}", stroke="#eee")
        )
    for role, series in points.items():
        if not series:
            continue
        colour = role_colour(role, roles)
        coords = " ".join(f"{x(i):.1f},{y(p):.1f}" for i, p in series)
        parts.append(
            el(
                "polyline",
                points=coords,
                fill="none",
                stroke=colour,
                stroke_width=2,
                class_="trajectory",
                data_role=role,
            )
        )
        for i, p in series:
            parts.append(
                el(
                    "circle",
                    el("title", f"{role}: ${p:g} (turn {i})"),
                    cx=f"{x(i):.1f}",
                    cy=f"{y(p):.1f}",
                    r=3.5,
                    fill="white",
                    stroke=colour,
                    stroke_width=2,
                )
            )
    outcome = episode.outcome
    if outcome is not None and outcome.kind == "deal" and outcome.price is not None:
        parts.append(
            el(
                "circle",
                el("title", f"deal at ${outcome.price:g}"),
                cx=f"{x(last):.1f}",
                cy=f"{y(outcome.price):.1f}",
                r=6,
                fill="#009E73",
                class_="deal-point",
            )
        )
    legend_x = _LEFT + 8
    for role in roles:
        if not points.get(role):
            continue
        colour = role_colour(role, roles)
        parts.append(el("rect", x=legend_x, y=_TOP, width=10, height=10, fill=colour))
        parts.append(el("text", role, x=legend_x + 14, y=_TOP + 9, font_size=11))
        legend_x += 24 + 7 * len(role)
    return el(
        "svg",
        el("title", "Price trajectory"),
        parts,
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {_W} {_H}",
        width=_W,
        height=_H,
        role="img",
        class_="chart price-chart",
        font_family="sans-serif",
    )
