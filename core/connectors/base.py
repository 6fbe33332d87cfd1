"""What every database or file format speaks, on either side of a migration.

Two abstract bases: a `SourceConnector` is read (inventory, copy, validation); a
`TargetConnector` is also written. Every target is a source too, because validation reads
the target back. Required methods are abstract, so a connector that forgets one fails when
it is built, not halfway through a run; optional abilities ("aliases", "snapshots") are
declared in `capabilities` and read by the code that needs them (`aliases()`,
`snapshot()`). What an engine does differently (id rules, how it reports scores, notes for
the plan) is in its `traits` (core/connectors/traits.py), not in `if kind == …` elsewhere.

Every connector talks in *source ids*: a Qdrant connector maps them to point ids on the way
in and back (from the ``source_id`` payload field) on the way out, so the engine and the
validator never see a mapped id.

Connectors are async context managers: ``async with open_connector(uri) as c:`` closes them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import numpy as np

from ferry.core.backup_store import BackupResult, Progress
from ferry.core.compat import check_shape, check_target
from ferry.core.connectors.traits import EngineTraits
from ferry.core.errors import FerryError, PreflightError
from ferry.core.layouts import PayloadLayout
from ferry.core.model import Batch, CollectionInfo, Cursor, WriteMode
from ferry.core.tuning import IndexTuning

SAMPLE_RECORDS = 200  # what a plan or an inventory reads to judge ids and metadata keys


class Capability(StrEnum):
    """Optional abilities, declared by a connector and read where they matter."""

    WRITE = "write"  # a TargetConnector: the plan refuses any other as a target
    ALIASES = "aliases"  # `aliases()` returns a backend; cutover needs one
    SNAPSHOTS = "snapshots"  # `snapshot()` backs a collection up before a cutover


class Indexing(StrEnum):
    """When a target's search index exists: declared by each target as `indexing`, read by
    the plan and the index phase (instead of a text hook per connector)."""

    ON_WRITE = "on-write"  # the engine indexes as it writes (Chroma)
    AFTER_COPY = "after-copy"  # an optimizer builds HNSW after the copy (Qdrant Edge)
    RESTORED = "restored"  # HNSW off during the copy (m=0), restored after (Qdrant server)
    NEVER = "never"  # every search is brute force (qdrant-client local mode)
    NONE = "none"  # no search index at all (file exports)
    MARKED = "marked"  # the test target marks it indexed (memory://)

    @property
    def words(self) -> str:
        """What the index phase does on such a target, for the plan and the monitor."""
        return _INDEXING_WORDS[self]


_INDEXING_WORDS = {
    Indexing.ON_WRITE: "none needed: the engine indexes on write, so the target is "
    "search-ready when the copy ends",
    Indexing.AFTER_COPY: "Qdrant Edge's optimizer builds the HNSW index after the copy (in the "
    "worker); an app that writes later calls shard.optimize() itself",
    Indexing.RESTORED: "HNSW deferred during the copy (m=0), restored after; waits until the "
    "collection is green, with indexed_vectors_count as progress",
    Indexing.NEVER: "none: qdrant-client local mode never builds an index (every search is "
    "brute force); use qdrant+edge:// or a server for HNSW",
    Indexing.NONE: "none: a file export has no search index (the loader into a database "
    "builds one)",
    Indexing.MARKED: 'memory:// marks the collection indexed (fault point "index")',
}


@dataclass
class PingResult:
    """What "Test connection" shows: who answered, how fast, and whether we were let in."""

    ok: bool
    version: str | None = None
    latency_ms: float | None = None
    auth: str = "n/a"  # "ok", "none", "failed", "n/a"
    detail: str = ""


@dataclass
class PrepareResult:
    """What `prepare` did to the target collection, for the plan and the journal."""

    created: bool
    existed: bool
    warnings: list[str] = field(default_factory=list)


@dataclass
class IndexState:
    """Whether a target collection answers from its search index yet, and how far it is.

    `indexed` / `total` are vectors (None where the engine does not say); `detail` is the
    words a view shows ("HNSW over 10,000 of 10,000 vectors", "indexes on write")."""

    ready: bool
    indexed: int | None = None
    total: int | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "indexed": self.indexed,
            "total": self.total,
            "detail": self.detail,
        }


# Index progress as it goes: (vectors indexed or None when unknown, total or None).
IndexProgressCallback = Callable[[int | None, int | None], None]


# A query answer: for each query vector, (source id, score as the database reports it).
QueryHits = list[list[tuple[str, float]]]


async def batches_in_thread(batches: Iterator[Batch]) -> AsyncIterator[Batch]:
    """A blocking reader's batches, each pulled in a worker thread (file and SQLite reads
    never run on the event loop)."""
    done = object()
    while True:
        batch = await asyncio.to_thread(next, batches, done)
        if batch is done:
            return
        yield batch  # type: ignore[misc]


def byte_chunks(sizes: list[int], limit: int | None, overhead: int = 0) -> list[tuple[int, int]]:
    """Split rows of these encoded sizes into [start, end) runs under `limit` bytes each.

    Why: a server refuses a request over its size limit (Qdrant REST: 32 MB by default), and a
    batch of wide vectors with long documents can pass the count cap and still be too big. A
    single row larger than the limit goes alone (the server then says what is wrong with it).
    """
    if not sizes:
        return []
    if not limit:
        return [(0, len(sizes))]
    runs: list[tuple[int, int]] = []
    start, used = 0, overhead
    for i, size in enumerate(sizes):
        if i > start and used + size > limit:
            runs.append((start, i))
            start, used = i, overhead
        used += size
    runs.append((start, len(sizes)))
    return runs


class Connector(ABC):
    """What both sides share: identity, facts, and a lifetime (`close`, `async with`)."""

    uri: str = ""
    kind: str = ""
    traits: EngineTraits
    capabilities: frozenset[str] = frozenset()

    def can(self, capability: Capability) -> bool:
        return capability.value in self.capabilities

    @abstractmethod
    async def ping(self) -> PingResult:
        """Who answered and how fast; a failure is a result (ok=False), not an exception."""

    @abstractmethod
    async def list_collections(self) -> list[str]: ...

    @abstractmethod
    async def describe(self, name: str) -> CollectionInfo:
        """Facts about one collection; an unknown name is a FerryError."""

    @abstractmethod
    async def count(self, name: str) -> int: ...

    async def store_facts(self) -> dict[str, Any]:
        """Facts about the whole store worth showing in an inventory (e.g. a schema state)."""
        return {}

    async def backup(self, name: str, to: Path, progress: Progress | None = None) -> BackupResult:
        """Copy one collection into a verified backup under `to` (core/backup_store.py), or
        reuse a verified backup of the same state. Stores that cannot say so here."""
        raise FerryError(
            f"Ferry cannot back up a {self.kind} collection",
            where=self.uri,
            fix="use the database's own backup tools",
        )

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SourceConnector(Connector):
    """A store Ferry reads: stream it, fetch by id, ask it the queries validation compares."""

    # Whether `describe` lists the metadata keys; if not (Qdrant keeps no such list), plans
    # and inventories sample them from the first records.
    lists_metadata_keys: bool = True
    # What this store gives back for a stored float payload value, when not the float itself
    # (Qdrant Edge rounds some by an ulp): validation tells that from a real change.
    float_read_back: Callable[[float], float] | None = None
    # Set by a caller that only plans (inventory, the run dialog, `--dry-run`): a source that
    # otherwise reads a consistent cut may then read in place while nothing moves (an
    # embedded Chroma directory: chroma/peek.py). Never set for a run.
    plan_only: bool = False

    @abstractmethod
    def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        """Stream the collection from `cursor` in batches; each carries its resume cursor.

        Reading again from a batch's `cursor_after` yields exactly the records after it,
        in the same order (the engine's resume and the contract tests rely on it)."""

    @abstractmethod
    async def fetch(self, name: str, ids: list[str]) -> Batch:
        """The records with these source ids that exist (any order; missing ones omitted)."""

    @abstractmethod
    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        """Top-k per query vector, scores as the database reports them (see `traits`)."""

    def native_id(self, source_id: str, name: str | None = None) -> Any:
        """The key under which this store keeps `source_id` (a Qdrant point id) in collection
        `name` (its payload layout may derive keys its own way)."""
        return source_id

    def tune_search(self, name: str, hnsw_ef: int | None) -> None:
        """Search `name` with this HNSW `ef` from now on (validation queries the target the
        way the application will: with the recorded `hnsw_ef`). Engines without the knob
        ignore it."""
        if not hasattr(self, "_search_ef"):
            self._search_ef: dict[str, int] = {}
        if hnsw_ef is None:
            self._search_ef.pop(name, None)
        else:
            self._search_ef[name] = int(hnsw_ef)

    def search_ef(self, name: str) -> int | None:
        return getattr(self, "_search_ef", {}).get(name)

    # -- payload layouts (core/layouts/) ---------------------------------------------------
    def use_payload_layout(self, name: str, layout: PayloadLayout) -> None:
        """Read and write collection `name` in `layout`. Stores that keep records natively
        (Chroma, memory) take only `flat`: their records are what the framework reads."""
        if layout.name != "flat":
            raise PreflightError(
                f"layout {layout.name!r} applies to Qdrant targets; {self.kind} keeps records "
                "as the framework wrote them",
                where=self.uri,
                fix="omit --layout (a Chroma copy is already what the app reads; files keep records as read)",
            )

    def payload_layout(self, name: str) -> PayloadLayout | None:
        """The layout collection `name` is read and written in (None: records are native)."""
        return None

    async def warm(self, name: str) -> None:
        """Get ready to `read` what a plan did not need (the Chroma file reader's id → label
        map): the engine runs it while the target prepares. Default: nothing to do."""

    async def sample(self, name: str, limit: int = SAMPLE_RECORDS) -> Batch | None:
        """The first records of a collection (None if it has none): what plans judge ids by."""
        reader = self.read(name, None, limit)
        try:
            async for batch in reader:
                return batch
        finally:
            await reader.aclose()  # type: ignore[attr-defined]  # an async generator
        return None


ANY: Any = object()  # `switch(expected=ANY)`: no check of where the alias points now


class AliasBackend(ABC):
    """What cutover needs from a target: read an alias, move it atomically, back up.

    Returned by `TargetConnector.aliases()`; it lives as long as its connector.
    """

    def __init__(self, connector: TargetConnector) -> None:
        self.connector = connector
        self.target_uri = connector.uri
        self.kind = connector.kind

    @abstractmethod
    async def aliases(self) -> dict[str, str]:
        """alias → collection, for every alias on the target."""

    @abstractmethod
    async def switch(self, alias: str, collection: str, expected: Any = ANY) -> None:
        """Point `alias` at `collection` in one atomic step (creating it if it is new).

        `expected` (where the alias must point now; `ANY` for no check) is enforced
        atomically where the backend can (Ferry's Edge alias file); Qdrant has no
        compare-and-swap, so there cutover checks just before."""

    @abstractmethod
    async def remove(self, alias: str, expected: Any = ANY) -> None:
        """Delete `alias` (the collection it points at stays). `expected` as in `switch`:
        rolling back a first cutover removes the alias it created, and only that one."""

    async def current(self, alias: str) -> str | None:
        return (await self.aliases()).get(alias)

    async def collections(self) -> list[str]:
        return await self.connector.list_collections()

    async def snapshot(self, collection: str, progress: Progress | None = None) -> dict[str, Any]:
        """Back up `collection`; says where the copy is, or why there is none."""
        return await self.connector.snapshot(collection, progress)

    def snapshot_words(self, collection: str) -> str:
        return self.connector.snapshot_words(collection)


class TargetConnector(SourceConnector):
    """A store Ferry writes: `prepare` a collection, upsert batches, make them durable."""

    capabilities: frozenset[str] = frozenset({Capability.WRITE.value})

    # -- prepare: one template, two hooks ---------------------------------------------------
    async def prepare(
        self,
        info: CollectionInfo,
        mode: WriteMode,
        owned: bool = False,
        tuning: IndexTuning | None = None,
    ) -> PrepareResult:
        """Create the target collection, or check that the existing one can take `info`.

        `owned`: the journal says Ferry made it. A dimension mismatch is always refused;
        the other rules are `ferry.core.compat.check_target`'s, the same the plan applies.
        `tuning`: how a new collection is indexed (core.tuning); an existing one keeps its own.
        """

        if info.dimension is None or info.metric is None:
            raise PreflightError(f"collection {info.name!r} has no known dimension", where=self.uri)
        from ferry.core.layouts.apps import (
            as_created,  # the distance an app framework's store wants
        )

        info = as_created(info, self.payload_layout(info.name))
        if await self._exists(info.name):
            check_shape(self.uri, info, await self.shape(info.name), mode)  # before opening it
            existing = await self.describe(info.name)
            warnings = check_target(self.uri, info, existing, mode, owned)
            return PrepareResult(created=False, existed=True, warnings=warnings)
        await self._create(info, tuning or IndexTuning())
        return PrepareResult(created=True, existed=False)

    async def shape(self, name: str) -> CollectionInfo:
        """Dimension and metric of an existing collection (count may be 0: not asked).
        Targets that can tell without opening the collection say so here."""
        return await self.describe(name)

    @abstractmethod
    async def _exists(self, name: str) -> bool:
        """Whether the target has a collection of this name (without creating anything)."""

    @abstractmethod
    async def _create(self, info: CollectionInfo, tuning: IndexTuning) -> None:
        """Create an empty collection for `info` (dimension and metric are known), with the
        HNSW settings and payload indexes of `tuning` where the engine has them."""

    # -- writing ----------------------------------------------------------------------------
    @abstractmethod
    async def write(self, name: str, batch: Batch) -> None:
        """Idempotent upsert: replaying a batch after a crash duplicates nothing."""

    async def replace(self, name: str, batch: Batch) -> None:
        """Write each record whole: nothing of an earlier version (a stale metadata key)
        survives. Qdrant's upsert replaces the point whole, so this is `write`; a target
        whose upsert merges (Chroma) removes the records first: a kill in between leaves
        them missing, which the next validation finds and repairs, never silently wrong."""
        await self.write(name, batch)

    @abstractmethod
    async def delete(self, name: str, ids: list[str]) -> None:
        """Remove these source ids; ids that are not there are ignored."""

    async def sync(self, name: str) -> None:
        """Make every acknowledged write durable on disk. The engine calls it before it
        commits a checkpoint; targets whose writes are durable on acknowledgement keep this."""
        return None

    async def finish(self, name: str) -> None:
        """Every record of the copy is written and synced: make the collection final.

        Called by the engine after the last checkpoint (and by validation after a repair).
        Databases have nothing to do; a file export drops superseded rows, checksums its
        files and marks its manifest complete (core/connectors/files/portable.py)."""
        return None

    # -- records found in the target, by the target's own keys -------------------------------
    @abstractmethod
    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        """Which of these target keys exist now (a read-back, not a belief)."""

    @abstractmethod
    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        """Delete records by the target's own keys (`Batch.native_ids`), durably."""

    async def delete_found(self, name: str, native_ids: list[Any]) -> int:
        """Delete records found in the target and return how many the target confirms gone.

        Why by native key: a record written by someone else (another tool, an app) sits under
        a key Ferry would never derive from its `source_id`, so deleting by source id would
        delete nothing and still be counted. The count is read back, never assumed.
        """
        keys = list(dict.fromkeys(native_ids))
        if not keys:
            return 0
        before = await self.present(name, keys)
        await self.delete_native(name, [k for k in keys if k in before])
        after = await self.present(name, keys)
        return len(before - after)

    def max_batch_size(self) -> int | None:
        """The largest batch the target accepts in one write, if it has a limit."""
        return None

    # Requests larger than this many bytes are refused by the server (None: no limit).
    # `write` splits a batch into requests under it (`byte_chunks`).
    max_request_bytes: int | None = None

    # -- the index phase: after the copy, before `completed` --------------------------------
    def tuning_words(self, tuning: IndexTuning) -> str:
        """How a new collection here is indexed and searched, for the plan."""
        return tuning.words()

    # When this target's index exists (the plan says it in `Indexing.words`).
    indexing: Indexing = Indexing.ON_WRITE

    async def build_index(
        self,
        name: str,
        tuning: IndexTuning,
        on_progress: IndexProgressCallback | None = None,
    ) -> IndexState:
        """Make `name` search-ready after the copy and return its state; safe to call again
        (a resumed run calls it after a crash). The default: the engine indexes on write."""
        return await self.index_state(name)

    async def index_state(self, name: str) -> IndexState:
        """Whether `name` answers from its index now (validation refuses to judge recall on
        a target that does not)."""
        return IndexState(ready=True, detail="indexes on write")

    def plan_warnings(self) -> list[str]:
        """What the plan should say about this target before anything is written."""
        return []

    def sample_warnings(self, sample: Batch) -> list[str]:
        """What the plan should say about writing records like these (a source's first)."""
        return []

    # -- optional capabilities --------------------------------------------------------------
    def aliases(self) -> AliasBackend | None:
        """The alias backend (capability "aliases"), or None: switch apps with the router."""
        if not self.can(Capability.ALIASES):
            return None
        return self._alias_backend()

    def _alias_backend(self) -> AliasBackend:
        raise FerryError(f"{self.kind} declares aliases but has no backend")  # pragma: no cover

    async def snapshot(self, name: str, progress: Progress | None = None) -> dict[str, Any]:
        """Back up a collection (capability "snapshots"): where the copy is, or why none.

        A directory copy goes through `backup()` into the target's own backup folder, so a
        cutover's backup is written under a temporary name, verified, renamed, and reused
        when the collection has not changed since (its dict names the manifest's sha256)."""
        if not self.can(Capability.SNAPSHOTS):
            return {"kind": "none", "note": self.no_snapshot_note()}
        return await self._snapshot(name, progress)

    async def _snapshot(self, name: str, progress: Progress | None = None) -> dict[str, Any]:
        raise FerryError(f"{self.kind} declares snapshots but cannot take one")  # pragma: no cover

    def snapshot_words(self, name: str) -> str:
        """What `snapshot` will do, in words, for a plan shown before it happens."""
        return f"none ({self.no_snapshot_note()})"

    def no_snapshot_note(self) -> str:
        return f"{self.kind} has no snapshots"


def mark_plan_only(connector: Connector) -> None:
    """This connector only plans: no run reads through it (`SourceConnector.plan_only`)."""
    if isinstance(connector, SourceConnector):
        connector.plan_only = True
