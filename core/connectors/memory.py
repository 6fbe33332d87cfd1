"""`memory://NAME` — collections in this process's memory, for tests and fault injection.

Not a database for users: nothing persists, and a detached `ferry migrate` process has its
own, empty memory. It exists so that engine tests can say "the third write times out" or
"cancel while the seventh write is in flight" instead of pacing a run with `rate=` and
hoping the timing holds.

`MemoryConnector` is a complete `TargetConnector` (it passes the contract suite), so the
engine cannot tell it from a database. Every connector opened on `memory://NAME` shares one
`MemoryStore` (so a test can fill `memory://src` and let `migrate()` open it by URI). The
store's `faults` make the n-th call of a method fail (`fail`) or wait until the test lets
it go (`hold`). Reads count per batch: `fail("read", after=2)` breaks the stream after two
batches, the way a connection drops mid-scroll; `reads` logs every read: where it started,
its batch size, and the cursors of the batches it delivered.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferry.core.connectors.base import (
    Indexing,
    IndexProgressCallback,
    IndexState,
    PingResult,
    QueryHits,
    TargetConnector,
)
from ferry.core.connectors.registry import Backend, Scheme, register
from ferry.core.connectors.traits import EngineTraits, Score
from ferry.core.errors import FerryError, PermanentError, TransientError
from ferry.core.mapping import PayloadFields
from ferry.core.model import Batch, CollectionInfo, Cursor, Metadata, Metric
from ferry.core.topk import exact_scores
from ferry.core.tuning import IndexTuning
from ferry.core.uri import ConnectionSpec

# Reports the similarity itself: what a database would if it spoke Ferry's scale.
MEMORY = EngineTraits(engine="Memory", scores=dict.fromkeys(Metric, Score.SIMILARITY))


@dataclass
class _Fault:
    after: int  # successful calls before it strikes
    times: int  # calls that fail (or wait) once it strikes
    error: type[FerryError] | None = None  # None: a hold
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)


class Hold:
    """A call that waits at a known point: `await hold.reached()`, then `hold.release()`."""

    def __init__(self, fault: _Fault) -> None:
        self._fault = fault

    async def reached(self) -> None:
        await self._fault.reached.wait()

    def release(self) -> None:
        self._fault.released.set()


class Faults:
    """Scripted failures and holds, per method name ("write", "read", "sync", "fetch", …)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._plans: dict[str, list[_Fault]] = {}

    def fail(
        self,
        method: str,
        times: int = 1,
        after: int = 0,
        error: type[FerryError] = TransientError,
    ) -> None:
        """After `after` more calls of `method` succeed, the next `times` raise `error`."""
        self._plans.setdefault(method, []).append(_Fault(self.calls[method] + after, times, error))

    def hold(self, method: str, after: int = 0) -> Hold:
        """The call after the next `after` ones waits (before doing anything) until released."""
        fault = _Fault(self.calls[method] + after, 1)
        self._plans.setdefault(method, []).append(fault)
        return Hold(fault)

    async def enter(self, method: str, where: str) -> None:
        """Called at the start of every operation: count it, then fail or wait if scripted."""
        number = self.calls[method]
        self.calls[method] += 1
        for fault in self._plans.get(method, []):
            if fault.after <= number < fault.after + fault.times:
                if fault.error is None:
                    fault.reached.set()
                    await fault.released.wait()
                    return
                raise fault.error(f"injected {method} fault #{number + 1}", where=where)


@dataclass
class ReadLog:
    """One call of `read`: where it started and the cursor after each batch it delivered."""

    collection: str
    cursor: Cursor
    batch_size: int
    delivered: list[Cursor] = field(default_factory=list)


@dataclass
class _Collection:
    dimension: int
    metric: Metric
    # id → (insertion sequence, vector, metadata, document); reads go in sequence order.
    records: dict[str, tuple[int, np.ndarray, Metadata | None, str | None]] = field(
        default_factory=dict
    )
    next_seq: int = 0
    tuning: IndexTuning = field(default_factory=IndexTuning)
    indexed: bool = False  # the index phase ran since the last write


