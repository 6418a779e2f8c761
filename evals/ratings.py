"""Ratings of tournament players: OpenSkill (Plackett–Luce) and Bradley–Terry with intervals.

Every stored tournament game becomes a `Bout` between a seller and a buyer, scored by the
seller's share of the bargaining zone, so that prices from different games compare:

    share = (price - buyer_opening) / (seller_opening - buyer_opening), clipped to [0, 1]

The seller wins a bout with more than half of the zone, the buyer with less, and exactly half
is a draw. A game without a deal (or with an invalid one) has no share: by default it is a
draw, since neither side turned the game into surplus; `no_deal="skip"` leaves it out instead.
A player's bouts against itself (self-play in both roles) say nothing about its strength and
are left out, except by role, where its seller and its buyer are different competitors.

bouts = bouts_from_store(store, run_id)
bradley_terry(bouts)["gpt-4o"].interval       # log-strength, mean 0, bootstrap bounds
openskill_ratings(bouts, by_role=True)["gpt-4o", "seller"].ordinal
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from haggler.evals.stats import Interval
from haggler.store.records import EpisodeRecord, OutcomeRecord
from haggler.store.sqlite import Store

__all__ = [
    "Bout",
    "NoDeal",
    "Rating",
    "Strength",
    "bout_score",
    "bouts_from_episodes",
    "bouts_from_store",
    "bradley_terry",
    "openskill_ratings",
    "surplus_share",
    "two_sided",
]

SELLER, BUYER = "seller", "buyer"
NoDeal = Literal["draw", "skip"]
# A competitor: a player's name, or (name, role) when rated by role.
Key = str | tuple[str, str]

# Shares this close to one half are a draw: a price at the midpoint should not become a win
# through rounding.
_DRAW_TOLERANCE = 1e-9
_NAN = float("nan")


@dataclass(frozen=True)
class Bout:
    """One finished tournament game between two players, from the seller's side; in a game
    of other roles, one pair of its parties, from the first's side (`roles`)."""

    match_id: str
    game: str
    seller: str
    buyer: str
    # The seller's share of the bargaining zone; None without a (valid) deal. For another
    # pair of roles: 1 when the first scored more, 0 when less, 0.5 the same.
    seller_share: float | None
    # The roles the two played: the seller and the buyer, or the pair of a larger game.
    roles: tuple[str, str] = (SELLER, BUYER)


@dataclass(frozen=True)
class Rating:
    """An OpenSkill rating: skill `mu`, uncertainty `sigma`, and the ordinal mu - 3 sigma."""

    mu: float
    sigma: float
    ordinal: float
    games: int


@dataclass(frozen=True)
class Strength:
    """A Bradley–Terry log-strength (mean 0 over the competitors) with bootstrap bounds."""

    value: float
    low: float
    high: float
    games: int
    score: float  # wins, a draw counting one half
    level: float = 0.95

    @property
    def interval(self) -> Interval:
        return Interval(self.value, self.low, self.high, self.games, self.level)


def surplus_share(rules: Mapping[str, object], outcome: OutcomeRecord | None) -> float | None:
    """The seller's share of the zone between the two openings, in [0, 1]; None without a deal."""
    if outcome is None or outcome.kind != "deal" or outcome.price is None:
        return None
    try:
        high = float(rules["seller_opening"])  # type: ignore[arg-type]
        low = float(rules["buyer_opening"])  # type: ignore[arg-type]
    except KeyError as missing:
        raise ValueError(
            f"the game's rules have no {missing}; a surplus share needs both seller_opening "
            f"and buyer_opening (got {sorted(rules)})"
        ) from None
    if not high > low:
        raise ValueError(
            f"seller_opening ({high:g}) must be above buyer_opening ({low:g}) to share a zone"
        )
    return min(1.0, max(0.0, (outcome.price - low) / (high - low)))


def bout_score(bout: Bout, *, no_deal: NoDeal = "draw") -> float | None:
    """The seller's result: 1 a win, 0 a loss, 0.5 a draw; None when a no-deal is skipped."""
    _check_no_deal(no_deal)
    share = bout.seller_share
    if share is None:
        return 0.5 if no_deal == "draw" else None
    if abs(share - 0.5) <= _DRAW_TOLERANCE:
        return 0.5
    return 1.0 if share > 0.5 else 0.0


def _check_no_deal(no_deal: str) -> None:
    if no_deal not in ("draw", "skip"):
        raise ValueError(f"no_deal={no_deal!r}: use 'draw' or 'skip'")


