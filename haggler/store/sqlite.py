"""The store: one SQLite file (WAL) of runs, episodes and turns, written as games go.

Every turn is committed as it happens, so an interrupted run loses at most the turn in flight;
an episode cut short stays `running` (or `failed`, with its error) and is never mistaken for a
finished game.
"""

from __future__ import annotations

import functools
import inspect
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from pydantic import ValidationError

from haggler.errors import StoreError
from haggler.store.forgetting_tables import ForgettingTables
from haggler.store.memory_tables import MemoryTables
from haggler.store.opening import connect_store
from haggler.store.query import GameFilter, RunFacets, like_prefix
from haggler.store.records import (
    ActionRecord,
    CritiqueRecord,
    EpisodeRecord,
    EpisodeSummary,
    ForgettingRecord,
    LineageRecord,
    ModerationRecord,
    OutcomeRecord,
    RoleRecord,
    RunRecord,
    SpeakerTotals,
    TurnRecord,
)
from haggler.store.sqlite_errors import damaged_record, store_error

__all__ = ["Store"]

_EPISODE_COLUMNS = (
    "id, run_id, game, rules_json, roles_json, seed, status, outcome_json, scores_json, error, "
    "started_at, ended_at, (SELECT COUNT(*) FROM turns t WHERE t.episode_id = e.id) AS n_turns, "
    "lineage_id, round, arm, match_id"
)
# Sellers before buyers wherever roles are listed: the order the games are told in.
_ROLE_ORDER = ("seller", "buyer")


def _role_order(role: str) -> tuple[int, str]:
    return (_ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER), role)


_LINEAGE_COLUMNS = (
    "id, run_id, arm, coached, seed, rounds_planned, rounds_played, status, stop_reason, started_at"
)


def _haggler_version() -> str:
    try:
        return version("haggler")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _new_id(prefix: str) -> str:
    # Time-ordered, so ids sort like the runs they name; 48 random bits keep a busy second of
    # hundreds of games free of collisions. A unique prefix is enough to type.
    return f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}"


_P = ParamSpec("_P")
_R = TypeVar("_R")
# Left as they are: a constraint the store itself catches (a match stored twice), and misuse
# (a closed store, wrong parameters), which is a bug to see in full.
_NOT_THE_FILE = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


