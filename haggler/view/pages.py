"""The viewer's pages, as pure functions of what was read from the store.

The same pieces make the live viewer's pages and the static report; `Links` says where a game
or a run page lives (a server path, or an anchor in one file). Ids (runs, games, lineages,
matches) are shown whole: cut short, two of them can read the same (`tour-tactics-sp` as
`tour-tactics`, and every game of a day as `ep-20261125-`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from haggler.store.query import OUTCOMES, GameFilter, RunFacets
from haggler.store.records import (
    CritiqueRecord,
    EpisodeRecord,
    EpisodeSummary,
    ForgettingRecord,
    RunRecord,
    TurnRecord,
)
from haggler.view.charts import price_trajectory
from haggler.view.data import RunOverview
from haggler.view.html import Markup, Node, el, join, link, text, url
from haggler.view.layout import outcome_badge, page

__all__ = [
    "GAMES_PER_PAGE",
    "GamePage",
    "Links",
    "ServerLinks",
    "game_page",
    "run_page",
    "runs_page",
]

GAMES_PER_PAGE = 100


class Links(Protocol):
    def runs(self) -> str: ...
    def run(self, run_id: str, where: GameFilter | None = None, page: int = 1) -> str: ...
    def game(self, episode_id: str) -> str: ...


class ServerLinks:
    """Where pages live on the viewer's server."""

    def runs(self) -> str:
        return "/"

    def run(self, run_id: str, where: GameFilter | None = None, page: int = 1) -> str:
        params: dict[str, object] = dict((where or GameFilter()).as_params())
        if page > 1:
            params["page"] = page
        return url(f"/run/{quote(run_id, safe='')}", **params)

    def game(self, episode_id: str) -> str:
        return f"/game/{quote(episode_id, safe='')}"


# -- pieces --------------------------------------------------------------------------------


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:g}"


def _role_cell(summary: EpisodeSummary) -> Markup:
    return join(
        (
            el("div", el("span", role, class_="muted"), ": ", record.player or record.model)
            for role, record in summary.roles.items()
        )
    )


def _card(label: str, value: Node) -> Markup:
    return el("div", el("b", value), label, class_="card")


def games_table(games: Sequence[EpisodeSummary], links: Links, *, data: bool = False) -> Markup:
    """One row a game. With `data`, rows carry what the static report's filter reads."""
    rows = []
    for game in games:
        outcome = game.outcome
        attrs: dict[str, Any] = {}
        if data:
            attrs = {
                "data_outcome": game.standing,
                "data_players": "\n".join(
                    f"{role}={r.player or r.model}" for role, r in game.roles.items()
                ),
                "data_round": game.round if game.round is not None else "",
                "data_arm": game.arm or "",
                "data_game": game.id,
            }
        rows.append(
            el(
                "tr",
                el("td", link(links.game(game.id), game.id, class_="game-link")),
                el("td", _role_cell(game)),
                el("td", outcome_badge(game.standing)),
                el("td", _money(outcome.price if outcome else None), class_="num"),
                el("td", game.round if game.round is not None else "", class_="num"),
                el("td", game.arm or ""),
                el("td", game.turns, class_="num"),
                el("td", (outcome.reason if outcome else game.error or "")[:80], class_="muted"),
                class_="game-row",
                **attrs,
            )
        )
    head = el(
        "tr",
        el("th", "game"),
        el("th", "roles"),
        el("th", "outcome"),
        el("th", "price", class_="num"),
        el("th", "round", class_="num"),
        el("th", "arm"),
        el("th", "turns", class_="num"),
        el("th", "how it ended"),
    )
    return el("table", el("thead", head), el("tbody", rows), class_="grid games")


def _select(
    name: str, options: Sequence[str | int], chosen: str | int | None, label: str
) -> Markup:
    return el(
        "label",
        label,
        el(
            "select",
            el("option", "any", value=""),
            [
                el(
                    "option",
                    str(o).replace("_", " ") if name == "outcome" else str(o),
                    value=str(o),
                    selected=chosen is not None and str(o) == str(chosen),
                )
                for o in options
            ],
            name=name,
        ),
    )


