"""The one protocol every database or file format speaks, on either side of a migration.

Every connector talks in *source ids*: a Qdrant connector maps them to point ids on the way
in and back (from the ``source_id`` payload field) on the way out, so the engine and the
validator never see a mapped id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from core.model import Batch, CollectionInfo, Cursor


class WriteMode(StrEnum):
    """How `prepare` treats a target collection that already exists."""

    CREATE = "create"  # create it; an existing one is used only if Ferry made it, same settings
    APPEND = "append"  # upsert into an existing collection whose dimension matches


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


# A query answer: for each query vector, (source id, score as the database reports it).
QueryHits = list[list[tuple[str, float]]]


class Connector:
    """Base class with the shared shape; each subclass fills in what its database can do."""

    uri: str = ""
    kind: str = ""
    # Optional capabilities, declared not assumed: "write", "aliases", "snapshots".
    capabilities: frozenset[str] = frozenset()

    async def ping(self) -> PingResult:
        raise NotImplementedError

    async def list_collections(self) -> list[str]:
        raise NotImplementedError

    async def describe(self, name: str) -> CollectionInfo:
        raise NotImplementedError

    async def count(self, name: str) -> int:
        raise NotImplementedError

    def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        """Stream the collection from `cursor` in batches; each carries its resume cursor."""
        raise NotImplementedError

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        """The records with these source ids that exist (any order; missing ones omitted)."""
        raise NotImplementedError

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        raise NotImplementedError

    # Target side -------------------------------------------------------------------------
    async def prepare(
        self, info: CollectionInfo, mode: WriteMode, owned: bool = False
    ) -> PrepareResult:
        """Create or check the target collection. `owned`: the journal says Ferry made it."""
        raise NotImplementedError

    async def write(self, name: str, batch: Batch) -> None:
        """Idempotent upsert: replaying a batch after a crash duplicates nothing."""
        raise NotImplementedError

    async def sync(self, name: str) -> None:
        """Make every acknowledged write durable on disk. The engine calls it before it
        commits a checkpoint; targets whose writes are durable on acknowledgement keep this."""
        return None

    async def delete(self, name: str, ids: list[str]) -> None:
        raise NotImplementedError

    # Records found in the target, by the target's own keys ---------------------------------
    def native_id(self, source_id: str) -> Any:
        """The key under which this target stores `source_id` (a Qdrant point id)."""
        return source_id

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        """Which of these target keys exist now (a read-back, not a belief)."""
        raise NotImplementedError

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        """Delete records by the target's own keys (`Batch.native_ids`), durably."""
        raise NotImplementedError

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

    async def close(self) -> None:
        return None

    def max_batch_size(self) -> int | None:
        """The largest batch the target accepts in one write, if it has a limit."""
        return None
