"""`qdrant+edge:///dir` — the real Qdrant engine in-process (qdrant-edge-py).

One shard directory per collection under `dir` (the layout: edge_layout.py), served by a
child process (edge_worker.py). The shard's own `edge_config.json` holds size and distance,
so `describe` needs no side files. Edge has no aliases: Ferry keeps them in a file under
`dir`, which `aliases()` switches and the router follows.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.backup_store import BackupResult, Progress
from ferry.core.connectors.base import (
    ANY,
    AliasBackend,
    Capability,
    Indexing,
    IndexProgressCallback,
    IndexState,
    PingResult,
    QueryHits,
    TargetConnector,
)
from ferry.core.connectors.qdrant.backup import edge_shard_backup
from ferry.core.connectors.qdrant.common import (
    CollisionGuard,
    LayoutIds,
    PayloadLayouts,
    batch_to_columns,
    normal_point_id,
    records_to_batch,
)
from ferry.core.connectors.qdrant.edge_floats import edge_read_back, rounding_warning
from ferry.core.connectors.qdrant.edge_layout import EdgeLayout
from ferry.core.connectors.qdrant.edge_worker import EdgeProcess
from ferry.core.connectors.traits import QDRANT
from ferry.core.errors import FerryError
from ferry.core.mapping import QDRANT_DISTANCE, PayloadFields
from ferry.core.model import Batch, CollectionInfo, Cursor
from ferry.core.tuning import IndexTuning
from ferry.core.uri import ConnectionSpec


class QdrantEdgeConnector(LayoutIds, TargetConnector):
    kind = "qdrant-edge"
    traits = QDRANT
    lists_metadata_keys = False  # a payload has no schema: plans sample the keys
    float_read_back = staticmethod(edge_read_back)  # see edge_floats.py
    capabilities = frozenset(
        {Capability.WRITE.value, Capability.ALIASES.value, Capability.SNAPSHOTS.value}
    )

    def __init__(
        self, spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
    ) -> None:
        assert spec.path is not None
        self.uri = spec.uri
        self.root = spec.path
        self.layout = EdgeLayout(self.root, where=self.uri)
        self.fields = fields or PayloadFields()
        self.layouts = PayloadLayouts(self.fields, layout)
        self._worker = _shared_worker(self.root)  # started on first use
        self._guard = CollisionGuard()
        self._closed = False

    async def _call(self, name: str, method: str, *args: Any) -> Any:
        if method != "create" and not self.layout.exists(name):
            raise FerryError(f"no collection {name!r}", where=self.uri)
        return await asyncio.to_thread(self._worker.call, method, name, *args)

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
        return self.layout.collections()

    async def describe(self, name: str) -> CollectionInfo:
        size, metric = self.layout.vector_params(name)
        count = await self.count(name)
        return CollectionInfo(
            name=name,
            count=count,
            dimension=size,
            metric=metric,
            facts={"engine": "qdrant-edge", "path": str(self.layout.shard_dir(name))},
        )

    async def shape(self, name: str) -> CollectionInfo:
        """From `edge_config.json` alone: loading a shard rewrites that file."""
        if not self.layout.exists(name):
            raise FerryError(f"no collection {name!r}", where=self.uri)
        size, metric = self.layout.vector_params(name)
        return CollectionInfo(name=name, count=0, dimension=size, metric=metric)

    async def count(self, name: str) -> int:
        return int(await self._call(name, "count"))

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        dimension = self.layout.dimension(name)
        offset = cursor
        while True:
            records, next_cursor = await self._call(name, "scroll", offset, batch_size)
            if not records:
                return
            yield records_to_batch(records, self.layouts(name), dimension, cursor_after=next_cursor)
            if next_cursor is None:
                return
            offset = next_cursor

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        point_ids = [self.layouts(name).point_id(i) for i in ids]
        records = await self._call(name, "retrieve", point_ids)
        return records_to_batch(records, self.layouts(name), self.layout.dimension(name))

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        matrix = np.asarray(vectors, dtype=np.float32)
        layout = self.layouts(name)
        hits = await self._call(name, "query", matrix, k, layout.id_field, self.search_ef(name))
        if not layout.hits_need_payload:
            return hits
        # The worker answers with point ids where the payload holds no id (CrewAI's layout
        # recomputes it from the payload): read those points' payloads and ask the layout.
        wanted = sorted({sid for row in hits for sid, _ in row})
        records = await self._call(name, "retrieve", wanted) if wanted else []
        ids = {str(r[0]): layout.hit_source_id(r[0], r[2]) for r in records}
        return [[(ids.get(sid, sid), score) for sid, score in row] for row in hits]

    async def _exists(self, name: str) -> bool:
        return self.layout.exists(name)

    async def _create(self, info: CollectionInfo, tuning: IndexTuning) -> None:
        assert info.dimension is not None and info.metric is not None
        self.layout.shard_dir(info.name)  # refuse a bad name before the worker starts
        await self._call(
            info.name,
            "create",
            info.dimension,
            QDRANT_DISTANCE[info.metric],
            self.layouts(info.name).id_field,
            _laid_out(tuning, self.layouts(info.name)),
        )

    async def write(self, name: str, batch: Batch) -> None:
        """Upsert; acknowledged once in Edge's write-ahead log (kill -9 safe). `sync` flushes."""
        if not len(batch):
            return
        if not self.layout.exists(name):
            raise FerryError(f"no collection {name!r}", where=self.uri)
        # Mapping and payload assembly happen here, on the engine's core; the worker only
        # builds points (from vectors in shared memory) and upserts.
        layout = self.layouts(name)
        point_ids, vectors, payloads = batch_to_columns(batch, layout)
        suspects = self._guard.suspects(name, batch, point_ids)
        if suspects:  # rare: only ids that are version-5 UUIDs (see CollisionGuard)
            found = await self._call(name, "retrieve", suspects)
            self._guard.check(
                name, batch, point_ids, {p[0]: p[2] for p in found}, layout.hit_source_id
            )
        await asyncio.to_thread(self._worker.upsert, name, point_ids, vectors, payloads)

    # -- the index phase --------------------------------------------------------------------
    indexing = Indexing.AFTER_COPY

    async def build_index(
        self,
        name: str,
        tuning: IndexTuning,
        on_progress: IndexProgressCallback | None = None,
    ) -> IndexState:
        """Run Edge's optimizer (blocking, in the worker: it reports no progress meanwhile)."""
        before = await self._call(name, "index_state")
        if on_progress:
            on_progress(before["indexed"], before["points"])
        return _index_state(await self._call(name, "optimize"))

    async def index_state(self, name: str) -> IndexState:
        return _index_state(await self._call(name, "index_state"))

    async def index_facts(self, name: str) -> dict[str, object]:
        """Points, indexed vectors, each segment's index type, payload indexes: for tests
        and `describe`."""
        return dict(await self._call(name, "index_state"))

    async def sync(self, name: str) -> None:
        await self._call(name, "flush")

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        records = await self._call(name, "retrieve", list(native_ids))
        return {normal_point_id(point_id) for point_id, _vector, _payload in records}

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        await self._call(name, "delete", list(native_ids))
        await self.sync(name)

    def sample_warnings(self, sample: Batch) -> list[str]:
        warning = rounding_warning(sample.metadatas)
        return [warning] if warning else []

    # -- cutover ----------------------------------------------------------------------------
    def _alias_backend(self) -> AliasBackend:
        return EdgeAliases(self)

    async def backup(self, name: str, to: Path, progress: Progress | None = None) -> BackupResult:
        """Through this process's worker, which may hold the shard: count and flush it (every
        acknowledged write reaches the files), then copy, verify and manifest the shard
        (qdrant_backup.py). A shard held by another process is refused by the worker."""
        if not self.layout.exists(name):
            raise FerryError(f"no collection {name!r}", where=self.uri)
        expected = await self.count(name)
        await self._call(name, "flush")
        return await asyncio.to_thread(
            edge_shard_backup, self.layout.shard_dir(name), name, self.uri, to, expected, progress
        )

    async def _snapshot(self, name: str, progress: Progress | None = None) -> dict[str, Any]:
        result = await self.backup(name, self.layout.snapshot_root, progress)
        return result.as_snapshot()

    def snapshot_words(self, name: str) -> str:
        return self.layout.snapshot_words(name)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(_release_worker, self.root)