def filter_form(action: str, facets: RunFacets, where: GameFilter) -> Markup:
    return el(
        "form",
        _select("outcome", OUTCOMES, where.outcome, "outcome"),
        _select("player", facets.players, where.player, "player"),
        _select("role", facets.roles, where.role, "role"),
        _select("round", facets.rounds, where.round, "round") if facets.rounds else None,
        _select("arm", facets.arms, where.arm, "arm") if facets.arms else None,
        el(
            "label",
            "text",
            el(
                "input",
                type="search",
                name="text",
                value=where.text or "",
                placeholder="words in messages or feedback",
            ),
        ),
        el("label", "lineage", el("input", name="lineage", value=where.lineage or "", size=10))
        if facets.rounds
        else None,
        el("button", "Filter", type="submit"),
        link(action, "clear"),
        method="get",
        action=action,
        class_="filters",
        id="filters",
    )


def leaderboard_table(rows: Sequence[Any]) -> Markup:
    def interval(value: Any, fmt: str = "+.2f") -> str:
        return "—" if value.empty else value.format(fmt)

    head = el(
        "tr",
        [
            el("th", h, class_="num" if i != 1 else None)
            for i, h in enumerate(
                (
                    "#",
                    "player",
                    "games (S/B)",
                    "deals",
                    "share",
                    "ordinal",
                    "BT",
                    "BT seller",
                    "BT buyer",
                    "tokens",
                    "cost $",
                    "failed",
                    "retried",
                )
            )
        ],
    )
    body = []
    for rank, row in enumerate(rows, start=1):
        rate = "—" if row.deal_rate.empty else f"{row.deal_rate.value:.2f}"
        cells = [
            rank,
            row.player,
            f"{row.games} ({row.as_seller}/{row.as_buyer})",
            f"{row.deals} ({rate})",
            interval(row.mean_share, ".2f"),
            f"{row.ordinal:.2f}",
            interval(row.bt),
            interval(row.bt_seller),
            interval(row.bt_buyer),
            f"{row.tokens:,}",
            f"{row.cost_usd:.4f}",
            row.failures,
            row.retries,
        ]
        body.append(
            el("tr", [el("td", c, class_="num" if i != 1 else None) for i, c in enumerate(cells)])
        )
    return el("table", el("thead", head), el("tbody", body), class_="grid leaderboard")


def rounds_table(rows: Sequence[Any]) -> Markup:
    head = el(
        "tr",
        [
            el("th", h, class_="num" if i > 1 else None)
            for i, h in enumerate(
                (
                    "arm",
                    "coached",
                    "round",
                    "alive",
                    "deals",
                    "price",
                    "deal rate (alive)",
                    "deal rate (all)",
                    "tokens",
                    "cost $",
                )
            )
        ],
    )
    body = []
    for row in rows:
        cells = [
            row.arm,
            row.coached,
            row.round,
            f"{row.alive}/{row.lineages}",
            row.deals,
            row.price.format(".2f") if not row.price.empty else "—",
            f"{row.deal_rate_alive.value:.2f}" if not row.deal_rate_alive.empty else "—",
            f"{row.deal_rate_all.value:.2f}" if not row.deal_rate_all.empty else "—",
            f"{row.tokens:,}",
            f"{row.cost_usd:.4f}",
        ]
        body.append(
            el("tr", [el("td", c, class_="num" if i > 1 else None) for i, c in enumerate(cells)])
        )
    return el("table", el("thead", head), el("tbody", body), class_="grid rounds")


