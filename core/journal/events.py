"""The event log of runs: the store that owns the `events` table and its typed record.

What a person reads in the Monitor's log and `ferry status`: the RunRecorder appends, the
views read after the last id they saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ferry.core.model import LogEntry

if TYPE_CHECKING:
    from ferry.core.journal import Journal


@dataclass(frozen=True)
class EventRecord:
    """One row of `events`, its data decoded."""

    id: int
    run_id: str
    ts: float
    kind: str
    collection: str | None
    message: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EventRecord:
        return cls(
            id=int(row["id"]),
            run_id=row["run_id"],
            ts=float(row["ts"]),
            kind=row["kind"],
            collection=row["collection"],
            message=row["message"],
            data=json.loads(row["data"] or "{}"),
        )


class EventStore:
    """Append and read the event log; every method is one short transaction."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def add(self, event: LogEntry) -> int:
        return self._journal._exec(
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

    def after(self, run_id: str, after_id: int = 0, limit: int = 500) -> list[EventRecord]:
        """A run's events with an id above `after_id` (what a view has not shown yet)."""
        rows = self._journal._all(
            "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            (run_id, after_id, limit),
        )
        return [EventRecord.from_row(row) for row in rows]

    def last_retries(self, run_id: str) -> dict[str, EventRecord]:
        """Each collection's latest retry event: whether it is waiting on a throttling
        server now (see core.runs)."""
        rows = self._journal._all(
            "SELECT * FROM events WHERE id IN (SELECT MAX(id) FROM events "
            "WHERE run_id = ? AND kind = 'retry' GROUP BY collection)",
            (run_id,),
        )
        return {row["collection"]: EventRecord.from_row(row) for row in rows if row["collection"]}
