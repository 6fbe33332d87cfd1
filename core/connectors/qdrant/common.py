"""What the two Qdrant connectors (Edge engine and qdrant-client) share: the record mapping.

Both speak source ids to the engine; this module turns a columnar `Batch` into the lists
Qdrant wants and turns scrolled points back into a `Batch`, through each collection's payload
layout (core/layouts/: flat, or what a framework's own Qdrant store writes).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import numpy as np

from ferry.core.errors import PermanentError
from ferry.core.layouts import PayloadLayout, make_layout
from ferry.core.mapping import PayloadFields, check_unique_targets
from ferry.core.model import Batch


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


class LayoutIds:
    """The id side of a Qdrant target, which both connectors answer the same way: a source
    id becomes the point id its collection's layout gives it (uuid5, kept UUID, or the id a
    framework derives), and deleting by source id deletes those points."""

    layouts: PayloadLayouts
    delete_native: Callable[[str, list[Any]], Awaitable[None]]  # each connector's own

    async def delete(self, name: str, ids: list[str]) -> None:
        await self.delete_native(name, [self.layouts(name).point_id(i) for i in ids])

    def native_id(self, source_id: str, name: str | None = None) -> int | str:
        return self.layouts(name or "").point_id(source_id)

    def use_payload_layout(self, name: str, layout: PayloadLayout) -> None:
        self.layouts.use(name, layout)

    def payload_layout(self, name: str) -> PayloadLayout:
        return self.layouts(name)


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


class CollisionGuard:
    """Catches a source id that lands on another source id's point in a *different* batch.

    Only one shape can collide: a source id kept as it is because it is a canonical UUID of
    version 5 (the version uuid5 produces) equal to uuid5 of another source id. So the check
    costs nothing for ordinary ids: a batch's kept v5 UUIDs are looked up on the target (a
    point there holding another `source_id` is a collision, whichever came first, across
    processes too), and each batch's mapped point ids are matched against the kept v5 UUIDs
    written so far by this process. Left for the final count: a kept v5 UUID written before
    a resume whose twin arrives after it.
    """

    def __init__(self) -> None:
        self._kept_v5: dict[str, dict[str, str]] = {}  # collection → point id → source id

    def suspects(self, collection: str, batch: Batch, point_ids: list[Any]) -> list[Any]:
        """The point ids of this batch to look up on the target; raises on a collision
        already visible in memory."""
        kept = self._kept_v5.setdefault(collection, {})
        lookup: list[Any] = []
        for sid, pid in zip(batch.ids, point_ids, strict=True):
            if pid == sid:
                if _is_v5(sid):
                    lookup.append(pid)
                    kept[pid] = sid
            elif isinstance(pid, str) and pid in kept and kept[pid] != sid:
                raise collision(collection, kept[pid], sid, pid)
        return lookup

    @staticmethod
    def check(
        collection: str,
        batch: Batch,
        point_ids: list[Any],
        found: dict[Any, Any],
        source_of: Callable[[Any, dict[str, Any] | None], str],
    ) -> None:
        """`found`: point id → payload of the suspects that exist on the target;
        `source_of(point id, payload)`: the source id the layout reads from a point."""
        writing = {str(p): s for p, s in zip(point_ids, batch.ids, strict=True)}
        for pid, payload in found.items():
            holder = source_of(pid, payload)
            mine = writing.get(str(normal_point_id(pid)))
            if mine is not None and str(holder) != mine:
                raise collision(collection, str(holder), mine, pid)


def _is_v5(source_id: str) -> bool:
    if len(source_id) != 36:
        return False
    try:
        return uuid.UUID(source_id).version == 5
    except ValueError:
        return False


def collision(collection: str, first: str, second: str, point_id: Any) -> PermanentError:
    return PermanentError(
        f"{collection}: source ids {first!r} and {second!r} map to the same point id {point_id}",
        fix="one id is the uuid5 of the other: rename one of them in the source",
    )
