"""Self-play metrics, report and plot, on stores built game by game with known prices."""

from __future__ import annotations

import itertools
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from haggler.errors import ConfigError, StoreError
from haggler.evals import (
    Interval,
    RoundMetrics,
    improvement,
    mean_ci,
    mean_difference,
    plot_rounds,
    read_csv,
    render_report,
    round_metrics,
    t_quantile,
    wilson,
)
from haggler.store import Store
from haggler.store.records import ModerationRecord, OutcomeRecord, RoleRecord, TurnRecord

SVG = "{http://www.w3.org/2000/svg}"
COST = 8.0
ROLES = {
    "seller": RoleRecord(model="rule:boulware", brief="sell high", private={"cost": COST}),
    "buyer": RoleRecord(model="rule:linear", brief="buy low"),
}


# -- building stores ----------------------------------------------------------------------------

_SEEDS = itertools.count(1000)


def _turn(index: int, speaker: str, text: str, **fields: Any) -> TurnRecord:
    return TurnRecord(
        index=index, speaker=speaker, text=text, started_at=0.0, ended_at=0.0, **fields
    )


def _game(
    store: Store,
    run_id: str,
    lineage_id: str,
    round_: int,
    arm: str,
    price: float | None,
    *,
    turns: Sequence[TurnRecord] = (),
    fail: bool = False,
) -> str:
    """One game of a lineage: a deal at `price`, no deal when None, or a failure."""
    episode_id = store.start_episode(
        run_id,
        game="bargaining",
        rules={},
        roles=ROLES,
        seed=round_,
        lineage_id=lineage_id,
        round=round_,
        arm=arm,
    )
    for turn in turns:
        store.add_turn(episode_id, turn)
    if fail:
        store.fail_episode(episode_id, "model error")
    elif price is None:
        store.finish_episode(
            episode_id,
            OutcomeRecord(kind="no_deal", reason="turn_limit"),
            {"seller": 0.0, "buyer": 0.0},
        )
    else:
        store.finish_episode(
            episode_id,
            OutcomeRecord(kind="deal", reason="accepted", price=price, by="buyer"),
            {"seller": price - COST, "buyer": 20.0 - price},
        )
    return episode_id


def _lineage(
    store: Store,
    run_id: str,
    arm: str,
    prices: Sequence[float | None],
    *,
    planned: int,
    unrolled: bool,
    coached: str = "seller",
) -> str:
    """A lineage playing one game per price; unrolled ones stop after their first no-deal.

    Each has a seed of its own, as the lineages of a run do: attempts at one seed are one
    lineage played again."""
    lineage_id = store.start_lineage(
        run_id, arm=arm, coached=coached, seed=next(_SEEDS), rounds_planned=planned
    )
    played = 0
    for round_, price in enumerate(prices, start=1):
        _game(store, run_id, lineage_id, round_, arm, price)
        played = round_
        if price is None and unrolled:
            break
    stopped = played < planned or (unrolled and prices[played - 1] is None)
    store.update_lineage(
        lineage_id,
        rounds_played=played,
        status="stopped" if stopped else "finished",
        stop_reason="no_deal" if stopped else None,
    )
    return lineage_id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "h.db") as opened:
        yield opened


@pytest.fixture
def unrolled_run(store: Store) -> str:
    """The paper's unrolled GPT-4 pattern: survivors' prices climb while deals disappear.

    ai (unrolled, stop at the first no-deal): round 1 prices 14..18 (all deal); round 2 two
    lineages break off, the rest get 17, 18, 19; round 3 one more breaks off, 19 and 20.
    none (play all rounds): three lineages at 15 every round.
    """
    run_id = store.start_run("selfplay")
    for prices in ([14, None], [15, None], [16, 17, None], [17, 18, 19], [18, 19, 20]):
        _lineage(store, run_id, "ai", prices, planned=3, unrolled=True)
    for _ in range(3):
        _lineage(store, run_id, "none", [15, 15, 15], planned=3, unrolled=False)
    return run_id


def _row(rows: Sequence[RoundMetrics], arm: str, round_: int) -> RoundMetrics:
    (row,) = [r for r in rows if r.arm == arm and r.round == round_]
    return row


