"""Games with a role on a local transformers model, loaded from disk with the hub off: weights
loaded once per process and shared across games, concurrent or one after another, released
when idle; and the spec's `local:` options (batch size, gathering window, device, dtype,
keep-alive) reaching the backend."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from haggler import Store, play, play_sync, selfplay
from haggler.errors import ConfigError, SpecError
from haggler.run.spec import check_play_spec, load_play_spec

torch = pytest.importorskip("torch")

from haggler.llm import local_weights  # noqa: E402
from haggler.llm.base import Message  # noqa: E402
from haggler.llm.local_backend import LocalBackend, LocalSettings  # noqa: E402
from haggler.llm.local_weights import LocalModelState, local_models, release_idle_models  # noqa: E402

HELLO = [Message("user", "Hello")]


@pytest.fixture
def model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model of this test's own: its loads are this test's alone."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def state(path: Path) -> LocalModelState:
    """What the process holds of the model at `path` (it must have been loaded)."""
    (found,) = [m for m in local_models() if m.path == str(path.resolve())]
    return found


def local_settings(spec: dict[str, Any]) -> LocalSettings:
    """The backend settings the spec's buyer asks for, as the cast passes them on."""
    local = check_play_spec(spec).roles["buyer"].local
    assert local is not None
    return local.settings()


def buyer_spec(path: Path, *, seed: int = 0, **local: Any) -> dict[str, Any]:
    buyer: dict[str, Any] = {"model": f"local:{path}", "params": {"max_tokens": 6}}
    if local:
        buyer["local"] = local
    return {"roles": {"buyer": buyer}, "rules": {"max_exchanges": 2}, "seed": seed}