class EdgeAliases(AliasBackend):
    """Ferry-managed aliases for Qdrant Edge, which has none: an alias file under the root."""

    connector: QdrantEdgeConnector

    async def aliases(self) -> dict[str, str]:
        return self.connector.layout.aliases()

    async def switch(self, alias: str, collection: str, expected: Any = ANY) -> None:
        layout = self.connector.layout
        await asyncio.to_thread(
            layout.switch_alias, alias, collection, expected, expected is not ANY
        )

    async def remove(self, alias: str, expected: Any = ANY) -> None:
        layout = self.connector.layout
        await asyncio.to_thread(layout.switch_alias, alias, None, expected, expected is not ANY)


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


def _laid_out(tuning: IndexTuning, layout: Any) -> dict[str, Any]:
    """The tuning as the worker creates it: payload indexes on where the layout puts each
    metadata key (under "metadata." for LangChain, "meta." for Haystack)."""
    data = tuning.to_json()
    data["payload_indexes"] = {
        layout.metadata_path(key): kind for key, kind in tuning.payload_indexes.items()
    }
    return data


def _index_state(facts: dict[str, object]) -> IndexState:
    points = int(facts["points"])  # type: ignore[call-overload]
    indexed = int(facts["indexed"])  # type: ignore[call-overload]
    kinds = facts.get("segments") or []
    small = bool(facts.get("small"))
    ready = points == 0 or indexed >= points or small
    if indexed:
        detail = f"HNSW over {indexed:,} of {points:,} vectors"
    elif small:
        detail = f"{points:,} vectors: below the indexing threshold, searched exactly"
    else:
        detail = f"not indexed: {points:,} vectors searched by brute force"
    if kinds:
        detail += f" (segments: {', '.join(sorted(set(map(str, kinds))))})"  # type: ignore[call-overload]
    return IndexState(ready=ready, indexed=indexed, total=points, detail=detail)


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


def reap_children() -> None:
    """Before a `ferry` command returns: every Edge worker flushed and waited for, and
    multiprocessing's resource tracker (started by the workers' shared-memory blocks)
    stopped and waited for, so nothing of Ferry's is left in the process group (a worker,
    or what looks like one, outliving `ferry migrate` is what two timers found and killed)."""
    close_all_workers()
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        if getattr(tracker, "_pid", None) is not None:
            tracker._stop()
    except Exception:  # private API: best effort; at worst the tracker exits on EOF itself
        pass


atexit.register(close_all_workers)
