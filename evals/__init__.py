"""Metrics and reports read from the store: self-play prices, deal rates and their intervals.

rows = round_metrics(store, run_id)       # one RoundMetrics per (arm, round)
console.print(render_report(rows))        # the paper-style table, then one per arm
plot_rounds(rows, "rounds.svg")           # price and deal rate by round
effects = paired_effects(store, run_id)   # each arm minus no feedback, paired by seed

board = leaderboard(store, run_id)        # tournament players, best OpenSkill ordinal first
console.print(render_leaderboard(board))  # with Bradley–Terry strengths, deals and spend
console.print(render_coaching(coaching(store, run_id)))  # a self-play schedule's coached players
"""

from haggler.evals.accounting import SpendRow, render_spend, spend_by_game_and_role
from haggler.evals.coaching import CoachingRow, coaching, render_coaching
from haggler.evals.leaderboard import (
    LeaderboardRow,
    leaderboard,
    read_leaderboard_csv,
    render_leaderboard,
    write_leaderboard_csv,
)
from haggler.evals.paired import PairedEffect, paired_effects
from haggler.evals.plot import plot_rounds, rounds_svg
from haggler.evals.ratings import (
    Bout,
    Rating,
    Strength,
    bout_score,
    bouts_from_episodes,
    bouts_from_store,
    bradley_terry,
    openskill_ratings,
    surplus_share,
)
from haggler.evals.report import read_csv, render_report, write_csv
from haggler.evals.selfplay import RoundMetrics, games_of, improvement, round_metrics
from haggler.evals.stats import Interval, mean_ci, mean_difference, t_quantile, wilson

__all__ = [
    "Bout",
    "CoachingRow",
    "SpendRow",
    "render_spend",
    "spend_by_game_and_role",
    "Interval",
    "LeaderboardRow",
    "PairedEffect",
    "Rating",
    "RoundMetrics",
    "Strength",
    "bout_score",
    "bouts_from_episodes",
    "bouts_from_store",
    "bradley_terry",
    "coaching",
    "games_of",
    "improvement",
    "leaderboard",
    "mean_ci",
    "mean_difference",
    "openskill_ratings",
    "paired_effects",
    "plot_rounds",
    "read_csv",
    "read_leaderboard_csv",
    "render_coaching",
    "render_leaderboard",
    "render_report",
    "round_metrics",
    "rounds_svg",
    "surplus_share",
    "t_quantile",
    "wilson",
    "write_csv",
    "write_leaderboard_csv",
]
