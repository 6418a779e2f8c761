"""What a run cost, split by game and role: tokens, dollars, failed attempts and retries.

The leaderboard charges each player for its own turns; this is the other cut of the same
bill, with the moderator's readings (a game's cost, not a player's) counted too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table

from haggler.store.sqlite import Store

__all__ = ["SpendRow", "render_spend", "spend_by_game_and_role"]

MODERATOR = "moderator"


@dataclass(slots=True)
class SpendRow:
    game: str
    role: str  # a game's role, or "moderator" for readings of untagged messages
    attempts: int  # games started, failed ones included
    failed: int
    tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0


def spend_by_game_and_role(
    store: Store, run_id: str, *, match_ids: Collection[str] | None = None
) -> list[SpendRow]:
    """One row per (game, role) of `run_id`, and one for the moderator where it was asked;
    with `match_ids`, only those matches' games."""
    rows: dict[tuple[str, str], SpendRow] = {}

    def row(game: str, role: str) -> SpendRow:
        return rows.setdefault((game, role), SpendRow(game, role, attempts=0, failed=0))

    run_id = store.resolve_run(run_id)
    totals = store.speaker_totals(run_id)
    for episode in store.run_episodes(run_id, transcripts=False):
        if match_ids is not None and episode.match_id not in match_ids:
            continue
        for role in episode.roles:
            entry = row(episode.game, role)
            entry.attempts += 1
            entry.failed += episode.status == "failed"
        for speaker, spent in totals.get(episode.id, {}).items():
            entry = row(episode.game, speaker)
            entry.tokens += spent.tokens
            entry.cost_usd += spent.cost_usd
            entry.retries += spent.retries
            if spent.moderated:
                moderator = row(episode.game, MODERATOR)
                moderator.tokens += spent.moderation_tokens
                moderator.cost_usd += spent.moderation_cost_usd
    return sorted(rows.values(), key=lambda r: (r.game, r.role == MODERATOR, r.role))


def render_spend(rows: Sequence[SpendRow]) -> Table:
    table = Table(title="Spend by game and role", box=box.SIMPLE_HEAD)
    for column in ("game", "role", "games", "failed", "tokens", "cost $", "retries"):
        table.add_column(column, justify="left" if column in ("game", "role") else "right")
    for r in rows:
        attempts = "" if r.role == MODERATOR else str(r.attempts)
        failed = "" if r.role == MODERATOR else str(r.failed)
        table.add_row(
            r.game, r.role, attempts, failed, f"{r.tokens:,}", f"{r.cost_usd:.4f}", str(r.retries)
        )
    return table
