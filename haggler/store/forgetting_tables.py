"""Forgetting in the store: the audit of requests, purging the record, and physical erasure.

A mixin of `haggler.store.Store`. The store deletes with `secure_delete` on, so removed rows
are overwritten in the database file; `erase` then checkpoints the write-ahead log into the
file and truncates it, so no old page image of a removed row stays in the WAL either.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from haggler.store.memory_tables import chunks as _chunks
from haggler.store.records import ForgettingRecord

__all__ = ["ForgettingTables", "PLACEHOLDER_TEXT"]

# What a blanked text of the record reads (the same placeholder memory scrubs with).
PLACEHOLDER_TEXT = "[forgotten]"
_COLUMNS = (
    "id, created_at, level, mode, target, owners_json, purge_record, run_id, lineage_id, "
    "after_round, counts_json, hashes_json, plan_sha256, erased"
)


class ForgettingTables:
    _db: sqlite3.Connection
    path: Path

    def _transaction(self, begin: str = "BEGIN") -> AbstractContextManager[None]:
        raise NotImplementedError  # pragma: no cover - provided by Store

    def _resolve(self, table: str, ref: str | None, noun: str) -> str:
        raise NotImplementedError  # pragma: no cover - provided by Store

    # -- lineages, as forget requests name them ----------------------------------------------

    def resolve_lineage(self, ref: str) -> str:
        """The lineage `ref` names (an id or a unique prefix)."""
        return self._resolve("lineages", ref, "lineage")

    def lineage_episodes(self, lineage_id: str) -> list[tuple[int, str]]:
        """Every game a lineage played, as (round, game id), failed attempts included."""
        return [
            (int(r), str(e))
            for r, e in self._db.execute(
                "SELECT round, id FROM episodes WHERE lineage_id = ? AND round IS NOT NULL "
                "ORDER BY round, started_at, rowid",
                (lineage_id,),
            )
        ]

    # -- the audit ---------------------------------------------------------------------------

    def add_forgetting(self, record: ForgettingRecord) -> None:
        self._db.execute(
            f"INSERT INTO forgetting ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            (
                record.id,
                record.created_at,
                record.level,
                record.mode,
                record.target,
                json.dumps(record.owners),
                int(record.purge_record),
                record.run_id,
                record.lineage_id,
                record.after_round,
                json.dumps(record.counts),
                json.dumps(record.hashes),
                record.plan_sha256,
                int(record.erased),
            ),
        )

    def set_forgetting_counts(self, forgetting_id: str, counts: dict[str, float]) -> None:
        self._db.execute(
            "UPDATE forgetting SET counts_json = ? WHERE id = ?",
            (json.dumps(counts), forgetting_id),
        )

    def mark_erased(self, forgetting_id: str) -> None:
        self._db.execute("UPDATE forgetting SET erased = 1 WHERE id = ?", (forgetting_id,))

    def forgettings(
        self, *, run_id: str | None = None, lineage_id: str | None = None
    ) -> list[ForgettingRecord]:
        """The forget requests carried out, oldest first; those of a run or lineage if asked."""
        where, params = [], []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if lineage_id is not None:
            where.append("lineage_id = ?")
            params.append(lineage_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        names = [c.strip() for c in _COLUMNS.split(",")]
        records = []
        for row in self._db.execute(
            f"SELECT {_COLUMNS} FROM forgetting {clause} ORDER BY created_at, rowid", params
        ):
            fields: dict[str, Any] = dict(zip(names, row, strict=True))
            fields["owners"] = json.loads(fields.pop("owners_json"))
            fields["counts"] = json.loads(fields.pop("counts_json"))
            fields["hashes"] = json.loads(fields.pop("hashes_json"))
            fields["purge_record"] = bool(fields["purge_record"])
            fields["erased"] = bool(fields["erased"])
            records.append(ForgettingRecord(**fields))
        return records

    def forgettings_by_round(self, run_id: str) -> dict[tuple[str, int], list[ForgettingRecord]]:
        """A run's forget requests by (lineage, the round they followed): where they show."""
        found: dict[tuple[str, int], list[ForgettingRecord]] = {}
        for record in self.forgettings(run_id=run_id):
            if record.lineage_id is not None and record.after_round is not None:
                found.setdefault((record.lineage_id, record.after_round), []).append(record)
        return found

    def purged_count(self, run_id: str) -> int:
        """How many games of `run_id` were deleted from the record on request."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM purged_episodes WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])

    # -- purging the record ------------------------------------------------------------------

    def purge_episodes(self, episode_ids: Iterable[str], forgetting_id: str) -> int:
        """Delete games whole (turns and critiques too), leaving a tombstone that says when
        and by which request; returns how many were deleted."""
        ids = list(dict.fromkeys(episode_ids))
        purged = 0
        now = time.time()
        with self._transaction():
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                self._db.execute(
                    "INSERT OR IGNORE INTO purged_episodes "
                    "(episode_id, run_id, lineage_id, round, forgetting_id, purged_at) "
                    f"SELECT id, run_id, lineage_id, round, ?, ? FROM episodes WHERE id IN ({marks})",
                    [forgetting_id, now, *chunk],
                )
                self._db.execute(f"DELETE FROM turns WHERE episode_id IN ({marks})", chunk)
                self._db.execute(f"DELETE FROM critiques WHERE episode_id IN ({marks})", chunk)
                purged += self._db.execute(
                    f"DELETE FROM episodes WHERE id IN ({marks})", chunk
                ).rowcount
        return purged

    def scrub_record(
        self,
        *,
        episodes: list[str] | None,
        rewrite: Callable[[str], str] | None = None,
        blank_turns: dict[str, tuple[int, int]] | None = None,
        blank_episodes: Iterable[str] = (),
    ) -> dict[str, int]:
        """Scrub the record: in `episodes` (every game when None) rewrite the texts of turns,
        critiques, briefs and errors with `rewrite`; blank the turns of `blank_turns` (game ->
        first and last turn) and every text of `blank_episodes`. The runs and lineages of the
        games touched have their spec and stop reasons rewritten too. Returns counts of the
        texts changed."""
        counts = {"turns": 0, "critiques": 0, "briefs": 0, "runs": 0, "lineages": 0}
        blank = set(blank_episodes)
        spans = dict(blank_turns or {})
        with self._transaction():
            if rewrite is not None:
                self._rewrite_texts(episodes, rewrite, counts)
            for episode_id in blank:
                self._rewrite_turns(episode_id, None, _blank, counts)
                counts["critiques"] += self._db.execute(
                    "UPDATE critiques SET text = ? WHERE episode_id = ? AND text != ?",
                    (PLACEHOLDER_TEXT, episode_id, PLACEHOLDER_TEXT),
                ).rowcount
                self._rewrite_episode(episode_id, _blank, counts)
            for episode_id, span in spans.items():
                self._rewrite_turns(episode_id, span, _blank, counts)
        return counts

    def _rewrite_turns(
        self,
        episode_id: str,
        span: tuple[int, int] | None,
        rewrite: Callable[[str], str],
        counts: dict[str, int],
    ) -> None:
        """A game's turns (those of `span` only, if given) with every text rewritten: the
        message, the error its speaker was told, and an LLM moderator's verdict on it."""
        where, params = "episode_id = ?", [episode_id]
        if span is not None:
            where += " AND idx BETWEEN ? AND ?"
            params += [span[0], span[1]]
        for idx, text, error, moderation_json in self._db.execute(
            f"SELECT idx, text, error, moderation_json FROM turns WHERE {where}", params
        ).fetchall():
            new_text = rewrite(text)
            new_error = rewrite(error) if error else error
            new_moderation = moderation_json
            if moderation_json:
                moderation = json.loads(moderation_json)
                verdict = moderation.get("unreadable_verdict")
                if isinstance(verdict, str):
                    moderation["unreadable_verdict"] = rewrite(verdict)
                    new_moderation = json.dumps(moderation)
            if (new_text, new_error, new_moderation) != (text, error, moderation_json):
                self._db.execute(
                    "UPDATE turns SET text = ?, error = ?, moderation_json = ? "
                    "WHERE episode_id = ? AND idx = ?",
                    (new_text, new_error, new_moderation, episode_id, idx),
                )
                counts["turns"] += 1

    def _rewrite_episode(
        self, episode_id: str, rewrite: Callable[[str], str], counts: dict[str, int]
    ) -> str | None:
        """A game's own texts rewritten: its roles' briefs and prompts, its error and the
        reason it ended. Returns its run (None if no such game)."""
        row = self._db.execute(
            "SELECT run_id, roles_json, error, outcome_json FROM episodes WHERE id = ?",
            (episode_id,),
        ).fetchone()
        if row is None:
            return None
        run_id, roles_json, error, outcome_json = row
        roles = json.loads(roles_json)
        for role in roles.values():
            changed = False
            for key in ("brief", "prompt"):
                text = role.get(key)
                if isinstance(text, str) and rewrite(text) != text:
                    role[key] = rewrite(text)
                    changed = True
            counts["briefs"] += changed
        new_roles = json.dumps(roles)
        new_error = rewrite(error) if error else error
        new_outcome = outcome_json
        if outcome_json:
            outcome = json.loads(outcome_json)
            if isinstance(outcome.get("reason"), str):
                outcome["reason"] = rewrite(outcome["reason"])
                new_outcome = json.dumps(outcome)
        if (new_roles, new_error, new_outcome) != (roles_json, error, outcome_json):
            self._db.execute(
                "UPDATE episodes SET roles_json = ?, error = ?, outcome_json = ? WHERE id = ?",
                (new_roles, new_error, new_outcome, episode_id),
            )
        return str(run_id)

    def _rewrite_texts(
        self, episodes: list[str] | None, rewrite: Callable[[str], str], counts: dict[str, int]
    ) -> None:
        def chunks() -> Iterator[tuple[str, list[str]]]:
            if episodes is None:
                yield "1", []
                return
            for chunk in _chunks(episodes):
                yield f"episode_id IN ({','.join('?' * len(chunk))})", chunk

        runs: set[str] = set()
        for where, params in chunks():
            for episode_id, role, text in self._db.execute(
                f"SELECT episode_id, role, text FROM critiques WHERE {where}", params
            ).fetchall():
                new = rewrite(text)
                if new != text:
                    self._db.execute(
                        "UPDATE critiques SET text = ? WHERE episode_id = ? AND role = ?",
                        (new, episode_id, role),
                    )
                    counts["critiques"] += 1
            id_where = where.replace("episode_id", "id")
            for (episode_id,) in self._db.execute(
                f"SELECT id FROM episodes WHERE {id_where}", params
            ).fetchall():
                self._rewrite_turns(episode_id, None, rewrite, counts)
                run_id = self._rewrite_episode(episode_id, rewrite, counts)
                if run_id is not None:
                    runs.add(run_id)
        for run_id in sorted(runs):
            spec_json = self._db.execute(
                "SELECT spec_json FROM runs WHERE id = ?", (run_id,)
            ).fetchone()[0]
            new_spec = json.dumps(_rewrite_strings(json.loads(spec_json), rewrite))
            if new_spec != spec_json:
                self._db.execute("UPDATE runs SET spec_json = ? WHERE id = ?", (new_spec, run_id))
                counts["runs"] += 1
            for lineage_id, reason in self._db.execute(
                "SELECT id, stop_reason FROM lineages WHERE run_id = ? AND stop_reason IS NOT NULL",
                (run_id,),
            ).fetchall():
                if rewrite(reason) != reason:
                    self._db.execute(
                        "UPDATE lineages SET stop_reason = ? WHERE id = ?",
                        (rewrite(reason), lineage_id),
                    )
                    counts["lineages"] += 1

    # -- erasure -----------------------------------------------------------------------------

    def erase(self, *, vacuum: bool = False) -> bool:
        """Rid the files of deleted bytes: checkpoint the WAL into the database and truncate
        it (and, with `vacuum`, rebuild the file). False when another connection still reads
        an older state, so the WAL could not be emptied: erasing again later finishes it."""
        busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if vacuum and not busy:
            self._db.execute("VACUUM")
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy


def _blank(text: str) -> str:
    return PLACEHOLDER_TEXT


def _rewrite_strings(value: Any, rewrite: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list):
        return [_rewrite_strings(v, rewrite) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite_strings(v, rewrite) for k, v in value.items()}
    return value
