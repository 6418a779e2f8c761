"""Transcripts for people: turns and games as rich text, the same live and from the store."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from haggler.agents.prices import format_price
from haggler.store.records import (
    CritiqueRecord,
    EpisodeRecord,
    EpisodeSummary,
    OutcomeRecord,
    TurnRecord,
)

__all__ = ["episode_header", "episode_list", "outcome_line", "side_by_side", "turn_line"]

_SPEAKER_STYLE = {"seller": "bold magenta", "buyer": "bold cyan"}


def _action_label(turn: TurnRecord) -> str:
    if turn.action is None:
        return "no action"
    price = f" {format_price(turn.action.price)}" if turn.action.price is not None else ""
    return f"{turn.action.kind.replace('_', ' ')}{price}"


def turn_line(turn: TurnRecord) -> Text:
    """One turn: speaker, text, the action the moderator read, and what it cost."""
    style = _SPEAKER_STYLE.get(turn.speaker, "bold")
    line = Text()
    line.append(f"{turn.speaker:>7} ", style=style)
    line.append(turn.text, style="dim" if not turn.accepted else "")
    line.append(f"  ⟨{_action_label(turn)}⟩", style="green" if turn.accepted else "red")
    if turn.completion_tokens or turn.latency_s:
        line.append(
            f"  {turn.prompt_tokens}+{turn.completion_tokens} tok, {turn.latency_s:.2f}s",
            style="dim",
        )
    if not turn.accepted and turn.error:
        line.append(f"\n{'':>8}rejected: {turn.error}", style="red dim")
    return line


def outcome_line(outcome: OutcomeRecord | None, scores: dict[str, float]) -> Text:
    if outcome is None:
        return Text("no outcome (the game did not finish)", style="yellow")
    if outcome.kind == "deal":
        text = Text(f"Deal at {format_price(outcome.price)}", style="bold green")
        text.append(f" ({outcome.by} accepted)")
    else:
        label = "No deal" if outcome.kind == "no_deal" else "Invalid game"
        text = Text(f"{label}: {outcome.reason.replace('_', ' ')}", style="bold yellow")
        if outcome.price is not None:
            text.append(f" at {format_price(outcome.price)}")
        if outcome.by:
            text.append(f" ({outcome.by})")
    if scores:
        text.append(
            "   surplus " + ", ".join(f"{r} {v:+g}" for r, v in scores.items()), style="dim"
        )
    return text


def _signed(value: float) -> str:
    return ("-" if value < 0 else "+") + format_price(abs(value))[1:]


def episode_header(episode: EpisodeRecord, *, show_briefs: bool = False) -> Group:
    when = datetime.fromtimestamp(episode.started_at).strftime("%Y-%m-%d %H:%M:%S")
    lines: list[Text | Table] = [
        Text.from_markup(
            f"[bold]{escape(episode.game)}[/] game [bold]{escape(episode.id)}[/] "
            f"(run {escape(episode.run_id)}, seed {episode.seed}, {when})"
        )
    ]
    if episode.lineage_id is not None:
        lines.append(
            Text(
                f"  self-play lineage {episode.lineage_id}, round {episode.round}, "
                f"feedback arm {episode.arm}"
            )
        )
    for role, record in episode.roles.items():
        lines.append(Text.from_markup(f"  {escape(role)}: {escape(record.model)}"))
        if show_briefs:
            lines.append(Text(f"    private to {role}: {record.brief}", style="italic dim"))
            if record.prompt:
                lines.append(Text(f"    {role}'s own prompt: {record.prompt}", style="italic dim"))
    return Group(*lines)


def _who(episode: EpisodeSummary, role: str) -> str:
    record = episode.roles.get(role)
    if record is None:
        return ""
    return record.player or record.model


def episode_list(episodes: list[EpisodeSummary], *, title: str = "games") -> Table:
    table = Table(title=title, show_lines=False)
    # Ids stay whole, so they can be copied into `haggler show ID`.
    table.add_column(
        "game id", no_wrap=True, min_width=max((len(e.id) for e in episodes), default=8)
    )
    rounds = any(e.round is not None for e in episodes)
    columns = ("game", "round", "seller", "buyer", "turns", "outcome")
    for column in columns if rounds else tuple(c for c in columns if c != "round"):
        table.add_column(column, justify="right" if column in ("round", "turns") else "left")
    for ep in episodes:
        if ep.status == "finished" and ep.outcome is not None:
            outcome = outcome_line(ep.outcome, {})
        else:
            outcome = Text(ep.status + (f": {ep.error}" if ep.error else ""), style="yellow")
        cells: list[str | Text] = [ep.id, ep.game]
        if rounds:
            cells.append("" if ep.round is None else str(ep.round))
        cells += [_who(ep, "seller"), _who(ep, "buyer"), str(ep.turns), outcome]
        table.add_row(*cells)
    return table


def _compact_turn(turn: TurnRecord) -> Text:
    line = Text()
    line.append(f"{turn.speaker}: ", style=_SPEAKER_STYLE.get(turn.speaker, "bold"))
    line.append(turn.text, style="dim" if not turn.accepted else "")
    line.append(f" ⟨{_action_label(turn)}⟩", style="green" if turn.accepted else "red")
    return line


def side_by_side(
    left: EpisodeRecord,
    right: EpisodeRecord,
    critiques: dict[str, list[CritiqueRecord]] | None = None,
) -> Table:
    """Two games (two rounds of one lineage) in two columns, turn beside turn, each ending
    with its outcome and the feedback it drew."""
    critiques = critiques or {}

    def heading(episode: EpisodeRecord) -> Text:
        label = f"round {episode.round}" if episode.round is not None else "game"
        return Text(f"{label} · {episode.id}", style="bold")

    table = Table(show_lines=False, expand=True, pad_edge=False)
    table.add_column(heading(left), ratio=1, overflow="fold")
    table.add_column(heading(right), ratio=1, overflow="fold")
    table.add_row(
        *(
            Text(", ".join(f"{role}: {_who(e, role)}" for role in e.roles), style="dim")
            for e in (left, right)
        )
    )
    for index in range(max(len(left.transcript), len(right.transcript))):
        table.add_row(
            *(
                _compact_turn(e.transcript[index]) if index < len(e.transcript) else Text("")
                for e in (left, right)
            )
        )
    table.add_row(
        *(
            outcome_line(e.outcome, e.scores)
            if e.status != "failed"
            else Text(f"failed: {e.error}", style="bold red")
            for e in (left, right)
        )
    )
    if any(critiques.get(e.id) for e in (left, right)):
        table.add_row(
            *(
                Text(
                    "\n".join(
                        f"feedback to the {c.role}: {c.text}" for c in critiques.get(e.id, [])
                    ),
                    style="italic",
                )
                for e in (left, right)
            )
        )
    return table


def print_episode(
    console: Console,
    episode: EpisodeRecord,
    *,
    show_briefs: bool = False,
    critiques: list[CritiqueRecord] | None = None,
) -> None:
    console.print(episode_header(episode, show_briefs=show_briefs))
    for turn in episode.transcript:
        console.print(turn_line(turn))
    if episode.status == "failed":
        console.print(Text(f"failed: {episode.error}", style="bold red"))
    else:
        console.print(outcome_line(episode.outcome, episode.scores))
    for critique in critiques or []:
        console.print(
            Text(
                f"feedback to the {critique.role} after this game ({critique.source}):",
                style="bold",
            )
        )
        console.print(Text(critique.text, style="italic"))
