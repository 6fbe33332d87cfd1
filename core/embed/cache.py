"""Never pay twice: every embedding Ferry receives is kept, keyed by what made it.

Key: (model, settings fingerprint, SHA-256 of the document). Identical documents share one
row, so they are embedded once; a crash, `kill -9`, resume, re-run or `validate --repair`
finds what was already paid for. A vector is stored as soon as its request answers - before
the batch reaches the target - so a kill loses at most the requests in flight.

Where: an SQLite file in Ferry's state directory next to the journal (never in the target,
never in the source), mode 0600. Memory stays bounded: nothing is held in memory between
batches; lookups and inserts go by the batch, in chunks under SQLite's parameter limit.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ferry.core.errors import FerryError

CACHE_FILE = "embeddings.sqlite3"
CHUNK = 500  # keys per query (SQLite allows 999 variables in older builds)

SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    document_sha256 BLOB NOT NULL,
    dimension INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, fingerprint, document_sha256)
)
"""
# Measured (bench/embed.py's machine, 10k × 256-d vectors): a rowid table writes 1 KB rows
# ~3x faster than WITHOUT ROWID (which suits small rows), and checkpointing the WAL every
# 10,000 pages instead of 1,000 halves the fsyncs; the cache then costs the stage ~5%.
WAL_CHECKPOINT_PAGES = 10_000


def document_hash(document: str) -> bytes:
    return hashlib.sha256(document.encode("utf-8")).digest()


def cache_path_for(journal_path: Path) -> Path:
    """The cache lives beside the journal (same state dir, same `--state` choice)."""
    return journal_path.with_name(CACHE_FILE)


class EmbeddingCache:
    """Vectors by (model, fingerprint, document hash); safe from the engine's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(
                path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives kill -9; fast commits
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._db.execute(SCHEMA)
        except sqlite3.Error as exc:
            raise FerryError(
                f"cannot open the embedding cache ({exc})",
                where=str(path),
                fix="check the state directory is writable (--state)",
            ) from None
        self._lock = threading.Lock()

    def get_many(
        self, model: str, fingerprint: str, hashes: Sequence[bytes]
    ) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT document_sha256, vector FROM embeddings WHERE model = ? AND "
                    f"fingerprint = ? AND document_sha256 IN ({marks})",
                    (model, fingerprint, *chunk),
                ).fetchall()
                for key, blob in rows:
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(
        self, model: str, fingerprint: str, items: Iterable[tuple[bytes, np.ndarray]]
    ) -> None:
        rows = [
            (
                model,
                fingerprint,
                key,
                int(vector.shape[0]),
                np.asarray(vector, np.float32).tobytes(),
            )
            for key, vector in items
        ]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
            return int(
                self._db.execute(
                    "SELECT count(*) FROM embeddings WHERE model = ?", (model,)
                ).fetchone()[0]
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
