"""Chroma through its client API: a server (`chroma+http(s)://`), or a *copy* of an embedded
directory.

The chromadb client is synchronous, so every call runs in a thread. Opening a
`PersistentClient` writes to `chroma.sqlite3` even to read, so for a user's embedded
directory this class is only ever pointed at a working copy (see chroma/embedded.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from ferry.core.connectors.base import PingResult, QueryHits, TargetConnector, byte_chunks
from ferry.core.connectors.chroma.space import embedding_function_name, server_hnsw, server_metric
from ferry.core.connectors.traits import CHROMA
from ferry.core.errors import ConnectionFailed, FerryError, TransientError, classify, in_words
from ferry.core.model import Batch, CollectionInfo, Cursor, Metric
from ferry.core.tuning import IndexTuning

INCLUDE = ["embeddings", "metadatas", "documents"]
METADATA_KEY_SAMPLE = 1000
# Chroma's HTTP server refuses bodies over its limit; Ferry keeps each upsert under this many
# bytes by estimated JSON size (embeddings as JSON numbers, documents and metadata as text),
# besides `get_max_batch_size()` records.
CHROMA_MAX_REQUEST_BYTES = 32 * 1024 * 1024
JSON_BYTES_PER_FLOAT = 24  # a float32 as JSON: up to "-1.2345678901234567e-05, "


def metric_of(configuration: dict[str, Any] | None, metadata: dict[str, Any] | None) -> Metric:
    """The space chroma searches with, as far as its API shows it (see chroma_space)."""
    return server_metric(configuration, metadata)


def as_batch(result: dict[str, Any], dimension: int, cursor_after: Any = None) -> Batch:
    ids = list(result["ids"])
    embeddings = result.get("embeddings")
    if embeddings is None or len(ids) == 0:
        vectors = np.zeros((len(ids), dimension), dtype=np.float32)
    else:
        vectors = np.asarray(embeddings, dtype=np.float32).reshape(len(ids), -1)
    metadatas = list(result.get("metadatas") or [None] * len(ids))
    documents = list(result.get("documents") or [None] * len(ids))
    return Batch(ids, vectors, metadatas, documents, cursor_after)


class ChromaApiConnector(TargetConnector):
    """Any chromadb `ClientAPI`: HttpClient for servers, PersistentClient for copies.

    No aliases and no snapshots: apps are switched with the router.
    """

    kind = "chroma"
    traits = CHROMA

    def __init__(self, uri: str, make_client: Any, kind: str = "chroma-server") -> None:
        self.uri = uri
        self.kind = kind
        self._make_client = make_client
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        # name -> (count before, count after, records read): the source changed meanwhile
        self.changed_during_read: dict[str, tuple[int, int, int]] = {}
        self._replace_whole: set[str] = set()  # append into an existing collection
        self.max_request_bytes = CHROMA_MAX_REQUEST_BYTES if kind == "chroma-server" else None

    async def _client_ready(self) -> Any:
        if self._client is None:
            try:
                self._client = await asyncio.to_thread(self._make_client)
            except FerryError:
                raise
            except Exception as exc:
                if self.kind != "chroma-server":  # a private copy opened in this process
                    raise FerryError(
                        f"the installed chromadb cannot open a copy of this directory: "
                        f"{str(exc)[:160]}",
                        where=self.uri,
                        fix="read it without ?api=1 (the file reader), or with the chromadb "
                        "release that wrote it",
                    ) from exc
                error = classify(exc, "connect", self.uri, "Chroma")
                if isinstance(error, TransientError) and not _refused(exc):
                    raise error from exc  # a reset or a timeout: the policy tries again
                raise ConnectionFailed(
                    f"cannot reach Chroma: {in_words(exc)}",
                    where=self.uri,
                    fix="check the host and port, and that `chroma run` is up",
                ) from exc
        return self._client

    async def _collection(self, name: str, fresh: bool = False) -> Any:
        """The chromadb Collection (cached). `fresh`: ask again, for facts that change (Chroma
        learns a collection's dimension from its first record)."""
        if fresh or name not in self._collections:
            client = await self._client_ready()
            try:
                self._collections[name] = await asyncio.to_thread(client.get_collection, name)
            except Exception as exc:
                error = classify(exc, f"get collection {name}", self.uri, "Chroma")
                if isinstance(error, TransientError | ConnectionFailed):
                    raise error from exc
                raise FerryError(f"no collection {name!r}", where=self.uri) from exc
        return self._collections[name]

    async def _run(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call in a thread; its failure sorted by `ferry.core.errors.classify`."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            error = classify(exc, what, self.uri, "Chroma")
            if error is exc:
                raise
            raise error from exc

    async def ping(self) -> PingResult:
        start = time.perf_counter()
        try:
            client = await self._client_ready()
            await asyncio.to_thread(client.heartbeat)
            version = await asyncio.to_thread(client.get_version)
        except FerryError as exc:
            return PingResult(ok=False, detail=exc.one_line())
        except Exception as exc:
            return PingResult(ok=False, detail=in_words(exc))
        return PingResult(
            ok=True,
            version=f"Chroma {version}",
            latency_ms=(time.perf_counter() - start) * 1000,
            auth="none",
        )

    async def list_collections(self) -> list[str]:
        client = await self._client_ready()
        collections = await self._run("list collections", client.list_collections)
        return sorted(c.name if hasattr(c, "name") else str(c) for c in collections)

    async def describe(self, name: str) -> CollectionInfo:
        collection = await self._collection(name, fresh=True)
        count = await self._run("count", collection.count)
        model = getattr(collection, "_model", None)
        configuration = getattr(model, "configuration_json", None) or {}
        sample = await self._run(
            "get", collection.get, limit=METADATA_KEY_SAMPLE, include=["metadatas"]
        )
        keys = sorted({k for m in sample.get("metadatas") or [] if m for k in m})
        return CollectionInfo(
            name=name,
            count=count,
            dimension=getattr(model, "dimension", None),
            metric=metric_of(configuration, collection.metadata),
            metadata_keys=keys,
            embedding_function=embedding_function_name(configuration),
            facts={
                "engine": self.kind,
                "metadata_keys_sampled": count > METADATA_KEY_SAMPLE,
                "hnsw": server_hnsw(configuration, collection.metadata),
            },
        )

    async def count(self, name: str) -> int:
        collection = await self._collection(name)
        return await self._run("count", collection.count)

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        collection = await self._collection(name)
        dimension = getattr(getattr(collection, "_model", None), "dimension", None) or 0
        offset = int(cursor or 0)
        # A server has no consistent cut (its API pages by offset): a count before and after
        # says whether the collection changed while it was read (docs/live-migration.md).
        before = await self._run("count", collection.count)
        while True:
            page = await self._run(
                "get", collection.get, limit=batch_size, offset=offset, include=INCLUDE
            )
            if page["ids"]:
                offset += len(page["ids"])
                yield as_batch(page, dimension, cursor_after=offset)
            if len(page["ids"]) < batch_size:
                break
        after = await self._run("count", collection.count)
        if after != before or (cursor is None and offset != before):
            self.changed_during_read[name] = (before, after, offset)

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        collection = await self._collection(name)
        dimension = getattr(getattr(collection, "_model", None), "dimension", None) or 0
        if not ids:
            return Batch.empty(dimension)
        page = await self._run("get", collection.get, ids=ids, include=INCLUDE)
        return as_batch(page, dimension)

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        collection = await self._collection(name)
        answer = await self._run(
            "query",
            collection.query,
            query_embeddings=np.asarray(vectors, dtype=np.float32),
            n_results=k,
            include=["distances"],
        )
        return [
            list(zip(ids, (float(d) for d in dists), strict=True))
            for ids, dists in zip(answer["ids"], answer["distances"], strict=True)
        ]

    def max_batch_size(self) -> int | None:
        if self._client is None:
            return None
        try:
            return int(self._client.get_max_batch_size())
        except Exception:
            return None

    async def _exists(self, name: str) -> bool:
        return name in await self.list_collections()

    async def _create(self, info: CollectionInfo, tuning: IndexTuning) -> None:
        """Create with the source's space and HNSW settings (Chroma indexes every metadata
        key itself: payload indexes need no asking)."""
        assert info.metric is not None
        client = await self._client_ready()
        hnsw: dict[str, Any] = {"space": info.metric.value}
        for ours, theirs in (
            ("m", "max_neighbors"),
            ("ef_construct", "ef_construction"),
            ("hnsw_ef", "ef_search"),
        ):
            value = getattr(tuning, ours)
            if value is not None:
                hnsw[theirs] = int(value)
        collection = await self._run(
            "create collection",
            client.create_collection,
            info.name,
            configuration={"hnsw": hnsw},
        )
        self._collections[info.name] = collection

    def tuning_words(self, tuning: IndexTuning) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("M", tuning.m),
                ("ef_construction", tuning.ef_construct),
                ("ef_search", tuning.hnsw_ef),
            )
            if v is not None
        ]
        return (
            f"HNSW {' '.join(parts) or 'defaults'} ({tuning.source}); "
            "Chroma indexes every metadata key itself"
        )

    def request_sizes(self, batch: Batch) -> list[int]:
        """Each record's estimated share of an upsert request body (JSON), in bytes: chromadb
        sends UTF-8 (orjson), so text counts by its encoded length and JSON escapes."""
        vector = batch.vectors.shape[1] * JSON_BYTES_PER_FLOAT if batch.vectors.ndim == 2 else 0
        return [
            vector
            + _json_bytes(record_id)
            + _json_bytes(document or "")
            + (_json_bytes(metadata) if metadata else 4)
            + 32
            for record_id, metadata, document in zip(
                batch.ids, batch.metadatas, batch.documents, strict=True
            )
        ]

    def _request_runs(self, part: Batch) -> list[tuple[int, int]]:
        """[start, end) runs of `part` under `max_request_bytes`. A whole batch is sized in
        one pass (one json.dumps of all its metadata, in C) and sent as one request when it
        fits, as nearly always; only a batch over the limit is sized record by record."""
        if not self.max_request_bytes:
            return [(0, len(part))]
        vector = part.vectors.shape[1] * JSON_BYTES_PER_FLOAT if part.vectors.ndim == 2 else 0
        whole = (
            (vector + 32) * len(part)
            + sum(map(len, part.ids))
            + sum(len(d) for d in part.documents if d)
            + len(json.dumps(part.metadatas, default=str))
            + 4 * len(part)  # a `null` metadata counts 4, as in request_sizes
        )
        if whole <= self.max_request_bytes:
            return [(0, len(part))]
        return byte_chunks(self.request_sizes(part), self.max_request_bytes)

    async def prepare(
        self, info: CollectionInfo, mode: Any, owned: bool = False, tuning: Any = None
    ) -> Any:
        """As every target; and `--mode append` into a collection that existed makes every
        write a `replace`: Chroma's upsert merges metadata, so a key the source no longer
        has would survive on the target."""
        result = await super().prepare(info, mode, owned, tuning)
        if result.existed and getattr(mode, "value", mode) == "append":
            self._replace_whole.add(info.name)
        return result

    async def replace(self, name: str, batch: Batch) -> None:
        """Delete, then add: Chroma's upsert merges metadata (a stale key stays)."""
        await self.write(name, batch, whole=True)

    async def write(self, name: str, batch: Batch, whole: bool = False) -> None:
        """Upsert in requests of at most `get_max_batch_size()` records and under
        `max_request_bytes` (wide vectors with long documents split further); `whole` (or
        an append into a collection that existed): each request's ids are deleted first."""
        if not len(batch):
            return
        whole = whole or name in self._replace_whole
        collection = await self._collection(name)
        limit = self.max_batch_size() or len(batch)
        for start in range(0, len(batch), limit):
            end = min(start + limit, len(batch))
            part = _rows(batch, start, end)
            for lo, hi in self._request_runs(part):
                if whole:
                    await self._run("delete", collection.delete, ids=part.ids[lo:hi])
                await self._run(
                    "upsert",
                    collection.upsert,
                    ids=part.ids[lo:hi],
                    embeddings=part.vectors[lo:hi],
                    metadatas=part.metadatas[lo:hi],
                    documents=part.documents[lo:hi],
                )

    async def delete(self, name: str, ids: list[str]) -> None:
        await self.delete_native(name, ids)

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        collection = await self._collection(name)
        page = await self._run("get", collection.get, ids=list(native_ids), include=[])
        return set(page["ids"])

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        collection = await self._collection(name)
        await self._run("delete", collection.delete, ids=list(native_ids))


def _json_bytes(value: object) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False).encode())


def _refused(exc: BaseException) -> bool:
    """Nothing listens there (at the first contact: a wrong host or port, not a blip)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _rows(batch: Batch, start: int, end: int) -> Batch:
    if start == 0 and end == len(batch):
        return batch
    return Batch(
        batch.ids[start:end],
        batch.vectors[start:end],
        batch.metadatas[start:end],
        batch.documents[start:end],
    )
