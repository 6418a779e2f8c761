"""Tournament ratings and the leaderboard: synthetic bouts with known strengths, and real stores."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from haggler.evals import (
    Bout,
    bout_score,
    bouts_from_store,
    bradley_terry,
    leaderboard,
    openskill_ratings,
    read_leaderboard_csv,
    render_leaderboard,
    surplus_share,
    write_leaderboard_csv,
)
from haggler.games.bargaining import BALLOON, DIAMOND
from haggler.store import Store
from haggler.store.records import ModerationRecord, OutcomeRecord, RoleRecord, TurnRecord

DEAL = "deal"


def _outcome(price: float | None, kind: str = DEAL) -> OutcomeRecord:
    if price is None:
        return OutcomeRecord(kind="no_deal", reason="turn_limit")
    return OutcomeRecord(kind=kind, reason="accepted", price=price, by="buyer")  # type: ignore[arg-type]


def _synthetic(strengths: dict[str, float], n: int, seed: int) -> list[Bout]:
    """`n` bouts between random pairs; the seller wins with the Bradley–Terry probability."""
    rng = random.Random(seed)
    names = sorted(strengths)
    bouts = []
    for m in range(n):
        seller, buyer = rng.sample(names, 2)
        p_seller = 1 / (1 + math.exp(strengths[buyer] - strengths[seller]))
        share = 0.8 if rng.random() < p_seller else 0.2
        bouts.append(Bout(f"m{m:04d}", "balloon", seller, buyer, share))
    return bouts


def _bout(match: str, seller: str, buyer: str, share: float | None) -> Bout:
    return Bout(match, "balloon", seller, buyer, share)


# -- surplus share and bout results -------------------------------------------------------------


def test_surplus_share_puts_different_games_on_one_scale() -> None:
    balloon, diamond = BALLOON.model_dump(), DIAMOND.model_dump()
    # 70% of the way from the buyer's opening to the seller's, in both games.
    assert surplus_share(balloon, _outcome(17.0)) == pytest.approx(0.7)
    assert surplus_share(diamond, _outcome(1550.0)) == pytest.approx(0.7)
    assert surplus_share(balloon, _outcome(15.0)) == surplus_share(diamond, _outcome(1250.0)) == 0.5
    # Clipped to [0, 1]; no share without a valid deal.
    assert surplus_share(balloon, _outcome(25.0)) == 1.0
    assert surplus_share(balloon, _outcome(5.0)) == 0.0
    assert surplus_share(balloon, _outcome(None)) is None
    assert surplus_share(balloon, _outcome(15.0, kind="invalid")) is None
    assert surplus_share(balloon, None) is None


def test_surplus_share_names_missing_or_inverted_openings() -> None:
    with pytest.raises(ValueError, match="buyer_opening"):
        surplus_share({"seller_opening": 20.0}, _outcome(15.0))
    with pytest.raises(ValueError, match="must be above"):
        surplus_share({"seller_opening": 10.0, "buyer_opening": 20.0}, _outcome(15.0))


def test_bout_score_wins_losses_draws_and_no_deals() -> None:
    assert bout_score(_bout("m", "a", "b", 0.7)) == 1.0
    assert bout_score(_bout("m", "a", "b", 0.3)) == 0.0
    assert bout_score(_bout("m", "a", "b", 0.5)) == 0.5
    assert bout_score(_bout("m", "a", "b", (15.1 - 10) / 10 - 0.01)) == 0.5  # rounding noise
    assert bout_score(_bout("m", "a", "b", None)) == 0.5
    assert bout_score(_bout("m", "a", "b", None), no_deal="skip") is None
    with pytest.raises(ValueError, match="'draw' or 'skip'"):
        bout_score(_bout("m", "a", "b", None), no_deal="loss")  # type: ignore[arg-type]


# -- Bradley–Terry ------------------------------------------------------------------------------

TRUE = {"ace": 1.5, "bea": 0.5, "cal": -0.5, "dot": -1.5}  # log-strengths, mean 0


def test_bradley_terry_recovers_known_strengths_within_its_intervals() -> None:
    strengths = bradley_terry(_synthetic(TRUE, 400, seed=1), bootstrap=200, seed=3)
    order = sorted(strengths, key=lambda key: strengths[key].value, reverse=True)
    assert order == ["ace", "bea", "cal", "dot"]
    assert sum(s.value for s in strengths.values()) == pytest.approx(0.0, abs=1e-9)
    for name, truth in TRUE.items():
        s = strengths[name]
        assert s.low < s.value < s.high, (name, s)
        assert s.low <= truth <= s.high, f"{name}: true {truth} outside [{s.low}, {s.high}]"
        assert s.interval.n == s.games
    # The log-strength difference is what the model predicts from: ace over dot.
    ratio = strengths["ace"].value - strengths["dot"].value
    assert ratio == pytest.approx(TRUE["ace"] - TRUE["dot"], abs=0.6)
    assert sum(s.games for s in strengths.values()) == 2 * 400


def test_bradley_terry_is_reproducible_and_order_free() -> None:
    bouts = _synthetic(TRUE, 120, seed=2)
    first = bradley_terry(bouts, bootstrap=30, seed=5)
    shuffled = list(bouts)
    random.Random(0).shuffle(shuffled)
    assert bradley_terry(shuffled, bootstrap=30, seed=5) == first
    assert bradley_terry(bouts, bootstrap=30, seed=6) != first  # another seed, other bounds


def test_bradley_terry_counts_a_draw_as_half_a_win_each_way() -> None:
    # a: 3 wins, 4 draws, 1 loss against b: scores 5 and 3, so strengths 5:3 without a prior.
    shares = [0.8] * 3 + [0.5] * 4 + [0.2]
    bouts = [_bout(f"m{i}", "a", "b", share) for i, share in enumerate(shares)]
    strengths = bradley_terry(bouts, prior=0, bootstrap=0)
    assert strengths["a"].value - strengths["b"].value == pytest.approx(math.log(5 / 3), abs=1e-7)
    assert strengths["a"].score == 5.0 and strengths["b"].score == 3.0
    assert math.isnan(strengths["a"].low)  # no bootstrap, no bounds
    # Only draws: equal strengths.
    draws = bradley_terry([_bout(f"m{i}", "a", "b", 0.5) for i in range(6)], bootstrap=10)
    assert draws["a"].value == pytest.approx(0.0, abs=1e-9) == draws["b"].value


def test_no_deals_are_draws_or_skipped() -> None:
    bouts = [_bout("m1", "a", "b", 0.9), _bout("m2", "a", "b", None), _bout("m3", "b", "a", None)]
    as_draws = bradley_terry(bouts, prior=0, bootstrap=0)
    assert as_draws["a"].games == 3 and as_draws["a"].score == 2.0
    assert as_draws["a"].value - as_draws["b"].value == pytest.approx(math.log(2.0), abs=1e-7)
    skipped = bradley_terry(bouts, no_deal="skip", bootstrap=0)
    assert skipped["a"].games == 1 and skipped["b"].score == 0.0
    assert openskill_ratings(bouts, no_deal="skip")["a"].games == 1
    assert openskill_ratings(bouts)["a"].games == 3


def test_an_unbeaten_player_stays_finite() -> None:
    bouts = [_bout(f"m{i}", "a", "b", 0.9) for i in range(10)]
    bouts += [_bout(f"n{i}", "b", "c", 0.5) for i in range(10)]
    strengths = bradley_terry(bouts, bootstrap=50)
    a = strengths["a"]
    # Without the prior its maximum-likelihood strength is infinite; with it, a clear lead.
    for value in (a.value, a.low, a.high):
        assert math.isfinite(value) and 1.0 < value < 4.0, a
    assert a.value > strengths["b"].value
    assert strengths["b"].value == pytest.approx(strengths["c"].value, abs=1.0)


def test_bradley_terry_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="level"):
        bradley_terry([], level=1.5)
    with pytest.raises(ValueError, match="bootstrap"):
        bradley_terry([], bootstrap=-1)
    assert bradley_terry([]) == {}


# -- OpenSkill and roles ------------------------------------------------------------------------


def test_openskill_puts_a_dominant_player_first_and_repeats_itself() -> None:
    bouts = _synthetic({"bea": 0.0, "cal": 0.0, "dot": 0.0}, 90, seed=4)
    # ace wins every game it plays, in either role.
    bouts += [_bout(f"x{i:03d}", "ace", "bea", 0.9) for i in range(10)]
    bouts += [_bout(f"y{i:03d}", "cal", "ace", 0.1) for i in range(10)]
    ratings = openskill_ratings(bouts)
    best = max(ratings, key=lambda key: ratings[key].ordinal)
    assert best == "ace"
    ace = ratings["ace"]
    assert ace.ordinal == pytest.approx(ace.mu - 3 * ace.sigma)
    assert ace.games == 20
    assert openskill_ratings(bouts) == ratings
    assert openskill_ratings(list(reversed(bouts))) == ratings  # played in match-id order


def test_by_role_separates_a_strong_seller_from_a_weak_buyer() -> None:
    bouts = []
    for i, rival in enumerate(["bea", "cal"] * 10):
        bouts.append(_bout(f"s{i:03d}", "sam", rival, 0.9))  # sam sells well …
        bouts.append(_bout(f"b{i:03d}", rival, "sam", 0.9))  # … and buys badly
        bouts.append(_bout(f"r{i:03d}", "bea", "cal", 0.5))
    bouts.append(_bout("self", "sam", "sam", 0.9))  # self-play: only by role
    skill = openskill_ratings(bouts, by_role=True)
    assert skill["sam", "seller"].ordinal > skill["bea", "seller"].ordinal
    assert skill["sam", "buyer"].ordinal < skill["bea", "buyer"].ordinal
    assert skill["sam", "seller"].games == 21
    strength = bradley_terry(bouts, by_role=True, bootstrap=20)
    assert strength["sam", "seller"].value > 0 > strength["sam", "buyer"].value
    # Overall, the two halves cancel out and the game against itself is left out.
    overall = bradley_terry(bouts, bootstrap=0)
    assert overall["sam"].games == 40
    assert overall["sam"].value == pytest.approx(0.0, abs=0.3)
    assert set(openskill_ratings(bouts)) == {"sam", "bea", "cal"}


# -- the leaderboard, from a real store --------------------------------------------------------


def _roles(seller: str, buyer: str) -> dict[str, RoleRecord]:
    return {
        "seller": RoleRecord(model=f"openai/{seller}", player=seller, brief="sell high"),
        "buyer": RoleRecord(model=f"openai/{buyer}", player=buyer, brief="buy low"),
    }


def _turn(index: int, speaker: str, **fields: Any) -> TurnRecord:
    return TurnRecord(
        index=index, speaker=speaker, text="…", started_at=0.0, ended_at=0.0, **fields
    )


def _spend(
    index: int, speaker: str, tokens: tuple[int, int], cost: float, retries: int = 0
) -> TurnRecord:
    return _turn(
        index,
        speaker,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost_usd=cost,
        retries=retries,
    )


def _match(
    store: Store,
    run_id: str,
    match_id: str,
    seller: str,
    buyer: str,
    price: float | None,
    *,
    rules: dict[str, Any] | None = None,
    turns: list[TurnRecord] | None = None,
    fail: bool = False,
) -> str:
    episode_id = store.start_episode(
        run_id,
        game="balloon",
        rules=rules or BALLOON.model_dump(),
        roles=_roles(seller, buyer),
        seed=0,
        match_id=match_id,
    )
    for turn in turns or []:
        store.add_turn(episode_id, turn)
    if fail:
        store.fail_episode(episode_id, "provider error")
    else:
        scores = {"seller": 0.0, "buyer": 0.0} if price is None else {"seller": 1.0, "buyer": 1.0}
        store.finish_episode(episode_id, _outcome(price), scores)
    return episode_id


@pytest.fixture
def tournament(tmp_path: Path) -> tuple[Store, str]:
    """alice beats bob twice and draws carol (no deal); bob and carol split one; failures."""
    store = Store(tmp_path / "haggler.db")
    run_id = store.start_run("tournament")
    opening = [_turn(0, "seller", scripted=True), _turn(1, "buyer", scripted=True)]
    # m1: alice sells to bob at 17 (share 0.7).
    _match(
        store,
        run_id,
        "m1",
        "alice",
        "bob",
        17.0,
        turns=[
            *opening,
            _spend(2, "seller", (100, 10), 0.01, retries=1),
            _spend(3, "buyer", (200, 20), 0.02),
        ],
    )
    # m2: bob sells a diamond to alice at 800: share 0.2, so alice's is 0.8.
    _match(
        store,
        run_id,
        "m2",
        "bob",
        "alice",
        800.0,
        rules=DIAMOND.model_dump(),
        turns=[*opening, _spend(2, "seller", (50, 5), 0.005)],
    )
    # m3: alice and carol, no deal; a moderator reading is the game's cost, no player's.
    moderated = _spend(2, "buyer", (10, 1), 0.001)
    moderated.moderation = ModerationRecord(model="m", prompt_tokens=999, cost_usd=9.0)
    _match(store, run_id, "m3", "alice", "carol", None, turns=[*opening, moderated])
    # m4: carol and bob fail once, then meet at the midpoint (share 0.5).
    _match(
        store,
        run_id,
        "m4",
        "carol",
        "bob",
        None,
        turns=[_spend(2, "seller", (7, 3), 0.5, retries=2)],
        fail=True,
    )
    _match(store, run_id, "m4", "carol", "bob", 15.0, turns=[_spend(2, "buyer", (1, 1), 0.25)])
    # m5: bob and carol only ever failed.
    _match(store, run_id, "m5", "bob", "carol", None, fail=True)
    # Not a tournament game, and a game of another run: both left out.
    other = store.start_episode(
        run_id, game="balloon", rules={}, roles=_roles("zed", "bob"), seed=0
    )
    store.finish_episode(other, _outcome(19.0), {})
    _match(store, store.start_run("tournament"), "m1", "zed", "bob", 19.0)
    return store, run_id


def test_bouts_from_store_reads_finished_tournament_games(tournament: tuple[Store, str]) -> None:
    store, run_id = tournament
    bouts = bouts_from_store(store, run_id[:-4])  # a prefix names the run
    assert [b.match_id for b in bouts] == ["m1", "m2", "m3", "m4"]
    shares = {b.match_id: b.seller_share for b in bouts}
    assert shares["m1"] == pytest.approx(0.7)
    assert shares["m2"] == pytest.approx(0.2)
    assert shares["m3"] is None
    assert shares["m4"] == pytest.approx(0.5)
    assert (bouts[1].seller, bouts[1].buyer) == ("bob", "alice")


def test_leaderboard_counts_games_shares_spend_and_failures(
    tournament: tuple[Store, str],
) -> None:
    store, run_id = tournament
    rows = leaderboard(store, run_id, bootstrap=20)
    by_player = {row.player: row for row in rows}
    assert set(by_player) == {"alice", "bob", "carol"}
    assert [row.player for row in rows][0] == "alice"
    assert [row.ordinal for row in rows] == sorted((row.ordinal for row in rows), reverse=True)

    alice, bob, carol = by_player["alice"], by_player["bob"], by_player["carol"]
    assert (alice.games, alice.as_seller, alice.as_buyer, alice.deals) == (3, 2, 1, 2)
    assert (bob.games, bob.as_seller, bob.as_buyer, bob.deals) == (3, 1, 2, 3)
    assert (carol.games, carol.as_seller, carol.as_buyer, carol.deals) == (2, 1, 1, 1)
    assert alice.deal_rate.value == pytest.approx(2 / 3) and alice.deal_rate.n == 3
    assert alice.mean_share.value == pytest.approx(0.75) and alice.mean_share.n == 2
    assert bob.mean_share.value == pytest.approx((0.3 + 0.2 + 0.5) / 3)
    assert carol.mean_share.value == pytest.approx(0.5) and carol.mean_share.n == 1

    # Spend of the player's own turns, in every attempt; the moderator's reading is not theirs.
    assert (alice.tokens, alice.cost_usd, alice.retries) == (110, pytest.approx(0.01), 1)
    assert (bob.tokens, bob.cost_usd, bob.retries) == (220 + 55 + 2, pytest.approx(0.275), 0)
    assert (carol.tokens, carol.cost_usd, carol.retries) == (11 + 10, pytest.approx(0.501), 2)
    assert (alice.failures, bob.failures, carol.failures) == (0, 2, 2)

    # alice won both her deals and drew the no-deal: the strongest, overall and in each role.
    assert alice.bt.value > 0 > bob.bt.value
    assert alice.bt.n == 3 and alice.bt_seller.n == 2 and alice.bt_buyer.n == 1
    assert alice.mu > carol.mu > bob.mu


def test_leaderboard_of_a_run_without_tournament_games_is_empty(tmp_path: Path) -> None:
    store = Store(tmp_path / "haggler.db")
    run_id = store.start_run("play")
    assert leaderboard(store, run_id) == []
    console = Console(record=True, width=160)
    console.print(render_leaderboard([]))
    assert "Tournament leaderboard" in console.export_text()


def test_render_shows_every_player(tournament: tuple[Store, str]) -> None:
    store, run_id = tournament
    rows = leaderboard(store, run_id, bootstrap=20)
    console = Console(record=True, width=160)
    console.print(render_leaderboard(rows))
    text = console.export_text()
    lines = {
        player: next(line for line in text.splitlines() if f" {player} " in line)
        for player in ("alice", "bob", "carol")
    }
    assert "3 (2/1)" in lines["alice"] and "2 (0.67)" in lines["alice"]
    assert "0.75" in lines["alice"]
    assert text.index(" alice ") < text.index(" carol ") < text.index(" bob ")


def test_leaderboard_csv_round_trip(tournament: tuple[Store, str], tmp_path: Path) -> None:
    store, run_id = tournament
    rows = leaderboard(store, run_id, bootstrap=20)
    path = tmp_path / "leaderboard.csv"
    write_leaderboard_csv(rows, path)
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:3] == ["player", "games", "as_seller"]
    assert {"bt", "bt_low", "bt_high", "bt_n", "level"} <= set(header)
    # repr, since an empty interval's nan never equals itself.
    assert repr(read_leaderboard_csv(path)) == repr(rows)
