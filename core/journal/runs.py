"""Runs and their collections' progress: the store that owns the `runs` and `run_collections`
tables, and the typed records read from them.

Why a store of its own (dlt's `common/storages/load_storage.py` keeps one storage per kind of
state over one file layer): the facts of a run — created, claimed, each collection started,
sampled, checkpointed, finished — are written here and nowhere else, and every reader gets a
`RunRecord` / `CollectionRecord` whose row → record conversion is written once, below.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ferry.core.model import Cursor, Phase, Progress
from ferry.core.states import RunState

if TYPE_CHECKING:
    from ferry.core.journal import Journal


@dataclass(frozen=True)
class RunRecord:
    """One row of `runs`, its JSON columns decoded."""

    run_id: str
    run_key: str
    source_uri: str
    target_uri: str
    collections: tuple[str, ...]  # the collections asked for; () means all
    mapping: dict[str, Any]
    options: dict[str, Any]
    status: RunState  # as stored (never `interrupted`: that is derived, see core.runs)
    error: str | None
    pid: int | None
    host: str | None
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        return cls(
            run_id=row["run_id"],
            run_key=row["run_key"],
            source_uri=row["source_uri"],
            target_uri=row["target_uri"],
            collections=tuple(json.loads(row["collections"] or "[]")),
            mapping=json.loads(row["mapping"] or "{}"),
            options=json.loads(row["options"] or "{}"),
            status=RunState(row["status"]),
            error=row["error"],
            pid=row["pid"],
            host=row["host"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True)
class CollectionRecord:
    """One row of `run_collections`: latest-value progress and the durable resume point."""

    run_id: str
    name: str
    target_name: str
    phase: Phase
    total: int = 0
    records_read: int = 0
    records_written: int = 0  # durable: at or below the watermark
    bytes_written: int = 0
    records_per_second: float = 0.0
    average_records_per_second: float = 0.0
    bytes_per_second: float = 0.0
    eta_seconds: float | None = None
    retries: int = 0
    errors: int = 0
    seconds: float = 0.0
    dimension: int | None = None
    metric: str | None = None
    skipped_reason: str | None = None
    error: str | None = None
    watermark: Cursor = None
    target_created: bool = False  # a Ferry run made the target collection: resuming is safe
    # The index phase (see core.engine): when it started (wall clock), how far it is (None
    # where the engine does not say), how long it took; and how the app should search.
    index_started_at: float | None = None
    index_seconds: float = 0.0
    indexed: int | None = None
    index_total: int | None = None
    search_ready: bool = False
    hnsw_ef: int | None = None
    tuning: dict[str, Any] | None = None
    updated_at: float = 0.0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CollectionRecord:
        return cls(
            run_id=row["run_id"],
            name=row["name"],
            target_name=row["target_name"],
            phase=Phase(row["status"]),
            total=int(row["total"] or 0),
            records_read=int(row["records_read"] or 0),
            records_written=int(row["records_written"] or 0),
            bytes_written=int(row["bytes_written"] or 0),
            records_per_second=float(row["records_per_second"] or 0),
            average_records_per_second=float(row["average_records_per_second"] or 0),
            bytes_per_second=float(row["bytes_per_second"] or 0),
            eta_seconds=row["eta_seconds"],
            retries=int(row["retries"] or 0),
            errors=int(row["errors"] or 0),
            seconds=float(row["seconds"] or 0),
            dimension=row["dimension"],
            metric=row["metric"],
            skipped_reason=row["skipped_reason"],
            error=row["error"],
            watermark=json.loads(row["watermark"]) if row["watermark"] else None,
            target_created=bool(row["target_created"]),
            index_started_at=row["index_started_at"],
            index_seconds=float(row["index_seconds"] or 0),
            indexed=row["indexed_vectors"],
            index_total=row["index_total"],
            search_ready=bool(row["search_ready"]),
            hnsw_ef=row["hnsw_ef"],
            tuning=json.loads(row["tuning"]) if row["tuning"] else None,
            updated_at=float(row["updated_at"] or 0),
        )


@dataclass(frozen=True)
class MigratedCollection:
    """A collection a run copied into a target, with its run's facts (cutover candidates)."""

    name: str
    target_name: str
    phase: Phase
    records_written: int
    total: int
    updated_at: float
    skipped_reason: str | None
    run_id: str
    source_uri: str
    run_status: RunState
    created_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MigratedCollection:
        return cls(
            name=row["name"],
            target_name=row["target_name"],
            phase=Phase(row["status"]),
            records_written=int(row["records_written"] or 0),
            total=int(row["total"] or 0),
            updated_at=float(row["updated_at"]),
            skipped_reason=row["skipped_reason"],
            run_id=row["run_id"],
            source_uri=row["source_uri"],
            run_status=RunState(row["run_status"]),
            created_at=float(row["created_at"]),
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True)
class CopiedPair:
    """Which run copies source collection `name` into `target_name`."""

    run_id: str
    name: str
    target_name: str