def run_header(overview: RunOverview) -> Markup:
    run = overview.run
    name = run.spec.get("name") if isinstance(run.spec, dict) else None
    counts = overview.counts
    cards = [_card("games", f"{overview.games:,}")]
    cards += [
        _card(kind.replace("_", " "), f"{counts[kind]:,}") for kind in OUTCOMES if counts.get(kind)
    ]
    cards.append(_card("spent", f"${overview.spent_usd:.4f}"))
    return join(
        [
            el("h1", f"{run.kind} run ", el("code", run.id), f" — {name}" if name else ""),
            el(
                "p",
                f"started {_when(run.created_at)} · haggler {run.haggler_version}",
                class_="muted",
            ),
            el("div", cards, class_="cards"),
        ]
    )


def run_results(overview: RunOverview) -> Markup:
    """The run's chart and tables: self-play rounds, or the tournament leaderboard."""
    results = overview.results
    if results is None:
        names = {"tournament": "leaderboard", "probe": "leak rates", "unlearn-eval": "leak rates"}
        what = names.get(overview.run.kind, "per-round results")
        return el(
            "p",
            f"Computing the {what} over {overview.games:,} games; this page reloads itself "
            "when they are ready.",
            class_="panel pending",
        )
    parts: list[Markup] = []
    if overview.results_behind:
        parts.append(
            el(
                "p",
                "The run has moved on since these results were computed; newer ones are on "
                "their way and this page reloads itself.",
                class_="panel pending",
            )
        )
    if results.error:
        parts.append(
            el("p", f"The results could not be computed: {results.error}", class_="panel error")
        )
    if results.rounds_chart:
        parts.append(el("h2", "Price and deal rate by round"))
        parts.append(el("div", Markup(results.rounds_chart), class_="rounds-chart"))
        parts.append(rounds_table(results.round_rows))
    if results.probe_lines:
        parts.append(el("h2", "Leak rates"))
        parts.append(el("ul", [el("li", line) for line in results.probe_lines], class_="probe"))
        if results.probe_chart:
            parts.append(el("div", Markup(results.probe_chart), class_="rounds-chart"))
    if results.leaderboard:
        parts.append(el("h2", "Leaderboard"))
        parts.append(leaderboard_table(results.leaderboard))
        parts.append(
            el(
                "p",
                "ordinal: OpenSkill mu − 3 sigma. BT: Bradley–Terry log-strength (mean 0) with "
                "bootstrap bounds. share: the player's own part of the bargaining zone, over its "
                "deals.",
                class_="muted",
            )
        )
    return join(parts)


# -- pages ---------------------------------------------------------------------------------


def runs_page(runs: Sequence[RunRecord], links: Links, db_name: str) -> str:
    rows = [
        el(
            "tr",
            el("td", link(links.run(run.id), run.id, class_="run-link")),
            el("td", run.kind),
            el("td", run.spec.get("name", "") if isinstance(run.spec, dict) else ""),
            el("td", _when(run.created_at)),
            el("td", f"{run.episodes:,}", class_="num"),
        )
        for run in reversed(runs)
    ]
    head = el(
        "tr",
        el("th", "run"),
        el("th", "kind"),
        el("th", "name"),
        el("th", "started"),
        el("th", "games", class_="num"),
    )
    body = join(
        [
            el("h1", "Runs in ", el("code", db_name)),
            el("table", el("thead", head), el("tbody", rows), class_="grid runs")
            if runs
            else el("p", "This store holds no runs yet; play a game first.", class_="muted"),
        ]
    )
    return page(f"haggler — {db_name}", body, crumbs=link(links.runs(), "haggler"))


