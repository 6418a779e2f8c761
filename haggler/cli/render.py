"""Transcripts for people: turns and games as rich text, the same live and from the store.

What a model wrote (or a spec named, or a provider's error said) reaches the terminal inert:
control characters, escape sequences and bidirectional overrides are shown as their escapes
(`haggler.model_text.terminal_text`), and it is never read as rich markup (it goes in as
`Text`, or through `escape` where markup is built). Lines wrap between words, never inside an
action tag such as `[OFFER $15]`, piped or not.
"""

from __future__ import annotations

import re
from datetime import datetime

from rich.console import (
    Console,
    ConsoleOptions,
    Group,
    JustifyMethod,
    OverflowMethod,
    RenderResult,
)
from rich.containers import Lines
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from haggler.agents.prices import format_price
from haggler.model_text import terminal_text
from haggler.store.records import (
    PROBE_VERDICTS,
    CritiqueRecord,
    EpisodeRecord,
    EpisodeSummary,
    ForgettingRecord,
    OutcomeRecord,
    TurnRecord,
)

__all__ = ["episode_header", "episode_list", "outcome_line", "side_by_side", "turn_line"]

_SPEAKER_STYLE = {"seller": "bold magenta", "buyer": "bold cyan", "mediator": "bold yellow"}

# An action tag as written ([OFFER $15], [WALK AWAY]) or as labelled (⟨accept $19.50⟩).
_TAG = re.compile(r"\[[^\[\]\n]{1,60}\]|⟨[^⟨⟩\n]{1,60}⟩")
# Stands in for a space inside a tag while a line is wrapped: not whitespace, one cell wide.
_HELD_SPACE = "\ue000"


class _Transcript(Text):
    """Text that wraps between words but never inside an action tag."""

    def __rich__(self) -> _KeptWhole:
        # Console.print merges plain Text objects into one before wrapping, which would lose
        # this class's `wrap`; a renderable of its own is printed as itself.
        return _KeptWhole(self)

    def wrap(
        self,
        console: Console,
        width: int,
        *,
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        tab_size: int = 8,
        no_wrap: bool | None = None,
    ) -> Lines:
        plain = self.plain
        held = _TAG.sub(lambda match: match.group(0).replace(" ", _HELD_SPACE), plain)
        target: Text = self
        if held != plain and _HELD_SPACE not in plain:
            # Same length, so every style span still covers the same characters.
            target = self.copy()
            target.plain = held
        lines = Text.wrap(
            target,
            console,
            width,
            justify=justify,
            overflow=overflow,
            tab_size=tab_size,
            no_wrap=no_wrap,
        )
        if target is not self:
            for line in lines:
                line.plain = line.plain.replace(_HELD_SPACE, " ")
        return lines


