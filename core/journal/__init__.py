"""The journal: the single source of truth about runs, shared by every process that looks.

SQLite in WAL mode, so the engine process writes while any number of viewers (the TUI,
`ferry status --follow`) read. Its schema evolves by numbered SQL files whose SHA-256 is
recorded when applied; a changed or missing applied file is refused, the same discipline
Chroma applies to its own schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from ferry.core.errors import FerryError, classify
from ferry.core.model import LogEntry, Phase, Progress
from ferry.core.secrets import redact
from ferry.core.states import RunState

MIGRATIONS_PACKAGE = "ferry.core.journal.migrations"


def default_state_path() -> Path:
    from platformdirs import user_state_dir

    return Path(os.environ.get("FERRY_STATE") or Path(user_state_dir("ferry")) / "journal.sqlite3")


def bundled_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, sql) for every migration file shipped with this Ferry."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Journal:
    """Thread-safe access to the journal file; every method is one short transaction.

    Writers are explicit, one method per fact (a collection started, progress sampled, a
    checkpoint committed…), so a column name never comes from a caller. During a run they are
    called by the RunRecorder's thread (core.journal.recorder), not by the engine.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_state_path()
        self._lock = threading.RLock()
        where = str(self.path)
        if self.path.is_dir():
            raise FerryError(
                "the journal path is a directory", where, fix="pass --state PATH/journal.sqlite3"
            )
        if self.path.exists() and not self.path.is_file():  # /dev/null, a pipe, a socket
            raise FerryError(
                "the journal path is not a regular file",
                where,
                fix="pass --state PATH to a file (it is created if missing)",
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            self._db = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.row_factory = sqlite3.Row
            _use_wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process
            self._db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise FerryError(
                    "the journal file is not a Ferry journal (not SQLite, or damaged)",
                    where,
                    fix="pass --state PATH to a new file (keep this one: it is not Ferry's)",
                ) from exc
            raise FerryError(
                f"cannot open the journal: {exc}", where, fix="pass --state PATH to a writable file"
            ) from exc
        except OSError as exc:
            raise FerryError(
                f"cannot create the journal: {exc.strerror or exc}",
                where,
                fix="pass --state PATH in a writable directory",
            ) from exc
        self.migrate()
        self._check_tables()

    def _check_tables(self) -> None:
        """Every migration recorded as applied, yet a table it made gone: a damaged journal
        (a row lookup would end in "no such table"). One line, before anything is written."""
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        missing = [t for t in ("runs", "run_collections", "events") if t not in names]
        if missing:
            raise FerryError(
                f"the journal is damaged: its {missing[0]} table is missing",
                str(self.path),
                fix="pass --state PATH to a new file (keep this one for inspection)",
            )

    # -- schema -----------------------------------------------------------------------------
    def migrate(self) -> None:
        """Apply pending migrations, each in an IMMEDIATE transaction that re-reads what is
        applied: two processes creating a new journal at once apply each migration once."""
        with self._lock:
            try:
                self._migrate()
            except sqlite3.DatabaseError as exc:
                raise journal_fault(exc, self.path) from exc

    def _migrate(self) -> None:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, "
            "applied_at REAL NOT NULL)"
        )
        bundled = {version: (name, sql) for version, name, sql in bundled_migrations()}
        self._check_applied(bundled)
        for version in sorted(bundled):
            name, sql = bundled[version]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = self._db.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if not done:
                    for statement in _split_sql(sql):
                        self._db.execute(statement)
                    self._db.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                        (version, name, sha256(sql), time.time()),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _check_applied(self, bundled: dict[int, tuple[str, str]]) -> None:
        applied = {
            row["version"]: row
            for row in self._db.execute("SELECT * FROM schema_migrations ORDER BY version")
        }
        for version, row in applied.items():
            if version not in bundled:
                raise FerryError(
                    f"journal migration {row['name']} is applied but missing from this Ferry",
                    where=str(self.path),
                    fix="use the Ferry version that wrote this journal, or a new --state file",
                )
            name, sql = bundled[version]
            if sha256(sql) != row["sha256"]:
                raise FerryError(
                    f"journal migration {name} was modified after it was applied "
                    "(SHA-256 mismatch)",
                    where=str(self.path),
                    fix="restore the original migration file; never edit applied migrations",
                )

    def applied_migrations(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM schema_migrations ORDER BY version")

    # -- small helpers ----------------------------------------------------------------------
    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, args)]

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        # Every write passes here: no known secret reaches the file, whatever echoed it.
        args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        with self._lock:
            try:
                cursor = self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise journal_fault(exc, self.path) from exc
            return cursor.lastrowid or 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- runs -------------------------------------------------------------------------------
    def create_run(
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
        self._exec(
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

    def latest_run(self, run_key: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM runs WHERE run_key = ? ORDER BY created_at DESC LIMIT 1", (run_key,)
        )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """A run by id or unique id prefix."""
        exact = self._one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if exact:
            return exact
        rows = self._all("SELECT * FROM runs WHERE run_id LIKE ? || '%'", (run_id,))
        return rows[0] if len(rows) == 1 else None

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))

    def claim_run(self, run_id: str) -> None:
        """This process now drives the run (after a crash, a new pid takes over)."""
        self._exec(
            "UPDATE runs SET pid = ?, host = ?, status = 'running', error = NULL, "
            "finished_at = NULL, updated_at = ? WHERE run_id = ?",
            (os.getpid(), os.uname().nodename, time.time(), run_id),
        )

    def set_run_status(self, run_id: str, state: RunState, error: str | None = None) -> None:
        finished = time.time() if state.finished else None
        self._exec(
            "UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? "
            "WHERE run_id = ?",
            (state.value, error, time.time(), finished, run_id),
        )

    # -- collections ------------------------------------------------------------------------
    def ensure_collection(self, run_id: str, name: str, target_name: str) -> dict[str, Any]:
        self._exec(
            "INSERT OR IGNORE INTO run_collections (run_id, name, target_name, status, updated_at)"
            " VALUES (?, ?, ?, 'pending', ?)",
            (run_id, name, target_name, time.time()),
        )
        row = self._one(
            "SELECT * FROM run_collections WHERE run_id = ? AND name = ?", (run_id, name)
        )
        assert row is not None
        return row

    def requeue_collection(self, run_id: str, name: str) -> None:
        """A resumed run's collection that did not finish (cancelled, failed, or left
        "running" by a killed process) waits again: `pending` until its copy restarts."""
        self._exec(
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

    def search_settings(self, target_uri: str, target_name: str) -> dict[str, Any] | None:
        """The newest run's record of how `target_name` is indexed and searched there:
        {"status", "hnsw_ef", "search_ready", "tuning"} (None when no run wrote it)."""
        row = self._one(
            "SELECT c.status, c.hnsw_ef, c.search_ready, c.tuning FROM run_collections c "
            "JOIN runs r USING (run_id) WHERE r.target_uri = ? AND c.target_name = ? "
            "ORDER BY c.updated_at DESC LIMIT 1",
            (target_uri, target_name),
        )
        if row is None:
            return None
        return {
            "status": row["status"],
            "hnsw_ef": row["hnsw_ef"],
            "search_ready": bool(row["search_ready"]),
            "tuning": json.loads(row["tuning"]) if row["tuning"] else None,
        }

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
        self._exec(
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
        self._exec(
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

    def collections(self, run_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM run_collections WHERE run_id = ? ORDER BY rowid", (run_id,))

    def target_owned(self, target_uri: str, target_name: str) -> bool:
        """Did a Ferry run create this target collection? Then resuming into it is safe."""
        row = self._one(
            "SELECT 1 FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.target_uri = ? AND c.target_name = ? AND c.target_created = 1 LIMIT 1",
            (target_uri, target_name),
        )
        return row is not None

    def target_layout(self, target_uri: str, target_name: str) -> str | None:
        """The payload layout the latest run writing this target collection used (its mapping)."""
        rows = self._all(
            "SELECT c.name, r.mapping FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.target_uri = ? AND c.target_name = ? ORDER BY r.created_at DESC LIMIT 1",
            (target_uri, target_name),
        )
        for row in rows:
            layouts = (json.loads(row["mapping"] or "{}") or {}).get("layouts") or {}
            if row["name"] in layouts:
                return str(layouts[row["name"]])
        return None

    def unfinished_pairs(self, source_uri: str, target_uri: str, name: str) -> list[dict[str, Any]]:
        """Collection rows of unfinished runs (source → target) that copy `name`."""
        return self._all(
            "SELECT c.run_id, c.name, c.target_name FROM run_collections c JOIN runs r "
            "USING (run_id) WHERE r.source_uri = ? AND r.target_uri = ? AND c.name = ? "
            "AND r.status != 'completed' ORDER BY r.created_at DESC",
            (source_uri, target_uri, name),
        )

    def latest_pairs(self, source_uri: str, target_uri: str) -> dict[str, str]:
        """source name → target name, as the most recent run that copied each one wrote it
        (what `ferry validate` compares when it is given no NAME=TARGET)."""
        rows = self._all(
            "SELECT c.name, c.target_name FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.source_uri = ? AND r.target_uri = ? ORDER BY r.created_at, c.rowid",
            (source_uri, target_uri),
        )
        return {row["name"]: row["target_name"] for row in rows}  # later runs win

    def migrated_collections(self, target_uri: str) -> list[dict[str, Any]]:
        """Every collection a run copied into this target, with its run's facts, newest
        first: the cutover candidates are read from here."""
        return self._all(
            "SELECT c.name, c.target_name, c.status, c.records_written, c.total, "
            "c.updated_at, c.skipped_reason, r.run_id, r.source_uri, r.status AS run_status, "
            "r.created_at, r.finished_at FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE r.target_uri = ? ORDER BY c.updated_at DESC, r.created_at DESC",
            (target_uri,),
        )

    # -- events and control -----------------------------------------------------------------
    def add_event(self, event: LogEntry) -> int:
        return self._exec(
            "INSERT INTO events (run_id, ts, kind, collection, message, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                event.ts,
                event.kind,
                event.collection,
                event.message,
                json.dumps(event.data, default=str),
            ),
        )

    def events(self, run_id: str, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        return self._all(
            "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            (run_id, after_id, limit),
        )

    def last_retries(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Each collection's latest retry event ({"ts", "data"}): whether it is waiting on a
        throttling server now (see core.runs)."""
        rows = self._all(
            "SELECT collection, ts, data FROM events WHERE id IN (SELECT MAX(id) FROM events "
            "WHERE run_id = ? AND kind = 'retry' GROUP BY collection)",
            (run_id,),
        )
        return {
            row["collection"]: {"ts": row["ts"], "data": json.loads(row["data"] or "{}")}
            for row in rows
            if row["collection"]
        }

    def request(self, run_id: str, command: str) -> None:
        """Ask the engine process driving `run_id` to pause, resume or cancel."""
        if command not in {"pause", "resume", "cancel"}:
            raise FerryError(f"unknown control command {command!r}", fix="pause|resume|cancel")
        self._exec(
            "INSERT INTO controls (run_id, command, issued_at) VALUES (?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET command = excluded.command, "
            "issued_at = excluded.issued_at",
            (run_id, command, time.time()),
        )

    def pending_request(self, run_id: str) -> str | None:
        """The control request not yet taken by the engine process, if any (read only)."""
        row = self._one("SELECT command FROM controls WHERE run_id = ?", (run_id,))
        return str(row["command"]) if row else None

    def take_request(self, run_id: str) -> str | None:
        with self._lock:
            row = self._one("SELECT command FROM controls WHERE run_id = ?", (run_id,))
            if row:
                self._exec("DELETE FROM controls WHERE run_id = ?", (run_id,))
                return str(row["command"])
        return None

    # -- validations and cutovers -----------------------------------------------------------
    def record_validation(
        self,
        source_uri: str,
        target_uri: str,
        collection: str,
        target_collection: str,
        ok: bool,
        result: dict[str, Any],
    ) -> int:
        return self._exec(
            "INSERT INTO validations (ts, source_uri, target_uri, collection, target_collection,"
            " ok, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                source_uri,
                target_uri,
                collection,
                target_collection,
                int(ok),
                json.dumps(result, default=str),
            ),
        )

    def latest_validation(self, target_uri: str, target_collection: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT * FROM validations WHERE target_uri = ? AND target_collection = ? "
            "ORDER BY ts DESC, id DESC LIMIT 1",
            (target_uri, target_collection),
        )
        if row:
            row["result"] = json.loads(row["result"])
        return row

    def record_cutover(self, **fields: Any) -> int:
        fields.setdefault("ts", time.time())
        fields.setdefault("user", os.environ.get("USER") or os.environ.get("LOGNAME") or "?")
        fields.setdefault("host", os.uname().nodename)
        for key in ("validation", "detail"):
            if key in fields and not isinstance(fields[key], str | None):
                fields[key] = json.dumps(fields[key], default=str)
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        return self._exec(
            f"INSERT INTO cutovers ({columns}) VALUES ({marks})", tuple(fields.values())
        )

    def cutovers(
        self, target_uri: str | None = None, alias: str | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM cutovers WHERE 1=1"
        args: list[Any] = []
        if target_uri:
            sql += " AND target_uri = ?"
            args.append(target_uri)
        if alias:
            sql += " AND alias = ?"
            args.append(alias)
        return self._all(sql + " ORDER BY ts DESC, id DESC", tuple(args))


def _split_sql(sql: str) -> list[str]:
    """Statements of a migration file, split where SQLite itself says a statement ends."""
    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return [
        s
        for s in statements
        if any(line.strip() and not line.strip().startswith("--") for line in s.splitlines())
    ]


def _create_private(path: Path) -> None:
    """Create the journal file 0600 before SQLite opens it (no window where another user
    could read it) -- and only when it does not exist yet.

    Opening and closing an existing journal file here would drop every POSIX lock this
    process's SQLite connections hold on it (``close()`` releases all of a process's
    ``fcntl`` locks on the file). Another process would then believe it is alone in the
    database and reset the WAL under our feet: the TUI, which opens a second Journal beside
    its own, stopped seeing the runs that its detached `ferry migrate` wrote.
    """
    if path.exists():
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it between the two calls
    os.close(fd)


def _use_wal(db: sqlite3.Connection, seconds: float = 30.0) -> None:
    """Switch to WAL. Changing the journal mode takes an exclusive lock and SQLite answers
    "database is locked" at once (no busy handler) when another process holds any lock —
    as when several processes create a new journal together: retry until the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def journal_fault(exc: BaseException, path: Path) -> FerryError:
    """A journal write that failed, as one line naming the journal (disk full, read-only…)."""
    error = classify(exc, "a journal write", str(path))
    if type(error).__name__ in {"PermanentError"}:  # not a resource fault: say it is the journal
        return FerryError(
            f"the journal refused a write: {exc}",
            where=str(path),
            fix="check the file (or pass --state PATH to a new one); re-run to resume",
        )
    return error
