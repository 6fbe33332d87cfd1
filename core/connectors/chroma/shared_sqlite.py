"""A read-only SQLite connection that worker threads share and any thread may close.

Why: Python's sqlite3 module runs each statement step with the GIL released, and closing
the connection from another thread during that step frees what the step is using: the
process dies (SIGSEGV in CPython 3.11's `_sqlite3`). It happens in ordinary use, because a
cancelled `await asyncio.to_thread(...)` does not stop its thread: a plan the TUI replaces,
or a run cancelled mid-read, closes its reader while the thread still reads. Here every step
(`execute`, each row, `fetchone`, `fetchall`) holds one lock and `close` takes it too, so a close waits
for the step in progress; the step after it gets sqlite3's own "closed database" error.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any


class SharedCursor:
    """A cursor whose every step holds the connection's lock."""

    def __init__(self, cursor: sqlite3.Cursor, lock: threading.RLock) -> None:
        self._cursor = cursor
        self._lock = lock

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        with self._lock:
            return next(self._cursor)

    def fetchone(self) -> Any:
        with self._lock:
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._lock:
            return self._cursor.fetchall()


class SharedConnection:
    """`execute` and `close` of a sqlite3 connection opened with `check_same_thread=False`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.RLock()

    def execute(self, sql: str, parameters: Any = ()) -> SharedCursor:
        with self._lock:
            return SharedCursor(self._db.execute(sql, parameters), self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()
