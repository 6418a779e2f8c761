"""Game filters: each one against a plain-Python reading of the same store."""

from __future__ import annotations

from pathlib import Path

import pytest

from haggler.errors import ConfigError
from haggler.store import Store
from haggler.store.query import LONGEST_VALUE, GameFilter
from haggler.store.records import EpisodeRecord
from tests.fakes.viewer_store import ViewerStore, build_viewer_store


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ViewerStore:
    return build_viewer_store(tmp_path_factory.mktemp("query") / "view.db")


@pytest.fixture
def store(built: ViewerStore) -> Store:
    with Store(built.path) as opened:
        yield opened


def _outcome(e: EpisodeRecord) -> str:
    return e.outcome.kind if e.status == "finished" and e.outcome else e.status


def _player(e: EpisodeRecord, role: str) -> str:
    return e.roles[role].player or e.roles[role].model


def _ids(games: list) -> set[str]:
    return {g.id for g in games}


def test_no_filter_keeps_every_game_in_order(store: Store, built: ViewerStore) -> None:
    everything = store.episodes(built.selfplay_run)
    found = store.find_episodes(built.selfplay_run)
    assert [g.id for g in found] == [g.id for g in everything]
    assert store.count_episodes(built.selfplay_run) == len(everything) == 24
    latest = store.find_episodes(built.selfplay_run, limit=1, latest_first=True)
    assert latest[0].id == everything[-1].id


def test_pages_cover_the_run_once(store: Store, built: ViewerStore) -> None:
    pages = [store.find_episodes(built.tournament_run, limit=5, offset=o) for o in (0, 5, 10)]
    ids = [g.id for page in pages for g in page]
    assert len(ids) == len(set(ids)) == 12
    assert ids == [g.id for g in store.episodes(built.tournament_run)]


@pytest.mark.parametrize(
    ("where", "keep"),
    [
        (GameFilter(outcome="deal"), lambda e: _outcome(e) == "deal"),
        (GameFilter(outcome="no_deal"), lambda e: _outcome(e) == "no_deal"),
        (
            GameFilter(player="boulware"),
            lambda e: "boulware" in (_player(e, "seller"), _player(e, "buyer")),
        ),
        (GameFilter(player="boulware", role="buyer"), lambda e: _player(e, "buyer") == "boulware"),
        (
            GameFilter(player="conceder", role="seller", outcome="deal"),
            lambda e: _player(e, "seller") == "conceder" and _outcome(e) == "deal",
        ),
        (GameFilter(role="seller"), lambda e: True),
        (GameFilter(role="auctioneer"), lambda e: False),
    ],
)
def test_tournament_filters_match_a_plain_reading(
    store: Store, built: ViewerStore, where: GameFilter, keep: object
) -> None:
    every = store.run_episodes(built.tournament_run)
    expected = {e.id for e in every if keep(e)}  # type: ignore[operator]
    assert _ids(store.find_episodes(built.tournament_run, where)) == expected
    assert store.count_episodes(built.tournament_run, where) == len(expected)


def test_self_play_filters_by_round_arm_lineage_and_model(store: Store, built: ViewerStore) -> None:
    every = store.run_episodes(built.selfplay_run)
    second = store.find_episodes(built.selfplay_run, GameFilter(round=2, arm="ai"))
    assert _ids(second) == {e.id for e in every if e.round == 2 and e.arm == "ai"}
    assert len(second) == 4
    lineage = every[0].lineage_id
    assert lineage is not None
    by_prefix = store.find_episodes(built.selfplay_run, GameFilter(lineage=lineage[:-3]))
    assert _ids(by_prefix) == {e.id for e in every if e.lineage_id == lineage}
    # Outside tournaments a role's player is its model.
    assert store.count_episodes(built.selfplay_run, GameFilter(player="rule:linear")) == 24


