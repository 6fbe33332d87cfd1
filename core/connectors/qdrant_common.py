"""What the two Qdrant connectors (Edge engine and qdrant-client) share: the record mapping.

Both speak source ids to the engine; this module turns a columnar `Batch` into the lists
Qdrant wants and turns scrolled points back into a `Batch`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from core.mapping import (
    PayloadFields,
    canonical_point_id,
    check_unique_targets,
    from_payload,
    to_payload,
)
from core.model import Batch


def batch_to_columns(
    batch: Batch, fields: PayloadFields
) -> tuple[list[int | str], np.ndarray, list[dict[str, Any]]]:
    """Point ids, float32 vectors and payloads for an upsert; refuses colliding ids."""
    point_ids = [canonical_point_id(sid) for sid in batch.ids]
    check_unique_targets(batch.ids, point_ids)
    payloads = [
        to_payload(sid, meta, doc, fields)
        for sid, meta, doc in zip(batch.ids, batch.metadatas, batch.documents, strict=True)
    ]
    vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
    return point_ids, vectors, payloads


def records_to_batch(
    records: Iterable[tuple[Any, Any, dict[str, Any] | None]],
    fields: PayloadFields,
    dimension: int,
    cursor_after: Any = None,
) -> Batch:
    """(point id, vector, payload) triples back into a Batch keyed by source id."""
    ids: list[str] = []
    vectors: list[Any] = []
    metadatas: list[dict[str, Any] | None] = []
    documents: list[str | None] = []
    native_ids: list[int | str] = []
    for point_id, vector, payload in records:
        sid, meta, doc = from_payload(point_id, payload, fields)
        ids.append(sid)
        native_ids.append(normal_point_id(point_id))
        vectors.append(vector if vector is not None else np.zeros(dimension, np.float32))
        metadatas.append(meta)
        documents.append(doc)
    matrix = (
        np.asarray(vectors, dtype=np.float32).reshape(len(ids), dimension)
        if ids
        else np.zeros((0, dimension), dtype=np.float32)
    )
    return Batch(ids, matrix, metadatas, documents, cursor_after, native_ids)


def normal_point_id(point_id: Any) -> int | str:
    """A point id as Qdrant accepts it back: an int, or a UUID as its canonical string."""
    if isinstance(point_id, int):
        return point_id
    if isinstance(point_id, uuid.UUID):
        return str(point_id)
    if hasattr(point_id, "uuid") or hasattr(point_id, "num"):  # gRPC PointId
        return point_id.uuid or int(point_id.num)
    return str(point_id)


def encode_offset(offset: Any) -> Any:
    """A scroll offset as JSON (UUIDs as strings), so it can live in the journal."""
    if offset is None:
        return None
    if isinstance(offset, uuid.UUID):
        return str(offset)
    if hasattr(offset, "uuid") or hasattr(offset, "num"):  # gRPC PointId
        return offset.uuid or int(offset.num)
    return offset


def unwrap_vector(vector: Any) -> Any:
    """Qdrant returns either a plain list or {"": list} for the default unnamed vector."""
    if isinstance(vector, dict):
        return vector.get("") if "" in vector else next(iter(vector.values()), None)
    return vector
