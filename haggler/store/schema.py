"""The SQLite schema, versioned through `PRAGMA user_version`.

Each entry of MIGRATIONS takes a store from the version before it to its own; a new store runs
them all. A later issue that changes the schema appends a migration and never edits one.
"""

from __future__ import annotations

import re
import sqlite3

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "tables_at"]

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        spec_json TEXT NOT NULL,
        haggler_version TEXT NOT NULL
    );
    CREATE TABLE episodes (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        game TEXT NOT NULL,
        rules_json TEXT NOT NULL,
        roles_json TEXT NOT NULL,
        seed INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
        outcome_kind TEXT,
        price REAL,
        outcome_json TEXT,
        scores_json TEXT,
        error TEXT,
        started_at REAL NOT NULL,
        ended_at REAL
    );
    CREATE INDEX episodes_by_run ON episodes(run_id, started_at);
    CREATE TABLE turns (
        episode_id TEXT NOT NULL REFERENCES episodes(id),
        idx INTEGER NOT NULL,
        speaker TEXT NOT NULL,
        text TEXT NOT NULL,
        action_kind TEXT,
        price REAL,
        action_source TEXT,
        accepted INTEGER NOT NULL,
        error TEXT,
        scripted INTEGER NOT NULL,
        model TEXT,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        latency_s REAL NOT NULL,
        retries INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        moderation_json TEXT,
        PRIMARY KEY (episode_id, idx)
    );
    """,
    # Self-play: episodes belong to lineages of rounds; agents own memory items with provenance.
    2: """
    ALTER TABLE episodes ADD COLUMN lineage_id TEXT;
    ALTER TABLE episodes ADD COLUMN round INTEGER;
    ALTER TABLE episodes ADD COLUMN arm TEXT;
    CREATE INDEX episodes_by_lineage ON episodes(run_id, arm, lineage_id, round);
    CREATE TABLE lineages (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        arm TEXT NOT NULL,
        coached TEXT NOT NULL,
        seed INTEGER NOT NULL,
        rounds_planned INTEGER NOT NULL,
        rounds_played INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped', 'failed')),
        stop_reason TEXT,
        started_at REAL NOT NULL
    );
    CREATE INDEX lineages_by_run ON lineages(run_id, arm);
    CREATE TABLE memory_items (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('episode', 'feedback', 'note')),
        content TEXT NOT NULL,
        game TEXT,
        item TEXT,
        counterpart TEXT,
        episode_id TEXT,
        round INTEGER,
        tokens INTEGER NOT NULL,
        created_at REAL NOT NULL,
        meta_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX memory_by_owner ON memory_items(owner, created_at);
    -- Deleting a source alone fails (checked at the end of the statement), so provenance can
    -- only be cut by deleting an item together with everything derived from it.
    CREATE TABLE memory_links (
        item_id TEXT NOT NULL REFERENCES memory_items(id) ON DELETE CASCADE,
        source_id TEXT NOT NULL REFERENCES memory_items(id),
        PRIMARY KEY (item_id, source_id)
    );
    CREATE INDEX memory_links_by_source ON memory_links(source_id);
    -- What each coached role was told after a game, and what telling it cost: the experiment's
    -- own record, which stays when an agent later forgets the advice.
    CREATE TABLE critiques (
        episode_id TEXT NOT NULL REFERENCES episodes(id),
        role TEXT NOT NULL,
        source TEXT NOT NULL,
        text TEXT NOT NULL,
        model TEXT,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        latency_s REAL NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (episode_id, role)
    );
    """,
    # Tournaments: a match's id is derived from its content, and a run stores it finished once.
    3: """
    ALTER TABLE episodes ADD COLUMN match_id TEXT;
    CREATE UNIQUE INDEX episodes_match_once ON episodes(run_id, match_id)
        WHERE match_id IS NOT NULL AND status = 'finished';
    CREATE INDEX episodes_by_match ON episodes(run_id, match_id);
    """,
    # The viewer: a game's lineage neighbours, found by lineage without the run.
    4: """
    CREATE INDEX episodes_by_lineage_round ON episodes(lineage_id, round);
    """,
    # Forgetting: provenance says how an item came from each source, items carry the user's
    # tags, and each forget request leaves an audit row (counts and hashes, never content).
    5: """
    ALTER TABLE memory_links ADD COLUMN relation TEXT NOT NULL DEFAULT 'derived';
    UPDATE memory_links SET relation = 'about'
        WHERE item_id IN (SELECT id FROM memory_items WHERE kind = 'feedback');
    -- Before this version an episode recorded nothing of what was in its player's context.
    -- Whatever its owner remembered before it may have been: link it all, so that exact
    -- forgetting of an old item removes too much rather than too little.
    INSERT OR IGNORE INTO memory_links (item_id, source_id, relation)
        SELECT e.id, s.id, 'context' FROM memory_items e JOIN memory_items s
        ON s.owner = e.owner AND s.created_at < e.created_at
        WHERE e.kind = 'episode';
    -- Feedback carries the id of the game it criticised (it was kept in meta only).
    UPDATE memory_items SET episode_id = json_extract(meta_json, '$.episode_id')
        WHERE kind = 'feedback' AND episode_id IS NULL
        AND json_extract(meta_json, '$.episode_id') IS NOT NULL;
    CREATE INDEX memory_by_episode ON memory_items(episode_id) WHERE episode_id IS NOT NULL;
    CREATE INDEX memory_by_owner_game ON memory_items(owner, game);
    CREATE TABLE memory_tags (
        item_id TEXT NOT NULL REFERENCES memory_items(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (item_id, tag)
    );
    CREATE INDEX memory_tags_by_tag ON memory_tags(tag);
    CREATE TABLE forgetting (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        level TEXT NOT NULL,
        mode TEXT NOT NULL,
        target TEXT NOT NULL,
        owners_json TEXT NOT NULL,
        purge_record INTEGER NOT NULL,
        -- Where it happened, when a run scheduled it: the run, the lineage, after which round.
        run_id TEXT,
        lineage_id TEXT,
        after_round INTEGER,
        counts_json TEXT NOT NULL,
        hashes_json TEXT NOT NULL,
        plan_sha256 TEXT NOT NULL,
        erased INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX forgetting_by_run ON forgetting(run_id, lineage_id);
    -- Games of the record deleted on request: reports and ratings say how many are missing.
    CREATE TABLE purged_episodes (
        episode_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        lineage_id TEXT,
        round INTEGER,
        forgetting_id TEXT NOT NULL REFERENCES forgetting(id),
        purged_at REAL NOT NULL
    );
    CREATE INDEX purged_by_run ON purged_episodes(run_id);
    -- Token counts haggler made itself because the provider's were missing or not believable.
    ALTER TABLE turns ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE critiques ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
    """,
    6: """
    -- What a package proposal settled (issue -> option), for games whose actions carry terms.
    ALTER TABLE turns ADD COLUMN action_terms_json TEXT;
    """,
}

SCHEMA_VERSION = max(MIGRATIONS)


def tables_at(version: int) -> set[str]:
    """The tables a haggler store of schema `version` holds (none at 0)."""
    return {
        name
        for step in range(1, version + 1)
        for name in re.findall(r"CREATE TABLE (\w+)", MIGRATIONS[step])
    }


def migrate(db: sqlite3.Connection, current: int) -> None:
    """Bring the store `db` (in autocommit) from schema `current` to SCHEMA_VERSION, one
    migration a transaction: a failure leaves it at the last version it reached whole."""
    for target in range(current + 1, SCHEMA_VERSION + 1):
        try:
            db.executescript(f"BEGIN;{MIGRATIONS[target]}PRAGMA user_version={target};COMMIT;")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
