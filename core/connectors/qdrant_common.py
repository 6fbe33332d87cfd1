"""What the two Qdrant connectors (Edge engine and qdrant-client) share: the record mapping.

Both speak source ids to the engine; this module turns a columnar `Batch` into the lists
Qdrant wants and turns scrolled points back into a `Batch`, through each collection's payload
layout (core/layouts.py: flat, or what a framework's own Qdrant store writes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from core.layouts import PayloadLayout, make_layout
from core.mapping import PayloadFields, check_unique_targets
from core.model import Batch


class PayloadLayouts:
    """Which layout each collection is read and written in (a default for the rest).

    Set by the plan (`use_payload_layout`) before the first write, by validation before it
    reads, and kept per collection: one run may move a LlamaIndex and a LangChain collection.
    """

    def __init__(self, fields: PayloadFields, default: str | None = None) -> None:
        self.fields = fields
        self.default = make_layout(default, fields)
        self.chosen: dict[str, PayloadLayout] = {}

    def __call__(self, name: str) -> PayloadLayout:
        return self.chosen.get(name, self.default)

    def use(self, name: str, layout: PayloadLayout) -> None:
        self.chosen[name] = layout


def batch_to_columns(
    batch: Batch, layout: PayloadLayout
) -> tuple[list[int | str], np.ndarray, list[dict[str, Any]]]:
    """Point ids, float32 vectors and payloads for an upsert; refuses colliding ids."""
    point_ids = [layout.point_id(sid) for sid in batch.ids]
    check_unique_targets(batch.ids, point_ids)
    payloads = [
        layout.to_payload(sid, meta, doc)
        for sid, meta, doc in zip(batch.ids, batch.metadatas, batch.documents, strict=True)
    ]
    vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
    return point_ids, vectors, payloads


def records_to_batch(
    records: Iterable[tuple[Any, Any, dict[str, Any] | None]],
    layout: PayloadLayout,
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
        sid, meta, doc = layout.from_payload(point_id, payload)
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
