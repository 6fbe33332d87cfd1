"""`qdrant+edge:///dir` — the real Qdrant engine in-process (qdrant-edge-py).

One shard directory per collection under `dir`, served by a child process (edge_worker.py). The shard's own `edge_config.json` holds
size and distance, so `describe` needs no side files. Edge has no aliases: cutover uses
the router-state path for it (see core/cutover.py).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from core.compat import check_target
from core.connectors.base import (
    Connector,
    PingResult,
    PrepareResult,
    QueryHits,
    WriteMode,
)
from core.connectors.edge_worker import EdgeProcess
from core.connectors.qdrant_common import batch_to_columns, normal_point_id, records_to_batch
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
        self._worker = _shared_worker(self.root)  # started on first use
        self._closed = False

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

    async def _call(self, name: str, method: str, *args: Any) -> Any:
        if self._config(name) is None and method != "create":
            raise FerryError(f"no collection {name!r}", where=self.uri)
        return await asyncio.to_thread(self._worker.call, method, name, *args)

    def _dimension(self, name: str) -> int:
        return int(((self._config(name) or {}).get("vectors", {}).get("", {})).get("size") or 0)

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
        return int(await self._call(name, "count"))

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        dimension = self._dimension(name)
        offset = cursor
        while True:
            records, next_cursor = await self._call(name, "scroll", offset, batch_size)
            if not records:
                return
            yield records_to_batch(records, self.fields, dimension, cursor_after=next_cursor)
            if next_cursor is None:
                return
            offset = next_cursor

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        point_ids = [canonical_point_id(i) for i in ids]
        records = await self._call(name, "retrieve", point_ids)
        return records_to_batch(records, self.fields, self._dimension(name))

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        matrix = np.asarray(vectors, dtype=np.float32)
        return await self._call(name, "query", matrix, k, self.fields.source_id)

    async def prepare(
        self, info: CollectionInfo, mode: WriteMode, owned: bool = False
    ) -> PrepareResult:
        if info.dimension is None or info.metric is None:
            raise PreflightError(f"collection {info.name!r} has no known dimension", where=self.uri)
        if self._config(info.name) is not None:
            warnings = check_target(self.uri, info, await self.describe(info.name), mode, owned)
            return PrepareResult(created=False, existed=True, warnings=warnings)
        await self._call(
            info.name, "create", info.dimension, QDRANT_DISTANCE[info.metric], self.fields.source_id
        )
        return PrepareResult(created=True, existed=False)

    async def write(self, name: str, batch: Batch) -> None:
        """Upsert; acknowledged once in Edge's write-ahead log (kill -9 safe). `sync` flushes."""
        if not len(batch):
            return
        # Mapping happens here, on the engine's core; the worker only converts and upserts.
        point_ids, vectors, payloads = batch_to_columns(batch, self.fields)
        await self._call(name, "upsert", point_ids, vectors, payloads)

    async def sync(self, name: str) -> None:
        await self._call(name, "flush")

    async def delete(self, name: str, ids: list[str]) -> None:
        await self.delete_native(name, [canonical_point_id(i) for i in ids])

    def native_id(self, source_id: str) -> int | str:
        return canonical_point_id(source_id)

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        records = await self._call(name, "retrieve", list(native_ids))
        return {normal_point_id(point_id) for point_id, _vector, _payload in records}

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        await self._call(name, "delete", list(native_ids))
        await self.sync(name)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(_release_worker, self.root)


# One worker per Edge directory per process, shared by every connector on it: a shard can be
# open in one process only (its WAL is locked), so two workers would block each other.
_WORKERS: dict[Path, tuple[EdgeProcess, int]] = {}
_WORKERS_LOCK = threading.Lock()


def _shared_worker(root: Path) -> EdgeProcess:
    key = root.resolve()
    with _WORKERS_LOCK:
        worker, users = _WORKERS.get(key, (None, 0))
        if worker is None:
            worker = EdgeProcess(key)
        _WORKERS[key] = (worker, users + 1)
        return worker


def _release_worker(root: Path) -> None:
    key = root.resolve()
    with _WORKERS_LOCK:
        worker, users = _WORKERS.get(key, (None, 0))
        if worker is None:
            return
        if users > 1:
            _WORKERS[key] = (worker, users - 1)
            return
        del _WORKERS[key]
    worker.close()  # the last user: the worker flushes and exits


def _edge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qdrant-edge-py")
    except PackageNotFoundError:
        return "?"


def close_all_workers() -> None:
    """Stop every Edge worker of this process (each flushes first): for exit and for tests."""
    with _WORKERS_LOCK:
        workers = [worker for worker, _users in _WORKERS.values()]
        _WORKERS.clear()
    for worker in workers:
        worker.close()


atexit.register(close_all_workers)