# -- statistics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042), (120, 1.980), (10**9, 1.960)],
)
def test_t_quantile_matches_the_printed_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_serves_other_levels_and_is_symmetric() -> None:
    assert t_quantile(0.995, 5) == pytest.approx(4.032, abs=5e-4)
    assert t_quantile(0.95, 30) == pytest.approx(1.697, abs=5e-4)
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))
    assert t_quantile(0.5, 3) == 0.0


def test_mean_ci_is_the_student_t_interval() -> None:
    interval = mean_ci([15, 16, 17])
    half = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert interval.value == 16
    assert interval.n == 3
    assert interval.low == pytest.approx(16 - half, abs=1e-5)
    assert interval.high == pytest.approx(16 + half, abs=1e-5)
    assert interval.format() == "16.00 ± 2.48"


def test_mean_ci_of_nothing_or_one_value_does_not_crash() -> None:
    empty = mean_ci([])
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.low)
    assert empty.format() == "—"
    single = mean_ci([17.5])
    assert single.value == 17.5 and single.n == 1
    assert math.isnan(single.low) and math.isnan(single.high)
    assert single.format() == "17.50"
    assert mean_ci([5, 5, 5]).format() == "5.00 ± 0.00"


def test_wilson_interval_matches_known_values() -> None:
    rate = wilson(8, 10)
    assert rate.value == 0.8
    assert rate.low == pytest.approx(0.490, abs=1e-3)
    assert rate.high == pytest.approx(0.943, abs=1e-3)
    assert rate.format() == "0.80 [0.49, 0.94]"
    assert wilson(0, 10).low == 0.0 and wilson(10, 10).high == 1.0
    assert wilson(0, 0).format() == "—"
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson(3, 2)


def test_mean_difference_is_welchs_interval() -> None:
    before, after = mean_ci([14, 15, 16, 17, 18]), mean_ci([19, 20])
    change = mean_difference(before, after)
    # se² = 2.5/5 + 0.5/2 = 0.75; Welch df = 0.75² / (0.5²/4 + 0.25²/1) = 4.5
    half = t_quantile(0.975, 4.5) * math.sqrt(0.75)
    assert change.value == pytest.approx(3.5)
    assert (change.low, change.high) == pytest.approx((3.5 - half, 3.5 + half))
    assert change.format("+.2f") == f"+3.50 ± {half:.2f}"
    assert mean_difference(mean_ci([]), after).empty


# -- per-round metrics ------------------------------------------------------------------------


def test_both_views_report_survivorship(store: Store, unrolled_run: str) -> None:
    rows = round_metrics(store, unrolled_run)
    assert [(r.arm, r.round) for r in rows] == [(a, k) for a in ("ai", "none") for k in (1, 2, 3)]

    ai = [_row(rows, "ai", k) for k in (1, 2, 3)]
    # Survivors: the price climbs...
    assert [r.price.value for r in ai] == [16, 18, 19.5]
    assert [r.price.n for r in ai] == [5, 3, 2]
    assert [r.alive for r in ai] == [5, 5, 3]
    assert [r.deal_rate_alive.value for r in ai] == [1.0, 0.6, pytest.approx(2 / 3)]
    # ...while over all lineages started the deals disappear and the surplus falls.
    assert [r.deal_rate_all.value for r in ai] == [1.0, 0.6, 0.4]
    assert [r.deal_rate_all.n for r in ai] == [5, 5, 5]
    assert [r.surplus_all.value for r in ai] == [8.0, 6.0, pytest.approx(4.6)]
    assert [r.surplus_all.n for r in ai] == [5, 5, 5]
    assert all(r.lineages == 5 and r.coached == "seller" and r.failed == 0 for r in ai)

    flat = [_row(rows, "none", k) for k in (1, 2, 3)]
    assert [r.price.format() for r in flat] == ["15.00 ± 0.00"] * 3
    assert [r.deal_rate_all.value for r in flat] == [1.0] * 3


def test_improvement_is_the_price_change_with_welchs_interval(
    store: Store, unrolled_run: str
) -> None:
    rows = round_metrics(store, unrolled_run)
    change = improvement(rows, "ai")
    assert change == mean_difference(mean_ci([14, 15, 16, 17, 18]), mean_ci([19, 20]))
    assert improvement(rows, "ai", 1, 2).value == pytest.approx(2.0)
    assert improvement(rows, "none").value == 0
    with pytest.raises(ValueError, match="no rows for arm 'human'"):
        improvement(rows, "human")
    with pytest.raises(ValueError, match="no round 7"):
        improvement(rows, "ai", last=7)