class MemoryStore:
    """What every connector on one `memory://NAME` shares: collections, faults, a read log."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.uri = f"memory://{name}"
        self.faults = Faults()
        self.reads: list[ReadLog] = []
        self.collections: dict[str, _Collection] = {}

    def snapshot_of(self, collection: str) -> dict[str, tuple[Any, ...]]:
        """Every record as (vector list, metadata, document): for assertions."""
        return {
            sid: (v.tolist(), m, d)
            for sid, (_s, v, m, d) in self.collections[collection].records.items()
        }


_STORES: dict[str, MemoryStore] = {}


def memory_store(name: str) -> MemoryStore:
    """The store behind `memory://NAME` (made empty on first use)."""
    if name not in _STORES:
        _STORES[name] = MemoryStore(name)
    return _STORES[name]


def forget_memory_stores() -> None:
    """Drop every store of this process (tests start clean)."""
    _STORES.clear()


class MemoryConnector(TargetConnector):
    """Collections in a dict; cursors are insertion sequence numbers, stable under upserts."""

    kind = "memory"
    traits = MEMORY

    def __init__(self, spec: ConnectionSpec) -> None:
        self.uri = spec.uri
        self.store = memory_store(spec.host or "default")
        self.faults = self.store.faults
        self.reads = self.store.reads
        self._collections = self.store.collections

    def _get(self, name: str) -> _Collection:
        if name not in self._collections:
            raise FerryError(f"no collection {name!r}", where=self.uri)
        return self._collections[name]

    async def ping(self) -> PingResult:
        return PingResult(ok=True, version="memory", latency_ms=0.0)

    async def list_collections(self) -> list[str]:
        return sorted(self._collections)

    async def describe(self, name: str) -> CollectionInfo:
        await self.faults.enter("describe", self.uri)
        collection = self._get(name)
        keys = {k for _s, _v, meta, _d in collection.records.values() if meta for k in meta}
        return CollectionInfo(
            name,
            len(collection.records),
            collection.dimension,
            collection.metric,
            metadata_keys=sorted(keys),
            facts={"engine": self.kind},
        )

    async def count(self, name: str) -> int:
        await self.faults.enter("count", self.uri)
        return len(self._get(name).records)

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        collection = self._get(name)
        if batch_size < 1:
            raise FerryError("batch_size must be positive", where=self.uri)
        if cursor is not None and not isinstance(cursor, int):
            raise FerryError(f"not a memory cursor: {cursor!r}", where=self.uri)
        log = ReadLog(name, cursor, batch_size)
        self.reads.append(log)
        after = -1 if cursor is None else cursor
        while True:
            await self.faults.enter("read", self.uri)
            rows = sorted(
                (seq, sid) for sid, (seq, *_rest) in collection.records.items() if seq > after
            )[:batch_size]
            if not rows:
                return
            after = rows[-1][0]
            batch = self._batch(collection, [sid for _seq, sid in rows])
            batch.cursor_after = after
            log.delivered.append(after)
            yield batch
            await asyncio.sleep(0)  # a real reader yields to the loop between batches

    def _batch(self, collection: _Collection, ids: list[str]) -> Batch:
        found = [collection.records[i] for i in ids]
        vectors = (
            np.stack([v for _s, v, _m, _d in found])
            if found
            else np.zeros((0, collection.dimension), np.float32)
        )
        return Batch(
            list(ids),
            vectors.astype(np.float32),
            [copy.deepcopy(m) for _s, _v, m, _d in found],
            [d for _s, _v, _m, d in found],
        )

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        await self.faults.enter("fetch", self.uri)
        collection = self._get(name)
        return self._batch(collection, [i for i in dict.fromkeys(ids) if i in collection.records])

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        await self.faults.enter("query", self.uri)
        collection = self._get(name)
        ids = list(collection.records)
        if not ids:
            return [[] for _ in range(len(vectors))]
        matrix = np.stack([collection.records[i][1] for i in ids])
        scores = exact_scores(np.asarray(vectors, np.float32), matrix, collection.metric)
        hits = []
        for row in scores:
            order = np.argsort(-row, kind="stable")[:k]
            hits.append([(ids[j], float(row[j])) for j in order])
        return hits

    async def _exists(self, name: str) -> bool:
        return name in self._collections

    async def _create(self, info: CollectionInfo, tuning: IndexTuning) -> None:
        assert info.dimension is not None and info.metric is not None
        await self.faults.enter("create", self.uri)
        if not info.name or "/" in info.name:
            raise FerryError(f"invalid collection name {info.name!r}", where=self.uri)
        self._collections[info.name] = _Collection(info.dimension, info.metric, tuning=tuning)

    indexing = Indexing.MARKED

    async def build_index(
        self,
        name: str,
        tuning: IndexTuning,
        on_progress: IndexProgressCallback | None = None,
    ) -> IndexState:
        """A fault point ("index": fail or hold it), then the collection counts as indexed."""
        collection = self._get(name)
        if on_progress:
            on_progress(0, len(collection.records))
        await self.faults.enter("index", self.uri)
        collection.indexed = True
        return await self.index_state(name)

    async def index_state(self, name: str) -> IndexState:
        collection = self._get(name)
        n = len(collection.records)
        # Searched exactly whether or not the index phase ran: always ready to be judged.
        return IndexState(
            ready=True,
            indexed=n if collection.indexed else 0,
            total=n,
            detail="exact search" + (" (index phase done)" if collection.indexed else ""),
        )

    async def write(self, name: str, batch: Batch) -> None:
        await self.faults.enter("write", self.uri)
        collection = self._get(name)
        if len(batch) and batch.vectors.shape[1] != collection.dimension:
            raise PermanentError(
                f"vectors of dimension {batch.vectors.shape[1]}, collection has "
                f"{collection.dimension}",
                where=f"{self.uri} {name}",
            )
        if len(batch):
            collection.indexed = False
        for i, sid in enumerate(batch.ids):
            previous = collection.records.get(sid)
            seq = previous[0] if previous else collection.next_seq
            if previous is None:
                collection.next_seq += 1
            collection.records[sid] = (
                seq,
                np.array(batch.vectors[i], dtype=np.float32),
                copy.deepcopy(batch.metadatas[i]),
                batch.documents[i],
            )

    async def sync(self, name: str) -> None:
        await self.faults.enter("sync", self.uri)

    async def delete(self, name: str, ids: list[str]) -> None:
        await self.delete_native(name, ids)

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        collection = self._get(name)
        return {key for key in native_ids if key in collection.records}

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        await self.faults.enter("delete", self.uri)
        collection = self._get(name)
        for key in native_ids:
            collection.records.pop(key, None)


def open_memory(
    spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
) -> MemoryConnector:
    return MemoryConnector(spec)


# memory://NAME: process-local, for tests; not advertised in the URI examples.
BACKEND = register(Backend("memory", {"memory": Scheme("memory", "memory")}, open_memory))
