"""JSONL export: one game a line, in the versioned schema of `EpisodeRecord`, with the critic's
feedback on it. The file appears whole or not at all: an export that fails or is interrupted
leaves the previous file as it was."""

from __future__ import annotations

import json
from pathlib import Path

from haggler.errors import StoreError
from haggler.store.atomic_file import replace_atomically
from haggler.store.query import GameFilter
from haggler.store.records import CritiqueRecord
from haggler.store.sqlite import Store

__all__ = ["export_jsonl"]


def export_jsonl(
    store: Store, run_id: str, path: str | Path, where: GameFilter | None = None
) -> int:
    """Write the games of `run_id` (those `where` keeps) to `path`, one JSON object a line;
    return how many."""
    target = Path(path)
    if _is_the_store(target, store):
        raise StoreError(f"export to {target}: that is the store itself; choose another -o path")
    kept = (
        None
        if where is None or where.is_empty()
        else {e.id for e in store.find_episodes(run_id, where)}
    )
    critiques: dict[str, list[CritiqueRecord]] = {}
    for critique in store.critiques(run_id=run_id):
        critiques.setdefault(critique.episode_id, []).append(critique)
    forgotten = store.forgettings_by_round(run_id)
    count = 0
    try:
        with replace_atomically(target) as out:
            for episode in store.run_episodes(run_id):
                if kept is not None and episode.id not in kept:
                    continue
                line = episode.model_dump(mode="json", by_alias=True)
                line["critiques"] = [
                    c.model_dump(mode="json", exclude={"episode_id"})
                    for c in critiques.get(episode.id, [])
                ]
                # Where the agents forgot something after this game: counts, never content.
                line["forgetting"] = [
                    f.for_export()
                    for f in forgotten.get((episode.lineage_id or "", episode.round or 0), [])
                ]
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
    except OSError as error:
        raise StoreError(
            f"export to {target}: {error.strerror or error}; choose another -o path"
        ) from None
    return count


def _is_the_store(target: Path, store: Store) -> bool:
    try:
        return target.samefile(store.path)
    except OSError:  # one of them does not exist (yet)
        return False