def run_page(
    overview: RunOverview,
    games: Sequence[EpisodeSummary],
    matching: int,
    where: GameFilter,
    page_number: int,
    links: Links,
) -> str:
    run = overview.run
    pages = max(1, math.ceil(matching / GAMES_PER_PAGE))
    page_number = min(page_number, pages)
    first = (page_number - 1) * GAMES_PER_PAGE

    def pager(count_id: str | None) -> Markup:
        return el(
            "div",
            link(links.run(run.id, where, page_number - 1), "← previous", rel="prev")
            if page_number > 1
            else None,
            el(
                "span",
                f"games {first + 1 if games else 0}–{first + len(games)} of {matching:,}"
                f" matching ({where.describe()}) · page {page_number} of {pages}",
                class_="muted",
                id=count_id,
            ),
            link(links.run(run.id, where, page_number + 1), "next →", rel="next")
            if page_number < pages
            else None,
            class_="pager",
        )

    body = join(
        [
            run_header(overview),
            run_results(overview),
            el("h2", "Games", id="games"),
            filter_form(links.run(run.id), overview.facets, where),
            pager("match-count"),
            games_table(games, links)
            if games
            else el("p", "No game matches these filters.", class_="muted empty"),
            pager(None) if len(games) > 20 else None,
        ]
    )
    crumbs = join([link(links.runs(), "haggler"), " › run ", run.id])
    # Until the results are in, the page asks to be reloaded (no script needed).
    refresh = 1 if overview.results is None else 2 if overview.results_behind else None
    return page(f"run {run.id} — haggler", body, crumbs=crumbs, refresh_s=refresh)


@dataclass(frozen=True)
class GamePage:
    """What a game page shows besides the game itself."""

    episode: EpisodeRecord
    critiques: Sequence[CritiqueRecord]  # written after this game
    earlier: Sequence[CritiqueRecord]  # written after the lineage's previous round
    rounds: dict[int, str]  # the lineage's rounds and their games
    # Forget requests the lineage carried out after this round (counts, never content).
    forgetting: Sequence[ForgettingRecord] = ()


def _action(turn: TurnRecord) -> Markup | None:
    action = turn.action
    if action is None:
        return None
    label = action.kind.replace("_", " ").upper()
    if action.price is not None:
        label += f" ${action.price:g}"
    if action.terms:
        label += " " + " ".join(action.terms.values())
    return el(
        "span", label, class_=f"action action-{action.kind}", title=f"read from the {action.source}"
    )


def _turn_meta(turn: TurnRecord) -> Markup:
    parts = [f"#{turn.index}"]
    if turn.scripted:
        parts.append("scripted opening")
    elif turn.model is None:
        parts.append("rule-based")
    else:
        parts.append(turn.model)
        parts.append(f"{turn.prompt_tokens:,} + {turn.completion_tokens:,} tokens")
        parts.append(f"${turn.cost_usd:.5f}")
        parts.append(f"{turn.latency_s * 1000:.0f} ms")
    if turn.retries:
        parts.append(f"{turn.retries} retr{'y' if turn.retries == 1 else 'ies'}")
    if turn.moderation is not None:
        parts.append(f"moderated by {turn.moderation.model}")
    return el("div", " · ".join(parts), class_="meta")


def chat(episode: EpisodeRecord) -> Markup:
    bubbles = []
    for turn in episode.transcript:
        classes = f"turn role-{turn.speaker}" + ("" if turn.accepted else " rejected")
        bubbles.append(
            el(
                "div",
                el("div", el("span", turn.speaker, class_="who"), " ", _action(turn)),
                el("div", turn.text, class_="msg"),
                el(
                    "div",
                    f"not accepted: {turn.error or 'the message could not stand'}",
                    class_="error",
                )
                if not turn.accepted
                else None,
                _turn_meta(turn),
                class_=classes,
                data_speaker=turn.speaker,
            )
        )
    return el("div", bubbles, class_="chat")


def briefs(episode: EpisodeRecord) -> Markup:
    return join(
        el(
            "details",
            el(
                "summary",
                el("span", f"private to the {role}", class_="private-label"),
                " ",
                f"{role}'s brief ({record.player or record.model})",
            ),
            el("div", record.brief, class_="brief"),
            el("div", ", ".join(f"{k} = {v:g}" for k, v in record.private.items()), class_="muted")
            if record.private
            else None,
            class_="panel private",
            data_role=role,
        )
        for role, record in episode.roles.items()
    )


def _forgetting(records: Sequence[ForgettingRecord]) -> Markup | None:
    if not records:
        return None
    return el(
        "div",
        el("h3", "Forgetting after this round"),
        el(
            "p",
            "what the coached agents forgot before their next round (counts only)",
            class_="muted",
        ),
        *(el("div", record.describe(), class_="forgetting") for record in records),
        class_="panel forgetting-panel",
    )


