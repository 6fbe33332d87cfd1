"""The stores a router sits in front of: small *synchronous* adapters over the app's own
client objects (apps are mostly sync, and this library runs inside them).

Every store speaks source ids (Chroma ids) and answers queries in Chroma's conventions —
distances, lower is better: squared L2, ``1 - cos``, ``1 - dot`` — so an app written against
Chroma sees the same kind of numbers after the flip (converted with the engines' traits,
core/connectors/traits.py). Qdrant stores map ids and payloads with the collection's payload
layout (core/layouts/: flat, langchain, llamaindex, haystack), exactly as the migration did,
so a record written through the router lands on the same point, in the same shape, as the
migration wrote — and as the app's framework reads it after the switch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ferry.core.connectors.qdrant.edge_layout import EdgeLayout
from ferry.core.connectors.qdrant.edge_layout import (
    edge_alias_target as edge_alias_target,  # re-exported
)
from ferry.core.connectors.traits import CHROMA, QDRANT
from ferry.core.layouts import PayloadLayout, make_layout
from ferry.core.mapping import METRIC_FROM_QDRANT, PayloadFields
from ferry.core.model import Metadata, Metric
from ferry.core.router.state import FileWatch


@dataclass
class QueryResult:
    """Chroma-shaped answer: one list per query vector, best first."""

    ids: list[list[str]]
    distances: list[list[float]]
    metadatas: list[list[Metadata | None]]
    documents: list[list[str | None]]


@dataclass
class Records:
    """Records fetched by id (only those that exist, in the order asked)."""

    ids: list[str]
    embeddings: np.ndarray
    metadatas: list[Metadata | None] = field(default_factory=list)
    documents: list[str | None] = field(default_factory=list)


class VectorStore(Protocol):
    """What an app does with its vector store; both sides of a router implement it."""

    label: str

    def upsert(
        self,
        ids: list[str],
        embeddings: np.ndarray,
        metadatas: list[Metadata | None] | None = None,
        documents: list[str | None] | None = None,
    ) -> None: ...

    def query(self, embeddings: np.ndarray, k: int) -> QueryResult: ...

    def get(self, ids: list[str]) -> Records: ...

    def delete(self, ids: list[str]) -> None: ...

    def count(self) -> int: ...


def _columns(
    n: int, metadatas: list[Metadata | None] | None, documents: list[str | None] | None
) -> tuple[list[Metadata | None], list[str | None]]:
    return (
        list(metadatas) if metadatas is not None else [None] * n,
        list(documents) if documents is not None else [None] * n,
    )


def _matrix(embeddings: Any) -> np.ndarray:
    matrix = np.asarray(embeddings, dtype=np.float32)
    return matrix.reshape(1, -1) if matrix.ndim == 1 else matrix


class ChromaStore:
    """A chromadb Collection the app already holds (HTTP or its own embedded store)."""

    def __init__(self, collection: Any, label: str | None = None) -> None:
        self.collection = collection
        self.label = label or f"chroma:{collection.name}"

    def upsert(self, ids, embeddings, metadatas=None, documents=None) -> None:  # type: ignore[no-untyped-def]
        metas, docs = _columns(len(ids), metadatas, documents)
        self.collection.upsert(
            ids=list(ids),
            embeddings=_matrix(embeddings),
            metadatas=metas if any(m for m in metas) else None,
            documents=docs if any(d is not None for d in docs) else None,
        )

    def query(self, embeddings: np.ndarray, k: int) -> QueryResult:
        answer = self.collection.query(
            query_embeddings=_matrix(embeddings),
            n_results=k,
            include=["distances", "metadatas", "documents"],
        )
        rows = len(answer["ids"])
        return QueryResult(
            ids=[list(r) for r in answer["ids"]],
            distances=[[float(d) for d in r] for r in (answer.get("distances") or [[]] * rows)],
            metadatas=[list(r) for r in (answer.get("metadatas") or [[]] * rows)],
            documents=[list(r) for r in (answer.get("documents") or [[]] * rows)],
        )

    def get(self, ids: list[str]) -> Records:
        answer = self.collection.get(
            ids=list(ids), include=["embeddings", "metadatas", "documents"]
        )
        order = {sid: i for i, sid in enumerate(answer["ids"])}
        wanted = [sid for sid in ids if sid in order]
        embeddings = answer.get("embeddings")
        matrix = (
            np.asarray([embeddings[order[s]] for s in wanted], dtype=np.float32)
            if wanted
            else np.zeros((0, 0), np.float32)
        )
        metas = answer.get("metadatas") or [None] * len(order)
        docs = answer.get("documents") or [None] * len(order)
        return Records(
            wanted, matrix, [metas[order[s]] for s in wanted], [docs[order[s]] for s in wanted]
        )

    def delete(self, ids: list[str]) -> None:
        self.collection.delete(ids=list(ids))

    def count(self) -> int:
        return int(self.collection.count())


def qdrant_to_chroma_distance(metric: Metric | None, score: float) -> float:
    """A Qdrant score in Chroma's convention, so both sides of a router rank alike."""
    return QDRANT.convert(metric, score, to=CHROMA)


