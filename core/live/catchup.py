"""Catch-up: apply to the target what changed in a live source since the last cut.

One pass: a newer cut (the source connector takes it), the changes between the collection's
watermark and that cut (changes.py), the records written again in their newest version and
the deletes applied, the target synced — and only then the watermark moved to the new cut
and the ids file made equal to it. A pass that fails or is killed moves nothing: the next one
applies the same changes again (idempotent upserts and deletes).

Order matters for dual-write (docs/live-migration.md): every change after a cut is applied
again from a *later* cut, so an old version the bulk copy wrote over a newer dual-written one,
or a record it brought back after a delete, is replaced by the source's current state.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.core.connectors.base import TargetConnector
from ferry.core.live.changes import Lag, changes_since, measure_lag, remember_ids
from ferry.core.live.store import LiveCut, LiveStore
from ferry.core.model import CollectionInfo
from ferry.core.retry import RetryPolicy

DELETE_CHUNK = 1_000


@dataclass
class CatchUpResult:
    collection: str
    target_name: str
    from_seq_id: int
    to_seq_id: int
    upserted: int
    deleted: int
    seconds: float
    cut: str
    lag: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return self.upserted + self.deleted

    def to_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "target_name": self.target_name,
            "from_seq_id": self.from_seq_id,
            "to_seq_id": self.to_seq_id,
            "upserted": self.upserted,
            "deleted": self.deleted,
            "seconds": round(self.seconds, 3),
            "cut": self.cut,
        }

    def words(self) -> str:
        if not self.changes:
            return f"caught up: nothing changed since seq {self.from_seq_id}"
        return (
            f"caught up: {self.upserted:,} written, {self.deleted:,} deleted "
            f"(seq {self.from_seq_id} → {self.to_seq_id}) in {self.seconds:.1f}s"
        )


def cut_facts(info: CollectionInfo) -> tuple[str, str, int]:
    """(collection id, metadata segment, the cut's seq id) of a collection read from a cut."""
    facts = info.facts
    return (
        str(facts["collection_id"]),
        str(facts["metadata_segment"]),
        int(facts.get("cut_seq_id") or 0),
    )


async def catch_up(
    source: Any,
    target: TargetConnector,
    info: CollectionInfo,
    target_name: str,
    store: LiveStore,
    live: LiveCut,
    batch_size: int,
    retry: RetryPolicy,
) -> CatchUpResult:
    """Apply the changes between `live`'s watermark and the source's current cut."""
    started = time.perf_counter()
    cut = source.cut
    _collection_id, segment, to_seq = cut_facts(info)
    ids_file = Path(str(live.ids_file))
    changes = await asyncio.to_thread(changes_since, ids_file, cut.path, segment, live.cut_seq_id)
    name = info.name
    for start in range(0, len(changes.upserts), batch_size):
        batch = await source.fetch(name, changes.upserts[start : start + batch_size])
        if len(batch):
            await retry.call(lambda b=batch: target.write(target_name, b))
    for start in range(0, len(changes.deletes), DELETE_CHUNK):
        chunk = changes.deletes[start : start + DELETE_CHUNK]
        await retry.call(lambda c=chunk: target.delete(target_name, c))
    if len(changes):
        await retry.call(lambda: target.sync(target_name))
    # Durable on the target: now the ids file and the watermark may move to this cut.
    await asyncio.to_thread(remember_ids, ids_file, cut.path, segment, True)
    store.advance(live.run_id, name, to_seq, cut.taken_at, len(changes), cut.describe())
    return CatchUpResult(
        name,
        target_name,
        live.cut_seq_id,
        max(to_seq, live.cut_seq_id),
        len(changes.upserts),
        len(changes.deletes),
        time.perf_counter() - started,
        cut.describe(),
    )


async def lag_of(
    source: Any, info: CollectionInfo, live: LiveCut, seen_since: float | None = None
) -> Lag:
    """The live source's distance from the collection's watermark (no cut needed)."""
    collection_id, segment, _ = cut_facts(info)
    return await asyncio.to_thread(
        measure_lag, Path(source.path), collection_id, segment, live.cut_seq_id, seen_since
    )
