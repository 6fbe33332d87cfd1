"""The pause/resume/cancel mailbox: the store that owns the `controls` table.

Another process (the TUI, `ferry pause`) asks; the engine process driving the run takes the
request. One pending request per run: a newer one replaces it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ferry.core.errors import FerryError

if TYPE_CHECKING:
    from ferry.core.journal import Journal

COMMANDS = frozenset({"pause", "resume", "cancel"})


class Mailbox:
    """Control requests between processes; every method is one short transaction."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def request(self, run_id: str, command: str) -> None:
        """Ask the engine process driving `run_id` to pause, resume or cancel."""
        if command not in COMMANDS:
            raise FerryError(f"unknown control command {command!r}", fix="pause|resume|cancel")
        self._journal._exec(
            "INSERT INTO controls (run_id, command, issued_at) VALUES (?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET command = excluded.command, "
            "issued_at = excluded.issued_at",
            (run_id, command, time.time()),
        )

    def pending(self, run_id: str) -> str | None:
        """The control request not yet taken by the engine process, if any (read only)."""
        row = self._journal._one("SELECT command FROM controls WHERE run_id = ?", (run_id,))
        return str(row["command"]) if row else None

    def take(self, run_id: str) -> str | None:
        """The pending request, removed: the engine process acts on it once."""
        with self._journal._lock:
            row = self._journal._one("SELECT command FROM controls WHERE run_id = ?", (run_id,))
            if row:
                self._journal._exec("DELETE FROM controls WHERE run_id = ?", (run_id,))
                return str(row["command"])
        return None