async def test_a_local_model_plays_a_stored_game(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec = {
        "roles": {"buyer": {"model": f"local:{tiny_model_dir}", "params": {"max_tokens": 12}}},
        "rules": {"max_exchanges": 3},
    }
    with Store(tmp_path / "h.db") as store:
        played = await play(spec, store=store)
        episode = store.episode(played.episode_id)
    # A random tiny model rarely writes a readable action; whatever it writes is an outcome.
    assert episode.status == "finished"
    assert played.result.outcome.kind in ("deal", "no_deal", "invalid")
    buyer_turns = [t for t in episode.transcript if t.speaker == "buyer" and not t.scripted]
    assert buyer_turns
    assert all(t.model == f"local:{tiny_model_dir}" for t in buyer_turns)
    assert all(0 < t.completion_tokens <= 12 and t.prompt_tokens > 0 for t in buyer_turns)
    assert all(t.cost_usd == 0 for t in buyer_turns)


# --- one copy of the weights per process ---------------------------------------------------------


async def test_concurrent_games_share_one_copy_of_a_local_model(model_dir: Path) -> None:
    played = await asyncio.gather(*(play(buyer_spec(model_dir, seed=i)) for i in range(4)))
    assert all(p.result.outcome.kind in ("deal", "no_deal", "invalid") for p in played)
    assert state(model_dir).loads == 1, "the weights were loaded more than once for 4 games"


async def test_games_played_one_after_another_load_the_weights_once(
    model_dir: Path, tmp_path: Path
) -> None:
    for seed in range(3):
        await play(buyer_spec(model_dir, seed=seed))
    after_plays = state(model_dir)
    assert after_plays.loads == 1
    assert after_plays.loaded and after_plays.holders == 0, "idle between games, still loaded"

    # Two self-play runs, each of several lineages of several rounds, played one at a time;
    # the tiny model is the rival (its 512-token context would not hold a coached history).
    spec = buyer_spec(model_dir) | {
        "coached": "seller",
        "rounds": 2,
        "lineages": 2,
        "concurrency": 1,
        "feedback": ["none"],
    }
    with Store(tmp_path / "h.db") as store:
        for _ in range(2):
            await selfplay(spec, store=store)
    assert state(model_dir).loads == 1


def test_play_sync_in_a_fresh_event_loop_each_time_loads_the_weights_once(
    model_dir: Path,
) -> None:
    for seed in range(3):
        play_sync(buyer_spec(model_dir, seed=seed))
    assert state(model_dir).loads == 1


async def test_a_tournaments_matches_and_lineages_load_the_weights_once(
    model_dir: Path, tmp_path: Path
) -> None:
    from haggler.tournament.running import run_tournament
    from haggler.tournament.spec import check_tournament_spec

    players = [
        {"name": "tiny", "model": f"local:{model_dir}", "params": {"max_tokens": 6}},
        {"name": "linear", "model": "rule:linear"},
    ]
    common = {"players": players, "concurrency": 1, "games": [{"game": "balloon"}]}
    league = check_tournament_spec({"name": "league", "repetitions": 2, **common})
    coached = check_tournament_spec(
        {
            "name": "coached",
            # One round: the tiny model's 512-token context would not hold a coached history.
            "schedule": {"kind": "selfplay", "rounds": 1, "critic": "rule"},
            **common,
        }
    )
    with Store(tmp_path / "h.db") as store:
        first = await run_tournament(league, store=store)
        second = await run_tournament(coached, store=store)
    assert (first.finished, second.finished) == (4, 2), (first.errors, second.errors)
    assert state(model_dir).loads == 1


async def test_backends_with_different_batching_share_the_weights(model_dir: Path) -> None:
    # Same path, device and dtype (two names of one dtype): one copy, whatever the batching.
    small = LocalBackend(str(model_dir), device="cpu", dtype="fp32", max_batch=2)
    large = LocalBackend(str(model_dir), device="cpu", dtype="float32", max_batch=8)
    try:
        await asyncio.gather(*(b.complete(HELLO, max_tokens=2) for b in (small, large)))
        assert small.weights_state == large.weights_state
        assert large.weights_state is not None
        assert (large.weights_state.loads, large.weights_state.holders) == (1, 2)
    finally:
        await small.aclose()
        await large.aclose()


# --- when the weights go -------------------------------------------------------------------------


async def test_idle_weights_are_released_after_the_keep_alive_from_the_spec(
    model_dir: Path,
) -> None:
    await play(buyer_spec(model_dir, keep_alive_s=0.3))
    assert state(model_dir).loaded, "kept for the next game"
    await asyncio.sleep(0.1)
    await play(buyer_spec(model_dir, seed=1, keep_alive_s=0.3))
    assert state(model_dir).loads == 1, "a game within the keep-alive reuses the weights"

    deadline = time.monotonic() + 5
    while state(model_dir).loaded and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    released = state(model_dir)
    assert not released.loaded, "released once idle for keep_alive_s"
    assert released.idle_s is None and released.holders == 0

    await play(buyer_spec(model_dir, seed=2, keep_alive_s=0))
    assert state(model_dir).loads == 2, "released weights load again when asked for"
    assert not state(model_dir).loaded, "keep_alive_s 0: released as the game ends"


async def test_release_idle_models_releases_only_what_nobody_holds(
    model_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    other = Path(shutil.copytree(tiny_model_dir, tmp_path / "other"))
    await play(buyer_spec(model_dir))
    held = LocalBackend(str(other), device="cpu")
    try:
        await held.complete(HELLO, max_tokens=2)
        assert release_idle_models() >= 1
        assert not state(model_dir).loaded
        assert state(other).loaded, "a model in use is never released"
    finally:
        await held.aclose()


async def test_idle_weights_give_way_when_the_device_lacks_memory_for_another_model(
    model_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older, newer, held, incoming = (
        Path(shutil.copytree(tiny_model_dir, tmp_path / name))
        for name in ("older", "newer", "held", "incoming")
    )
    await play(buyer_spec(older))
    await play(buyer_spec(newer))
    holder = LocalBackend(str(held), device="cpu")
    try:
        await holder.complete(HELLO, max_tokens=2)
        # Memory to spare: every model stays.
        monkeypatch.setattr(local_weights, "free_bytes", lambda device: 1 << 40)
        await play(buyer_spec(model_dir))
        assert all(state(m).loaded for m in (older, newer, held, model_dir))

        # The machine is short of memory until one idle model goes: the least recently used
        # one is released before another loads, and no more; the held one is never a candidate.
        def short_while_both_idle_are_loaded(device: str) -> int:
            return 0 if state(older).loaded and state(newer).loaded else 1 << 40

        monkeypatch.setattr(local_weights, "free_bytes", short_while_both_idle_are_loaded)
        await play(buyer_spec(incoming))
        assert not state(older).loaded
        assert state(newer).loaded and state(incoming).loaded and state(held).loaded

        # Out of memory altogether: every idle model goes, the held one stays.
        monkeypatch.setattr(local_weights, "free_bytes", lambda device: 0)
        await play(buyer_spec(older))
        assert not any(state(m).loaded for m in (newer, incoming, model_dir))
        assert state(held).loaded and state(older).loaded
    finally:
        await holder.aclose()


# --- the spec's local options ----------------------------------------------------------------------


async def test_batch_size_and_gathering_window_from_the_spec_reach_the_backend(
    model_dir: Path,
) -> None:
    options = {"batch_size": 2, "gather_ms": 300}
    # Held across the games, so that its counters outlive each game's own hold.
    backend = LocalBackend.shared(str(model_dir), local_settings(buyer_spec(model_dir, **options)))
    try:
        assert (backend.max_batch, backend.batch_window_s) == (2, 0.3)
        # Four games at once: their buyers speak within the 300 ms window, two to a batch.
        await asyncio.gather(*(play(buyer_spec(model_dir, seed=i, **options)) for i in range(4)))
        assert backend.batch_sizes[2] >= 2, backend.batch_sizes
        assert max(backend.batch_sizes) == 2, backend.batch_sizes
    finally:
        await backend.aclose()

    wide = {"batch_size": 8, "gather_ms": 300}
    backend = LocalBackend.shared(str(model_dir), local_settings(buyer_spec(model_dir, **wide)))
    try:
        await asyncio.gather(*(play(buyer_spec(model_dir, seed=i, **wide)) for i in range(4)))
        assert max(backend.batch_sizes) == 4, backend.batch_sizes
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("local", "field", "words"),
    [
        ({"batch_size": 0}, "roles.buyer.local.batch_size", "greater than or equal to 1"),
        ({"gather_ms": -1}, "roles.buyer.local.gather_ms", "greater than or equal to 0"),
        ({"device": "gpu"}, "roles.buyer.local.device", "use auto, cpu, cuda, cuda:N or mps"),
        ({"dtype": "float8"}, "roles.buyer.local.dtype", "unknown dtype 'float8'; use one of"),
        ({"keep_alive_s": -5}, "roles.buyer.local.keep_alive_s", "greater than or equal to 0"),
        ({"batch": 8}, "roles.buyer.local.batch", "unknown field"),
    ],
)
def test_bad_local_options_are_one_line_naming_the_field(
    local: dict[str, Any], field: str, words: str, tmp_path: Path, model_dir: Path
) -> None:
    import yaml

    path = tmp_path / "game.yaml"
    path.write_text(yaml.safe_dump(buyer_spec(model_dir, **local)))
    with pytest.raises(SpecError) as caught:
        load_play_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert words in message and "\n" not in message


def test_local_options_on_a_hosted_model_are_refused() -> None:
    spec = {"roles": {"seller": {"model": "openai/gpt-4o", "local": {"batch_size": 4}}}}
    with pytest.raises(SpecError) as caught:
        check_play_spec(spec)
    assert str(caught.value) == (
        "roles.seller.local: local options are for local:/path models, not 'openai/gpt-4o'; "
        "remove them or name a local model"
    )


def test_local_options_do_not_change_a_tournaments_match_ids(model_dir: Path) -> None:
    from haggler.tournament.schedule import expand
    from haggler.tournament.spec import check_tournament_spec

    def ids(**local: Any) -> list[str]:
        tiny: dict[str, Any] = {"name": "tiny", "model": f"local:{model_dir}"}
        if local:
            tiny["local"] = local
        spec = check_tournament_spec(
            {"name": "t", "players": [tiny, {"name": "linear", "model": "rule:linear"}]}
        )
        return [job.id for job in expand(spec)]

    # Where a model runs and how it batches is no part of what a match is.
    assert ids() == ids(batch_size=2, gather_ms=1, device="cpu", dtype="bf16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
async def test_a_cuda_device_without_a_gpu_is_one_clear_error(model_dir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await play(buyer_spec(model_dir, device="cuda"))
    message = str(caught.value)
    assert message == (
        f"local:{model_dir}: device 'cuda' asked for but torch sees no CUDA GPU; "
        f"use device auto or cpu, or install a CUDA build of torch"
    )
