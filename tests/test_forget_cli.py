"""`haggler forget` and `haggler memory`: a self-play run's agents forget on request from the
command line, with a dry run first; bad requests get one line and change nothing."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.memory import AgentMemory
from haggler.store import Store

runner = CliRunner()


def haggler(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, str]:
    """A store with one offline self-play run: a named agent, 2 lineages x 3 rounds."""
    spec = tmp_path / "sp.yaml"
    spec.write_text(
        "roles: {seller: 'rule:linear', buyer: 'rule:conceder'}\n"
        "rounds: 3\nlineages: 2\nfeedback: ai\nagent: shop\nseed: 5\n"
    )
    db = tmp_path / "h.db"
    result = haggler("selfplay", str(spec), "--db", str(db))
    assert result.exit_code == 0, result.output
    return db, "shop/ai/0/seller"


def digest(db: Path) -> str:
    with Store(db) as store:
        return hashlib.sha256(
            repr(
                [[(i.id, i.content) for i in store.memory(o)] for o in store.memory_owners()]
            ).encode()
        ).hexdigest()


def test_memory_lists_the_agents_and_shows_one_as_a_tree_of_provenance(
    run: tuple[Path, str],
) -> None:
    db, agent = run
    listing = haggler("memory", "--db", str(db))
    assert (
        listing.exit_code == 0 and agent in listing.output and "shop/ai/1/seller" in listing.output
    )
    tree = haggler("memory", agent, "--db", str(db))
    assert tree.exit_code == 0, tree.output
    assert "6 items" in tree.output
    assert "feedback (about)" in tree.output and "episode (context)" in tree.output


def test_a_dry_run_shows_the_plan_and_changes_nothing(run: tuple[Path, str]) -> None:
    db, agent = run
    before = digest(db)
    with Store(db) as store:
        game = AgentMemory.load(store, agent).items(kind="episode")[1].episode_id
    result = haggler("forget", agent, f"forget game {game}", "--dry-run", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert digest(db) == before


def test_forget_carries_out_a_plain_value_at_state_level(run: tuple[Path, str]) -> None:
    db, agent = run
    with Store(db) as store:
        memory = AgentMemory.load(store, agent)
        count = len(memory)
        price = memory.items(kind="episode")[0].meta["price"]
    result = haggler(
        "forget",
        agent,
        f"${price:g}",
        "--level",
        "state",
        "--mode",
        "redact",
        "--yes",
        "--db",
        str(db),
    )
    assert result.exit_code == 0, result.output
    assert "redacted" in result.output
    with Store(db) as store:
        memory = AgentMemory.load(store, agent)
        assert len(memory) == count
        # The price itself, not a longer one that starts with its digits ("$16" in "$16.50").
        spoken = re.compile(re.escape(f"${price:g}") + r"(?!\.?\d)")
        assert not any(spoken.search(item.content) for item in memory)
        (audit,) = store.forgettings()
        assert audit.mode == "redact" and audit.level == "state" and audit.erased


def test_without_a_terminal_forget_asks_for_yes(run: tuple[Path, str]) -> None:
    db, agent = run
    before = digest(db)
    result = haggler("forget", agent, "forget round 1", "--db", str(db))
    assert result.exit_code == 2
    assert "--yes" in result.output
    assert digest(db) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "forget round 1"], "no agent 'nobody'"),
        (["shop/ai/0/seller", "never said this", "--level", "state"], "selects nothing"),
        (["shop/ai/0/seller", "forget round 1", "--mode", "erase"], "--mode erase"),
        (["shop/ai/0/seller", "forget round 1", "--level", "world"], "--level world"),
    ],
)
def test_bad_requests_are_one_line_and_change_nothing(
    run: tuple[Path, str], args: list[str], message: str
) -> None:
    db, _ = run
    before = digest(db)
    result = haggler("forget", *args, "--yes", "--db", str(db))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert digest(db) == before


def test_rederive_re_makes_the_feedback_with_the_runs_critic(run: tuple[Path, str]) -> None:
    db, agent = run
    with Store(db) as store:
        memory = AgentMemory.load(store, agent)
        game = memory.items(kind="episode")[0].episode_id
    result = haggler(
        "forget", agent, f"forget game {game}", "--mode", "rederive", "--yes", "--db", str(db)
    )
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        memory = AgentMemory.load(store, agent)
        assert [i.round for i in memory.items(kind="episode")] == [2, 3]
        assert all(i.meta.get("rederived") for i in memory.items(kind="feedback"))


def test_the_python_api_forgets_as_the_command_does(run: tuple[Path, str]) -> None:
    import asyncio

    import haggler
    from haggler.memory.forgetting import TrajectoryRequest

    db, agent = run
    with Store(db) as store:
        memory = AgentMemory.load(store, agent)
        first, second = (i.episode_id for i in memory.items(kind="episode")[:2])
        looked = asyncio.run(
            haggler.forget(agent, f"forget game {first}", store=store, dry_run=True)
        )
        assert looked.result is None and "delete" in looked.description
        assert len(AgentMemory.load(store, agent)) == 6

        done = asyncio.run(haggler.forget(agent, TrajectoryRequest(episode=second), store=store))
        assert done.result is not None and done.result.counts["deleted"] == 4
        assert [i.round for i in AgentMemory.load(store, agent).items(kind="episode")] == [1]
        with pytest.raises(haggler.HagglerError, match="selects nothing"):
            asyncio.run(
                haggler.forget(
                    agent,
                    {"level": "state", "fact": {"kind": "phrase", "text": "never said"}},
                    store=store,
                )
            )


def test_words_that_ask_for_a_mode_or_a_purge_are_carried_out_as_asked(
    run: tuple[Path, str],
) -> None:
    # No --mode: the words choose it (the grammar's "redact" verb), and their "purge the
    # record" purges it, as the dry run said it would.
    db, agent = run
    with Store(db) as store:
        price = AgentMemory.load(store, agent).items(kind="episode")[0].meta["price"]
    result = haggler(
        "forget", agent, f"redact ${price:g} and purge the record", "--level", "state", "--yes",
        "--db", str(db),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "forgotten (redact)" in result.output
    with Store(db) as store:
        (audit,) = store.forgettings()
        assert audit.mode == "redact" and audit.purge_record


def test_a_mode_given_and_a_mode_in_the_words_that_differ_are_refused(
    run: tuple[Path, str],
) -> None:
    db, agent = run
    before = digest(db)
    result = haggler("forget", agent, "redact round 1", "--mode", "exact", "--yes", "--db", str(db))
    assert result.exit_code == 2 and "redact" in result.output
    assert digest(db) == before


def test_the_python_api_applies_mode_and_purge_to_a_typed_request_too(
    run: tuple[Path, str],
) -> None:
    import asyncio

    import haggler

    db, agent = run
    with Store(db) as store:
        game = AgentMemory.load(store, agent).items(kind="episode")[0].episode_id
        request = {"level": "trajectory", "episode": game}
        done = asyncio.run(
            haggler.forget(agent, request, store=store, mode="redact", purge_record=True)
        )
        assert done.plan.request.mode == "redact" and done.plan.request.purge_record
        (audit,) = store.forgettings()
        assert audit.mode == "redact" and audit.purge_record
        # A typed request's own mode stands when none is given.
        kept = asyncio.run(
            haggler.forget(
                agent, {**request, "episode": AgentMemory.load(store, agent).items()[-1].episode_id,
                        "mode": "redact"}, store=store, dry_run=True,
            )
        )  # fmt: skip
        assert kept.plan.request.mode == "redact"
        for bad in ({"mode": "erase"}, {"level": "state"}):
            with pytest.raises(haggler.HagglerError):
                asyncio.run(haggler.forget(agent, request, store=store, dry_run=True, **bad))


def test_memory_shows_names_from_a_spec_or_a_model_inert(tmp_path: Path) -> None:
    from haggler.memory import Environment

    db = tmp_path / "h.db"
    with Store(db) as store:
        memory = AgentMemory("shop/ai/0/seller", store)
        env = Environment("balloon", counterpart="rule:\u202eevil\x1b[31m")
        memory.remember_episode("seller (you): hi\nResult: deal at $9.", env)
    result = haggler("memory", "shop/ai/0/seller", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "\u202e" not in result.output and "\x1b" not in result.output
    assert "\\u202e" in result.output
