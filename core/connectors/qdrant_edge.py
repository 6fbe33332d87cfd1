"""`qdrant+edge:///dir` — the real Qdrant engine in-process (qdrant-edge-py).

One shard directory per collection under `dir`. The shard's own `edge_config.json` holds
size and distance, so `describe` needs no side files. Edge has no aliases: cutover uses
the router-state path for it (see core/cutover.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from core.compat import check_target
from core.connectors.base import (
    Connector,
    PingResult,
    PrepareResult,
    QueryHits,
    WriteMode,
)
from core.connectors.qdrant_common import (
    batch_to_columns,
    encode_offset,
    records_to_batch,
    unwrap_vector,
)
from core.errors import FerryError, PreflightError
from core.mapping import (
    METRIC_FROM_QDRANT,
    QDRANT_DISTANCE,
    PayloadFields,
    canonical_point_id,
)
from core.model import Batch, CollectionInfo, Cursor
from core.uri import ConnectionSpec

CONFIG_FILE = "edge_config.json"


class QdrantEdgeConnector(Connector):
    kind = "qdrant-edge"
    capabilities = frozenset({"write"})

    def __init__(self, spec: ConnectionSpec, fields: PayloadFields | None = None) -> None:
        assert spec.path is not None
        self.uri = spec.uri
        self.root = spec.path
        self.fields = fields or PayloadFields()
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock = threading.Lock()  # guards _shards and serialises writes per process

    # -- helpers ----------------------------------------------------------------------------
    def _shard_dir(self, name: str) -> Path:
        if "/" in name or name in {"", ".", ".."}:
            raise FerryError(f"invalid collection name {name!r}", where=self.uri)
        return self.root / name

    def _config(self, name: str) -> dict[str, Any] | None:
        path = self._shard_dir(name) / CONFIG_FILE
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def _open(self, name: str) -> qe.EdgeShard:
        with self._lock:
            shard = self._shards.get(name)
            if shard is None:
                if self._config(name) is None:
                    raise FerryError(f"no collection {name!r}", where=self.uri)
                shard = qe.EdgeShard.load(str(self._shard_dir(name)))
                self._shards[name] = shard
            return shard

    # -- protocol ---------------------------------------------------------------------------
    async def ping(self) -> PingResult:
        start = time.perf_counter()
        ok = self.root.exists() or self.root.parent.exists()
        return PingResult(
            ok=ok,
            version=f"qdrant-edge-py {_edge_version()}",
            latency_ms=(time.perf_counter() - start) * 1000,
            auth="n/a",
            detail="" if ok else f"{self.root.parent} does not exist",
        )

    async def list_collections(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).exists())

    async def describe(self, name: str) -> CollectionInfo:
        config = self._config(name)
        if config is None:
            raise FerryError(f"no collection {name!r}", where=self.uri)
        vector = config.get("vectors", {}).get("", {})
        count = await self.count(name)
        return CollectionInfo(
            name=name,
            count=count,
            dimension=vector.get("size"),
            metric=METRIC_FROM_QDRANT.get(vector.get("distance", "")),
            facts={"engine": "qdrant-edge", "path": str(self._shard_dir(name))},
        )

    async def count(self, name: str) -> int:
        shard = self._open(name)
        return await asyncio.to_thread(shard.count, qe.CountRequest(exact=True))

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        shard = self._open(name)
        dimension = (await self.describe(name)).dimension or 0
        offset = cursor
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=batch_size, with_payload=True, with_vector=True
            )
            records, next_offset = await asyncio.to_thread(shard.scroll, request)
            if not records:
                return
            next_cursor = encode_offset(next_offset)
            yield records_to_batch(
                ((r.id, unwrap_vector(r.vector), r.payload) for r in records),
                self.fields,
                dimension,
                cursor_after=next_cursor,
            )
            if next_offset is None:
                return
            offset = next_cursor

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        shard = self._open(name)
        dimension = (await self.describe(name)).dimension or 0
        point_ids = [canonical_point_id(i) for i in ids]
        records = await asyncio.to_thread(shard.retrieve, point_ids, True, True)
        return records_to_batch(
            ((r.id, unwrap_vector(r.vector), r.payload) for r in records),
            self.fields,
            dimension,
        )

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        shard = self._open(name)

        def run() -> QueryHits:
            hits: QueryHits = []
            for vector in np.asarray(vectors, dtype=np.float32):
                request = qe.QueryRequest(
                    limit=k,
                    query=qe.Query.Nearest(vector.tolist()),
                    with_payload=[self.fields.source_id],
                )
                points = shard.query(request)
                hits.append(
                    [
                        (
                            str((p.payload or {}).get(self.fields.source_id, p.id)),
                            p.score,
                        )
                        for p in points
                    ]
                )
            return hits

        return await asyncio.to_thread(run)

    async def prepare(
        self, info: CollectionInfo, mode: WriteMode, owned: bool = False
    ) -> PrepareResult:
        if info.dimension is None or info.metric is None:
            raise PreflightError(f"collection {info.name!r} has no known dimension", where=self.uri)
        distance = QDRANT_DISTANCE[info.metric]
        existing = self._config(info.name)
        if existing is not None:
            warnings = check_target(self.uri, info, await self.describe(info.name), mode, owned)
            return PrepareResult(created=False, existed=True, warnings=warnings)

        def create() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            config = qe.EdgeConfig(
                vectors=qe.EdgeVectorParams(
                    size=info.dimension, distance=getattr(qe.Distance, distance)
                )
            )
            shard = qe.EdgeShard.create(str(self._shard_dir(info.name)), config)
            shard.update(
                qe.UpdateOperation.create_field_index(
                    self.fields.source_id, qe.PayloadSchemaType.Keyword
                )
            )
            shard.flush()
            with self._lock:
                self._shards[info.name] = shard

        await asyncio.to_thread(create)
        return PrepareResult(created=True, existed=False)

    async def write(self, name: str, batch: Batch) -> None:
        if not len(batch):
            return
        shard = self._open(name)
        point_ids, vectors, payloads = batch_to_columns(batch, self.fields)

        def upsert() -> None:
            points = [
                qe.Point(pid, vec, payload)
                for pid, vec, payload in zip(point_ids, vectors, payloads, strict=True)
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
            # The checkpoint that follows must describe durable data: flush before acking.
            shard.flush()

        await asyncio.to_thread(upsert)

    async def delete(self, name: str, ids: list[str]) -> None:
        shard = self._open(name)
        point_ids = [canonical_point_id(i) for i in ids]

        def remove() -> None:
            shard.update(qe.UpdateOperation.delete_points(point_ids))
            shard.flush()

        await asyncio.to_thread(remove)

    async def close(self) -> None:
        with self._lock:
            shards = list(self._shards.values())
            self._shards.clear()
        for shard in shards:
            await asyncio.to_thread(_close_shard, shard)


def _close_shard(shard: qe.EdgeShard) -> None:
    shard.flush()
    shard.close()


def _edge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qdrant-edge-py")
    except PackageNotFoundError:
        return "?"