def _player(episode: EpisodeRecord, role: str) -> str:
    record = episode.roles[role]
    return record.player if record.player is not None else record.model


def two_sided(episode: EpisodeRecord) -> bool:
    """Whether `episode` is a bargaining game between a seller and a buyer over the zone
    between two openings (other roles, such as a mediator, take no share of it)."""
    return {SELLER, BUYER} <= set(episode.roles) and {
        "seller_opening",
        "buyer_opening",
    } <= set(episode.rules)


def _ranked(first: float, second: float) -> float:
    if abs(first - second) <= _DRAW_TOLERANCE:
        return 0.5
    return 1.0 if first > second else 0.0


def bouts_from_episodes(episodes: Iterable[EpisodeRecord]) -> list[Bout]:
    """The finished tournament games among `episodes` (others are left out), by match id.

    A bargaining game is one bout, seller against buyer, scored by the zone. Any other game
    is a bout for every pair of its parties, scored by who of the two scored more in the game
    (`EpisodeRecord.scores`, measured from no deal: a game without a deal has no winner).
    """
    bouts: dict[tuple[str, tuple[str, str]], Bout] = {}
    for episode in episodes:
        if episode.status != "finished" or episode.match_id is None:
            continue
        # The store keeps one finished game per match; keep the first should an old one not.
        if two_sided(episode):
            key = (episode.match_id, (SELLER, BUYER))
            bouts.setdefault(
                key,
                Bout(
                    match_id=episode.match_id,
                    game=episode.game,
                    seller=_player(episode, SELLER),
                    buyer=_player(episode, BUYER),
                    seller_share=surplus_share(episode.rules, episode.outcome),
                ),
            )
            continue
        deal = episode.outcome is not None and episode.outcome.kind == "deal"
        roles = list(episode.roles)
        for index, first in enumerate(roles):
            for second in roles[index + 1 :]:
                share = None
                if deal and first in episode.scores and second in episode.scores:
                    share = _ranked(episode.scores[first], episode.scores[second])
                bouts.setdefault(
                    (episode.match_id, (first, second)),
                    Bout(
                        match_id=episode.match_id,
                        game=episode.game,
                        seller=_player(episode, first),
                        buyer=_player(episode, second),
                        seller_share=share,
                        roles=(first, second),
                    ),
                )
    return [bouts[key] for key in sorted(bouts)]


def bouts_from_store(store: Store, run_id: str) -> list[Bout]:
    """The finished tournament games of run `run_id` (an id or a unique prefix), by match id."""
    run_id = store.resolve_run(run_id)
    return bouts_from_episodes(
        episode
        for episode in store.run_episodes(run_id, transcripts=False)
        if episode.match_id is not None and episode.status == "finished"
    )


def _scored(bouts: Iterable[Bout], by_role: bool, no_deal: NoDeal) -> list[tuple[Key, Key, float]]:
    """(seller key, buyer key, seller's score) of every bout that counts, by match id."""
    _check_no_deal(no_deal)
    scored: list[tuple[Key, Key, float]] = []
    for bout in sorted(bouts, key=lambda b: (b.match_id, b.roles, b.seller, b.buyer)):
        score = bout_score(bout, no_deal=no_deal)
        if score is None:
            continue
        if by_role:
            scored.append(((bout.seller, bout.roles[0]), (bout.buyer, bout.roles[1]), score))
        elif bout.seller != bout.buyer:
            scored.append((bout.seller, bout.buyer, score))
    return scored


# -- OpenSkill ----------------------------------------------------------------------------------


def openskill_ratings(
    bouts: Iterable[Bout], *, by_role: bool = False, no_deal: NoDeal = "draw"
) -> dict[Key, Rating]:
    """Plackett–Luce ratings after playing `bouts` in match-id order (the same on every call).

    Keys are player names, or (player, role) with `by_role`. OpenSkill updates online, so the
    order matters; sorting by match id makes it independent of the order games finished. A
    player's games against itself are left out, except by role.
    """
    from openskill.models import PlackettLuce

    model = PlackettLuce()
    ratings = {}
    games: dict[Key, int] = {}
    for seller, buyer, score in _scored(bouts, by_role, no_deal):
        for key in (seller, buyer):
            if key not in ratings:
                ratings[key] = model.rating(name=str(key))
            games[key] = games.get(key, 0) + 1
        # Ranks: lower is better; equal ranks are a draw.
        ranks = [0.0, 0.0] if score == 0.5 else ([0.0, 1.0] if score == 1.0 else [1.0, 0.0])
        [[new_seller], [new_buyer]] = model.rate([[ratings[seller]], [ratings[buyer]]], ranks=ranks)
        ratings[seller], ratings[buyer] = new_seller, new_buyer
    return {
        key: Rating(r.mu, r.sigma, r.mu - 3 * r.sigma, games[key])
        for key, r in sorted(ratings.items(), key=lambda item: str(item[0]))
    }


