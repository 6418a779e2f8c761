"""Arm against arm, paired by lineage seed: the effect of feedback, round by round.

The arms of a self-play run play the same lineage seeds (`haggler.run.experiment.lineage_seed`),
so lineage i of the AI arm and lineage i of the no-feedback arm start from the same game; the
difference between them at round k is the effect of what the player was told, lineage by
lineage. The interval is Student's t on those per-seed differences (a paired t interval): it
removes the variation between seeds that an unpaired (Welch) interval has to carry.

Three differences per round, in the coached role's terms, each over the seeds where both arms
have a value:

- surplus: the coached role's surplus over every lineage started (0 without a deal, and for a
  lineage the unrolling rule stopped earlier): no survivorship bias;
- deal: 1 for a deal, 0 otherwise, over the same seeds: the difference in deal rate;
- price: the deal price, only over seeds where both arms made a deal; read it beside the two.

A lineage that failed (model errors) or is not played yet is left out at the rounds it has no
outcome for, and its seed with it: a crash is not a negotiation outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from haggler.evals.selfplay import GameNames, coached_player, lineage_round, standing_attempts
from haggler.evals.stats import Interval, mean_ci
from haggler.store.records import EpisodeRecord, LineageRecord
from haggler.store.sqlite import Store

__all__ = ["BASELINE", "PairedEffect", "RoundOutcome", "lineage_outcomes", "paired_effects"]

# The arm every other arm is set against: the paper's no-feedback control.
BASELINE = "none"


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """What one lineage got at one round, in the all-lineages view."""

    deal: bool
    price: float | None
    surplus: float  # the coached role's (the seller's when both are coached)


@dataclass(frozen=True, slots=True)
class PairedEffect:
    """`arm` minus `baseline` at `round`, paired by seed."""

    game: str
    coached: str
    player: str
    arm: str
    baseline: str
    round: int
    pairs: int  # seeds with an outcome in both arms
    surplus: Interval  # mean per-seed difference in the coached role's surplus, all lineages
    deal_rate: Interval  # mean per-seed difference in deal (1) or not (0)
    price: Interval  # mean per-seed difference in price, over seeds where both dealt
    arm_surplus: float  # the two arms' mean surplus over the paired seeds
    baseline_surplus: float


Series = tuple[str, str, str, str]  # game, arm, coached role, player


def lineage_outcomes(
    store: Store, run_id: str, *, match_ids: Collection[str] | None = None
) -> dict[Series, dict[int, dict[int, RoundOutcome]]]:
    """Per series, per lineage seed, per round: the outcome the all-lineages view counts.

    A lineage played again after a failure counts once (the attempt that got through), as in
    `round_metrics`; a round it has no outcome for (failed, in flight, not reached yet) is left
    out."""
    run_id = store.resolve_run(run_id)
    played_by: dict[str, list[EpisodeRecord]] = {}
    for episode in store.run_episodes(run_id, transcripts=False):
        if episode.lineage_id is not None and episode.round is not None:
            played_by.setdefault(episode.lineage_id, []).append(episode)
    lineages = [
        lineage
        for lineage in store.lineages(run_id)
        if match_ids is None or any(e.match_id in match_ids for e in played_by.get(lineage.id, []))
    ]
    kept, _ = standing_attempts(lineages, played_by)
    games = GameNames([e for lineage in lineages for e in played_by.get(lineage.id, [])])
    outcomes: dict[Series, dict[int, dict[int, RoundOutcome]]] = {}
    for lineage in lineages:
        if lineage.id not in kept:
            continue
        played = played_by.get(lineage.id, [])
        if not played:
            continue
        series = (
            games.name(played[0]),
            lineage.arm,
            lineage.coached,
            coached_player(lineage, played),
        )
        by_round = outcomes.setdefault(series, {}).setdefault(lineage.seed, {})
        by_round.update(_rounds(lineage, played))
    return outcomes


def _rounds(lineage: LineageRecord, played: Sequence[EpisodeRecord]) -> dict[int, RoundOutcome]:
    surplus_role = "seller" if lineage.coached == "both" else lineage.coached.split(",")[0]
    games: dict[int, list[EpisodeRecord]] = {}
    for episode in played:
        games.setdefault(episode.round or 0, []).append(episode)
    rounds: dict[int, RoundOutcome] = {}
    for round_ in range(1, lineage.rounds_planned + 1):
        game = lineage_round(games.get(round_, []))
        if game is None:
            # Stopped before this round by the unrolling rule: no deal, no surplus.
            if lineage.status in ("stopped", "finished") and lineage.rounds_played < round_:
                rounds[round_] = RoundOutcome(False, None, 0.0)
            continue
        if game.status != "finished":
            continue
        outcome = game.outcome
        price = outcome.price if outcome is not None and outcome.kind == "deal" else None
        surplus = game.scores.get(surplus_role, 0.0) if price is not None else 0.0
        rounds[round_] = RoundOutcome(price is not None, price, surplus)
    return rounds


def paired_effects(
    store: Store,
    run_id: str,
    *,
    baseline: str = BASELINE,
    level: float = 0.95,
    match_ids: Collection[str] | None = None,
) -> list[PairedEffect]:
    """Every other arm minus `baseline`, round by round, paired by lineage seed (a paired t
    interval at `level`); empty when the run has no `baseline` arm."""
    outcomes = lineage_outcomes(store, run_id, match_ids=match_ids)
    effects = []
    for (game, arm, coached, player), seeds in outcomes.items():
        if arm == baseline:
            continue
        control = outcomes.get((game, baseline, coached, player))
        if control is None:
            continue
        rounds = sorted({r for by_round in seeds.values() for r in by_round})
        for round_ in rounds:
            both = [
                (seeds[seed][round_], control[seed][round_])
                for seed in sorted(seeds)
                if round_ in seeds[seed] and round_ in control.get(seed, {})
            ]
            effects.append(
                PairedEffect(
                    game=game,
                    coached=coached,
                    player=player,
                    arm=arm,
                    baseline=baseline,
                    round=round_,
                    pairs=len(both),
                    surplus=mean_ci([a.surplus - b.surplus for a, b in both], level),
                    deal_rate=mean_ci([float(a.deal) - float(b.deal) for a, b in both], level),
                    price=mean_ci(
                        [
                            a.price - b.price
                            for a, b in both
                            if a.price is not None and b.price is not None
                        ],
                        level,
                    ),
                    arm_surplus=_mean([a.surplus for a, _ in both]),
                    baseline_surplus=_mean([b.surplus for _, b in both]),
                )
            )
    return effects


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
