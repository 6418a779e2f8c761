"""The tournament leaderboard: one row per player, its ratings beside its deals and its bill.

rows = leaderboard(store, run_id)             # best OpenSkill ordinal first
console.print(render_leaderboard(rows))
write_leaderboard_csv(rows, "leaderboard.csv")

A player's share is its own part of the bargaining zone (the seller's share when it sold, one
minus it when it bought), over its deals only; its deal rate says how many games that is. Its
tokens, cost and retries are those of the turns it spoke in every attempt at a match, failed
ones included, since every attempt was paid for; a moderator's readings are the game's cost, not
a player's, and are not counted here.

On a self-play schedule every round of a lineage is a game, and a player is ranked on all of
them, coached and as the fresh rival: what it learnt shows in its later rounds. How far each
coached player moved from round 1 to its last is `haggler.evals.coaching`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.table import Table

from haggler.evals.ratings import (
    NoDeal,
    bouts_from_episodes,
    bradley_terry,
    openskill_ratings,
    surplus_share,
    two_sided,
)
from haggler.evals.stats import Interval, mean_ci, wilson
from haggler.evals.table_csv import read_rows, write_rows
from haggler.store.records import EpisodeRecord
from haggler.store.sqlite import Store

__all__ = [
    "LeaderboardRow",
    "leaderboard",
    "read_leaderboard_csv",
    "render_leaderboard",
    "write_leaderboard_csv",
]

SELLER, BUYER = "seller", "buyer"
_NAN = float("nan")


@dataclass(frozen=True)
class LeaderboardRow:
    """What one player did in a tournament run."""

    player: str
    games: int  # finished games; a game against itself counts once
    as_seller: int
    as_buyer: int
    deals: int
    deal_rate: Interval  # deals / games, Wilson interval
    mean_share: Interval  # the player's own surplus share over its deals, t interval
    mu: float  # OpenSkill (Plackett–Luce), over every role
    sigma: float
    ordinal: float  # mu - 3 sigma: the sort key
    ordinal_seller: float  # OpenSkill ordinal as seller only, against buyers
    ordinal_buyer: float  # … as buyer only, against sellers
    bt: Interval  # Bradley–Terry log-strength (mean 0) with bootstrap bounds
    bt_seller: Interval  # … as seller only, against buyers
    bt_buyer: Interval  # … as buyer only, against sellers
    tokens: int  # prompt + completion tokens of the player's turns, every attempt
    cost_usd: float
    failures: int  # failed attempts the player was in
    retries: int  # retries of the player's turns, every attempt
    # Every role it played, with its games and OpenSkill ordinal in that role:
    # "seller 4 (ord 1.20); buyer 4 (ord -0.50)" (the same for games of any roles).
    by_role: str = ""


@dataclass
class _Tally:
    games: int = 0
    as_seller: int = 0
    as_buyer: int = 0
    deals: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    failures: int = 0
    retries: int = 0
    shares: list[float] = field(default_factory=list)
    roles: dict[str, int] = field(default_factory=dict)


def _player(episode: EpisodeRecord, role: str) -> str:
    record = episode.roles[role]
    return record.player if record.player is not None else record.model


def leaderboard(
    store: Store,
    run_id: str,
    *,
    no_deal: NoDeal = "draw",
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
    match_ids: Collection[str] | None = None,
) -> list[LeaderboardRow]:
    """One row per player of tournament run `run_id` (an id or a unique prefix), best first.

    `match_ids` keeps only those matches: a tournament whose spec changed under the same name
    still holds its earlier matches, which must not count.

    Sorted by OpenSkill ordinal, then by name. A player without a rated game (only failures,
    only games against itself, or only a role that is counted, not rated, such as a fixed
    mediator) shows OpenSkill's prior rating and empty Bradley–Terry intervals, and comes after
    every rated player.
    """
    from openskill.models import PlackettLuce

    run_id = store.resolve_run(run_id)
    # Every attempt at every match, failed ones included.
    # Games without their turns, and the turns' sums: a 10,000-game run reads in a second.
    totals = store.speaker_totals(run_id)
    episodes = [
        episode
        for episode in store.run_episodes(run_id, transcripts=False)
        if episode.match_id is not None and (match_ids is None or episode.match_id in match_ids)
    ]
    bouts = bouts_from_episodes(episodes)
    tallies: dict[str, _Tally] = {}

    def tally(player: str) -> _Tally:
        return tallies.setdefault(player, _Tally())

    finished: dict[str, EpisodeRecord] = {}
    for episode in episodes:
        if episode.status == "finished" and episode.match_id is not None:
            finished.setdefault(episode.match_id, episode)
    for _, episode in sorted(finished.items()):
        cast = {role: _player(episode, role) for role in episode.roles}
        if two_sided(episode):
            share = surplus_share(episode.rules, episode.outcome)
            shares = {} if share is None else {SELLER: share, BUYER: 1 - share}
        elif episode.outcome is not None and episode.outcome.kind == "deal":
            # Each party's own score: in a game of several parties, its share of its room.
            shares = {r: v for r, v in episode.scores.items() if r in cast}
        else:
            shares = {}
        for player in set(cast.values()):
            tally(player).games += 1
            tally(player).deals += bool(shares)
        for role, player in cast.items():
            played = tally(player)
            played.roles[role] = played.roles.get(role, 0) + 1
            played.as_seller += role == SELLER
            played.as_buyer += role == BUYER
            if role in shares:
                played.shares.append(shares[role])

    for episode in episodes:
        players = {role: _player(episode, role) for role in episode.roles}
        if episode.status == "failed":
            for player in set(players.values()):
                tally(player).failures += 1
        for speaker, spent in totals.get(episode.id, {}).items():
            if speaker not in players:
                continue
            spender = tally(players[speaker])
            spender.tokens += spent.tokens
            spender.cost_usd += spent.cost_usd
            spender.retries += spent.retries

    ratings = openskill_ratings(bouts, no_deal=no_deal)
    role_ratings = openskill_ratings(bouts, by_role=True, no_deal=no_deal)
    prior = PlackettLuce().rating()

    def role_ordinal(player: str, role: str) -> float:
        rated = role_ratings.get((player, role))
        return rated.ordinal if rated is not None else prior.mu - 3 * prior.sigma

    fits = {
        by_role: bradley_terry(
            bouts, by_role=by_role, no_deal=no_deal, bootstrap=bootstrap, seed=seed, level=level
        )
        for by_role in (False, True)
    }

    def strength(key: str | tuple[str, str], by_role: bool) -> Interval:
        fitted = fits[by_role].get(key)
        return fitted.interval if fitted is not None else Interval(_NAN, _NAN, _NAN, 0, level)

    rows = []
    for player, t in tallies.items():
        rating = ratings.get(player)
        mu, sigma = (rating.mu, rating.sigma) if rating else (prior.mu, prior.sigma)
        rows.append(
            LeaderboardRow(
                player=player,
                games=t.games,
                as_seller=t.as_seller,
                as_buyer=t.as_buyer,
                deals=t.deals,
                deal_rate=wilson(t.deals, t.games, level),
                mean_share=mean_ci(t.shares, level),
                mu=mu,
                sigma=sigma,
                ordinal=mu - 3 * sigma,
                ordinal_seller=role_ordinal(player, SELLER),
                ordinal_buyer=role_ordinal(player, BUYER),
                bt=strength(player, False),
                bt_seller=strength((player, SELLER), True),
                bt_buyer=strength((player, BUYER), True),
                tokens=t.tokens,
                cost_usd=t.cost_usd,
                failures=t.failures,
                retries=t.retries,
                by_role="; ".join(
                    f"{role} {count} (ord {role_ordinal(player, role):.2f})"
                    for role, count in t.roles.items()
                ),
            )
        )
    # A player never rated (a fixed mediator, counted not rated; one with only failures) shows
    # the prior, which must not rank it above rated players whose ordinal fell below it.
    rows.sort(key=lambda row: (row.player not in ratings, -row.ordinal, row.player))
    return rows


def _role_counts(row: LeaderboardRow) -> dict[str, int]:
    """The games of `row`'s player in each role, read from `by_role`."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in row.by_role.split(";"))):
        role, _, rest = part.partition(" ")
        counts[role] = int(rest.split(" ", 1)[0])
    return counts


