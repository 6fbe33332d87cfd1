"""Alias switches: the store that owns the `cutovers` table and its typed record.

Every cutover, rollback and router change is one row: what a rollback goes back to, and the
audit trail (who, where, forced or not, which validation and backup it relied on).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferry.core.journal import Journal


@dataclass(frozen=True)
class CutoverRecord:
    """One row of `cutovers`, its JSON columns decoded."""

    id: int
    ts: float
    action: str  # cutover|rollback|router|delete
    target_uri: str
    alias: str
    from_collection: str | None
    to_collection: str | None
    user: str | None
    host: str | None
    forced: bool
    reason: str | None
    validation: dict[str, Any] | None
    detail: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CutoverRecord:
        return cls(
            id=int(row["id"]),
            ts=float(row["ts"]),
            action=row["action"],
            target_uri=row["target_uri"],
            alias=row["alias"],
            from_collection=row["from_collection"],
            to_collection=row["to_collection"],
            user=row["user"],
            host=row["host"],
            forced=bool(row["forced"]),
            reason=row["reason"],
            validation=json.loads(row["validation"]) if row["validation"] else None,
            detail=json.loads(row["detail"]) if row["detail"] else None,
        )


class CutoverStore:
    """Record and read alias switches; every method is one short transaction."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def record(self, **fields: Any) -> int:
        fields.setdefault("ts", time.time())
        fields.setdefault("user", os.environ.get("USER") or os.environ.get("LOGNAME") or "?")
        fields.setdefault("host", os.uname().nodename)
        for key in ("validation", "detail"):
            if key in fields and not isinstance(fields[key], str | None):
                fields[key] = json.dumps(fields[key], default=str)
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        return self._journal._exec(
            f"INSERT INTO cutovers ({columns}) VALUES ({marks})", tuple(fields.values())
        )

    def history(
        self, target_uri: str | None = None, alias: str | None = None
    ) -> list[CutoverRecord]:
        """Newest first, of one target (and alias) or of every target."""
        sql = "SELECT * FROM cutovers WHERE 1=1"
        args: list[Any] = []
        if target_uri:
            sql += " AND target_uri = ?"
            args.append(target_uri)
        if alias:
            sql += " AND alias = ?"
            args.append(alias)
        rows = self._journal._all(sql + " ORDER BY ts DESC, id DESC", tuple(args))
        return [CutoverRecord.from_row(row) for row in rows]
