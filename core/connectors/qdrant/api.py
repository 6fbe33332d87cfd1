"""Qdrant through qdrant-client: a server (`qdrant+http(s)://`) or its local mode.

Local mode (`qdrant+file:///dir`, `qdrant+memory:`) exists for users whose apps use it; it
pickles each point into SQLite one commit at a time, so it is slow on disk and heavy to
reopen — the plan warns about that. Servers get the async client (gRPC with `?grpc=1`).
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient, models

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
    byte_chunks,
)
from ferry.core.connectors.qdrant.backup import local_collection_backup, server_snapshot_backup
from ferry.core.connectors.qdrant.common import (
    CollisionGuard,
    LayoutIds,
    PayloadLayouts,
    batch_to_columns,
    encode_offset,
    normal_point_id,
    records_to_batch,
    unwrap_vector,
)
from ferry.core.connectors.traits import QDRANT
from ferry.core.errors import FerryError, classify
from ferry.core.layouts import PayloadLayout
from ferry.core.mapping import (
    METRIC_FROM_QDRANT,
    QDRANT_DISTANCE,
    PayloadFields,
)
from ferry.core.model import Batch, CollectionInfo, Cursor
from ferry.core.tuning import IndexTuning
from ferry.core.uri import ConnectionSpec

LOCAL_SNAPSHOT_DIR = ".ferry-snapshots"  # a cutover's backups, inside the local directory
# Qdrant's request limits: REST `service.max_request_size_mb` is 32 by default; Ferry keeps
# each upsert under 90 % of it by its estimated encoded size (gRPC messages are smaller
# than JSON for the same points, so the same cap is safe there).
QDRANT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
REQUEST_MARGIN = 0.9
JSON_BYTES_PER_FLOAT = 24  # a float32 as JSON: up to "-1.2345678901234567e-05, "
INDEX_POLL_SECONDS = 1.0
DEFAULT_M = 16  # Qdrant's default HNSW m, restored when the source says nothing
# Payload indexes for filtering, without the per-value HNSW sub-graphs Qdrant would otherwise
# build for each field during indexing (Chroma has none; they multiply the index phase).
_SCHEMA: dict[str, Any] = {
    "keyword": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, enable_hnsw=False),
    "integer": models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, enable_hnsw=False),
    "float": models.FloatIndexParams(type=models.FloatIndexType.FLOAT, enable_hnsw=False),
    "bool": models.BoolIndexParams(type=models.BoolIndexType.BOOL, enable_hnsw=False),
}


class QdrantApiConnector(LayoutIds, TargetConnector):
    kind = "qdrant"
    traits = QDRANT
    lists_metadata_keys = False  # a payload has no schema: plans sample the keys

    def __init__(
        self, spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
    ) -> None:
        self.spec = spec
        self.uri = spec.uri
        self.fields = fields or PayloadFields()
        self.layouts = PayloadLayouts(self.fields, layout)
        self._client: AsyncQdrantClient | None = None
        self._guard = CollisionGuard()
        is_server = spec.transport in {"http", "https"}
        self.kind = "qdrant-server" if is_server else "qdrant-local"
        declared = {Capability.WRITE, Capability.ALIASES}
        if spec.transport != "memory":  # a server snapshot, or a copy of a local directory
            declared.add(Capability.SNAPSHOTS)
        self.capabilities = frozenset(c.value for c in declared)
        self.max_request_bytes = QDRANT_MAX_REQUEST_BYTES if is_server else None

    @property
    def client(self) -> AsyncQdrantClient:
        if self._client is None:
            spec = self.spec
            if spec.transport == "memory":
                self._client = AsyncQdrantClient(location=":memory:")
            elif spec.transport == "file":
                assert spec.path is not None
                try:
                    self._client = AsyncQdrantClient(path=str(spec.path))
                except RuntimeError as exc:  # qdrant-client's lock: one process per folder
                    if "already accessed" not in str(exc):
                        raise
                    raise FerryError(
                        "another process has this Qdrant local folder open (qdrant-client "
                        "allows one at a time)",
                        where=str(spec.path),
                        fix="wait for it to finish (ferry status), then run this again",
                    ) from exc
            else:
                # qdrant-client warns about a key over plain http; the plan says it instead.
                warnings.filterwarnings("ignore", "Api key is used with an insecure connection")
                self._client = AsyncQdrantClient(
                    host=spec.host,
                    port=spec.port,
                    https=spec.transport == "https",
                    api_key=spec.api_key(),
                    prefer_grpc=spec.flag("grpc"),
                    timeout=int(spec.params.get("timeout", "60")),
                    check_compatibility=False,
                )
        return self._client

    async def _call(self, what: str, coro: Any) -> Any:
        """Run a client call; a failure is sorted by `ferry.core.errors.classify` (REST and gRPC)."""
        try:
            return await coro
        except Exception as exc:
            error = classify(exc, what, self.uri, "Qdrant")
            if error is exc:
                raise
            raise error from exc

    async def ping(self) -> PingResult:
        start = time.perf_counter()
        try:
            if self.spec.is_embedded:
                await self.client.get_collections()
                version = "qdrant-client local mode"
            else:
                info = await self._call("info", self.client.info())
                await self._call("list collections", self.client.get_collections())
                version = f"Qdrant {info.version}"
        except FerryError as exc:
            return PingResult(
                ok=False,
                # classify() words a 401/403 as "refused our credentials" (ConnectionFailed)
                auth="failed" if "credentials" in exc.what else "n/a",
                detail=exc.one_line(),
            )
        auth = "ok" if self.spec.params.get("api_key_env") else "none"
        if self.spec.is_embedded:
            auth = "n/a"
        return PingResult(
            ok=True,
            version=version,
            latency_ms=(time.perf_counter() - start) * 1000,
            auth=auth,
        )

    async def list_collections(self) -> list[str]:
        answer = await self._call("list collections", self.client.get_collections())
        return sorted(c.name for c in answer.collections)

    async def _vector_params(self, name: str) -> tuple[int | None, str | None, Any]:
        info = await self._call(f"get collection {name}", self.client.get_collection(name))
        vectors = info.config.params.vectors
        if isinstance(vectors, dict):
            vectors = vectors.get("") or next(iter(vectors.values()), None)
        if vectors is None:
            return None, None, info
        distance = (
            vectors.distance.value if hasattr(vectors.distance, "value") else vectors.distance
        )
        return vectors.size, str(distance), info

    async def describe(self, name: str) -> CollectionInfo:
        if not await self._call(f"find {name}", self.client.collection_exists(name)):
            raise FerryError(f"no collection {name!r}", where=self.uri)
        size, distance, info = await self._vector_params(name)
        return CollectionInfo(
            name=name,
            count=await self.count(name),
            dimension=size,
            metric=METRIC_FROM_QDRANT.get(distance or ""),
            metadata_keys=sorted((info.payload_schema or {}).keys()),
            facts={
                "engine": self.kind,
                "status": str(info.status),
                "hnsw": {
                    "space": distance,
                    "M": info.config.hnsw_config.m,
                    "ef_construction": info.config.hnsw_config.ef_construct,
                    "ef_search": None,  # Qdrant searches with ef_construct unless told
                    "source": "collection config",
                },
                "payload_indexes": {
                    key: str(getattr(schema.data_type, "value", schema.data_type))
                    for key, schema in (info.payload_schema or {}).items()
                },
            },
        )

    async def count(self, name: str) -> int:
        answer = await self._call("count", self.client.count(name, exact=True))
        return int(answer.count)

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        size, _distance, _info = await self._vector_params(name)
        offset = cursor
        while True:
            points, next_offset = await self._call(
                "scroll",
                self.client.scroll(
                    name,
                    limit=batch_size,
                    offset=offset,
                    with_payload=True,
                    with_vectors=True,
                ),
            )
            if not points:
                return
            next_cursor = encode_offset(next_offset)
            yield records_to_batch(
                ((p.id, unwrap_vector(p.vector), p.payload) for p in points),
                self.layouts(name),
                size or 0,
                cursor_after=next_cursor,
            )
            if next_offset is None:
                return
            offset = next_cursor

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        size, _distance, _info = await self._vector_params(name)
        points = await self._call(
            "retrieve",
            self.client.retrieve(
                name,
                [self.layouts(name).point_id(i) for i in ids],
                with_payload=True,
                with_vectors=True,
            ),
        )
        return records_to_batch(
            ((p.id, unwrap_vector(p.vector), p.payload) for p in points),
            self.layouts(name),
            size or 0,
        )

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        ef = self.search_ef(name)
        params = models.SearchParams(hnsw_ef=ef) if ef else None
        layout = self.layouts(name)
        requests = [
            models.QueryRequest(
                query=v.tolist(),
                limit=k,
                with_payload=True if layout.hits_need_payload else [layout.id_field],
                params=params,
            )
            for v in np.asarray(vectors, dtype=np.float32)
        ]
        answers = await self._call("query", self.client.query_batch_points(name, requests=requests))
        return [
            [
                (
                    layout.hit_source_id(normal_point_id(p.id), p.payload),
                    float(p.score),
                )
                for p in answer.points
            ]
            for answer in answers
        ]

    async def _exists(self, name: str) -> bool:
        return bool(await self._call("exists", self.client.collection_exists(name)))

    async def _create(self, info: CollectionInfo, tuning: IndexTuning) -> None:
        """Create with the source's HNSW settings; on a server, with the graph deferred
        (`m=0`, Qdrant's bulk-load practice: payload indexes are built as points arrive, the
        HNSW graph once, in the index phase) and payload indexes made before the copy."""
        assert info.dimension is not None and info.metric is not None
        server = not self.spec.is_embedded
        hnsw = models.HnswConfigDiff(
            m=0 if server else tuning.m,
            ef_construct=tuning.ef_construct,
        )
        await self._call(
            "create collection",
            self.client.create_collection(
                info.name,
                vectors_config=models.VectorParams(
                    size=info.dimension,
                    distance=models.Distance(QDRANT_DISTANCE[info.metric]),
                    on_disk=True if tuning.on_disk_vectors else None,
                ),
                hnsw_config=hnsw,
                sparse_vectors_config=_sparse_slots(self.layouts(info.name)),
            ),
        )
        if server:  # local mode has no payload indexes (it warns)
            await self._call(
                "create payload index",
                self.client.create_payload_index(
                    info.name,
                    self.layouts(info.name).id_field,
                    models.PayloadSchemaType.KEYWORD,
                ),
            )
            layout = self.layouts(info.name)
            for key, kind in tuning.payload_indexes.items():
                path = layout.metadata_path(key)  # under "metadata." in the LangChain layout
                await self._call(
                    "create payload index",
                    self.client.create_payload_index(info.name, path, _SCHEMA[kind], wait=True),
                )
            for key in layout.keyword_indexes:  # the ones the app's own store creates (mem0)
                if key not in tuning.payload_indexes:
                    await self._call(
                        "create payload index",
                        self.client.create_payload_index(
                            info.name, key, models.PayloadSchemaType.KEYWORD, wait=True
                        ),
                    )

    # -- the index phase --------------------------------------------------------------------
    @property
    def indexing(self) -> Indexing:  # type: ignore[override]
        return Indexing.NEVER if self.spec.is_embedded else Indexing.RESTORED

    def tuning_words(self, tuning: IndexTuning) -> str:
        if self.spec.is_embedded:
            return "qdrant-client local mode: no HNSW index and no payload indexes"
        return tuning.words()

    async def build_index(
        self,
        name: str,
        tuning: IndexTuning,
        on_progress: IndexProgressCallback | None = None,
    ) -> IndexState:
        """Restore the HNSW `m` deferred at creation, then wait for green."""
        if self.spec.is_embedded:
            return await self.index_state(name)
        info = await self._call(f"get collection {name}", self.client.get_collection(name))
        hnsw = info.config.hnsw_config
        if not hnsw.m:
            await self._call(
                f"restore indexing of {name}",
                self.client.update_collection(
                    name,
                    hnsw_config=models.HnswConfigDiff(
                        m=tuning.m if tuning.m is not None else DEFAULT_M,
                        ef_construct=tuning.ef_construct,
                    ),
                ),
            )
        settled = False  # green on the previous poll too
        while True:
            state = await self.index_state(name)
            if on_progress:
                on_progress(state.indexed, state.total)
            # Green right after the update can be the moment before the optimizer starts:
            # it counts once every vector is indexed, or when green holds for a second poll
            # (a collection under the indexing threshold stays green and unindexed).
            if state.ready and (settled or (state.indexed or 0) >= (state.total or 0)):
                return state
            settled = state.ready
            await asyncio.sleep(INDEX_POLL_SECONDS)

    async def index_state(self, name: str) -> IndexState:
        if self.spec.is_embedded:
            return IndexState(ready=True, detail="brute force: local mode has no index")
        info = await self._call(f"get collection {name}", self.client.get_collection(name))
        status = str(getattr(info.status, "value", info.status))
        indexed = int(info.indexed_vectors_count or 0)
        points = int(info.points_count or 0)
        deferred = not info.config.hnsw_config.m
        ready = status == "green" and not deferred
        detail = f"{status}: HNSW over {indexed:,} of {points:,} vectors"
        if deferred:
            detail += " (indexing deferred: m=0)"
        return IndexState(ready=ready, indexed=indexed, total=points, detail=detail)

    def request_sizes(self, point_ids: list[int | str], dim: int, payloads: list[Any]) -> list[int]:
        """Each point's estimated size in an upsert request (JSON: the larger encoding), in
        bytes: qdrant-client sends UTF-8, so "é" is two bytes, not one character."""
        vector = dim * JSON_BYTES_PER_FLOAT
        return [
            vector + len(json.dumps(payload, default=str, ensure_ascii=False).encode()) + 48
            for payload in payloads
        ]

    def plan_warnings(self) -> list[str]:
        if self.spec.transport == "file":
            return [
                "qdrant-client local mode stores each point as a pickle in SQLite: "
                "~0.7k records/s and large memory to reopen, and the app's open client locks "
                "Ferry out: prefer qdrant+http:// (a Qdrant server) when the app keeps running "
                "through the migration, else qdrant+edge:// (docs/router.md#which-target)"
            ]
        if self.spec.transport == "memory":
            return ["qdrant+memory: the copy lives only as long as this process"]
        return []

    async def write(self, name: str, batch: Batch) -> None:
        """Upsert in requests under the server's size limit (wide vectors, long documents)."""
        if not len(batch):
            return
        layout = self.layouts(name)
        point_ids, vectors, payloads = batch_to_columns(batch, layout)
        suspects = self._guard.suspects(name, batch, point_ids)
        if suspects:  # rare: only ids that are version-5 UUIDs (see CollisionGuard)
            found = await self._call(
                "retrieve",
                self.client.retrieve(name, suspects, with_payload=True, with_vectors=False),
            )
            self._guard.check(
                name, batch, point_ids, {p.id: p.payload for p in found}, layout.hit_source_id
            )
        limit = int(self.max_request_bytes * REQUEST_MARGIN) if self.max_request_bytes else None
        sizes = self.request_sizes(point_ids, vectors.shape[1], payloads) if limit else []
        for start, end in byte_chunks(sizes, limit) if limit else [(0, len(point_ids))]:
            await self._call(
                "upsert",
                self.client.upsert(
                    name,
                    points=models.Batch(
                        ids=point_ids[start:end],
                        vectors=vectors[start:end].tolist(),
                        payloads=payloads[start:end],
                    ),
                    wait=True,
                ),
            )

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        points = await self._call(
            "retrieve",
            self.client.retrieve(name, list(native_ids), with_payload=False, with_vectors=False),
        )
        return {normal_point_id(p.id) for p in points}

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        await self._call(
            "delete",
            self.client.delete(
                name, points_selector=models.PointIdsList(points=list(native_ids)), wait=True
            ),
        )

    # -- cutover ----------------------------------------------------------------------------
    def _alias_backend(self) -> AliasBackend:
        return QdrantAliases(self)

    async def list_aliases(self) -> dict[str, str]:
        answer = await self._call("list aliases", self.client.get_aliases())
        return {a.alias_name: a.collection_name for a in answer.aliases}

    async def move_alias(self, alias: str, collection: str) -> None:
        """Create `alias`, or move it, in one request (Qdrant applies the list atomically)."""
        operations: list[Any] = []
        if alias in await self.list_aliases():
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        # One request, so readers never see no alias.
        await self._call(
            f"move alias {alias}",
            self.client.update_collection_aliases(change_aliases_operations=operations),
        )

    async def delete_alias(self, alias: str) -> None:
        operation = models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
        await self._call(
            f"delete alias {alias}",
            self.client.update_collection_aliases(change_aliases_operations=[operation]),
        )

    async def backup(self, name: str, to: Path, progress: Progress | None = None) -> BackupResult:
        """A server: a snapshot, downloaded. Local mode: the collection's SQLite file copied
        with the online backup API (committed on every write, so consistent as it is)."""
        if self.spec.transport == "memory":
            return await super().backup(name, to, progress)
        if self.spec.transport in {"http", "https"}:
            return await server_snapshot_backup(self, name, to, progress)
        assert self.spec.path is not None
        return await asyncio.to_thread(
            local_collection_backup, self.spec.path, name, self.uri, to, progress
        )

    async def _snapshot(self, name: str, progress: Progress | None = None) -> dict[str, Any]:
        if self.spec.transport == "file":
            assert self.spec.path is not None
            result = await self.backup(name, self.spec.path / LOCAL_SNAPSHOT_DIR, progress)
            return result.as_snapshot()
        answer = await self._call(
            f"snapshot {name}", self.client.create_snapshot(collection_name=name, wait=True)
        )
        return {
            "kind": "qdrant-snapshot",
            "name": getattr(answer, "name", None),
            "size": getattr(answer, "size", None),
            "collection": name,
        }

    def snapshot_words(self, name: str) -> str:
        if self.spec.transport == "file":
            return (
                f"verified copy of {name} to {LOCAL_SNAPSHOT_DIR}/{name}-<time>/ "
                "(an unchanged earlier one is reused)"
            )
        if self.can(Capability.SNAPSHOTS):
            return f"Qdrant snapshot of {name}"
        return "none (in-memory mode has no snapshots; the previous collection is kept)"

    def no_snapshot_note(self) -> str:
        return "qdrant-client in-memory mode has no snapshots; the previous collection is kept for rollback"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class QdrantAliases(AliasBackend):
    """Real Qdrant aliases through qdrant-client (a server, or local mode)."""

    connector: QdrantApiConnector

    async def aliases(self) -> dict[str, str]:
        return await self.connector.list_aliases()

    async def switch(self, alias: str, collection: str, expected: Any = ANY) -> None:
        # Qdrant has no compare-and-swap: cutover checks `expected` just before.
        await self.connector.move_alias(alias, collection)

    async def remove(self, alias: str, expected: Any = ANY) -> None:
        await self.connector.delete_alias(alias)


def _short(content: Any) -> str:
    text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
    return text.replace("\n", " ")[:200]


def _sparse_slots(layout: PayloadLayout) -> dict[str, models.SparseVectorParams] | None:
    """The named sparse vectors the app's own store writes beside the dense one (mem0's
    `bm25`, IDF-weighted): created empty, so the app can fill them after the switch."""
    if not layout.sparse_slots:
        return None
    return {
        slot: models.SparseVectorParams(modifier=models.Modifier.IDF)
        for slot in layout.sparse_slots
    }
