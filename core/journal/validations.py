"""Validation results: the store that owns the `validations` table and its typed record.

`ferry validate` records each collection's verdict here; the cutover gate reads the latest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferry.core.journal import Journal


@dataclass(frozen=True)
class ValidationRecord:
    """One row of `validations`, its result decoded."""

    id: int
    ts: float
    source_uri: str
    target_uri: str
    collection: str
    target_collection: str
    ok: bool
    result: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ValidationRecord:
        return cls(
            id=int(row["id"]),
            ts=float(row["ts"]),
            source_uri=row["source_uri"],
            target_uri=row["target_uri"],
            collection=row["collection"],
            target_collection=row["target_collection"],
            ok=bool(row["ok"]),
            result=json.loads(row["result"]),
        )


class ValidationStore:
    """Record and read validations; every method is one short transaction."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def record(
        self,
        source_uri: str,
        target_uri: str,
        collection: str,
        target_collection: str,
        ok: bool,
        result: dict[str, Any],
    ) -> int:
        return self._journal._exec(
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

    def latest(self, target_uri: str, target_collection: str) -> ValidationRecord | None:
        row = self._journal._one(
            "SELECT * FROM validations WHERE target_uri = ? AND target_collection = ? "
            "ORDER BY ts DESC, id DESC LIMIT 1",
            (target_uri, target_collection),
        )
        return ValidationRecord.from_row(row) if row else None
