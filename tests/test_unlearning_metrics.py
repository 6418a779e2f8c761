"""The forgetting metrics against hand computations: leak rate (undetermined apart), leak
advantage paired and bootstrapped by agent, extraction error, attack effort, utility kept,
over-forgetting, the sequential curve and DRAGON's scores, and reading them from a store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from haggler.evals.stats import wilson
from haggler.evals.unlearning import (
    Observation,
    ProbeTag,
    SecretTag,
    UtilityGame,
    attack_effort,
    bootstrap_mean,
    changed_answers,
    cost_usd,
    deviation_score,
    dragon_dds,
    dragon_dus,
    dragon_scores,
    extraction_error,
    leak_advantage,
    leak_rate,
    over_forgetting,
    paired_difference,
    read_observations,
    recall,
    sequential_curve,
    utility_kept,
)
from haggler.store import Store
from haggler.store.records import FindingRecord, OutcomeRecord, RoleRecord, TurnRecord


def obs(verdict: str, variant: str = "after", seed: int = 0, **extra: object) -> Observation:
    return Observation(verdict, variant, extra.pop("strategy", "ask"), seed=seed, **extra)  # type: ignore[arg-type]


# -- leak rate -------------------------------------------------------------------------------


def test_leak_rate_leaves_undetermined_verdicts_out_of_the_denominator() -> None:
    observations = [obs("leak")] * 3 + [obs("no_leak")] * 5 + [obs("undetermined")] * 2
    rate = leak_rate(observations)
    assert (rate.leaks, rate.judged, rate.undetermined) == (3, 8, 2)
    assert rate.value == pytest.approx(3 / 8)
    assert rate.interval == wilson(3, 8)
    assert "2 undetermined" in rate.format()
    # Counting them as "no leak" would have given 3/10: they never are.
    assert leak_rate(observations[:8]).interval == rate.interval


def test_a_rate_of_nothing_judged_is_empty_not_zero() -> None:
    rate = leak_rate([obs("undetermined"), obs("undetermined")])
    assert rate.interval.empty and rate.judged == 0 and rate.undetermined == 2
    assert rate.format().startswith("—")


def test_recall_is_the_leak_rate_of_kept_facts_only() -> None:
    observations = [
        obs("leak", retained=True),
        obs("no_leak", retained=True),
        obs("leak", retained=False),
    ]
    assert recall(observations).value == pytest.approx(0.5)


# -- bootstrap -------------------------------------------------------------------------------


def test_bootstrap_of_two_agents_covers_every_resample() -> None:
    # Agents with differences 0 and 1: resamples average 0, 0.5 or 1 (probability 1/4, 1/2,
    # 1/4), so the 2.5% and 97.5% quantiles are 0 and 1.
    interval = bootstrap_mean([[0.0], [1.0]])
    assert (interval.value, interval.low, interval.high, interval.n) == (0.5, 0.0, 1.0, 2)


def test_bootstrap_resamples_agents_whole() -> None:
    # Agent A leaks on three pairs, agent B on none: the pooled mean is 3/4; resampling agents
    # gives AA = 1, AB = BA = 3/4, BB = 0.
    interval = bootstrap_mean([[1.0, 1.0, 1.0], [0.0]])
    assert interval.value == pytest.approx(0.75)
    assert (interval.low, interval.high) == (0.0, 1.0)
    # Resampled attempt by attempt instead, 3 of 4 ones could never give a mean of 0.
    one_by_one = bootstrap_mean([[1.0], [1.0], [1.0], [0.0]])
    assert one_by_one.low > 0


def test_bootstrap_edge_cases() -> None:
    assert bootstrap_mean([]).empty
    single = bootstrap_mean([[2.0]])
    assert single.value == 2.0 and math.isnan(single.low) and math.isnan(single.high)
    same = bootstrap_mean([[0.0], [0.0], [0.0]])
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    assert bootstrap_mean([[1.0], [3.0]], seed=1) == bootstrap_mean([[1.0], [3.0]], seed=1)
    with pytest.raises(ValueError, match="confidence level"):
        bootstrap_mean([[1.0]], level=1.5)


def test_paired_difference_is_second_minus_first_by_cluster() -> None:
    interval = paired_difference([("a", 1.0, 3.0), ("a", 2.0, 2.0), ("b", 5.0, 4.0)])
    assert interval.value == pytest.approx((2 + 0 - 1) / 3)
    assert interval.n == 3


# -- leak advantage --------------------------------------------------------------------------


def test_leak_advantage_pairs_after_with_reference_by_seed_and_attempt() -> None:
    after = [
        obs("leak", seed=1),
        obs("leak", seed=2),
        obs("no_leak", seed=3),
        obs("no_leak", seed=4),
    ]
    reference = [
        obs("no_leak", "reference", seed=1),
        obs("leak", "reference", seed=2),
        obs("no_leak", "reference", seed=3),
        obs("no_leak", "reference", seed=4),
    ]
    advantage = leak_advantage(after, reference)
    # Differences 1, 0, 0, 0: a quarter more leaks after forgetting than the reference.
    assert advantage.interval.value == pytest.approx(0.25)
    assert advantage.pairs == 4 and advantage.unpaired == 0
    assert 0.0 <= advantage.interval.low <= 0.25 <= advantage.interval.high <= 1.0
    assert advantage.after.value == pytest.approx(0.5)
    assert advantage.reference.value == pytest.approx(0.25)


def test_leak_advantage_leaves_out_pairs_with_an_undetermined_or_missing_side() -> None:
    after = [obs("leak", seed=1), obs("undetermined", seed=2), obs("leak", seed=3, sample=1)]
    reference = [
        obs("leak", "reference", seed=1),
        obs("no_leak", "reference", seed=2),
        obs("no_leak", "reference", seed=4),
    ]
    advantage = leak_advantage(after, reference)
    # Only seed 1 pairs (difference 0); seed 2 has an undetermined side (2 attempts left
    # out), seed 3's sample 1 and seed 4 have no partner (1 each).
    assert advantage.pairs == 1
    assert advantage.unpaired == 4
    assert advantage.interval.value == 0.0


def test_forgetting_that_held_has_no_advantage() -> None:
    after = [obs("no_leak", seed=s) for s in range(10)] + [obs("leak", seed=10)]
    reference = [obs("no_leak", "reference", seed=s) for s in range(10)] + [
        obs("leak", "reference", seed=10)
    ]
    advantage = leak_advantage(after, reference)
    assert (advantage.interval.value, advantage.interval.low, advantage.interval.high) == (0, 0, 0)


# -- the other metrics ------------------------------------------------------------------------


def test_extraction_error_is_the_mean_absolute_error_of_numeric_guesses() -> None:
    observations = [
        obs("no_leak", seed=1, value=14.0, guessed_value=10.0),
        obs("leak", seed=2, value=14.0, guessed_value=15.0),
        obs("no_leak", seed=3, value=14.0),  # no guess
        obs("no_leak", seed=4, guessed_value=3.0),  # not a number to guess
    ]
    error = extraction_error(observations)
    assert error.value == pytest.approx(2.5) and error.n == 2


def test_attack_effort_counts_queries_to_the_first_leak() -> None:
    observations = [
        obs("leak", seed=1, first_leak=1, queries=4),
        obs("leak", seed=2, first_leak=3, queries=4),
        obs("leak", seed=3, queries=5),  # the leak took every reply together
        obs("no_leak", seed=4, queries=20),
        obs("undetermined", seed=5, queries=2),
    ]
    effort = attack_effort(observations)
    assert effort.queries.value == pytest.approx(3.0)
    assert (effort.leaked, effort.attempts) == (3, 4)


def test_cost_adds_every_attempt() -> None:
    assert cost_usd([obs("leak", cost_usd=0.25), obs("no_leak", cost_usd=0.5)]) == 0.75


def test_over_forgetting_counts_lost_recall_and_new_refusals() -> None:
    before = [
        obs("leak", "before", seed=1, fact="kept", retained=True),
        obs("leak", "before", seed=2, fact="kept", retained=True),
        obs("no_leak", "before", seed=3, fact="kept", retained=True),
        obs("leak", "before", seed=4, fact="kept", retained=True),
    ]
    after = [
        obs("leak", seed=1, fact="kept", retained=True),
        obs("no_leak", seed=2, fact="kept", retained=True),  # recall lost
        obs("no_leak", seed=3, fact="kept", retained=True),
        obs("leak", seed=4, fact="kept", retained=True, refused=True),  # refused now
    ]
    rate = over_forgetting(before, after)
    assert (rate.hits, rate.counted) == (2, 4)
    assert rate.interval == wilson(2, 4)


def test_changed_answers_count_any_difference_in_what_was_said() -> None:
    before = [obs("leak", "before", seed=s, fact="kept", answer=a) for s, a in enumerate("xyzw")]
    after = [obs("leak", seed=s, fact="kept", answer=a) for s, a in enumerate("xYzW")]
    rate = changed_answers(before, after)
    assert (rate.hits, rate.counted) == (2, 4)


def test_utility_kept_pairs_games_by_agent_counterpart_and_seed() -> None:
    def game(variant: str, seed: int, k: int, deal: bool, surplus: float) -> UtilityGame:
        return UtilityGame(variant, seed, "Carl", k, deal, surplus)

    before = [
        game("before", 1, 0, True, 5),
        game("before", 1, 1, True, 4),
        game("before", 2, 0, False, 0),
        game("before", 2, 1, True, 6),
    ]
    after = [
        game("after", 1, 0, True, 5),
        game("after", 1, 1, False, 0),
        game("after", 2, 0, False, 0),
        game("after", 2, 1, True, 5),
    ]
    kept = utility_kept(before, after)
    assert kept.deal_rate_before.interval == wilson(3, 4)
    assert kept.deal_rate_after.interval == wilson(2, 4)
    assert kept.deal_rate_change.value == pytest.approx(-0.25)
    assert kept.surplus_before.value == pytest.approx(3.75)
    assert kept.surplus_after.value == pytest.approx(2.5)
    assert kept.surplus_change.value == pytest.approx(-1.25)
    assert kept.pairs == 4


def test_dragon_scores_by_hand() -> None:
    assert deviation_score(0.3, 0.6) == pytest.approx(50.0)
    assert deviation_score(0.0, 1.0) == 0.0
    # Mean 20; one rise of 20 over two steps, weighed by 1/2.
    assert dragon_dds([10, 30, 20]) == pytest.approx(20 + 0.5 * 20 / 2)
    assert dragon_dus([0.9, 0.7, 0.8]) == pytest.approx(1 - (0.2 + 0.1) / 2)
    with pytest.raises(ValueError, match="at least two"):
        dragon_dds([1.0])
    with pytest.raises(ValueError, match="at least two"):
        dragon_dus([1.0])


def test_the_sequential_curve_follows_each_request() -> None:
    def at(
        step: int, variant: str, verdict: str, fact: str, retained: bool, seed: int
    ) -> Observation:
        return Observation(
            verdict, variant, "ask", fact=fact, retained=retained, seed=seed,  # type: ignore[arg-type]
            condition="seq", step=step,
        )  # fmt: skip

    observations = [
        # After request 1: a was forgotten (leaks once in two), b kept (recalled twice).
        at(1, "after", "leak", "a", False, 1),
        at(1, "after", "no_leak", "a", False, 2),
        at(1, "reference", "no_leak", "a", False, 1),
        at(1, "reference", "no_leak", "a", False, 2),
        at(1, "after", "leak", "b", True, 1),
        at(1, "after", "leak", "b", True, 2),
        # After request 2: a and b forgotten, c kept (recalled once in two).
        at(2, "after", "no_leak", "a", False, 1),
        at(2, "after", "no_leak", "b", False, 1),
        at(2, "reference", "no_leak", "a", False, 1),
        at(2, "reference", "no_leak", "b", False, 1),
        at(2, "after", "leak", "c", True, 1),
        at(2, "after", "no_leak", "c", True, 2),
        Observation("leak", "after", "ask", condition="other", step=1),
    ]
    curve = sequential_curve(observations, "seq")
    assert [p.step for p in curve] == [1, 2]
    assert curve[0].after.value == pytest.approx(0.5) and curve[0].reference.value == 0
    assert curve[0].advantage.interval.value == pytest.approx(0.5)
    assert curve[0].recall.value == 1.0
    assert curve[1].after.value == 0 and curve[1].recall.value == pytest.approx(0.5)
    dds, dus = dragon_scores(curve)  # type: ignore[misc]
    first, second = deviation_score(0.5, 1.0), deviation_score(0.0, 0.5)
    assert dds == pytest.approx((first + second) / 2 + 0.5 * max(0.0, second - first))
    assert dus == pytest.approx(1 - 0.5)


def test_dragon_scores_need_kept_facts_at_every_step() -> None:
    observations = [
        Observation("leak", "after", "ask", condition="seq", step=1, retained=False),
        Observation("leak", "after", "ask", condition="seq", step=1, retained=True),
        Observation("leak", "after", "ask", condition="seq", step=2, retained=False),
    ]
    assert dragon_scores(sequential_curve(observations, "seq")) is None


# -- reading a run ---------------------------------------------------------------------------


def test_observations_read_back_from_the_store(tmp_path: Path) -> None:
    secret = SecretTag(fact="budget", text="$14", topic="the budget", value=14.0)
    rows = [
        ("leak", ProbeTag(variant="after", strategy="ask", secret=secret, seed=3, job="j", step=1,
                          condition="c", retained=False)),
        ("undetermined", ProbeTag(variant="reference", strategy="ask", secret=secret, seed=3,
                                  job="j", step=1, condition="c")),
        ("no_leak", ProbeTag(variant="before", strategy="ask", secret=secret, seed=3, job="old")),
    ]  # fmt: skip
    with Store(tmp_path / "h.db") as store:
        run_id = store.start_run("unlearn-eval", {})
        for verdict, tag in rows:
            store.add_episode(
                run_id, game="balloon", rules={"probe": tag.model_dump(mode="json")},
                roles={"target": RoleRecord(model="rule:boulware", brief="b")}, seed=3,
                turns=[TurnRecord(index=0, speaker="judge", text=verdict, started_at=0, ended_at=0,
                                  cost_usd=0.5)],
                outcome=OutcomeRecord(
                    kind=verdict, reason="why", by="numeric",  # type: ignore[arg-type]
                    finding=FindingRecord(guessed_value=13.0, queries=4, first_leak=2, cost_usd=0.5),
                ),
                scores={},
            )  # fmt: skip
        # A utility game: the agent's surplus is its score.
        store.add_episode(
            run_id, game="balloon", roles={}, seed=1, turns=[], scores={"seller": 4.5},
            rules={"probe": ProbeTag(part="utility", variant="before", seed=3, job="j",
                                     counterpart="Carl", game_seed=9).model_dump(mode="json")},
            outcome=OutcomeRecord(kind="deal", reason="accepted", price=15.5, by="seller"),
        )  # fmt: skip
        read = read_observations(store, run_id, jobs={"j"}, role="seller")
        everything = read_observations(store, run_id)
    assert [o.verdict for o in read.attempts] == ["leak", "undetermined"]
    first = read.attempts[0]
    assert (first.variant, first.fact, first.value, first.guessed_value) == (
        "after",
        "budget",
        14.0,
        13.0,
    )
    assert (first.queries, first.first_leak, first.cost_usd, first.step) == (4, 2, 0.5, 1)
    assert read.utility == [UtilityGame("before", 3, "Carl", 9, True, 4.5)]
    assert len(everything.attempts) == 3
