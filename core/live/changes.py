"""What changed in an embedded Chroma collection since a cut, from the seq ids chroma keeps.

* Added and updated records: chroma stamps every row of the metadata segment's
  ``embeddings`` table with the seq id of the write that last touched it (an upsert or an
  update re-stamps it), so ``seq_id > watermark`` in a newer cut is exactly the records
  to write again — read from that cut, so each comes in its newest version.
* Deleted records leave no row, and the log (``embeddings_queue``) that names them is purged
  as soon as the HNSW files are persisted. So Ferry keeps the ids the target may hold (the
  ids of every cut it copied or caught up from) in a small SQLite file of its own, and a
  delete is an id there that the newer cut no longer has. This costs one id per record on
  Ferry's side and finds every delete, however long ago the log was purged.

Both are SQL over local files (the cut's private copy, the ids file): memory holds the
changed ids only, never the collection.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

DB_FILE = "chroma.sqlite3"


@dataclass
class Changes:
    """The records to write again (newest version in the cut) and the ids to delete."""

    upserts: list[str]
    deletes: list[str]

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)


@dataclass
class Lag:
    """How far the live source is ahead of a watermark (measured on the live directory)."""

    source_seq_id: int  # the metadata segment's newest applied seq id
    pending: int  # changes after the watermark (a lower bound once the log is purged)
    pending_since: float | None  # wall clock of the oldest of them, where the log says

    @property
    def zero(self) -> bool:
        return self.pending == 0


def ids_file_for(journal_path: Path, run_id: str, collection: str) -> Path:
    """Where the ids the target may hold are kept, next to the journal (mode 0600)."""
    key = hashlib.sha256(f"{run_id}\0{collection}".encode()).hexdigest()[:16]
    folder = journal_path.parent / "live"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder / f"{key}.ids.sqlite3"


def _open_ids(ids_file: Path, cut_dir: Path) -> sqlite3.Connection:
    fresh = not ids_file.exists()
    db = sqlite3.connect(ids_file, uri=True, isolation_level=None)
    if fresh:
        os.chmod(ids_file, 0o600)
    db.execute("CREATE TABLE IF NOT EXISTS ids (embedding_id TEXT PRIMARY KEY) WITHOUT ROWID")
    uri = f"file:{quote(str((cut_dir / DB_FILE).resolve()))}?mode=ro"
    db.execute("ATTACH DATABASE ? AS cut", (uri,))
    return db


def remember_ids(ids_file: Path, cut_dir: Path, segment: str, replace: bool) -> int:
    """Add the cut's ids of `segment` to the file (`replace`: make them its whole content,
    after a catch-up made the target equal to this cut). Returns how many it holds."""
    db = _open_ids(ids_file, cut_dir)
    try:
        db.execute("BEGIN")
        if replace:
            db.execute("DELETE FROM ids")
        db.execute(
            "INSERT OR IGNORE INTO ids SELECT embedding_id FROM cut.embeddings "
            "WHERE segment_id = ?",
            (segment,),
        )
        db.execute("COMMIT")
        return int(db.execute("SELECT count(*) FROM ids").fetchone()[0])
    finally:
        db.close()


def _seq(value: object) -> int:
    if isinstance(value, bytes):  # chromadb < 0.4.? stored seq ids big-endian
        return int.from_bytes(value, "big")
    return int(value)  # type: ignore[call-overload]


def changes_since(ids_file: Path, cut_dir: Path, segment: str, watermark: int) -> Changes:
    """Records of `segment` written after `watermark`, and ids the target may hold that the
    cut no longer has."""
    db = _open_ids(ids_file, cut_dir)
    try:
        upserts = [
            rid
            for rid, seq in db.execute(
                "SELECT embedding_id, seq_id FROM cut.embeddings WHERE segment_id = ? "
                "AND (typeof(seq_id) != 'integer' OR seq_id > ?) ORDER BY seq_id",
                (segment, watermark),
            )
            if _seq(seq) > watermark
        ]
        deletes = [
            r[0]
            for r in db.execute(
                "SELECT embedding_id FROM ids EXCEPT "
                "SELECT embedding_id FROM cut.embeddings WHERE segment_id = ?",
                (segment,),
            )
        ]
        return Changes(upserts, deletes)
    finally:
        db.close()


def _wall_clock(stamp: object) -> float | None:
    """SQLite's CURRENT_TIMESTAMP (UTC text), as chroma's log stores `created_at`."""
    if isinstance(stamp, int | float):
        return float(stamp)
    try:
        return datetime.fromisoformat(str(stamp)).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def measure_lag(
    source_dir: Path, collection_id: str, segment: str, watermark: int, seen_since: float | None
) -> Lag:
    """The live source's distance from `watermark`: three indexed reads of the live
    ``chroma.sqlite3`` (read-only; each holds SQLite's read lock for microseconds).

    Exact about *whether* there is lag (the metadata segment's own ``max_seq_id``); the count
    comes from the log, so once chroma purged it the count is the changes still logged, and
    the age falls back to when the caller first saw the source ahead (`seen_since`).
    """
    uri = f"file:{quote(str((source_dir / DB_FILE).resolve()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        row = db.execute("SELECT seq_id FROM max_seq_id WHERE segment_id = ?", (segment,))
        found = row.fetchone()
        newest = _seq(found[0]) if found and found[0] is not None else 0
        if newest <= watermark:
            return Lag(newest, 0, None)
        logged, oldest = db.execute(
            "SELECT count(*), min(created_at) FROM embeddings_queue "
            "WHERE seq_id > ? AND seq_id <= ? AND topic LIKE ?",
            (watermark, newest, "%/" + collection_id),
        ).fetchone()
    finally:
        db.close()
    since = _wall_clock(oldest) if oldest is not None else None
    if since is None or (seen_since is not None and seen_since < since):
        since = seen_since if seen_since is not None else time.time()
    return Lag(newest, max(int(logged), 1), since)
