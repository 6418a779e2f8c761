"""JSONL export: one game a line, in the versioned schema of `EpisodeRecord`."""

from __future__ import annotations

from pathlib import Path

from haggler.errors import StoreError
from haggler.store.query import GameFilter
from haggler.store.sqlite import Store

__all__ = ["export_jsonl"]


def export_jsonl(
    store: Store, run_id: str, path: str | Path, where: GameFilter | None = None
) -> int:
    """Write the games of `run_id` (those `where` keeps) to `path`, one JSON object a line;
    return how many."""
    target = Path(path)
    episodes = store.find_episodes(run_id, where)
    try:
        with target.open("w", encoding="utf-8") as out:
            for summary in episodes:
                out.write(store.episode(summary.id).model_dump_json(by_alias=True) + "\n")
    except OSError as error:
        raise StoreError(f"export to {target}: {error.strerror}; choose another -o path") from None
    return len(episodes)