class QdrantStore:
    """A collection — or an alias, which the server resolves — through a sync QdrantClient."""

    def __init__(
        self,
        client: Any,
        collection: str,
        fields: PayloadFields | None = None,
        label: str | None = None,
        layout: str | PayloadLayout | None = None,
        hnsw_ef: int | None = None,
    ) -> None:
        self.client = client
        self.collection = collection
        self.fields = fields or PayloadFields()
        self.layout = _layout(layout, self.fields)
        self.label = label or f"qdrant:{collection}"
        # The search-time ef the migration recorded (the source's ef_search): Qdrant has no
        # per-collection default for it and would search with ef_construct.
        self.hnsw_ef = hnsw_ef
        self._metric: Metric | None = None

    def _distance_metric(self) -> Metric | None:
        if self._metric is None:
            vectors = self.client.get_collection(self.collection).config.params.vectors
            if isinstance(vectors, dict):
                vectors = vectors.get("") or next(iter(vectors.values()))
            distance = getattr(vectors.distance, "value", vectors.distance)
            self._metric = METRIC_FROM_QDRANT.get(str(distance))
        return self._metric

    def upsert(self, ids, embeddings, metadatas=None, documents=None) -> None:  # type: ignore[no-untyped-def]
        from qdrant_client import models

        metas, docs = _columns(len(ids), metadatas, documents)
        self.client.upsert(
            self.collection,
            points=models.Batch(
                ids=[self.layout.point_id(i) for i in ids],
                vectors=_matrix(embeddings).tolist(),
                payloads=[
                    self.layout.to_payload(i, m, d)
                    for i, m, d in zip(ids, metas, docs, strict=True)
                ],
            ),
            wait=True,
        )

    def query(self, embeddings: np.ndarray, k: int) -> QueryResult:
        from qdrant_client import models

        metric = self._distance_metric()
        answers = self.client.query_batch_points(
            self.collection,
            requests=[
                models.QueryRequest(
                    query=v.tolist(),
                    limit=k,
                    with_payload=True,
                    params=models.SearchParams(hnsw_ef=self.hnsw_ef) if self.hnsw_ef else None,
                )
                for v in _matrix(embeddings)
            ],
        )
        result = QueryResult([], [], [], [])
        for answer in answers:
            decoded = [self.layout.from_payload(p.id, p.payload) for p in answer.points]
            result.ids.append([sid for sid, _, _ in decoded])
            result.metadatas.append([meta for _, meta, _ in decoded])
            result.documents.append([doc for _, _, doc in decoded])
            result.distances.append(
                [qdrant_to_chroma_distance(metric, p.score) for p in answer.points]
            )
        return result

    def get(self, ids: list[str]) -> Records:
        points = self.client.retrieve(
            self.collection,
            [self.layout.point_id(i) for i in ids],
            with_payload=True,
            with_vectors=True,
        )
        return _records(ids, ((p.id, p.vector, p.payload) for p in points), self.layout)

    def delete(self, ids: list[str]) -> None:
        from qdrant_client import models

        self.client.delete(
            self.collection,
            points_selector=models.PointIdsList(points=[self.layout.point_id(i) for i in ids]),
            wait=True,
        )

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)


def _layout(layout: str | PayloadLayout | None, fields: PayloadFields) -> PayloadLayout:
    return layout if isinstance(layout, PayloadLayout) else make_layout(layout, fields)


def _records(ids: list[str], points: Any, layout: PayloadLayout) -> Records:
    found: dict[str, tuple[Any, Metadata | None, str | None]] = {}
    for point_id, vector, payload in points:
        if isinstance(vector, dict):
            vector = vector.get("") if "" in vector else next(iter(vector.values()), None)
        sid, meta, doc = layout.from_payload(point_id, payload)
        found[sid] = (vector, meta, doc)
    wanted = [sid for sid in ids if sid in found]
    matrix = (
        np.asarray([found[s][0] for s in wanted], dtype=np.float32)
        if wanted
        else np.zeros((0, 0), np.float32)
    )
    return Records(wanted, matrix, [found[s][1] for s in wanted], [found[s][2] for s in wanted])


