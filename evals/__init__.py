"""Metrics and reports read from the store: self-play prices, deal rates and their intervals.

rows = round_metrics(store, run_id)       # one RoundMetrics per (arm, round)
console.print(render_report(rows))        # the paper-style table, then one per arm
plot_rounds(rows, "rounds.svg")           # price and deal rate by round
"""

from haggler.evals.plot import plot_rounds
from haggler.evals.report import read_csv, render_report, write_csv
from haggler.evals.selfplay import RoundMetrics, improvement, round_metrics
from haggler.evals.stats import Interval, mean_ci, mean_difference, t_quantile, wilson

__all__ = [
    "Interval",
    "RoundMetrics",
    "improvement",
    "mean_ci",
    "mean_difference",
    "plot_rounds",
    "read_csv",
    "render_report",
    "round_metrics",
    "t_quantile",
    "wilson",
    "write_csv",
]