def test_text_search_reads_messages_and_feedback(store: Store, built: ViewerStore) -> None:
    every = store.run_episodes(built.selfplay_run)
    critiques = store.critiques(run_id=built.selfplay_run)
    word = "concede"
    expected = {e.id for e in every if any(word in t.text.lower() for t in e.transcript)} | {
        c.episode_id for c in critiques if word in c.text.lower()
    }
    found = store.find_episodes(built.selfplay_run, GameFilter(text="CONCEDE"))
    assert _ids(found) == expected
    assert {c.episode_id for c in critiques if word in c.text.lower()} <= _ids(found)
    # Said by the buyer only: the buyer's lines, and feedback to the buyer (there is none).
    by_buyer = store.find_episodes(built.selfplay_run, GameFilter(text="balloon", role="buyer"))
    assert _ids(by_buyer) == {
        e.id
        for e in every
        if any("balloon" in t.text.lower() and t.speaker == "buyer" for t in e.transcript)
    }


def test_search_text_is_literal_not_a_pattern(store: Store, built: ViewerStore) -> None:
    # % and _ are LIKE wildcards; here they must match themselves, and they appear nowhere.
    assert store.count_episodes(built.selfplay_run, GameFilter(text="%")) == 0
    assert store.count_episodes(built.selfplay_run, GameFilter(text="_")) == 0
    assert store.count_episodes(built.hostile_run, GameFilter(text="<script>")) == 2


def test_failed_and_running_are_outcomes_too(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        run = store.start_run("play")
        running = store.start_episode(run, game="balloon", rules={}, roles={}, seed=0)
        failed = store.start_episode(run, game="balloon", rules={}, roles={}, seed=1)
        store.fail_episode(failed, "provider down")
        assert _ids(store.find_episodes(run, GameFilter(outcome="running"))) == {running}
        assert _ids(store.find_episodes(run, GameFilter(outcome="failed"))) == {failed}
        assert store.outcome_counts(run) == {"running": 1, "failed": 1}


def test_loose_values_become_a_filter() -> None:
    where = GameFilter.of(outcome="deal", round=" 2 ", text="", player=None, page="3")
    assert where == GameFilter(outcome="deal", round=2)
    assert where.describe() == "outcome deal, round 2"
    assert GameFilter.of().is_empty()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"outcome": "won"}, "outcome 'won' is not one of deal, no_deal"),
        ({"round": "two"}, "round 'two' is not a whole number"),
        ({"round": "0"}, "rounds count from 1"),
        ({"role": "seller') OR 1=1 --"}, "is not a role name"),
    ],
)
def test_bad_filter_values_say_what_to_give(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        GameFilter.of(**values)


def test_lineage_rounds_and_run_facets(store: Store, built: ViewerStore) -> None:
    first, second = built.hostile_games
    episode = store.episode(first)
    assert episode.lineage_id is not None
    assert store.lineage_rounds(episode.lineage_id) == {1: first, 2: second}
    facets = store.run_facets(built.tournament_run)
    assert facets.roles == ["seller", "buyer"]
    assert facets.players == sorted(["boulware", "linear", "conceder", "tit-for-tat"])
    assert facets.rounds == [] and facets.arms == []
    selfplay = store.run_facets(built.selfplay_run)
    assert selfplay.rounds == [1, 2, 3] and selfplay.arms == ["ai", "none"]


@pytest.mark.parametrize("worst", ["%", "\\", "_", "\U0001f600"])
def test_the_longest_filter_values_are_still_within_sqlite(
    store: Store, built: ViewerStore, worst: str
) -> None:
    # Escaped LIKE characters take two bytes, this one four: all still below SQLite's limit
    # on a LIKE pattern (beyond it: "LIKE or GLOB pattern too complex").
    longest = worst * LONGEST_VALUE
    for where in (GameFilter(text=longest), GameFilter(lineage=longest, text=longest)):
        assert store.count_episodes(built.selfplay_run, where) == 0
        assert store.find_episodes(built.selfplay_run, where) == []
    with pytest.raises(ConfigError, match="^search text of 1,001 characters is too long; give"):
        GameFilter(text=longest + "a")
    with pytest.raises(ConfigError, match="^lineage of 1,001 characters is too long; give"):
        GameFilter.of(lineage=longest + "a")