# -- Bradley–Terry ------------------------------------------------------------------------------


def _fit(
    competitors: Sequence[Key],
    scored: Sequence[tuple[Key, Key, float]],
    prior: float,
    *,
    tolerance: float = 1e-10,
    max_iterations: int = 10_000,
) -> dict[Key, float]:
    """Log-strengths (mean 0) by the MM algorithm of Hunter (2004).

    A draw counts as half a win each way. The prior is `prior` virtual draws of every competitor
    against a pseudo-player of fixed strength 1: it keeps an unbeaten player finite, links
    competitors that never met, and pins the scale, so no renormalising is needed per step.
    """
    index = {key: i for i, key in enumerate(competitors)}
    k = len(competitors)
    wins = [prior / 2] * k
    meetings: dict[tuple[int, int], int] = {}
    for seller, buyer, score in scored:
        i, j = index[seller], index[buyer]
        wins[i] += score
        wins[j] += 1 - score
        pair = (i, j) if i < j else (j, i)
        meetings[pair] = meetings.get(pair, 0) + 1
    opponents: list[list[tuple[int, int]]] = [[] for _ in range(k)]
    for (i, j), n in meetings.items():
        opponents[i].append((j, n))
        opponents[j].append((i, n))

    strength = [1.0] * k
    for _ in range(max_iterations):
        previous = list(strength)
        for i in range(k):
            # Gauss–Seidel order: each update uses its neighbours' newest strengths.
            p = strength[i]
            denominator = prior / (p + 1.0) + sum(n / (p + strength[j]) for j, n in opponents[i])
            # Without a prior, a competitor that never scored has no finite MLE; keep it tiny.
            strength[i] = max(wins[i] / denominator, 1e-300) if denominator > 0 else p
        if k:
            # The games fix only ratios; the scale is left to the prior's weak pull, along which
            # MM crawls. Step straight to the best scale instead (an exact ascent step).
            shift = _best_shift(strength) if prior > 0 else -sum(map(math.log, strength)) / k
            strength = [p * math.exp(shift) for p in strength]
        if (
            max((abs(math.log(a / b)) for a, b in zip(strength, previous, strict=True)), default=0)
            < tolerance
        ):
            break
    logs = [math.log(p) for p in strength]
    mean = sum(logs) / k if k else 0.0
    return {key: logs[index[key]] - mean for key in competitors}


def _best_shift(strength: Sequence[float]) -> float:
    """The t that maximises the prior's likelihood of strengths p·e^t: Σ ½ − σ(t + log p) = 0."""
    logs = [math.log(p) for p in strength]
    t = 0.0
    for _ in range(50):
        sigmoids = [1 / (1 + math.exp(-min(700.0, max(-700.0, t + x)))) for x in logs]
        gradient = sum(0.5 - q for q in sigmoids)
        curvature = sum(q * (1 - q) for q in sigmoids)
        if curvature <= 0:
            break
        step = max(-1.0, min(1.0, gradient / curvature))
        t += step
        if abs(step) < 1e-13:
            break
    return t