def test_failed_games_are_counted_but_never_priced(store: Store) -> None:
    run_id = store.start_run("selfplay")
    # Round 1 failed once and was rerun; round 2 failed for good and ended the lineage.
    crashed = store.start_lineage(run_id, arm="ai", coached="seller", seed=0, rounds_planned=3)
    _game(store, run_id, crashed, 1, "ai", 12.0, fail=True)
    _game(store, run_id, crashed, 1, "ai", 16.0)
    _game(store, run_id, crashed, 2, "ai", 19.0, fail=True)
    store.update_lineage(crashed, rounds_played=1, status="failed", stop_reason="model error")
    _lineage(store, run_id, "ai", [18, 18, 18], planned=3, unrolled=True)

    rows = round_metrics(store, run_id)
    first, second, third = (_row(rows, "ai", k) for k in (1, 2, 3))
    assert (first.failed, first.games, first.alive, first.price.value) == (1, 2, 2, 17.0)
    assert first.deal_rate_all.n == 2
    assert (second.failed, second.games, second.alive, second.price.n) == (1, 1, 2, 1)
    assert second.price.value == 18.0
    # An error is no negotiation outcome: the crashed lineage leaves the all view.
    assert (second.deal_rate_all.value, second.deal_rate_all.n) == (1.0, 1)
    assert (third.alive, third.failed, third.deal_rate_all.n) == (1, 0, 1)


def test_a_lineage_still_running_is_not_yet_a_no_deal(store: Store) -> None:
    run_id = store.start_run("selfplay")
    running = store.start_lineage(run_id, arm="ai", coached="seller", seed=0, rounds_planned=2)
    _game(store, run_id, running, 1, "ai", 15.0)
    store.update_lineage(running, rounds_played=1)
    _lineage(store, run_id, "ai", [17, 19], planned=2, unrolled=False)

    second = _row(round_metrics(store, run_id), "ai", 2)
    assert (second.alive, second.deal_rate_all.value, second.deal_rate_all.n) == (1, 1.0, 1)
    assert second.lineages == 2


def test_message_length_tokens_and_cost_of_a_round(store: Store) -> None:
    run_id = store.start_run("selfplay")
    lineage = store.start_lineage(run_id, arm="ai", coached="seller", seed=0, rounds_planned=1)
    moderated = ModerationRecord(model="m", prompt_tokens=7, completion_tokens=3, cost_usd=0.5)
    turns = [
        _turn(0, "seller", "My price is $20.", scripted=True),
        _turn(1, "buyer", "I offer $10.", scripted=True),
        _turn(2, "seller", "x" * 10, prompt_tokens=100, completion_tokens=5, cost_usd=0.01),
        _turn(3, "buyer", "y" * 99, prompt_tokens=90, completion_tokens=9, cost_usd=0.02),
        _turn(4, "seller", "z" * 50, accepted=False, error="no action", prompt_tokens=1),
        _turn(5, "seller", "w" * 20, prompt_tokens=110, completion_tokens=8, moderation=moderated),
    ]
    _game(store, run_id, lineage, 1, "ai", 16.0, turns=turns)
    store.update_lineage(lineage, rounds_played=1, status="finished")

    (row,) = round_metrics(store, run_id)
    assert row.msg_chars == 15.0  # the seller's generated, accepted messages: 10 and 20 chars
    assert row.tokens == 100 + 5 + 90 + 9 + 1 + 110 + 8 + 7 + 3
    assert row.cost_usd == pytest.approx(0.53)


def test_both_coached_reports_the_sellers_surplus_and_both_voices(store: Store) -> None:
    run_id = store.start_run("selfplay")
    lineage = store.start_lineage(run_id, arm="ai", coached="both", seed=0, rounds_planned=1)
    turns = [_turn(0, "seller", "s" * 10), _turn(1, "buyer", "b" * 30)]
    _game(store, run_id, lineage, 1, "ai", 15.0, turns=turns)
    store.update_lineage(lineage, rounds_played=1, status="finished")

    (row,) = round_metrics(store, run_id)
    assert row.coached == "both"
    assert row.surplus_all.value == 15.0 - COST
    assert row.msg_chars == 20.0


