"""The SQLite schema, versioned through `PRAGMA user_version`.

Each entry of MIGRATIONS takes a store from the version before it to its own; a new store runs
them all. A later issue that changes the schema appends a migration and never edits one.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

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
}

SCHEMA_VERSION = max(MIGRATIONS)
