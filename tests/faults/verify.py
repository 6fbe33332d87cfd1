"""Record-by-record verification that shares no code with Ferry's readers.

The source is read with chromadb's own `get()` on a *copy* of the directory (chromadb writes
to a directory it opens); the target is read with `qdrant_edge` directly, scrolling the
shard. Ferry's connectors, mapping and layouts are not imported: a bug there cannot hide
itself here.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Record = tuple[np.ndarray, dict[str, Any] | None, str | None]


@dataclass
class Tally:
    records: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    extra: int = 0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong or self.extra)


def source_records(chroma_dir: Path, collection: str) -> dict[str, Record]:
    """Every record of `collection`, read by chromadb from a private copy of the directory."""
    import chromadb
    from chromadb.config import Settings

    with tempfile.TemporaryDirectory(prefix="ferry-verify-") as tmp:
        copy = Path(tmp) / "copy"
        shutil.copytree(chroma_dir, copy)
        client = chromadb.PersistentClient(str(copy), settings=Settings(anonymized_telemetry=False))
        found = client.get_collection(collection).get(
            include=["embeddings", "metadatas", "documents"]
        )
        out = {
            i: (np.asarray(v, dtype=np.float32), m, d)
            for i, v, m, d in zip(
                found["ids"],
                found["embeddings"],
                found["metadatas"],
                found["documents"],
                strict=True,
            )
        }
        del client
        return out


def server_records(host: str, port: int, collection: str) -> dict[str, Record]:
    """Every record of a collection on a Chroma server, through chromadb's HttpClient."""
    import chromadb

    found = (
        chromadb.HttpClient(host=host, port=port)
        .get_collection(collection)
        .get(include=["embeddings", "metadatas", "documents"])
    )
    return {
        i: (np.asarray(v, dtype=np.float32), m, d)
        for i, v, m, d in zip(
            found["ids"], found["embeddings"], found["metadatas"], found["documents"], strict=True
        )
    }


def edge_points(edge_dir: Path, collection: str) -> list[tuple[Any, np.ndarray, dict[str, Any]]]:
    """Every point of a Qdrant Edge shard: (point id, vector, payload), by qdrant_edge itself."""
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(edge_dir / collection))
    try:
        points: list[tuple[Any, np.ndarray, dict[str, Any]]] = []
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=1000, with_payload=True, with_vector=True
            )
            found, offset = shard.scroll(request)
            for p in found:
                vector = p.vector
                if isinstance(vector, dict):
                    vector = vector.get("", next(iter(vector.values())))
                points.append((p.id, np.asarray(vector, dtype=np.float32), dict(p.payload or {})))
            if offset is None or not found:
                return points
    finally:
        shard.close()


def edge_index_counts(edge_dir: Path, collection: str) -> tuple[int, int]:
    """(points, vectors in an HNSW index) of a Qdrant Edge shard, by qdrant_edge itself."""
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(edge_dir / collection))
    try:
        info = shard.info()
        return int(info.points_count), int(info.indexed_vectors_count)
    finally:
        shard.close()


def edge_records(
    edge_dir: Path, collection: str, id_field: str = "source_id", document_field: str = "document"
) -> list[tuple[str, Record]]:
    """(source id, record) per point of a flat-layout shard; a point may repeat a source id."""
    out = []
    for _pid, vector, payload in edge_points(edge_dir, collection):
        source_id = str(payload.pop(id_field, _pid))
        document = payload.pop(document_field, None)
        out.append((source_id, (vector, payload or None, document)))
    return out


def compare(source: dict[str, Record], target: list[tuple[str, Record]]) -> Tally:
    tally = Tally(records=len(source))
    seen: dict[str, int] = {}
    for source_id, record in target:
        seen[source_id] = seen.get(source_id, 0) + 1
        if source_id not in source:
            tally.extra += 1
        elif not same(source[source_id], record):
            tally.wrong += 1
    tally.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    tally.lost = sum(1 for i in source if i not in seen)
    return tally


def same(a: Record, b: Record) -> bool:
    va, ma, da = a
    vb, mb, db = b
    if va.shape != vb.shape or not np.allclose(va, vb, rtol=1e-6, atol=1e-6):
        return False
    return da == db and same_value(ma or {}, mb or {})


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (type(a) is type(b) and a == b)
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-6)
        )
    return a == b


def tree_checksum(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes: the source must never change."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
