"""What an unlearner may know of the memories it plans for: ids, names and tags, never content.

The index lists the agents, the games they played (id, round, lineage, counterpart), the
environments their items come from and the tags on them, and who speaks in their games. It is
all a request in words can name; a rule-based unlearner resolves words against it and an LLM
unlearner reads it in its prompt. Nothing a game said is in it: forgetting a secret must not
need the secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.transcript import read_transcript

if TYPE_CHECKING:
    from haggler.store.sqlite import Store

__all__ = ["IndexedEnvironment", "MemoryIndex", "PlayedGame", "index_memories"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlayedGame(_Model):
    """One game the memories remember: its id, the agents' round label, and where the store
    places it (lineage and the lineage's own round; None without a store)."""

    id: str
    round: int | None = None
    game: str
    item: str | None = None
    lineage: str | None = None
    lineage_round: int | None = None
    # Who each agent played against in it (an agent's counterpart is its rival's label).
    counterparts: dict[str, str | None] = Field(default_factory=dict)


class IndexedEnvironment(_Model):
    game: str
    item: str | None = None
    counterpart: str | None = None
    items: int = 0


class MemoryIndex(_Model):
    agents: list[str] = Field(default_factory=list)
    played: list[PlayedGame] = Field(default_factory=list)
    environments: list[IndexedEnvironment] = Field(default_factory=list)
    tags: dict[str, int] = Field(default_factory=dict)
    speakers: list[str] = Field(default_factory=list)
    # Entries left out of a compact index (see `compact`).
    omitted: int = 0

    # -- names, as words can say them ----------------------------------------------------------

    def games(self) -> list[str]:
        return sorted({e.game for e in self.environments})

    def items(self) -> list[str]:
        return sorted({e.item for e in self.environments if e.item})

    def counterparts(self) -> list[str]:
        return sorted({e.counterpart for e in self.environments if e.counterpart})

    def lineages(self) -> list[str]:
        return sorted({g.lineage for g in self.played if g.lineage})

    def in_round(self, number: int, agents: set[str] | None = None) -> list[PlayedGame]:
        """The games played in the agents' round `number` (by `agents` when given)."""
        return [
            g
            for g in self.played
            if g.round == number and (agents is None or agents & set(g.counterparts))
        ]

    def rounds(self, agents: set[str] | None = None) -> list[int]:
        return sorted(
            {
                g.round
                for g in self.played
                if g.round is not None and (agents is None or agents & set(g.counterparts))
            }
        )

    def compact(self, limit: int = 200) -> MemoryIndex:
        """This index with at most `limit` games and `limit` of each other list: what fits a
        prompt. The newest games are kept; `omitted` counts what was left out."""
        cut = 0

        def first(values: list[Any], newest: bool = False) -> list[Any]:
            nonlocal cut
            cut += max(0, len(values) - limit)
            return values[-limit:] if newest else values[:limit]

        tags = dict(sorted(self.tags.items(), key=lambda kv: -kv[1])[:limit])
        cut += len(self.tags) - len(tags)
        return MemoryIndex(
            agents=first(self.agents),
            played=first(self.played, newest=True),
            environments=first(self.environments),
            tags=tags,
            speakers=first(self.speakers),
            omitted=self.omitted + cut,
        )


def index_memories(memories: Mapping[str, AgentMemory], store: Store | None = None) -> MemoryIndex:
    """The index of `memories`; with `store`, each game's lineage and round in it."""
    played: dict[str, dict[str, object]] = {}
    environments: dict[tuple[str, str | None, str | None], int] = {}
    tags: dict[str, int] = {}
    speakers: dict[str, None] = {}
    for owner, memory in memories.items():
        for item in memory:
            env = (item.env.game, item.env.item, item.env.counterpart)
            environments[env] = environments.get(env, 0) + 1
            for tag in item.tags:
                tags[tag] = tags.get(tag, 0) + 1
            if item.kind != "episode" or item.episode_id is None:
                continue
            entry = played.setdefault(
                item.episode_id,
                {"round": item.round, "game": item.env.game, "item": item.env.item, "by": {}},
            )
            by = entry["by"]
            assert isinstance(by, dict)
            by[owner] = item.env.counterpart
            # Speaker names head each line of a remembered game; they are roles, not secrets.
            for line in read_transcript(item.content)[0]:
                speakers.setdefault(line.speaker[:40], None)
    games = []
    for episode_id, entry in played.items():
        lineage, lineage_round = _placed(store, episode_id)
        games.append(
            PlayedGame(
                id=episode_id,
                round=entry["round"],  # type: ignore[arg-type]
                game=str(entry["game"]),
                item=entry["item"],  # type: ignore[arg-type]
                lineage=lineage,
                lineage_round=lineage_round,
                counterparts=entry["by"],  # type: ignore[arg-type]
            )
        )
    return MemoryIndex(
        agents=list(memories),
        played=games,
        environments=[
            IndexedEnvironment(game=g, item=i, counterpart=c, items=n)
            for (g, i, c), n in environments.items()
        ],
        tags=tags,
        speakers=sorted(speakers),
    )


def _placed(store: Store | None, episode_id: str) -> tuple[str | None, int | None]:
    if store is None:
        return None, None
    from haggler.errors import StoreError

    try:
        record = store.episode(episode_id)
    except StoreError:
        return None, None  # a game purged from the record is still remembered
    return record.lineage_id, record.round