@dataclass(frozen=True)
class SearchSettings:
    """How the newest run left a target collection indexed and what the app searches with."""

    phase: Phase
    hnsw_ef: int | None
    search_ready: bool
    tuning: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SearchSettings:
        return cls(
            phase=Phase(row["status"]),
            hnsw_ef=row["hnsw_ef"],
            search_ready=bool(row["search_ready"]),
            tuning=json.loads(row["tuning"]) if row["tuning"] else None,
        )


class RunStore:
    """The runs and their collections' progress; every method is one short transaction.

    Writers are explicit, one method per fact (a collection started, progress sampled, a
    checkpoint committed…), so a column name never comes from a caller. During a run they are
    called by the RunRecorder's thread (core.journal.recorder), not by the engine.
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    # -- runs -------------------------------------------------------------------------------
    def create(
        self,
        run_key: str,
        source_uri: str,
        target_uri: str,
        collections: list[str],
        mapping: dict[str, Any],
        options: dict[str, Any],
    ) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        self._journal._exec(
            "INSERT INTO runs (run_id, run_key, source_uri, target_uri, collections, mapping, "
            "options, status, pid, host, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (
                run_id,
                run_key,
                source_uri,
                target_uri,
                json.dumps(collections),
                json.dumps(mapping, sort_keys=True),
                json.dumps(options, sort_keys=True),
                os.getpid(),
                os.uname().nodename,
                now,
                now,
            ),
        )
        return run_id

    def latest(self, run_key: str) -> RunRecord | None:
        """The newest run of the same command (source, target, collections, mapping)."""
        row = self._journal._one(
            "SELECT * FROM runs WHERE run_key = ? ORDER BY created_at DESC LIMIT 1", (run_key,)
        )
        return RunRecord.from_row(row) if row else None

    def get(self, run_id: str) -> RunRecord | None:
        """A run by id or unique id prefix."""
        exact = self._journal._one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if exact:
            return RunRecord.from_row(exact)
        rows = self._journal._all("SELECT * FROM runs WHERE run_id LIKE ? || '%'", (run_id,))
        return RunRecord.from_row(rows[0]) if len(rows) == 1 else None

    def recent(self, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        rows = self._journal._all("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [RunRecord.from_row(row) for row in rows]

    def claim(self, run_id: str) -> None:
        """This process now drives the run (after a crash, a new pid takes over)."""
        self._journal._exec(
            "UPDATE runs SET pid = ?, host = ?, status = 'running', error = NULL, "
            "finished_at = NULL, updated_at = ? WHERE run_id = ?",
            (os.getpid(), os.uname().nodename, time.time(), run_id),
        )

    def set_status(self, run_id: str, state: RunState, error: str | None = None) -> None:
        finished = time.time() if state.finished else None
        self._journal._exec(
            "UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? "
            "WHERE run_id = ?",
            (state.value, error, time.time(), finished, run_id),
        )

    # -- collections ------------------------------------------------------------------------
    def ensure_collection(self, run_id: str, name: str, target_name: str) -> CollectionRecord:
        self._journal._exec(
            "INSERT OR IGNORE INTO run_collections (run_id, name, target_name, status, updated_at)"
            " VALUES (?, ?, ?, 'pending', ?)",
            (run_id, name, target_name, time.time()),
        )
        row = self._journal._one(
            "SELECT * FROM run_collections WHERE run_id = ? AND name = ?", (run_id, name)
        )
        assert row is not None
        return CollectionRecord.from_row(row)

    def collections(self, run_id: str) -> list[CollectionRecord]:
        rows = self._journal._all(
            "SELECT * FROM run_collections WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        return [CollectionRecord.from_row(row) for row in rows]

    def requeue_collection(self, run_id: str, name: str) -> None:
        """A resumed run's collection that did not finish (cancelled, failed, or left
        "running" by a killed process) waits again: `pending` until its copy restarts."""
        self._journal._exec(
            "UPDATE run_collections SET status = 'pending', records_per_second = 0, "
            "bytes_per_second = 0, eta_seconds = NULL, updated_at = ? "
            "WHERE run_id = ? AND name = ? AND status NOT IN ('pending', 'completed', 'skipped')",
            (time.time(), run_id, name),
        )

    def plan_collection(self, run_id: str, name: str, total: int) -> None:
        """Show a not-yet-started collection with its total from the start of the run."""
        self._update_collection(run_id, name, "total = ?", (total,), only_pending=True)

    def start_collection(
        self, run_id: str, name: str, total: int, dimension: int | None, metric: str | None
    ) -> None:
        self._update_collection(
            run_id,
            name,
            "status = ?, total = ?, dimension = ?, metric = ?, error = NULL",
            (Phase.RUNNING.value, total, dimension, metric),
        )

    def set_collection_phase(self, run_id: str, name: str, phase: Phase) -> None:
        """Paused, running again, or cancelled: the status alone changes."""
        self._update_collection(run_id, name, "status = ?", (phase.value,))

    def record_progress(self, run_id: str, name: str, progress: Progress) -> None:
        """Latest-value progress (records_written is not here: it moves with checkpoints)."""
        if progress.phase is Phase.INDEXING:
            self._update_collection(
                run_id,
                name,
                "indexed_vectors = ?, index_total = ?, index_seconds = ?, retries = ?, errors = ?",
                (
                    progress.indexed,
                    progress.index_total,
                    progress.index_seconds,
                    progress.retries,
                    progress.errors,
                ),
            )
            return
        self._update_collection(
            run_id,
            name,
            "records_read = ?, records_per_second = ?, average_records_per_second = ?, "
            "bytes_per_second = ?, eta_seconds = ?, errors = ?, seconds = ?, "
            "indexed_vectors = COALESCE(?, indexed_vectors), "
            "index_total = COALESCE(?, index_total)",
            (
                progress.records_read,
                progress.records_per_second,
                progress.average_records_per_second,
                progress.bytes_per_second,
                progress.eta_seconds,
                progress.errors,
                progress.seconds,
                progress.indexed,
                progress.index_total,
            ),
        )

    def start_indexing(
        self, run_id: str, name: str, total: int, tuning: dict[str, Any], started_at: float
    ) -> None:
        """Copied: the collection is `indexing` (a resumed run starts here, not at the copy)."""
        self._update_collection(
            run_id,
            name,
            "status = ?, index_started_at = ?, index_seconds = 0, indexed_vectors = NULL, "
            "index_total = ?, tuning = ?, hnsw_ef = ?, eta_seconds = NULL, "
            "records_per_second = 0, bytes_per_second = 0, error = NULL",
            (
                Phase.INDEXING.value,
                started_at,
                total,
                json.dumps(tuning, sort_keys=True),
                tuning.get("hnsw_ef"),
            ),
        )

    def add_retry(self, run_id: str, name: str) -> None:
        """One more retry, counted across every process that drove this run (a resume
        adds to the count instead of starting from zero)."""
        self._update_collection(run_id, name, "retries = retries + 1", ())

    def complete_collection(
        self,
        run_id: str,
        name: str,
        seconds: float,
        average_records_per_second: float,
        index_seconds: float = 0.0,
        search_ready: bool = False,
        hnsw_ef: int | None = None,
    ) -> None:
        self._update_collection(
            run_id,
            name,
            "status = ?, seconds = ?, average_records_per_second = ?, eta_seconds = 0, "
            "index_seconds = ?, search_ready = ?, hnsw_ef = COALESCE(?, hnsw_ef)",
            (
                Phase.COMPLETED.value,
                seconds,
                average_records_per_second,
                index_seconds,
                int(search_ready),
                hnsw_ef,
            ),
        )

    def skip_collection(self, run_id: str, name: str, reason: str) -> None:
        self._update_collection(
            run_id, name, "status = ?, skipped_reason = ?", (Phase.SKIPPED.value, reason)
        )

    def fail_collection(self, run_id: str, name: str, error: str, errors: int) -> None:
        # A failed collection moves no more: no rate and no ETA to show.
        self._update_collection(
            run_id,
            name,
            "status = ?, error = ?, errors = ?, records_per_second = 0, bytes_per_second = 0, "
            "eta_seconds = NULL",
            (Phase.FAILED.value, error, errors),
        )

    def _update_collection(
        self,
        run_id: str,
        name: str,
        assignments: str,
        values: tuple[Any, ...],
        only_pending: bool = False,
    ) -> None:
        """One UPDATE of a collection row; `assignments` is always a literal of this class."""
        where = "run_id = ? AND name = ?" + (" AND status = 'pending'" if only_pending else "")
        self._journal._exec(
            f"UPDATE run_collections SET {assignments}, updated_at = ? WHERE {where}",
            (*values, time.time(), run_id, name),
        )

    def checkpoint(
        self,
        run_id: str,
        name: str,
        watermark: Any,
        records_written: int,
        bytes_written: int,
        target_owned: bool = False,
    ) -> None:
        """Durably record the resume point: called only after the target acknowledged.

        `target_owned` marks the target collection as Ferry's (never unmarked), so re-runs and
        resumes may write into it.
        """
        self._journal._exec(
            "UPDATE run_collections SET watermark = ?, records_written = ?, bytes_written = ?, "
            "target_created = MAX(target_created, ?), updated_at = ? "
            "WHERE run_id = ? AND name = ?",
            (
                json.dumps(watermark),
                records_written,
                bytes_written,
                int(target_owned),
                time.time(),
                run_id,
                name,
            ),
        )

    # -- what runs left in a target ---------------------------------------------------------
    def search_settings(self, target_uri: str, target_name: str) -> SearchSettings | None:
        """The newest run's record of how `target_name` is indexed and searched there
        (None when no run wrote it)."""
        row = self._journal._one(
            "SELECT c.status, c.hnsw_ef, c.search_ready, c.tuning FROM run_collections c "
            "JOIN runs r USING (run_id) WHERE r.target_uri = ? AND c.target_name = ? "
            "ORDER BY c.updated_at DESC LIMIT 1",
            (target_uri, target_name),
        )
        return SearchSettings.from_row(row) if row else None

    def target_owned(self, target_uri: str, target_name: str) -> bool:
        """Did a Ferry run create this target collection? Then resuming into it is safe."""
        row = self._journal._one(
            "SELECT 1 FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.target_uri = ? AND c.target_name = ? AND c.target_created = 1 LIMIT 1",
            (target_uri, target_name),
        )
        return row is not None

    def target_layout(self, target_uri: str, target_name: str) -> str | None:
        """The payload layout the latest run writing this target collection used (its mapping)."""
        rows = self._journal._all(
            "SELECT c.name, r.mapping FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.target_uri = ? AND c.target_name = ? ORDER BY r.created_at DESC LIMIT 1",
            (target_uri, target_name),
        )
        for row in rows:
            layouts = (json.loads(row["mapping"] or "{}") or {}).get("layouts") or {}
            if row["name"] in layouts:
                return str(layouts[row["name"]])
        return None

    def unfinished_pairs(self, source_uri: str, target_uri: str, name: str) -> list[CopiedPair]:
        """Collections of unfinished runs (source → target) that copy `name`, newest first."""
        rows = self._journal._all(
            "SELECT c.run_id, c.name, c.target_name FROM run_collections c JOIN runs r "
            "USING (run_id) WHERE r.source_uri = ? AND r.target_uri = ? AND c.name = ? "
            "AND r.status != 'completed' ORDER BY r.created_at DESC",
            (source_uri, target_uri, name),
        )
        return [CopiedPair(row["run_id"], row["name"], row["target_name"]) for row in rows]

    def latest_pairs(self, source_uri: str, target_uri: str) -> dict[str, str]:
        """source name → target name, as the most recent run that copied each one wrote it
        (what `ferry validate` compares when it is given no NAME=TARGET)."""
        rows = self._journal._all(
            "SELECT c.name, c.target_name FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.source_uri = ? AND r.target_uri = ? ORDER BY r.created_at, c.rowid",
            (source_uri, target_uri),
        )
        return {row["name"]: row["target_name"] for row in rows}  # later runs win

    def migrated_collections(self, target_uri: str) -> list[MigratedCollection]:
        """Every collection a run copied into this target, with its run's facts, newest
        first: the cutover candidates are read from here."""
        rows = self._journal._all(
            "SELECT c.name, c.target_name, c.status, c.records_written, c.total, "
            "c.updated_at, c.skipped_reason, r.run_id, r.source_uri, r.status AS run_status, "
            "r.created_at, r.finished_at FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.target_uri = ? ORDER BY c.updated_at DESC, r.created_at DESC",
            (target_uri,),
        )
        return [MigratedCollection.from_row(row) for row in rows]
