"""The journal: the single source of truth about runs, shared by every process that looks.

SQLite in WAL mode, so the engine process writes while any number of viewers (the TUI,
`ferry status --follow`) read. Its schema evolves by numbered SQL files whose SHA-256 is
recorded when applied; a changed or missing applied file is refused, the same discipline
Chroma applies to its own schema.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from ferry.core.errors import FerryError, classify
from ferry.core.journal.cutovers import CutoverRecord, CutoverStore
from ferry.core.journal.events import EventRecord, EventStore
from ferry.core.journal.mailbox import Mailbox
from ferry.core.journal.runs import (
    CollectionRecord,
    CopiedPair,
    MigratedCollection,
    RunRecord,
    RunStore,
    SearchSettings,
)
from ferry.core.journal.validations import ValidationRecord, ValidationStore
from ferry.core.secrets import redact

__all__ = [
    "CollectionRecord",
    "CopiedPair",
    "CutoverRecord",
    "CutoverStore",
    "EventRecord",
    "EventStore",
    "Journal",
    "Mailbox",
    "MigratedCollection",
    "RunRecord",
    "RunStore",
    "SearchSettings",
    "ValidationRecord",
    "ValidationStore",
]

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
    """The journal file: its one connection (thread-safe), its creation, WAL and migrations.

    What is stored lives in one store per concern, each with typed records (dlt's
    `common/storages/`: storages over one file layer): `runs` (runs and their collections'
    progress), `events` (the log), `mailbox` (pause/resume/cancel requests), `validations`
    and `cutovers`. The stores share this connection and its lock.
    """

    runs: RunStore
    events: EventStore
    mailbox: Mailbox
    validations: ValidationStore
    cutovers: CutoverStore

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
        self.runs = RunStore(self)
        self.events = EventStore(self)
        self.mailbox = Mailbox(self)
        self.validations = ValidationStore(self)
        self.cutovers = CutoverStore(self)

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

    # -- the one connection, for the stores (core/journal/*.py) and core/live/store.py ----
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