class EdgeStore:
    """A Qdrant Edge collection, or a Ferry alias under the Edge root, served by a worker
    process of its own (core/connectors/qdrant/edge_worker.py, the one `ferry migrate` uses).

    Why a process: Edge memory-maps its segments, and a write into a mapping on a full disk
    is a SIGBUS — in-process it killed the whole application (exit 135), the primary's
    traffic with it. In the worker it kills the worker: the call fails (a counted, replayed
    mirror failure, or a canary read served by the primary), the app lives on, and the next
    call starts a fresh worker. The alias file is re-checked on each call (one ``os.stat``);
    when `ferry cutover` moves the alias, the next call uses the new shard and closes the old.
    """

    def __init__(
        self,
        root: str | Path,
        name: str,
        fields: PayloadFields | None = None,
        label: str | None = None,
        layout: str | PayloadLayout | None = None,
        hnsw_ef: int | None = None,
    ) -> None:
        from ferry.core.connectors.qdrant.edge_worker import EdgeProcess

        self.root = Path(root)
        self.name = name
        self.hnsw_ef = hnsw_ef  # as QdrantStore.hnsw_ef
        self.fields = fields or PayloadFields()
        self.payload_layout = _layout(layout, self.fields)
        self.label = label or f"qdrant-edge:{name}"
        self.layout = EdgeLayout(self.root)
        self._lock = threading.Lock()
        self._alias_watch = FileWatch(self.layout.alias_file)
        self._resolved: str | None = None
        self._open_name: str | None = None
        self._metric: Metric | None = None
        self.worker = EdgeProcess(self.root, lock_wait=0)  # never stall the app's call

    @property
    def collection(self) -> str:
        """The physical collection this store uses now (after alias resolution)."""
        if self._alias_watch.changed() or self._resolved is None:
            self._resolved = self.layout.resolve(self.name)
        return self._resolved

    def _open(self) -> str:
        """The collection to send requests for; closes the previous one after a cutover."""
        with self._lock:
            wanted = self.collection
            if self._open_name == wanted:
                return wanted
            if self._open_name is not None:
                try:
                    self.worker.call("close", self._open_name)
                except Exception:
                    pass  # a dead worker holds nothing
            _size, self._metric = self.layout.vector_params(wanted)
            self._open_name = wanted
            return wanted

    def upsert(self, ids, embeddings, metadatas=None, documents=None) -> None:  # type: ignore[no-untyped-def]
        name = self._open()
        metas, docs = _columns(len(ids), metadatas, documents)
        self.worker.upsert(
            name,
            [self.payload_layout.point_id(i) for i in ids],
            _matrix(embeddings),
            [
                self.payload_layout.to_payload(i, m, d)
                for i, m, d in zip(ids, metas, docs, strict=True)
            ],
        )
        self.worker.call("flush", name)

    def query(self, embeddings: np.ndarray, k: int) -> QueryResult:
        name = self._open()
        answers = self.worker.call("points", name, _matrix(embeddings), k, self.hnsw_ef)
        result = QueryResult([], [], [], [])
        for hits in answers:
            decoded = [self.payload_layout.from_payload(pid, payload) for pid, _, payload in hits]
            result.ids.append([sid for sid, _, _ in decoded])
            result.metadatas.append([meta for _, meta, _ in decoded])
            result.documents.append([doc for _, _, doc in decoded])
            result.distances.append(
                [qdrant_to_chroma_distance(self._metric, score) for _, score, _ in hits]
            )
        return result

    def get(self, ids: list[str]) -> Records:
        name = self._open()
        found = self.worker.call("retrieve", name, [self.payload_layout.point_id(i) for i in ids])
        return _records(ids, found, self.payload_layout)

    def delete(self, ids: list[str]) -> None:
        name = self._open()
        self.worker.call("delete", name, [self.payload_layout.point_id(i) for i in ids])
        self.worker.call("flush", name)

    def count(self) -> int:
        return int(self.worker.call("count", self._open()))

    def close(self) -> None:
        """Close the pipe: the worker flushes, closes its shards and exits."""
        with self._lock:
            self.worker.close()
            self._open_name = None
