"""A game with a role on a local transformers model, loaded from disk with the hub off."""

from __future__ import annotations

from pathlib import Path

import pytest

from haggler import Store, play

pytest.importorskip("torch")


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


async def test_concurrent_games_share_one_copy_of_a_local_model(tiny_model_dir: Path) -> None:
    import asyncio

    from haggler.llm.local_backend import LocalBackend

    spec = {
        "roles": {"buyer": {"model": f"local:{tiny_model_dir}", "params": {"max_tokens": 6}}},
        "rules": {"max_exchanges": 2},
    }
    loads = 0
    original = LocalBackend._load_unlocked

    def counting(self):  # type: ignore[no-untyped-def]
        nonlocal loads
        if self._loaded is None:
            loads += 1
        return original(self)

    LocalBackend._load_unlocked = counting  # type: ignore[method-assign]
    try:
        played = await asyncio.gather(*(play(spec | {"seed": i}) for i in range(4)))
    finally:
        LocalBackend._load_unlocked = original  # type: ignore[method-assign]
    assert all(p.result.outcome.kind in ("deal", "no_deal", "invalid") for p in played)
    assert loads == 1, f"the weights were loaded {loads} times for 4 concurrent games"