def _value(interval: Interval) -> str:
    return "—" if interval.empty else f"{interval.value:+.2f}"


def render_leaderboard(rows: Sequence[LeaderboardRow]) -> Table:
    """The leaderboard as a rich table, one line per player in the order given.

    Made to fit 160 columns: OpenSkill's mu and sigma, its by-role ordinals and the by-role
    bounds are in the CSV.
    """
    level = round(rows[0].bt.level * 100) if rows else 95
    table = Table(
        title="Tournament leaderboard",
        caption=(
            "ordinal: OpenSkill mu - 3 sigma. BT: Bradley–Terry log-strength (mean 0) with "
            f"{level}% bootstrap bounds; by role, as seller and as buyer. share: the player's own "
            "part of the bargaining zone, over its deals. Spend: the player's turns in every "
            "attempt, failed ones included. Per-role OpenSkill ordinals: --csv."
        ),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("#", justify="right", no_wrap=True)
    # In a narrow terminal the intervals wrap first, then long names; plain numbers never do.
    table.add_column("player", overflow="fold", min_width=8)
    for heading in ("games (S/B)", "deals", "share", "ordinal", "BT"):
        wraps = heading in ("share", "BT")
        table.add_column(
            heading, justify="right", no_wrap=not wraps, min_width=6 if wraps else None
        )
    for heading in ("seller", "buyer", "tokens", "cost $", "failed", "retried"):
        table.add_column(heading, justify="right", no_wrap=True)
    for rank, row in enumerate(rows, start=1):
        deal_rate = "—" if row.deal_rate.empty else f"{row.deal_rate.value:.2f}"
        roles = f"{row.as_seller}/{row.as_buyer}"
        if row.as_seller + row.as_buyer < sum(_role_counts(row).values()):
            # Roles other than a seller and a buyer: each by name.
            roles = ", ".join(f"{r} {n}" for r, n in _role_counts(row).items())
        table.add_row(
            str(rank),
            row.player,
            f"{row.games} ({roles})",
            f"{row.deals} ({deal_rate})",
            row.mean_share.format(),
            f"{row.ordinal:.2f}",
            row.bt.format("+.2f"),
            _value(row.bt_seller),
            _value(row.bt_buyer),
            f"{row.tokens:,}",
            f"{row.cost_usd:.4f}",
            str(row.failures),
            str(row.retries),
        )
    return table


# -- CSV ---------------------------------------------------------------------------------------


def write_leaderboard_csv(rows: Sequence[LeaderboardRow], path: str | Path) -> None:
    """One line per row; each interval as four columns: value, _low, _high, _n."""
    write_rows(rows, LeaderboardRow, path)


def read_leaderboard_csv(path: str | Path) -> list[LeaderboardRow]:
    """Rows written by `write_leaderboard_csv`."""
    return read_rows(LeaderboardRow, path)
