"""The journal's record of live collections: the cut watermark and the lag, per collection.

One row per (run, collection) in ``live_cuts`` (migration 0020). The watermark is the seq id
up to which the target holds every change of the source; it only moves forward, and only
after the target synced what a catch-up applied — like the engine's checkpoints.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ferry.core.journal import Journal


@dataclass
class LiveCut:
    """One collection's row: how far the target is, and how far behind the source."""

    run_id: str
    collection: str
    target_name: str
    cut_seq_id: int
    cut_at: float
    ids_file: str | None
    source_seq_id: int | None
    pending: int
    pending_since: float | None
    applied: int
    catch_ups: int
    follower_pid: int | None
    following_since: float | None
    note: str | None
    updated_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LiveCut:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    @property
    def following(self) -> bool:
        """A `--follow` process is applying changes now: its pid is recorded (cleared when it
        stops) and alive. A long catch-up pass refreshes nothing meanwhile, so the row's age
        alone would not say; a follower killed with -9 leaves its pid, which is then dead."""
        if self.follower_pid is None:
            return False
        try:
            os.kill(self.follower_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, another user's
        return True

    def lag_seconds(self, now: float | None = None) -> float:
        """Age of the oldest change not applied yet (0 when there is none)."""
        if not self.pending or self.pending_since is None:
            return 0.0
        return max(0.0, (now or time.time()) - self.pending_since)

    def to_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "target_name": self.target_name,
            "cut_seq_id": self.cut_seq_id,
            "source_seq_id": self.source_seq_id,
            "lag_changes": self.pending,
            "lag_seconds": round(self.lag_seconds(), 3),
            "applied": self.applied,
            "catch_ups": self.catch_ups,
            "following": self.following,
            "note": self.note,
        }

    def lag_words(self) -> str:
        """`lag 0` or `lag 120 changes, 3.2 s`: what the Monitor and `status` show."""
        if not self.pending:
            return "lag 0"
        return f"lag {self.pending:,} changes, {self.lag_seconds():.1f} s"


class LiveStore:
    """`live_cuts` rows in and out (the journal's connection and lock)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def start(
        self,
        run_id: str,
        collection: str,
        target_name: str,
        cut_seq_id: int,
        cut_at: float,
        ids_file: str,
        note: str | None,
    ) -> None:
        """The bulk copy of `collection` reads a cut: its watermark is the earliest cut a
        copy into this target read (a resumed copy reads a newer one; changes after the first
        are applied again by catch-up, which is harmless)."""
        self.journal._exec(  # noqa: SLF001 - the journal's one connection, like its stores
            "INSERT OR IGNORE INTO live_cuts (run_id, collection, target_name, cut_seq_id, "
            "cut_at, ids_file, note, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, collection, target_name, cut_seq_id, cut_at, ids_file, note, time.time()),
        )

    def get(self, run_id: str, collection: str) -> LiveCut | None:
        row = self.journal._one(  # noqa: SLF001
            "SELECT * FROM live_cuts WHERE run_id = ? AND collection = ?", (run_id, collection)
        )
        return LiveCut.from_row(row) if row else None

    def of_run(self, run_id: str) -> dict[str, LiveCut]:
        rows = self.journal._all(  # noqa: SLF001
            "SELECT * FROM live_cuts WHERE run_id = ? ORDER BY collection", (run_id,)
        )
        return {r["collection"]: LiveCut.from_row(r) for r in rows}

    def for_target(self, target_name: str) -> list[LiveCut]:
        rows = self.journal._all(  # noqa: SLF001
            "SELECT * FROM live_cuts WHERE target_name = ? ORDER BY updated_at DESC",
            (target_name,),
        )
        return [LiveCut.from_row(r) for r in rows]

    def advance(
        self, run_id: str, collection: str, cut_seq_id: int, cut_at: float, applied: int, note: str
    ) -> None:
        """A catch-up is applied and synced: the watermark moves to its cut."""
        self.journal._exec(  # noqa: SLF001
            "UPDATE live_cuts SET cut_seq_id = max(cut_seq_id, ?), cut_at = ?, "
            "applied = applied + ?, catch_ups = catch_ups + 1, note = ?, updated_at = ? "
            "WHERE run_id = ? AND collection = ?",
            (cut_seq_id, cut_at, applied, note, time.time(), run_id, collection),
        )

    def set_note(self, run_id: str, collection: str, note: str) -> None:
        self.journal._exec(  # noqa: SLF001
            "UPDATE live_cuts SET note = ?, updated_at = ? WHERE run_id = ? AND collection = ?",
            (note, time.time(), run_id, collection),
        )

    def set_lag(
        self,
        run_id: str,
        collection: str,
        source_seq_id: int | None,
        pending: int,
        pending_since: float | None,
        following: bool,
    ) -> None:
        self.journal._exec(  # noqa: SLF001
            "UPDATE live_cuts SET source_seq_id = ?, pending = ?, pending_since = ?, "
            "follower_pid = ?, following_since = CASE WHEN ? THEN "
            "coalesce(following_since, ?) ELSE NULL END, updated_at = ? "
            "WHERE run_id = ? AND collection = ?",
            (
                source_seq_id,
                pending,
                pending_since if pending else None,
                os.getpid() if following else None,
                following,
                time.time(),
                time.time(),
                run_id,
                collection,
            ),
        )
