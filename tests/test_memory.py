"""Agent memory: provenance, exact forgetting, persistence, and the context budget policy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import haggler.memory
from haggler.memory import (
    TRUNCATION_MARKER,
    AgentMemory,
    Environment,
    MemoryItem,
    UnknownMemoryItemError,
    build_context,
    estimate_tokens,
    render_items,
)
from haggler.store.sqlite import Store

BALLOON = Environment("bargaining", item="balloon", counterpart="buyer-gpt")
DIAMOND = Environment("bargaining", item="diamond", counterpart="buyer-gpt")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "h.db") as opened:
        yield opened


def play_rounds(
    memory: AgentMemory,
    rounds: int,
    *,
    episode_chars: int = 400,
    feedback_chars: int = 200,
    summaries: bool = False,
) -> list[tuple[MemoryItem, MemoryItem]]:
    """`rounds` rounds of (episode, feedback about it); episode k is k times longer, as in the
    paper where messages grow round after round."""
    played = []
    for k in range(1, rounds + 1):
        meta = {"summary": f"round {k}: deal at ${10 + k}"} if summaries else None
        episode = memory.remember_episode(
            f"[game {k}] " + "e" * (episode_chars * k), BALLOON, round=k, meta=meta
        )
        feedback = memory.remember_feedback(
            f"[advice {k}] " + "f" * feedback_chars, BALLOON, about=[episode], round=k
        )
        played.append((episode, feedback))
    return played


def tokens_of(*items: MemoryItem) -> int:
    """What `items` alone cost in full, rendered in the order they were made."""
    return estimate_tokens(render_items(sorted(items, key=lambda item: item.created_at)))


def ids(items: tuple[MemoryItem, ...] | list[MemoryItem]) -> list[str]:
    return [item.id for item in items]


# -- provenance ------------------------------------------------------------------------------


def test_feedback_links_to_the_episodes_it_criticised_and_notes_to_their_sources() -> None:
    memory = AgentMemory("seller")
    first = memory.remember_episode("game one", BALLOON, episode_id="ep-1", round=1)
    second = memory.remember_episode("game two", BALLOON, episode_id="ep-2", round=2)

    # Given newest first, by item and by id, and repeated: kept once each, oldest first.
    feedback = memory.remember_feedback(
        "open higher", BALLOON, about=[second, first.id, second], round=2
    )
    note = memory.remember_note("buyers fold at $15", BALLOON, derived_from=[feedback])

    assert feedback.kind == "feedback" and feedback.sources == (first.id, second.id)
    assert note.kind == "note" and note.sources == (feedback.id,)
    assert first.sources == () and first.episode_id == "ep-1" and first.round == 1
    assert all(item.id.startswith("mem-") for item in (first, second, feedback, note))
    assert len({first.id, second.id, feedback.id, note.id}) == 4
    assert first.tokens == estimate_tokens("game one")
    assert len(memory) == 4 and memory.get(note.id) is note and note.id in memory


def test_feedback_must_name_known_episodes() -> None:
    memory = AgentMemory("seller")
    episode = memory.remember_episode("game", BALLOON, round=1)
    note = memory.remember_note("a fact", BALLOON)

    with pytest.raises(ValueError, match="mem-nope"):
        memory.remember_feedback("advice", BALLOON, about=[episode, "mem-nope"])
    with pytest.raises(ValueError, match="episodes it criticised"):
        memory.remember_feedback("advice", BALLOON, about=[])
    with pytest.raises(ValueError, match="is a note item"):
        memory.remember_feedback("advice", BALLOON, about=[note])
    with pytest.raises(ValueError, match="mem-gone"):
        memory.remember_note("lesson", BALLOON, derived_from=["mem-gone"])
    # An item of another agent's memory is not this memory's to derive from.
    stranger = AgentMemory("buyer").remember_episode("their game", BALLOON)
    with pytest.raises(ValueError, match=stranger.id):
        memory.remember_feedback("advice", BALLOON, about=[stranger])
    assert len(memory) == 2  # nothing half-made was kept


def test_bad_inputs_are_refused_with_the_offending_value() -> None:
    memory = AgentMemory("seller")
    with pytest.raises(ValueError, match="round counts from 1"):
        memory.remember_episode("game", BALLOON, round=0)
    with pytest.raises(ValueError, match="content"):
        memory.remember_episode("   ", BALLOON)
    with pytest.raises(ValueError, match="JSON"):
        memory.remember_episode("game", BALLOON, meta={"when": object()})
    with pytest.raises(ValueError, match="summary"):
        memory.remember_episode("game", BALLOON, meta={"summary": 3})
    with pytest.raises(ValueError, match="Environment.game"):
        Environment("")
    with pytest.raises(ValueError, match="owner"):
        AgentMemory("")
    with pytest.raises(ValueError, match="kind must be"):
        memory.items(kind="episodes")  # type: ignore[arg-type]


def test_descendants_are_transitive() -> None:
    memory = AgentMemory("seller")
    episode = memory.remember_episode("game one", BALLOON, round=1)
    other = memory.remember_episode("game two", BALLOON, round=2)
    feedback = memory.remember_feedback("concede less", BALLOON, about=[episode], round=1)
    note = memory.remember_note("small steps work", BALLOON, derived_from=[feedback])
    lesson = memory.remember_note("from the note", BALLOON, derived_from=[note, other])

    assert ids(memory.descendants(episode.id)) == [feedback.id, note.id, lesson.id]
    assert ids(memory.descendants(feedback.id)) == [note.id, lesson.id]
    assert ids(memory.descendants(other.id)) == [lesson.id]
    assert memory.descendants(lesson.id) == []
    with pytest.raises(KeyError):
        memory.descendants("mem-unknown")


# -- forgetting ------------------------------------------------------------------------------


def test_forget_removes_descendants_in_memory_and_in_the_store(store: Store) -> None:
    memory = AgentMemory("seller", store)
    episode = memory.remember_episode("game one", BALLOON, round=1)
    kept = memory.remember_episode("game two", BALLOON, round=2)
    feedback = memory.remember_feedback("open higher", BALLOON, about=[episode], round=1)
    note = memory.remember_note("they fold at $15", BALLOON, derived_from=[feedback])
    # Derived from a kept item too: still derived from the forgotten one, so it goes.
    mixed = memory.remember_note("both games", BALLOON, derived_from=[kept, note])
    later = memory.remember_feedback("good", BALLOON, about=[kept], round=2)

    removed = memory.forget(episode.id)

    assert removed == [episode.id, feedback.id, note.id, mixed.id]
    assert ids(memory.items()) == [kept.id, later.id]
    assert memory.descendants(kept.id) == [later]
    assert [r.id for r in store.memory("seller")] == [kept.id, later.id]
    reloaded = AgentMemory.load(store, "seller")
    assert ids(reloaded.items()) == [kept.id, later.id]
    assert reloaded.get(later.id).sources == (kept.id,)
    assert reloaded.descendants(kept.id) == [later]


def test_forgetting_an_unknown_or_forgotten_item_is_a_clear_key_error(store: Store) -> None:
    memory = AgentMemory("seller", store)
    episode = memory.remember_episode("game", BALLOON)
    memory.forget(episode.id)

    with pytest.raises(KeyError) as raised:
        memory.forget(episode.id)
    assert isinstance(raised.value, UnknownMemoryItemError)
    assert str(raised.value) == (
        f"'seller''s memory holds no item {episode.id!r} (it holds 0; was it forgotten already?)"
    )
    with pytest.raises(KeyError, match="mem-nothing"):
        memory.get("mem-nothing")
    assert store.memory("seller") == []


# -- persistence -----------------------------------------------------------------------------


def test_memory_round_trips_through_a_real_store(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as store:
        memory = AgentMemory("seller", store)
        second_game = memory.remember_episode(
            "game", DIAMOND, episode_id="ep-9", round=1, meta={"summary": "deal at $900", "n": 3}
        )
        first_game = memory.remember_episode("game two", BALLOON, round=2)
        feedback = memory.remember_feedback(
            "hold firm", BALLOON, about=[first_game, second_game], round=2, meta={"k": [1, 2]}
        )
        memory.remember_note("free-standing", Environment("auction"))
        AgentMemory("buyer", store).remember_episode("the buyer's own", BALLOON)
        made = memory.items()

    with Store(path) as store:  # a later session
        reloaded = AgentMemory.load(store, "seller")
        assert reloaded.items() == made  # every field, sources in the order they were given
        assert reloaded.get(feedback.id).meta == {"k": [1, 2]}
        assert reloaded.get(second_game.id).env == DIAMOND
        assert sorted(store.memory_owners()) == ["buyer", "seller"]
        # Its indexes read as the original's did, within an environment too.
        for env in (None, BALLOON, DIAMOND, Environment("auction")):
            assert list(reloaded.newest("note", env)) == list(memory.newest("note", env))
            for budget in (5, 12, 1000):
                assert build_context(reloaded, budget_tokens=budget, env=env).text == (
                    build_context(memory, budget_tokens=budget, env=env).text
                )
        # Write-through goes on after a reload, linking to items of the earlier session.
        note = reloaded.remember_note("later", BALLOON, derived_from=[feedback])
        assert ids(AgentMemory.load(store, "seller").items()) == [*ids(made), note.id]
        assert [r.sources for r in store.memory("seller")][-1] == [feedback.id]


def test_reload_keeps_the_order_of_items_made_in_a_tight_loop(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A coarse clock (Windows ticks every ~16 ms) that also steps back, as after an NTP fix.
    ticks = iter([1_700_000_000.0] * 150 + [1_699_999_000.0] * 150)
    monkeypatch.setattr(time, "time", lambda: next(ticks))
    memory = AgentMemory("seller", store)
    made = [memory.remember_episode(f"game {i}", BALLOON, round=i + 1) for i in range(300)]
    monkeypatch.undo()

    stamps = [item.created_at for item in made]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    assert ids(AgentMemory.load(store, "seller").items()) == ids(made)
    assert [r.created_at for r in store.memory("seller")] == stamps


def test_a_new_memory_refuses_to_start_beside_a_stored_one(store: Store) -> None:
    AgentMemory("seller", store).remember_episode("game", BALLOON)
    with pytest.raises(ValueError, match="AgentMemory.load"):
        AgentMemory("seller", store)
    assert len(AgentMemory.load(store, "nobody")) == 0


def test_meta_reads_back_as_stored_and_cannot_be_changed() -> None:
    memory = AgentMemory("seller")
    item = memory.remember_episode("game", BALLOON, meta={"prices": (12, 15)})
    assert item.meta == {"prices": [12, 15]}  # as JSON gives it back after a reload
    with pytest.raises(TypeError):
        item.meta["prices"] = []  # type: ignore[index]


# -- filtering -------------------------------------------------------------------------------


def test_items_filter_by_kind_and_by_the_environment_fields_that_are_set() -> None:
    memory = AgentMemory("seller")
    balloon = memory.remember_episode("balloon game", BALLOON)
    diamond = memory.remember_episode("diamond game", DIAMOND)
    rival = memory.remember_episode("other rival", Environment("bargaining", "balloon", "claude"))
    auction = memory.remember_episode("auction", Environment("auction", "balloon", "buyer-gpt"))
    advice = memory.remember_feedback("advice", BALLOON, about=[balloon])

    assert ids(memory.items()) == [balloon.id, diamond.id, rival.id, auction.id, advice.id]
    assert ids(memory.items(env=Environment("bargaining"))) == [
        balloon.id,
        diamond.id,
        rival.id,
        advice.id,
    ]
    assert ids(memory.items(env=Environment("bargaining", item="balloon"))) == [
        balloon.id,
        rival.id,
        advice.id,
    ]
    assert ids(memory.items(env=Environment("bargaining", counterpart="buyer-gpt"))) == [
        balloon.id,
        diamond.id,
        advice.id,
    ]
    assert ids(memory.items(env=BALLOON)) == [balloon.id, advice.id]
    assert ids(memory.items(kind="feedback", env=BALLOON)) == [advice.id]
    assert memory.items(kind="note") == []


# -- the context budget ----------------------------------------------------------------------


def test_estimate_tokens_is_four_characters_a_token_rounded_up() -> None:
    assert [estimate_tokens("x" * n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]


def test_everything_fits_in_chronological_order_with_round_labels() -> None:
    memory = AgentMemory("seller")
    played = play_rounds(memory, 3)
    note = memory.remember_note("buyers fold near $15", BALLOON)

    recalled = build_context(memory, budget_tokens=100_000)

    assert recalled.items == tuple(memory.items())
    assert recalled.dropped == () and recalled.summarised == () and recalled.truncated == ()
    assert recalled.advice == tuple(feedback.content for _, feedback in played)
    assert recalled.tokens == estimate_tokens(recalled.text)
    labels = [
        "Round 1, your game:\n[game 1]",
        "Your coach's advice after round 1:\n[advice 1]",
        "Round 2, your game:\n[game 2]",
        "Your coach's advice after round 2:\n[advice 2]",
        "Round 3, your game:\n[game 3]",
        "Your coach's advice after round 3:\n[advice 3]",
        f"Note: {note.content}",
    ]
    where = [recalled.text.index(label) for label in labels]
    assert where == sorted(where) and where[0] == 0
    assert recalled.text.endswith(note.content)


def test_a_tight_budget_keeps_the_newest_feedback_and_the_newest_episode() -> None:
    memory = AgentMemory("seller")
    (e1, f1), (e2, f2), (e3, f3) = play_rounds(memory, 3)
    # Room for the newest two and a few tokens more, but for no other item.
    budget = tokens_of(e3, f3) + 20

    recalled = build_context(memory, budget_tokens=budget)

    assert recalled.items == (e3, f3)
    assert recalled.dropped == (e1.id, f1.id, e2.id, f2.id)
    assert recalled.advice == (f3.content,)
    assert recalled.tokens <= budget


def test_episodes_that_do_not_fit_are_shown_by_their_summary() -> None:
    memory = AgentMemory("seller")
    (e1, f1), (e2, f2), (e3, f3) = play_rounds(memory, 3, summaries=True)
    budget = tokens_of(e3, f3, f1, f2) + 60  # room for two one-line summaries, not a game

    recalled = build_context(memory, budget_tokens=budget)

    assert recalled.items == (e1, f1, e2, f2, e3, f3)
    assert recalled.summarised == (e1.id, e2.id)
    assert recalled.dropped == ()
    assert "Round 1, your game (summary): round 1: deal at $11" in recalled.text
    assert "Round 2, your game (summary): round 2: deal at $12" in recalled.text
    assert e1.content not in recalled.text and e2.content not in recalled.text
    assert e3.content in recalled.text
    assert recalled.tokens <= budget
    summary_at = recalled.text.index("Round 2, your game (summary)")
    assert recalled.text.index("after round 1:") < summary_at < recalled.text.index(e3.content)


def test_older_feedback_is_kept_before_older_episodes_and_notes_between() -> None:
    memory = AgentMemory("seller")
    # Older items all of one size, so only the policy decides which one fits.
    e1 = memory.remember_episode("e" * 300, BALLOON, round=1)
    f1 = memory.remember_feedback("f" * 300, BALLOON, about=[e1], round=1)
    note = memory.remember_note("n" * 300, BALLOON, derived_from=[f1])
    e2 = memory.remember_episode("g" * 300, BALLOON, round=2)
    f2 = memory.remember_feedback("h" * 300, BALLOON, about=[e2], round=2)
    one_more = tokens_of(e2, f2, f1) - tokens_of(e2, f2)

    recalled = build_context(memory, budget_tokens=tokens_of(e2, f2) + one_more)
    assert recalled.items == (f1, e2, f2)
    assert recalled.dropped == (e1.id, note.id)

    recalled = build_context(memory, budget_tokens=tokens_of(e2, f2) + 2 * one_more)
    assert recalled.items == (f1, note, e2, f2)
    assert recalled.dropped == (e1.id,)


def test_the_newest_feedback_alone_too_big_is_cut_to_the_budget_with_a_marker() -> None:
    memory = AgentMemory("seller")
    (e1, f1), (e2, f2) = play_rounds(memory, 2, feedback_chars=4000)

    recalled = build_context(memory, budget_tokens=50)

    assert recalled.items == (f2,) and recalled.truncated == (f2.id,)
    assert recalled.dropped == (e1.id, f1.id, e2.id)
    assert recalled.text.startswith("Your coach's advice after round 2:\n[advice 2] fff")
    assert recalled.text.endswith(TRUNCATION_MARKER)
    assert recalled.advice == (recalled.text.split("\n", 1)[1],)
    assert recalled.tokens <= 50 and recalled.tokens >= 49  # cut to the budget, not below it

    for tiny in (1, 2, 5):  # even a budget too small for the label shows the advice's start
        recalled = build_context(memory, budget_tokens=tiny)
        assert f2.content.startswith(recalled.text.removesuffix(TRUNCATION_MARKER))
        assert 0 < recalled.tokens <= tiny and recalled.items == (f2,)


def test_the_budget_must_be_positive() -> None:
    memory = AgentMemory("seller")
    for bad in (0, -5, True):
        with pytest.raises(ValueError, match="budget_tokens"):
            build_context(memory, budget_tokens=bad)
    empty = build_context(memory, budget_tokens=10)
    assert (empty.items, empty.text, empty.tokens, empty.dropped) == ((), "", 0, ())


def test_context_recalls_only_the_environment_asked_for() -> None:
    memory = AgentMemory("seller")
    balloon = memory.remember_episode("balloon game", BALLOON, round=1)
    diamond = memory.remember_episode("diamond game", DIAMOND, round=1)
    memory.remember_feedback("diamond advice", DIAMOND, about=[diamond], round=1)

    recalled = build_context(memory, budget_tokens=1000, env=BALLOON)

    assert recalled.items == (balloon,) and recalled.dropped == () and recalled.advice == ()
    assert "diamond" not in recalled.text


def test_a_context_within_an_environment_steps_through_that_environment_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Costs what it touches": 2,000 items of another environment are not stepped through.
    from haggler.memory.recency import RecencyIndex

    steps = 0
    search = RecencyIndex._last_fitting

    def counted(self: RecencyIndex, before: int, at_most: float) -> int:
        nonlocal steps
        steps += 1
        return search(self, before, at_most)

    monkeypatch.setattr(RecencyIndex, "_last_fitting", counted)
    memory = AgentMemory("seller")
    wanted = [memory.remember_episode(f"balloon game {i}", BALLOON, round=i) for i in (1, 2, 3)]
    for i in range(1000):
        game = memory.remember_episode(f"diamond game {i}", DIAMOND, round=i + 4)
        memory.remember_feedback(f"diamond advice {i}", DIAMOND, about=[game])
    steps = 0
    recalled = build_context(memory, budget_tokens=1000, env=BALLOON)
    assert recalled.items == tuple(wanted)
    assert steps <= 12
    # Narrowed by a counterpart, or an item, the same; and the newest item within one.
    other = Environment("bargaining", item="diamond", counterpart="buyer-claude")
    met = memory.remember_episode("a game with claude", other, round=9)
    steps = 0
    assert build_context(memory, budget_tokens=1000, env=other).items == (met,)
    assert next(memory.newest("episode", BALLOON)) == wanted[-1]
    assert steps <= 12


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(1, 50)),
            st.tuples(st.just("extend"), st.lists(st.integers(1, 50), max_size=9)),
            st.tuples(st.just("remove"), st.integers(0, 40)),
        ),
        max_size=25,
    ),
    at_most=st.integers(1, 50),
)
def test_the_recency_index_built_at_once_or_one_by_one_reads_the_same(
    steps: list[tuple[str, object]], at_most: int
) -> None:
    from haggler.memory.recency import RecencyIndex

    index, model, made = RecencyIndex(), {}, 0  # model: key -> size, in order added
    for action, value in steps:
        if action == "add":
            index.add(f"k{made}", value)  # type: ignore[arg-type]
            model[f"k{made}"] = value
            made += 1
        elif action == "extend":
            entries = [(f"k{made + i}", size) for i, size in enumerate(value)]  # type: ignore[arg-type]
            index.extend(entries)
            model.update(entries)
            made += len(entries)
        elif model:
            key = list(model)[value % len(model)]  # type: ignore[operator]
            index.remove(key)
            del model[key]
    expected = [k for k, size in reversed(model.items()) if size <= at_most]
    assert list(index.newest_first(at_most=at_most)) == expected
    assert len(index) == len(model)


@settings(max_examples=80, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(
            st.integers(1, 3000),  # episode length in characters
            st.one_of(st.none(), st.integers(1, 1500)),  # feedback length, if any
            st.booleans(),  # whether the episode has a summary
        ),
        max_size=6,
    ),
    notes=st.lists(st.integers(1, 500), max_size=3),
    budget=st.integers(1, 3000),
)
def test_recollection_never_exceeds_the_budget_and_keeps_the_newest_advice(
    rounds: list[tuple[int, int | None, bool]], notes: list[int], budget: int
) -> None:
    memory = AgentMemory("seller")
    for k, (episode_chars, feedback_chars, summary) in enumerate(rounds, start=1):
        meta = {"summary": f"round {k} in brief"} if summary else None
        episode = memory.remember_episode("e" * episode_chars, BALLOON, round=k, meta=meta)
        if feedback_chars is not None:
            memory.remember_feedback("f" * feedback_chars, BALLOON, about=[episode], round=k)
    for chars in notes:
        memory.remember_note("n" * chars, BALLOON)

    recalled = build_context(memory, budget_tokens=budget)

    assert recalled.tokens <= budget
    assert recalled.tokens == estimate_tokens(recalled.text)
    feedback = memory.items(kind="feedback")
    if feedback:
        assert feedback[-1] in recalled.items
        assert recalled.advice and recalled.advice[-1] in recalled.text
    assert sorted([*ids(recalled.items), *recalled.dropped]) == sorted(ids(memory.items()))
    assert set(recalled.summarised) <= set(ids(recalled.items))
    assert ids(recalled.items) == [i.id for i in memory.items() if i in recalled.items]


# -- the package -----------------------------------------------------------------------------


def test_the_public_names_are_pinned_and_the_import_stays_light() -> None:
    assert sorted(haggler.memory.__all__) == sorted(
        [
            "KINDS",
            "TRUNCATION_MARKER",
            "AgentMemory",
            "CharEstimate",
            "Environment",
            "MemoryItem",
            "MemoryKind",
            "Recollection",
            "TokenCounter",
            "UnknownMemoryItemError",
            "build_context",
            "estimate_tokens",
            "render_items",
        ]
    )
    heavy = ["langgraph", "litellm", "torch", "haggler.games", "haggler.agents"]
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, haggler.memory; print([m for m in {heavy!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"