def _failures_as_store_errors(
    method: Callable[Concatenate[Store, _P], _R],
) -> Callable[Concatenate[Store, _P], _R]:
    @functools.wraps(method)
    def guarded(self: Store, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except _NOT_THE_FILE:
            raise
        except sqlite3.Error as error:
            raise store_error(self.path, error) from error
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as error:
            # A row SQLite reads back but haggler cannot (its JSON, a record that no longer
            # validates): its bytes were changed outside haggler.
            what = " ".join(str(error).split())[:200]
            raise damaged_record(
                self.path, f"a stored record does not read back ({what})"
            ) from error

    return guarded


def _guard_public_methods(cls: type[Store]) -> type[Store]:
    """The store's boundary: every public method raises its file's failures as StoreError."""
    # The mixins' methods (memory, forgetting) are the store's too.
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") and name != "close":
            setattr(cls, name, _failures_as_store_errors(member))
    return cls


@_guard_public_methods
class Store(MemoryTables, ForgettingTables):
    """A haggler store at `path`: created (and migrated) on open, unless `read_only`.

    A writer refuses, before writing anything, a file that is not a haggler store of this
    schema or older, a store it cannot write, and a damaged one (SQLite's quick check). With
    `read_only=True` nothing is ever written (a missing file is not created, no statement may
    write); a store that cannot be written, a read-only folder's included, is read over a
    read-only connection. Every failure of the file or the disk (damaged pages or records, a
    full disk, an I/O error, a lock held too long) is raised as a one-line StoreError naming
    the store.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._savepoints = 0
        self._db = connect_store(self.path, read_only=read_only)

    @contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[None]:
        """All or nothing: the connection is in autocommit, so each write group opens its own;
        inside another's transaction, a savepoint, so groups nest (see `atomic`)."""
        if self._db.in_transaction:
            self._savepoints += 1
            name = f"nested_{self._savepoints}"
            self._db.execute(f"SAVEPOINT {name}")
            try:
                yield
                self._db.execute(f"RELEASE {name}")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                raise
            return
        self._db.execute(begin)
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                # A disk that failed the write may fail this too; the error to report is
                # the first, and SQLite rolls back on its own what it could not commit.
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction around several writes (a forget request's deletes, rewrites, audit):
        all of them land, or none."""
        # Beginning and committing happen outside the guarded methods: guard them here.
        try:
            with self._transaction("BEGIN IMMEDIATE"):
                yield
        except _NOT_THE_FILE:
            raise
        except sqlite3.Error as error:
            raise store_error(self.path, error) from error

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def start_run(self, kind: str, spec: Mapping[str, Any] | None = None) -> str:
        run_id = _new_id("run-")
        self._db.execute(
            "INSERT INTO runs (id, kind, created_at, spec_json, haggler_version) VALUES (?, ?, ?, ?, ?)",
            (run_id, kind, time.time(), json.dumps(dict(spec or {})), _haggler_version()),
        )
        return run_id

    def ensure_run(self, run_id: str, kind: str, spec: Mapping[str, Any] | None = None) -> bool:
        """Create run `run_id`, or continue it with `spec` as its current spec; True if new."""
        spec_json = json.dumps(dict(spec or {}))
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO runs (id, kind, created_at, spec_json, haggler_version) "
            "VALUES (?, ?, ?, ?, ?)",
            (run_id, kind, time.time(), spec_json, _haggler_version()),
        )
        if cursor.rowcount == 0:
            self._db.execute("UPDATE runs SET spec_json = ? WHERE id = ?", (spec_json, run_id))
        return cursor.rowcount == 1

    def finished_matches(self, run_id: str) -> set[str]:
        """Ids of the matches of `run_id` that finished: a resumed tournament skips them."""
        rows = self._db.execute(
            "SELECT match_id FROM episodes WHERE run_id = ? AND status = 'finished' "
            "AND match_id IS NOT NULL",
            (run_id,),
        )
        return {row[0] for row in rows}

    def run_cost(self, run_id: str) -> float:
        """Dollars spent on `run_id` so far: every turn, moderation and critique."""
        turns = self._db.execute(
            "SELECT COALESCE(SUM(t.cost_usd), 0) FROM turns t JOIN episodes e "
            "ON e.id = t.episode_id WHERE e.run_id = ?",
            (run_id,),
        ).fetchone()[0]
        moderation = self._db.execute(
            "SELECT COALESCE(SUM(json_extract(t.moderation_json, '$.cost_usd')), 0) FROM turns t "
            "JOIN episodes e ON e.id = t.episode_id WHERE e.run_id = ? "
            "AND t.moderation_json IS NOT NULL",
            (run_id,),
        ).fetchone()[0]
        critiques = self._db.execute(
            "SELECT COALESCE(SUM(c.cost_usd), 0) FROM critiques c JOIN episodes e "
            "ON e.id = c.episode_id WHERE e.run_id = ?",
            (run_id,),
        ).fetchone()[0]
        return float(turns + moderation + critiques)

    def add_episode(
        self,
        run_id: str,
        *,
        game: str,
        rules: Mapping[str, Any],
        roles: Mapping[str, RoleRecord],
        seed: int,
        turns: Iterable[TurnRecord],
        outcome: OutcomeRecord | None,
        scores: Mapping[str, float],
        error: str | None = None,
        match_id: str | None = None,
        started_at: float | None = None,
    ) -> str | None:
        """Store a whole game at once, all or nothing; finished if it has an outcome.

        Returns its id; or None, storing nothing, when the game finished and its match
        (`match_id`) is already stored as finished, by this process or another running the
        same tournament: a match is never stored finished twice, and None tells the caller
        that the match it played is another's. A failed game is stored (and its id returned)
        even then: the attempt happened and spent what it spent.
        """
        game_fields: dict[str, Any] = {
            "game": game,
            "rules": rules,
            "roles": roles,
            "seed": seed,
            "turns": turns,
            "outcome": outcome,
            "scores": scores,
            "error": error,
            "match_id": match_id,
            "started_at": started_at,
        }
        try:
            with self._transaction("BEGIN IMMEDIATE"):
                return self._write_game(run_id, **game_fields)
        except sqlite3.IntegrityError:
            if (
                outcome is not None
                and match_id is not None
                and match_id in self.finished_matches(run_id)
            ):
                return None
            raise

    def add_lineage(
        self,
        run_id: str,
        *,
        arm: str,
        coached: str,
        seed: int,
        games: Sequence[Mapping[str, Any]],
        critiques: Sequence[CritiqueRecord | None] = (),
        forgetting: Sequence[ForgettingRecord] = (),
    ) -> str | None:
        """Store a whole self-play lineage at once: its record, its rounds' games (in order,
        each with `add_episode`'s fields) and each round's critique (episode_id filled in).

        `forgetting`: the audit rows of the forget requests the lineage carried out while it
        was played, stored with it (their run and lineage filled in).

        Returns the lineage id; or None, storing nothing of it, when a finished round's match
        is already stored as finished (by another process playing the same tournament)."""
        try:
            with self._transaction("BEGIN IMMEDIATE"):
                lineage_id = self.start_lineage(
                    run_id, arm=arm, coached=coached, seed=seed, rounds_planned=len(games)
                )
                for number, fields in enumerate(games, 1):
                    episode_id = self._write_game(
                        run_id, **fields, lineage_id=lineage_id, round=number, arm=arm
                    )
                    critique = critiques[number - 1] if number <= len(critiques) else None
                    if critique is not None:
                        self.add_critique(critique.model_copy(update={"episode_id": episode_id}))
                for record in forgetting:
                    self.add_forgetting(
                        record.model_copy(update={"run_id": run_id, "lineage_id": lineage_id})
                    )
                failed = any(fields.get("outcome") is None for fields in games)
                self.update_lineage(
                    lineage_id, rounds_played=len(games), status="failed" if failed else "finished"
                )
        except sqlite3.IntegrityError:
            finished = self.finished_matches(run_id)
            if any(
                fields.get("match_id") in finished
                for fields in games
                if fields.get("outcome") is not None
            ):
                return None
            raise
        return lineage_id

    def _write_game(
        self,
        run_id: str,
        *,
        turns: Iterable[TurnRecord],
        outcome: OutcomeRecord | None,
        scores: Mapping[str, float],
        error: str | None = None,
        started_at: float | None = None,
        **episode: Any,
    ) -> str:
        # Inside a transaction of the caller's.
        episode_id = self.start_episode(run_id, **episode)
        if started_at is not None:
            self._db.execute(
                "UPDATE episodes SET started_at = ? WHERE id = ?", (started_at, episode_id)
            )
        for turn in turns:
            self.add_turn(episode_id, turn)
        if outcome is not None:
            self.finish_episode(episode_id, outcome, scores)
        else:
            self.fail_episode(episode_id, error or "failed")
        return episode_id

    def start_episode(
        self,
        run_id: str,
        *,
        game: str,
        rules: Mapping[str, Any],
        roles: Mapping[str, RoleRecord],
        seed: int,
        lineage_id: str | None = None,
        round: int | None = None,
        arm: str | None = None,
        match_id: str | None = None,
    ) -> str:
        episode_id = _new_id("ep-")
        self._db.execute(
            "INSERT INTO episodes (id, run_id, game, rules_json, roles_json, seed, status, "
            "started_at, lineage_id, round, arm, match_id) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            (
                episode_id,
                run_id,
                game,
                json.dumps(dict(rules)),
                json.dumps({role: r.model_dump() for role, r in roles.items()}),
                seed,
                time.time(),
                lineage_id,
                round,
                arm,
                match_id,
            ),
        )
        return episode_id

    def add_turn(self, episode_id: str, turn: TurnRecord) -> None:
        action = turn.action
        self._db.execute(
            f"INSERT INTO turns (episode_id, {_TURN_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                episode_id,
                turn.index,
                turn.speaker,
                turn.text,
                action.kind if action else None,
                action.price if action else None,
                action.source if action else None,
                int(turn.accepted),
                turn.error,
                int(turn.scripted),
                turn.model,
                turn.prompt_tokens,
                turn.completion_tokens,
                turn.cost_usd,
                turn.latency_s,
                turn.retries,
                turn.started_at,
                turn.ended_at,
                turn.moderation.model_dump_json() if turn.moderation else None,
                int(turn.usage_estimated),
                json.dumps(action.terms) if action and action.terms is not None else None,
            ),
        )

    def finish_episode(
        self, episode_id: str, outcome: OutcomeRecord, scores: Mapping[str, float]
    ) -> None:
        self._db.execute(
            "UPDATE episodes SET status='finished', outcome_kind=?, price=?, outcome_json=?, "
            "scores_json=?, ended_at=? WHERE id=?",
            (
                outcome.kind,
                outcome.price,
                outcome.model_dump_json(),
                json.dumps(dict(scores)),
                time.time(),
                episode_id,
            ),
        )

    def fail_episode(self, episode_id: str, error: str) -> None:
        self._db.execute(
            "UPDATE episodes SET status='failed', error=?, ended_at=? WHERE id=?",
            (error, time.time(), episode_id),
        )

    def start_lineage(
        self, run_id: str, *, arm: str, coached: str, seed: int, rounds_planned: int
    ) -> str:
        lineage_id = _new_id("lin-")
        self._db.execute(
            f"INSERT INTO lineages ({_LINEAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0, 'running', NULL, ?)",
            (lineage_id, run_id, arm, coached, seed, rounds_planned, time.time()),
        )
        return lineage_id

    def update_lineage(
        self,
        lineage_id: str,
        *,
        rounds_played: int,
        status: str = "running",
        stop_reason: str | None = None,
    ) -> None:
        self._db.execute(
            "UPDATE lineages SET rounds_played=?, status=?, stop_reason=? WHERE id=?",
            (rounds_played, status, stop_reason, lineage_id),
        )

    # -- reading -----------------------------------------------------------------------------

    def runs(self) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT r.id, r.kind, r.created_at, r.spec_json, r.haggler_version, "
            "(SELECT COUNT(*) FROM episodes e WHERE e.run_id = r.id) "
            "FROM runs r ORDER BY r.created_at, r.rowid"
        ).fetchall()
        return [
            RunRecord(
                id=r[0],
                kind=r[1],
                created_at=r[2],
                spec=json.loads(r[3]),
                haggler_version=r[4],
                episodes=r[5],
            )
            for r in rows
        ]

    def lineages(self, run_id: str) -> list[LineageRecord]:
        rows = self._db.execute(
            f"SELECT {_LINEAGE_COLUMNS} FROM lineages WHERE run_id = ? ORDER BY started_at, rowid",
            (run_id,),
        ).fetchall()
        names = [c.strip() for c in _LINEAGE_COLUMNS.split(",")]
        return [LineageRecord(**dict(zip(names, row, strict=True))) for row in rows]

    def add_critique(self, critique: CritiqueRecord) -> None:
        names = list(CritiqueRecord.model_fields)
        self._db.execute(
            f"INSERT INTO critiques ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [getattr(critique, name) for name in names],
        )

    def critiques(
        self, *, episode_id: str | None = None, run_id: str | None = None
    ) -> list[CritiqueRecord]:
        """The critiques of one game, or of every game of a run."""
        names = list(CritiqueRecord.model_fields)
        columns = ", ".join(f"c.{name}" for name in names)
        if episode_id is not None:
            where, param = "c.episode_id = ?", episode_id
        elif run_id is not None:
            where, param = "e.run_id = ?", run_id
        else:
            raise ValueError("critiques() needs an episode_id or a run_id")
        rows = self._db.execute(
            f"SELECT {columns} FROM critiques c JOIN episodes e ON e.id = c.episode_id "
            f"WHERE {where} ORDER BY c.created_at, c.rowid",
            (param,),
        )
        return [CritiqueRecord(**dict(zip(names, row, strict=True))) for row in rows]

    def resolve_run(self, ref: str | None) -> str:
        """The id of the run `ref` names (an id or a unique prefix); the latest when None."""
        return self._resolve("runs", ref, "run")

    def resolve_episode(self, ref: str | None) -> str:
        """The id of the episode `ref` names (an id or a unique prefix); the latest when None."""
        return self._resolve("episodes", ref, "game")

    def _resolve(self, table: str, ref: str | None, noun: str) -> str:
        order = "created_at" if table == "runs" else "started_at"
        if ref is None:
            row = self._db.execute(
                f"SELECT id FROM {table} ORDER BY {order} DESC, rowid DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"store {self.path}: holds no {noun} yet; run `haggler play` first"
                )
            return str(row[0])
        rows = self._db.execute(
            f"SELECT id FROM {table} WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 3",
            (ref, like_prefix(ref)),
        ).fetchall()
        ids = [r[0] for r in rows]
        if ref in ids:
            return ref
        if len(ids) == 1:
            return str(ids[0])
        if not ids:
            raise StoreError(
                f"store {self.path}: no {noun} {ref!r}; list them with `haggler show --list`"
            )
        raise StoreError(f"store {self.path}: {noun} {ref!r} is ambiguous; give more of its id")

    def episodes(self, run_id: str | None = None) -> list[EpisodeSummary]:
        query = f"SELECT {_EPISODE_COLUMNS} FROM episodes e"
        params: tuple[Any, ...] = ()
        if run_id is not None:
            query += " WHERE run_id = ?"
            params = (run_id,)
        rows = self._db.execute(query + " ORDER BY started_at, rowid", params).fetchall()
        return [EpisodeSummary(**_summary_fields(row)) for row in rows]

    def find_episodes(
        self,
        run_id: str,
        where: GameFilter | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        latest_first: bool = False,
    ) -> list[EpisodeSummary]:
        """The games of `run_id` that `where` keeps, in the order they started (or the reverse),
        reading only the `limit` rows asked for."""
        condition, params = (where or GameFilter()).sql()
        order = "DESC" if latest_first else ""
        rows = self._db.execute(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes e WHERE e.run_id = ? AND {condition} "
            f"ORDER BY e.started_at {order}, e.rowid {order} LIMIT ? OFFSET ?",
            [run_id, *params, -1 if limit is None else limit, offset],
        ).fetchall()
        return [EpisodeSummary(**_summary_fields(row)) for row in rows]

    def count_episodes(self, run_id: str, where: GameFilter | None = None) -> int:
        condition, params = (where or GameFilter()).sql()
        row = self._db.execute(
            f"SELECT COUNT(*) FROM episodes e WHERE e.run_id = ? AND {condition}",
            [run_id, *params],
        ).fetchone()
        return int(row[0])

    def outcome_counts(self, run_id: str) -> dict[str, int]:
        """How many games of the run came to each of `OUTCOMES` (absent ones left out)."""
        counts: dict[str, int] = {}
        for status, kind, count in self._db.execute(
            "SELECT status, outcome_kind, COUNT(*) FROM episodes WHERE run_id = ? "
            "GROUP BY status, outcome_kind",
            (run_id,),
        ):
            key = kind if status == "finished" and kind else status
            counts[key] = counts.get(key, 0) + count
        return counts

    def run_facets(self, run_id: str) -> RunFacets:
        pairs = self._db.execute(
            "SELECT DISTINCT r.key, coalesce(json_extract(r.value, '$.player'), "
            "json_extract(r.value, '$.model')) FROM episodes e, json_each(e.roles_json) r "
            "WHERE e.run_id = ?",
            (run_id,),
        ).fetchall()
        rounds = self._db.execute(
            "SELECT DISTINCT round FROM episodes WHERE run_id = ? AND round IS NOT NULL ORDER BY 1",
            (run_id,),
        ).fetchall()
        arms = self._db.execute(
            "SELECT arm FROM episodes WHERE run_id = ? AND arm IS NOT NULL GROUP BY arm "
            "ORDER BY MIN(rowid)",
            (run_id,),
        ).fetchall()
        return RunFacets(
            roles=sorted({role for role, _ in pairs}, key=_role_order),
            players=sorted({player for _, player in pairs if player}),
            rounds=[r for (r,) in rounds],
            arms=[a for (a,) in arms],
        )

    def run_state(self, run_id: str) -> tuple[Any, ...]:
        """A value that changes whenever anything a run's reports read changes: a game added,
        finished or failed, a turn of a game in flight, a critique, a lineage's progress or
        stop, the spec the run was last run with."""
        games = self._db.execute(
            "SELECT COUNT(*), MAX(started_at), MAX(ended_at), SUM(status = 'finished'), "
            "SUM(status = 'failed') FROM episodes WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        in_flight = self._db.execute(
            "SELECT COUNT(*), MAX(t.ended_at) FROM episodes e JOIN turns t "
            "ON t.episode_id = e.id WHERE e.run_id = ? AND e.status = 'running'",
            (run_id,),
        ).fetchone()
        critiques = self._db.execute(
            "SELECT COUNT(*) FROM critiques c JOIN episodes e ON e.id = c.episode_id "
            "WHERE e.run_id = ?",
            (run_id,),
        ).fetchone()
        lineages = self._db.execute(
            "SELECT COUNT(*), SUM(rounds_played), SUM(status = 'stopped'), "
            "SUM(status = 'finished'), SUM(status = 'failed') FROM lineages WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        spec = self._db.execute("SELECT spec_json FROM runs WHERE id = ?", (run_id,)).fetchone()
        return (*games, *in_flight, *critiques, *lineages, spec[0] if spec else None)

    def last_activity(self, run_id: str) -> float | None:
        """When a run last stored anything (a game started or ended, a turn of a game in
        flight, a critique); None if it holds no game."""
        row = self._db.execute(
            "SELECT MAX(t) FROM ("
            "SELECT MAX(started_at) AS t FROM episodes WHERE run_id = ?1 "
            "UNION ALL SELECT MAX(ended_at) FROM episodes WHERE run_id = ?1 "
            "UNION ALL SELECT MAX(t.ended_at) FROM episodes e JOIN turns t "
            "ON t.episode_id = e.id WHERE e.run_id = ?1 AND e.status = 'running' "
            "UNION ALL SELECT MAX(c.created_at) FROM critiques c JOIN episodes e "
            "ON e.id = c.episode_id WHERE e.run_id = ?1)",
            (run_id,),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def lineage_rounds(self, lineage_id: str) -> dict[int, str]:
        """Each round of a lineage and the game that played it (the finished one, if a round
        was replayed after a failure)."""
        rounds: dict[int, str] = {}
        for round_, episode_id in self._db.execute(
            "SELECT round, id FROM episodes WHERE lineage_id = ? AND round IS NOT NULL "
            "ORDER BY round, status = 'finished', started_at, rowid",
            (lineage_id,),
        ):
            rounds[round_] = episode_id
        return rounds

    def episode(self, episode_id: str) -> EpisodeRecord:
        row = self._db.execute(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes e WHERE id = ?", (episode_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"store {self.path}: no game {episode_id!r}")
        fields = _summary_fields(row)
        return EpisodeRecord(
            **fields, rules=json.loads(row[3]), transcript=list(self._turns(episode_id))
        )

    def run_episodes(self, run_id: str, *, transcripts: bool = True) -> list[EpisodeRecord]:
        """Every game of `run_id` with its turns, in two queries however many games it holds;
        with `transcripts=False`, without them (see `speaker_totals` for their sums)."""
        turns: dict[str, list[TurnRecord]] = {}
        qualified = ", ".join(f"t.{c.strip()}" for c in _TURN_COLUMNS.split(","))
        if transcripts:
            for row in self._db.execute(
                f"SELECT t.episode_id, {qualified} FROM turns t JOIN episodes e "
                "ON e.id = t.episode_id WHERE e.run_id = ? ORDER BY t.episode_id, t.idx",
                (run_id,),
            ):
                turns.setdefault(row[0], []).append(_turn(row[1:]))
        rows = self._db.execute(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes e WHERE run_id = ? ORDER BY started_at, rowid",
            (run_id,),
        ).fetchall()
        return [
            EpisodeRecord(
                **_summary_fields(row), rules=json.loads(row[3]), transcript=turns.get(row[0], [])
            )
            for row in rows
        ]

    def speaker_totals(self, run_id: str) -> dict[str, dict[str, SpeakerTotals]]:
        """For each game of `run_id`, what each speaker's turns add up to: one query, summed
        by SQLite, for reports over runs too large to load turn by turn."""
        totals: dict[str, dict[str, SpeakerTotals]] = {}
        for row in self._db.execute(
            "SELECT t.episode_id, t.speaker, SUM(t.prompt_tokens + t.completion_tokens), "
            "SUM(t.cost_usd), SUM(t.retries), SUM(t.accepted AND NOT t.scripted), "
            "SUM(CASE WHEN t.accepted AND NOT t.scripted THEN length(t.text) ELSE 0 END), "
            "SUM(coalesce(json_extract(t.moderation_json, '$.prompt_tokens'), 0) "
            "  + coalesce(json_extract(t.moderation_json, '$.completion_tokens'), 0)), "
            "SUM(coalesce(json_extract(t.moderation_json, '$.cost_usd'), 0)), "
            "SUM(t.moderation_json IS NOT NULL) "
            "FROM turns t JOIN episodes e ON e.id = t.episode_id WHERE e.run_id = ? "
            "GROUP BY t.episode_id, t.speaker",
            (run_id,),
        ):
            totals.setdefault(row[0], {})[row[1]] = SpeakerTotals(
                tokens=row[2],
                cost_usd=row[3],
                retries=row[4],
                messages=row[5],
                chars=row[6],
                moderation_tokens=row[7],
                moderation_cost_usd=row[8],
                moderated=row[9],
            )
        return totals

    def _turns(self, episode_id: str) -> Iterator[TurnRecord]:
        for row in self._db.execute(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE episode_id = ? ORDER BY idx", (episode_id,)
        ):
            yield _turn(row)


_TURN_COLUMNS = (
    "idx, speaker, text, action_kind, price, action_source, accepted, error, scripted, model, "
    "prompt_tokens, completion_tokens, cost_usd, latency_s, retries, started_at, ended_at, "
    "moderation_json, usage_estimated, action_terms_json"
)


def _turn(r: tuple[Any, ...]) -> TurnRecord:
    return TurnRecord(
        index=r[0],
        speaker=r[1],
        text=r[2],
        action=(
            ActionRecord(
                kind=r[3], price=r[4], source=r[5], terms=json.loads(r[19]) if r[19] else None
            )
            if r[3]
            else None
        ),
        accepted=bool(r[6]),
        error=r[7],
        scripted=bool(r[8]),
        model=r[9],
        prompt_tokens=r[10],
        completion_tokens=r[11],
        cost_usd=r[12],
        latency_s=r[13],
        retries=r[14],
        started_at=r[15],
        ended_at=r[16],
        moderation=ModerationRecord.model_validate_json(r[17]) if r[17] else None,
        usage_estimated=bool(r[18]),
    )


def _summary_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "run_id": row[1],
        "game": row[2],
        "roles": {k: RoleRecord(**v) for k, v in json.loads(row[4]).items()},
        "seed": row[5],
        "status": row[6],
        "outcome": OutcomeRecord.model_validate_json(row[7]) if row[7] else None,
        "scores": json.loads(row[8]) if row[8] else {},
        "error": row[9],
        "started_at": row[10],
        "ended_at": row[11],
        "turns": row[12],
        "lineage_id": row[13],
        "round": row[14],
        "arm": row[15],
        "match_id": row[16],
    }
