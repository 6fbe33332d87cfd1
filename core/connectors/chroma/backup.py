"""Back up one collection of an embedded Chroma directory, never writing to the source.

What is copied: `chroma.sqlite3` through SQLite's online backup API from a `mode=ro`
connection (a consistent snapshot even if chromadb is writing; the source gets no journal,
lock file or -shm from us), and the collection's segment directories (the HNSW files) next
to it, byte for byte. The copy is a Chroma directory of its own (`chroma+file:///…/data`).

Consistency between the database and the segment files: the fingerprint (path, size, mtime
of every file involved) is taken before and after the copy; if a chromadb process wrote in
between, the copy is discarded and taken once more, then refused with the reason.

Verification reads the copy with Ferry's read-only file reader and compares the record count
and a digest of every record (ids, vectors, metadata, documents) with the same read of the
source. Where the file reader does not know the layout, row counts in SQLite are compared
instead, and the manifest says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.backup_store import (
    BackupResult,
    BackupStore,
    Progress,
    files_under,
    fingerprint,
    partial_backup,
    public_uri,
    sqlite_is_wal,
    sqlite_readonly,
    total_size,
)
from ferry.core.errors import FerryError

DB_FILE = "chroma.sqlite3"
ATTEMPTS = 2  # a copy that a concurrent writer invalidated is taken once more


def collection_segments(db: Path, collection: str) -> list[str]:
    """Ids of the collection's segments (in every database of the directory that has it)."""
    conn = sqlite_readonly(db)
    try:
        rows = conn.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE c.name = ?",
            (collection,),
        ).fetchall()
        if not rows:
            names = [r[0] for r in conn.execute("SELECT name FROM collections ORDER BY name")]
            raise FerryError(
                f"no collection {collection!r}",
                where=str(db.parent),
                fix=f"choose one of: {', '.join(names) or '(none)'}",
            )
    except Exception as exc:
        if isinstance(exc, FerryError):
            raise
        raise FerryError(f"cannot read {DB_FILE}: {exc}", where=str(db)) from exc
    finally:
        conn.close()
    return [str(r[0]) for r in rows]


def backup_chroma_directory(
    path: Path, uri: str, collection: str, to: Path, progress: Progress | None = None
) -> BackupResult:
    db = path / DB_FILE
    if not db.is_file():
        raise FerryError(
            f"not a Chroma directory (no {DB_FILE})",
            where=str(path),
            fix="point chroma+file:// at the folder that holds chroma.sqlite3",
        )
    if sqlite_is_wal(db):
        raise FerryError(
            f"{DB_FILE} is in WAL journal mode: a read-only backup could leave a -shm file",
            where=str(db),
            fix="stop the process using it, or copy the directory while nothing runs",
        )
    segments = collection_segments(db, collection)
    identity = {
        "kind": "chroma-embedded",
        "location": str(path.resolve()),
        "collection": collection,
    }
    store = BackupStore(to)

    def involved() -> list[Path]:
        rels = [Path(DB_FILE)]
        for segment in segments:
            if (path / segment).is_dir():
                rels += [Path(segment) / rel for rel in files_under(path / segment)]
        return rels

    for _attempt in range(ATTEMPTS):
        rels = involved()
        before = fingerprint(path, rels)
        reused = store.find_reusable(identity, before, None, progress)
        if reused is not None:
            return reused
        with partial_backup(store, collection, total_size(path, rels), progress) as partial:
            partial.copy_sqlite(db, DB_FILE)
            for rel in rels[1:]:
                partial.copy_file(path / rel, rel)
            if fingerprint(path, involved()) != before:
                partial.abort()
                continue
            counts, notes = verify_copy(path, partial.data, collection)
            return partial.commit(
                {
                    "kind": "chroma-embedded",
                    "identity": identity,
                    "collection": collection,
                    "source_uri": public_uri(uri),
                    "source_fingerprint": before,
                    "counts": counts,
                    "segments": segments,
                    "notes": notes,
                }
            )
    raise FerryError(
        "the Chroma directory changed while it was being copied",
        where=str(path),
        fix="stop the application writing to it, then back up again",
    )


def verify_copy(source: Path, copy: Path, collection: str) -> tuple[dict[str, Any], list[str]]:
    """Read the copy back and compare it with the source; a difference is a FerryError."""
    from ferry.core.connectors.chroma.files import ChromaDirectory

    with ChromaDirectory(source) as original:
        readable = original.recognised()
        if readable:
            expected = record_digest(original, collection)
    if not readable:
        want, got = _row_count(source, collection), _row_count(copy, collection)
        if want != got:
            raise FerryError(
                f"the backup has {got} rows of {collection!r}, the source {want}",
                where=str(copy),
            )
        return {"records": got}, [
            "the file reader does not know this layout: verified by row counts only"
        ]
    with ChromaDirectory(copy) as backup:
        if not backup.recognised():
            raise FerryError("the backup cannot be read back", where=str(copy))
        found = record_digest(backup, collection)
    if found != expected:
        raise FerryError(
            f"the backup differs from the source ({found['records']} records, "
            f"source {expected['records']})",
            where=str(copy),
            fix="back up again; if it persists, report it",
        )
    return found, []


def record_digest(directory: Any, collection: str) -> dict[str, Any]:
    """Count and sha256 of every record as the file reader returns it (ids, vectors,
    metadata with exact types, documents), in read order."""
    digest = hashlib.sha256()
    records = 0
    for batch in directory.read(collection, None, 2000):
        vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
        for i, record_id in enumerate(batch.ids):
            digest.update(record_id.encode() + b"\0")
            digest.update(vectors[i].tobytes())
            digest.update(
                json.dumps(batch.metadatas[i], sort_keys=True, default=repr).encode() + b"\0"
            )
            document = batch.documents[i] if batch.documents is not None else None
            digest.update(b"\1" if document is None else document.encode() + b"\0")
        records += len(batch.ids)
    return {"records": records, "records_sha256": digest.hexdigest()}


def _row_count(path: Path, collection: str) -> int:
    conn = sqlite_readonly(path / DB_FILE)
    try:
        row = conn.execute(
            "SELECT count(*) FROM embeddings e JOIN segments s ON e.segment_id = s.id "
            "JOIN collections c ON s.collection = c.id WHERE c.name = ?",
            (collection,),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])