def _bootstrap(
    competitors: Sequence[Key],
    scored: Sequence[tuple[Key, Key, float]],
    prior: float,
    rounds: int,
    seed: int,
    estimate: Mapping[Key, float],
    *,
    tolerance: float = 1e-10,
    max_iterations: int = 10_000,
) -> dict[Key, list[float]]:
    """Each competitor's log-strength in `rounds` refits on bouts resampled with replacement,
    recorded only where it played in the resample.

    The same MM steps as `_fit`, run for every resample at once (numpy, one array row a
    resample): resampling n bouts with replacement is a multinomial draw of how many times each
    distinct (seller, buyer, score) is played, so a 10,000-game tournament costs no more than a
    100-game one. Each refit starts from the full-data estimate, which it is near.
    """
    samples: dict[Key, list[float]] = {key: [] for key in competitors}
    if rounds == 0 or not scored:
        return samples
    import numpy as np

    index = {key: i for i, key in enumerate(competitors)}
    k = len(competitors)
    kinds = sorted(
        Counter(scored).items(), key=lambda item: (str(item[0][0]), str(item[0][1]), item[0][2])
    )
    rng = np.random.default_rng(seed)
    weights = np.array([count for _, count in kinds], dtype=float)
    counts = rng.multinomial(len(scored), weights / weights.sum(), size=rounds).astype(float)
    wins = np.full((rounds, k), prior / 2)
    meetings = np.zeros((rounds, k, k))
    for column, ((seller, buyer, score), _) in enumerate(kinds):
        i, j = index[seller], index[buyer]
        played = counts[:, column]
        wins[:, i] += played * score
        wins[:, j] += played * (1 - score)
        meetings[:, i, j] += played
        meetings[:, j, i] += played

    strength = np.tile(np.exp([estimate[key] for key in competitors]), (rounds, 1))
    for _ in range(max_iterations):
        previous = strength.copy()
        for i in range(k):
            p = strength[:, i]
            denominator = prior / (p + 1.0) + (meetings[:, i, :] / (p[:, None] + strength)).sum(1)
            with np.errstate(divide="ignore", invalid="ignore"):
                updated = np.maximum(wins[:, i] / denominator, 1e-300)
            strength[:, i] = np.where(denominator > 0, updated, p)
        logs = np.log(strength)
        shift = _best_shifts(logs) if prior > 0 else -logs.mean(axis=1)
        strength *= np.exp(shift)[:, None]
        if np.abs(np.log(strength / previous)).max() < tolerance:
            break
    logs = np.log(strength)
    logs -= logs.mean(axis=1, keepdims=True)
    present = meetings.sum(axis=2) > 0
    for key, i in index.items():
        samples[key] = logs[present[:, i], i].tolist()
    return samples


def _best_shifts(logs: Any) -> Any:
    """`_best_shift` for every row of log-strengths at once."""
    import numpy as np

    t = np.zeros(logs.shape[0])
    for _ in range(50):
        q = 1 / (1 + np.exp(-np.clip(t[:, None] + logs, -700.0, 700.0)))
        gradient = (0.5 - q).sum(axis=1)
        curvature = (q * (1 - q)).sum(axis=1)
        step = np.where(
            curvature > 0, np.clip(gradient / np.where(curvature > 0, curvature, 1), -1.0, 1.0), 0.0
        )
        t += step
        if np.abs(step).max() < 1e-13:
            break
    return t


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly between order statistics."""
    if not ordered:
        return _NAN
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def bradley_terry(
    bouts: Iterable[Bout],
    *,
    by_role: bool = False,
    no_deal: NoDeal = "draw",
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
    prior: float = 1.0,
) -> dict[Key, Strength]:
    """Bradley–Terry log-strengths, mean 0, with percentile bootstrap intervals.

    P(a beats b) = 1 / (1 + exp(b - a)) for log-strengths a and b. The bounds come from
    `bootstrap` refits on bouts resampled with replacement (numpy, seeded with `seed`);
    with `bootstrap=0` they are nan. `prior`: virtual draws per competitor against an average
    pseudo-player, so an unbeaten player stays finite (see `_fit`); with `prior=0` the plain
    MLE, which does not exist for an unbeaten player (its value then only says "very strong").
    Keys and self-play as in `openskill_ratings`.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level {level!r} is outside (0, 1); use e.g. 0.95")
    if bootstrap < 0:
        raise ValueError(f"bootstrap={bootstrap}: give a number of resamples, 0 or more")
    if prior < 0:
        raise ValueError(f"prior={prior!r}: give a number of virtual draws, 0 or more")
    scored = _scored(bouts, by_role, no_deal)
    games: dict[Key, int] = {}
    score: dict[Key, float] = {}
    for seller, buyer, result in scored:
        for key, points in ((seller, result), (buyer, 1 - result)):
            games[key] = games.get(key, 0) + 1
            score[key] = score.get(key, 0.0) + points
    competitors = sorted(games, key=str)
    estimate = _fit(competitors, scored, prior)

    samples = _bootstrap(competitors, scored, prior, bootstrap, seed, estimate)

    tail = (1 - level) / 2
    strengths = {}
    for key in competitors:
        ordered = sorted(samples[key])
        strengths[key] = Strength(
            value=estimate[key],
            low=_percentile(ordered, tail),
            high=_percentile(ordered, 1 - tail),
            games=games[key],
            score=score[key],
            level=level,
        )
    return strengths