def _feedback(title: str, critiques: Sequence[CritiqueRecord], note: str) -> Markup | None:
    if not critiques:
        return None
    return el(
        "div",
        el("h3", title),
        [
            el(
                "div",
                el("div", f"to the {c.role} · {c.source}", class_="muted"),
                el("div", c.text, class_="feedback"),
            )
            for c in critiques
        ],
        el("div", note, class_="muted"),
        class_="panel critique",
    )


def rounds_nav(view: GamePage, links: Links) -> Markup | None:
    episode = view.episode
    if episode.lineage_id is None or episode.round is None:
        return None
    previous = view.rounds.get(episode.round - 1)
    following = view.rounds.get(episode.round + 1)
    items = [
        el("span", f"round {r}", class_="current")
        if r == episode.round
        else link(links.game(game_id), f"round {r}")
        for r, game_id in sorted(view.rounds.items())
    ]
    return el(
        "div",
        el("span", "lineage ", el("code", episode.lineage_id), ":", class_="muted"),
        link(links.game(previous), "← previous round", rel="prev", class_="prev-round")
        if previous
        else None,
        items,
        link(links.game(following), "next round →", rel="next", class_="next-round")
        if following
        else None,
        class_="rounds-nav panel",
    )


def game_body(view: GamePage, links: Links) -> Markup:
    episode = view.episode
    outcome = episode.outcome
    facts = [f"game {episode.game}", f"seed {episode.seed}"]
    if episode.round is not None:
        facts.append(f"round {episode.round}")
    if episode.arm:
        facts.append(f"arm {episode.arm}")
    if episode.match_id:
        facts.append(f"match {episode.match_id}")
    summary = outcome.reason.replace("_", " ") if outcome else (episode.error or "")
    if outcome and outcome.price is not None:
        summary += f" at ${outcome.price:g}"
    if outcome and outcome.terms:
        summary += " on " + ", ".join(f"{k} {v}" for k, v in outcome.terms.items())
    if outcome and outcome.by:
        summary += f" (by the {outcome.by})"
    scores = ", ".join(f"{role} {value:+g}" for role, value in episode.scores.items())
    cost = sum(t.cost_usd for t in episode.transcript)
    tokens = sum(t.prompt_tokens + t.completion_tokens for t in episode.transcript)
    side = join(
        [
            el("div", el("h3", "Price trajectory"), price_trajectory(episode), class_="panel"),
            _feedback(
                "Critic's feedback after this round",
                view.critiques,
                "what the coached role was told before its next round",
            )
            or None,
            _feedback(
                "Feedback going into this round", view.earlier, "written after the previous round"
            )
            or None,
            _forgetting(view.forgetting),
            briefs(episode),
        ]
    )
    return join(
        [
            el(
                "h1",
                "Game ",
                el("code", episode.id),
                " ",
                outcome_badge(episode.standing),
            ),
            el("p", " · ".join(facts), class_="muted"),
            el(
                "p",
                el("b", summary),
                f" · surplus: {scores}" if scores else "",
                f" · {tokens:,} tokens, ${cost:.5f}",
                class_="outcome-line",
            ),
            rounds_nav(view, links),
            el("div", el("div", chat(episode)), el("aside", side), class_="game-layout"),
        ]
    )


def game_page(view: GamePage, links: Links) -> str:
    episode = view.episode
    crumbs = join(
        [
            link(links.runs(), "haggler"),
            " › ",
            link(links.run(episode.run_id), f"run {episode.run_id}"),
            " › game ",
            episode.id,
        ]
    )
    return page(f"game {episode.id} — haggler", game_body(view, links), crumbs=crumbs)


def error_page(message: str, links: Links) -> str:
    return page(
        "cannot show this — haggler",
        el("p", text(message), class_="muted"),
        crumbs=link(links.runs(), "haggler"),
    )