class _KeptWhole:
    """How a `_Transcript` is printed: as Text is, wrapped by its own `wrap`."""

    def __init__(self, text: _Transcript) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        return Text.__rich_console__(self.text, console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return self.text.__rich_measure__(console, options)


def _inert(text: object) -> str:
    return terminal_text(str(text))


def _markup(text: object) -> str:
    """`text` for a place where rich reads markup: inert, and its brackets escaped."""
    return escape(_inert(text))


def _action_label(turn: TurnRecord) -> str:
    if turn.action is None:
        return "no action"
    price = f" {format_price(turn.action.price)}" if turn.action.price is not None else ""
    terms = turn.action.terms
    settled = f" {' '.join(_inert(v) for v in terms.values())}" if terms else ""
    return f"{_inert(turn.action.kind).replace('_', ' ')}{price}{settled}"


def turn_line(turn: TurnRecord, *, actions: bool = True) -> Text:
    """One turn: speaker, text, the action the moderator read (`actions`: a game's turn, not
    a probe's), and what it cost."""
    style = _SPEAKER_STYLE.get(turn.speaker, "bold")
    line = _Transcript()
    line.append(f"{_inert(turn.speaker):>7} ", style=style)
    line.append(_inert(turn.text), style="dim" if not turn.accepted else "")
    if actions:
        line.append(f"  ⟨{_action_label(turn)}⟩", style="green" if turn.accepted else "red")
    if turn.completion_tokens or turn.latency_s:
        line.append(
            f"  {turn.prompt_tokens}+{turn.completion_tokens} tok, {turn.latency_s:.2f}s",
            style="dim",
        )
    if not turn.accepted and turn.error:
        said = "rejected" if actions else "not answered"
        line.append(f"\n{'':>8}{said}: {_inert(turn.error)}", style="red dim")
    return line


def outcome_line(outcome: OutcomeRecord | None, scores: dict[str, float]) -> Text:
    if outcome is None:
        return Text("no outcome (the game did not finish)", style="yellow")
    if outcome.kind in PROBE_VERDICTS:
        return _verdict_line(outcome)
    if outcome.kind == "deal" and outcome.price is None:
        # A deal on a package: what it settled, issue by issue.
        settled = ", ".join(f"{_inert(k)} {_inert(v)}" for k, v in (outcome.terms or {}).items())
        text = _Transcript(f"Deal on {settled or 'terms'}", style="bold green")
        text.append(f" ({_inert(outcome.by)} agreed last)")
    elif outcome.kind == "deal":
        text = _Transcript(f"Deal at {format_price(outcome.price)}", style="bold green")
        text.append(f" ({_inert(outcome.by)} accepted)")
    else:
        label = "No deal" if outcome.kind == "no_deal" else "Invalid game"
        reason = _inert(outcome.reason.replace("_", " "))
        text = _Transcript(f"{label}: {reason}", style="bold yellow")
        if outcome.price is not None:
            text.append(f" at {format_price(outcome.price)}")
        if outcome.by:
            text.append(f" ({_inert(outcome.by)})")
    if scores:
        text.append(
            "   surplus " + ", ".join(f"{_inert(r)} {round(v, 2):+g}" for r, v in scores.items()),
            style="dim",
        )
    return text


_VERDICT_STYLE = {"leak": "bold red", "no_leak": "bold green", "undetermined": "bold yellow"}


def _verdict_line(outcome: OutcomeRecord) -> Text:
    """A probe attempt's verdict: what the judge ruled, why, and what the adversary guessed."""
    text = _Transcript(outcome.kind.replace("_", " "), style=_VERDICT_STYLE[outcome.kind])
    if outcome.by:
        text.append(f" (judged by {_inert(outcome.by)})")
    text.append(f": {_inert(outcome.reason)}")
    finding = outcome.finding
    if finding is not None:
        if finding.guess is not None:
            guess = finding.guess if len(finding.guess) <= 60 else finding.guess[:59] + "…"
            text.append(f"; guess {_inert(guess)}", style="dim")
        text.append(
            f"; {finding.queries} quer{'y' if finding.queries == 1 else 'ies'}", style="dim"
        )
        if finding.first_leak is not None:
            text.append(f", first leak at {finding.first_leak}", style="dim")
    return text


def _signed(value: float) -> str:
    return ("-" if value < 0 else "+") + format_price(abs(value))[1:]


def episode_header(episode: EpisodeRecord, *, show_briefs: bool = False) -> Group:
    when = datetime.fromtimestamp(episode.started_at).strftime("%Y-%m-%d %H:%M:%S")
    lines: list[Text | Table] = [
        Text.from_markup(
            f"[bold]{_markup(episode.game)}[/] game [bold]{_markup(episode.id)}[/] "
            f"(run {_markup(episode.run_id)}, seed {episode.seed}, {when})"
        )
    ]
    if episode.lineage_id is not None:
        lines.append(
            Text(
                f"  self-play lineage {_inert(episode.lineage_id)}, round {episode.round}, "
                f"feedback arm {_inert(episode.arm)}"
            )
        )
    for role, record in episode.roles.items():
        lines.append(Text.from_markup(f"  {_markup(role)}: {_markup(record.model)}"))
        if show_briefs:
            lines.append(
                Text(f"    private to {_inert(role)}: {_inert(record.brief)}", style="italic dim")
            )
            if record.prompt:
                lines.append(
                    Text(
                        f"    {_inert(role)}'s own prompt: {_inert(record.prompt)}",
                        style="italic dim",
                    )
                )
    return Group(*lines)


def _order(role: str) -> tuple[int, str]:
    known = ("seller", "buyer", "adversary", "target")
    return (known.index(role) if role in known else len(known), role)


def _who(episode: EpisodeSummary, role: str) -> str:
    record = episode.roles.get(role)
    if record is None:
        return ""
    return _inert(record.player or record.model)


def episode_list(episodes: list[EpisodeSummary], *, title: str = "games") -> Table:
    table = Table(title=title, show_lines=False)
    # Ids stay whole, so they can be copied into `haggler show ID`.
    table.add_column(
        "game id", no_wrap=True, min_width=max((len(e.id) for e in episodes), default=8)
    )
    rounds = any(e.round is not None for e in episodes)
    # Sellers and buyers; a probe's adversary and target; any roles a plug-in game adds.
    roles = sorted({role for e in episodes for role in e.roles}, key=_order) or ["seller", "buyer"]
    columns = ("game", "round", *roles, "turns", "outcome")
    for column in columns if rounds else tuple(c for c in columns if c != "round"):
        table.add_column(column, justify="right" if column in ("round", "turns") else "left")
    for ep in episodes:
        if ep.status == "finished" and ep.outcome is not None:
            outcome = outcome_line(ep.outcome, {})
        else:
            error = f": {_inert(ep.error)}" if ep.error else ""
            outcome = Text(ep.status + error, style="yellow")
        # Text, not str: a table reads a str cell as markup.
        cells: list[Text] = [Text(_inert(ep.id)), Text(_inert(ep.game))]
        if rounds:
            cells.append(Text("" if ep.round is None else str(ep.round)))
        cells += [Text(_who(ep, role)) for role in roles]
        cells += [Text(str(ep.turns)), outcome]
        table.add_row(*cells)
    return table


def _compact_turn(turn: TurnRecord) -> Text:
    line = _Transcript()
    line.append(f"{_inert(turn.speaker)}: ", style=_SPEAKER_STYLE.get(turn.speaker, "bold"))
    line.append(_inert(turn.text), style="dim" if not turn.accepted else "")
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
        return Text(f"{label} · {_inert(episode.id)}", style="bold")

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
            else Text(f"failed: {_inert(e.error)}", style="bold red")
            for e in (left, right)
        )
    )
    if any(critiques.get(e.id) for e in (left, right)):
        table.add_row(
            *(
                _Transcript(
                    "\n".join(
                        f"feedback to the {_inert(c.role)}: {_inert(c.text)}"
                        for c in critiques.get(e.id, [])
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
    forgetting: list[ForgettingRecord] | None = None,
) -> None:
    console.print(episode_header(episode, show_briefs=show_briefs))
    # A probe's turns are questions and answers: no action to read in them.
    probe = episode.outcome is not None and episode.outcome.kind in PROBE_VERDICTS
    for turn in episode.transcript:
        console.print(turn_line(turn, actions=not probe))
    if episode.status == "failed":
        console.print(Text(f"failed: {_inert(episode.error)}", style="bold red"))
    else:
        console.print(outcome_line(episode.outcome, episode.scores))
    for critique in critiques or []:
        console.print(
            Text(
                f"feedback to the {_inert(critique.role)} after this game "
                f"({_inert(critique.source)}):",
                style="bold",
            )
        )
        console.print(_Transcript(_inert(critique.text), style="italic"))
    for record in forgetting or []:
        console.print(Text(record.describe(), style="bold magenta"))