def test_runs_are_named_by_prefix_and_unknown_ones_refused(store: Store, unrolled_run: str) -> None:
    assert round_metrics(store, unrolled_run[:-3]) == round_metrics(store, unrolled_run)
    with pytest.raises(StoreError, match="no run 'run-nope'"):
        round_metrics(store, "run-nope")


# -- report, CSV, plot ------------------------------------------------------------------------


def _rendered(rows: Sequence[RoundMetrics]) -> str:
    console = Console(record=True, width=160)
    console.print(render_report(rows))
    return console.export_text()


def test_report_shows_every_arm_with_a_deal_rate_beside_every_price(
    store: Store, unrolled_run: str
) -> None:
    text = _rendered(round_metrics(store, unrolled_run))
    assert "round 1 (before)" in text and "round 2 (after)" in text and "round 3" in text
    (ai_line,) = [line for line in text.splitlines() if line.startswith("│ ai ")]
    # before, after and last: each price followed by its deal rate (and the all view once
    # the two part).
    assert re.search(r"16\.00 ± 1\.96\W+1\.00\W+18\.00 ± 2\.48\W+0\.60\W", ai_line)
    assert re.search(r"19\.50 ± 6\.35\W+0\.67 \(all 0\.40\)", ai_line)
    (none_line,) = [line for line in text.splitlines() if line.startswith("│ none ")]
    assert none_line.count("15.00 ± 0.00") == 3 and none_line.count("1.00") == 3
    assert "+0.00 ± 0.00" in none_line
    # The per-round tables: both views for every arm.
    assert "ai: by round" in text and "none: by round" in text
    assert "0.40 [0.12, 0.77]" in text  # deal rate (all) of ai at round 3: 2 of 5
    assert "4.60 ±" in text  # surplus (all) of ai at round 3


def test_report_of_an_empty_run_says_so() -> None:
    assert "No self-play rounds" in _rendered([])


def test_csv_round_trip(store: Store, unrolled_run: str, tmp_path: Path) -> None:
    from haggler.evals import write_csv

    rows = round_metrics(store, unrolled_run)
    write_csv(rows, tmp_path / "rounds.csv")
    header = (tmp_path / "rounds.csv").read_text().splitlines()[0]
    assert header.startswith("arm,round,coached,lineages,alive,games,deals,failed,price,price_low")
    back = read_csv(tmp_path / "rounds.csv")
    # repr, because nan != nan: the ai price at round 3 among lineages that stopped is empty.
    assert [repr(r) for r in back] == [repr(r) for r in rows]


def test_svg_plot_parses_and_escapes_arm_names(store: Store, tmp_path: Path) -> None:
    run_id = store.start_run("selfplay")
    for arm in ("a<b&c", "none"):
        for prices in ([15, 16], [16, None]):
            _lineage(store, run_id, arm, prices, planned=2, unrolled=True)
    rows = round_metrics(store, run_id)

    path = plot_rounds(rows, tmp_path / "rounds.svg")
    raw = path.read_text()
    assert "a&lt;b&amp;c" in raw
    root = ET.fromstring(raw)
    series = [p for p in root.iter(f"{SVG}path") if p.get("class") == "series"]
    # Per arm: the price line, the deal rate among the alive, and the dashed all-lineages one.
    assert sorted(str(p.get("data-arm")) for p in series) == ["a<b&c"] * 3 + ["none"] * 3
    assert sum(p.get("stroke-dasharray") is not None for p in series) == 2
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "a<b&c" in texts and "round" in texts and "Deal rate" in texts
    assert {"1", "2"} <= set(texts)  # x ticks


def test_png_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(
        ConfigError, match=r"PNG needs matplotlib \(pip install matplotlib\)"
    ) as error:
        plot_rounds([], tmp_path / "rounds.png")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "rounds.png").exists()
    with pytest.raises(ConfigError, match="use .svg or .png"):
        plot_rounds([], tmp_path / "rounds.pdf")


def test_png_with_matplotlib(store: Store, unrolled_run: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = plot_rounds(round_metrics(store, unrolled_run), tmp_path / "rounds.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_interval_formats() -> None:
    assert Interval(1.0, 0.5, 1.5, 3).format(".1f") == "1.0 ± 0.5"
    assert Interval(0.8, 0.49, 0.94, 10).format() == "0.80 [0.49, 0.94]"
    assert Interval(float("nan"), float("nan"), float("nan"), 0).format() == "—"
