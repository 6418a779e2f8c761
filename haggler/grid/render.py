"""The cost estimate as the terminal shows it, before a grid is played."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from haggler.grid.cost import Estimate

__all__ = ["render_estimate"]


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def render_estimate(estimate: Estimate) -> RenderableType:
    """Calls, tokens and dollars per model, expected and at most, and how they were made."""
    left = sum(cell.lineages_left for cell in estimate.cells)
    planned = sum(len(cell.cell.spec.feedback) * cell.cell.spec.lineages for cell in estimate.cells)
    cells_left = sum(1 for cell in estimate.cells if cell.lineages_left)
    head = Text(
        f"{left} of {planned} lineages to play in {cells_left} of {len(estimate.cells)} cells"
        + (" (the rest are stored)" if left < planned else "")
    )
    expected, ceiling = estimate.by_model("expected"), estimate.by_model("ceiling")
    if not expected:
        return Group(head, Text("No model calls: nothing to pay."))
    table = Table(title="What the grid will cost", caption_justify="left")
    for heading in ("model", "as", "calls", "prompt tokens", "completion tokens", "$", "$ at most"):
        table.add_column(heading, justify="left" if heading in ("model", "as") else "right")
    for model, cost in expected.items():
        most = ceiling.get(model)
        priced = cost.price is not None
        table.add_row(
            escape(model),
            ", ".join(sorted(cost.uses)),
            f"{cost.calls:,}",
            f"{cost.prompt_tokens:,}",
            f"{cost.completion_tokens:,}",
            _usd(cost.usd) if priced else "no price",
            (_usd(most.usd) if most is not None else "—") if priced else "no price",
        )
    table.add_row(
        "all",
        "",
        f"{estimate.calls():,}",
        f"{sum(c.prompt_tokens for c in expected.values()):,}",
        f"{sum(c.completion_tokens for c in expected.values()):,}",
        _usd(estimate.usd()),
        _usd(estimate.usd("ceiling")),
        style="bold",
    )
    a = estimate.assumptions
    messages = f"{a.messages_per_game} messages" if a.messages_per_game else "half the turn limit"
    how = Text(
        "How: each pair, coached role and arm was rehearsed offline through the real prompts "
        f"(briefs, memory under its budget, critic and moderator) with stand-in models: a game "
        f"of {messages} ending in a deal, messages of {a.message_chars} characters, the coached "
        f"player's {a.growth:g}x longer each round (the paper's growth), a critic's answer of "
        f"{a.advice_chars} characters, {a.untagged_share:.0%} of messages read by a model "
        "moderator, every round played; tokens by each model's tokenizer (else 3 characters a "
        "token), dollars at litellm's list prices. At most: every game to the turn limit, "
        "every reply at its max_tokens, invalid allowances spent, every message moderated. "
        f"At most {estimate.calls('ceiling'):,} calls. Set the assumptions under `estimate:`.",
        style="dim",
    )
    parts: list[RenderableType] = [head, table, how]
    unpriced = estimate.unpriced()
    if unpriced:
        parts.append(
            Text(
                f"No list price for {', '.join(unpriced)}: their calls and tokens are counted, "
                "their dollars are not (self-hosted, or not in litellm's price map).",
                style="yellow",
            )
        )
    return Group(*parts)
