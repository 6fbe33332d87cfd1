"""Records a target cannot hold exactly, refused by id before anything is written.

A crafted or damaged source (an export edited by hand, a Chroma directory an old release or
another writer filled) can hold what no target stores faithfully: an integer beyond Qdrant's
i64 payload (it would become a float), NaN or inf in metadata (Qdrant: "failed to convert NaN
into payload number type"), a metadata key "" (an invalid JSON path), a document that is not
text, an empty id, the same id twice. Each is refused in one line naming the collection and the
record, never copied silently and never left to the library's words.

Where: `scan_collections` runs in preflight, before the journal run or any target collection
exists: it reads every record of a small collection (`FULL_SCAN_RECORDS`) and the first batch
of a larger one. Later batches of a large collection are checked by the engine where they are
read (`refuse_bad_records`): that collection stops with the same one line, naming the id; what
was written before it stays (resumable once the source is fixed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ferry.core.model import Batch

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
FULL_SCAN_RECORDS = 20_000  # a whole collection this small is read in preflight: cheap
SCAN_BATCH = 1000
SCAN_BYTES = 32 * 1024 * 1024  # a scan batch holds about this much at most
PROBE_RECORDS = 16
MAX_DEPTH = 16


def value_problem(value: Any, depth: int = 0) -> str | None:
    """Why a metadata value cannot be carried exactly, or None when it can."""
    if value is None or isinstance(value, bool | str):
        return None
    if isinstance(value, int):
        if not I64_MIN <= value <= I64_MAX:
            return f"integer {value} is beyond ±2^63 (a 64-bit payload integer)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"value {value} is not a finite number"
    if depth >= MAX_DEPTH:
        return "is nested too deeply"
    if isinstance(value, list | tuple):
        for item in value:
            if problem := value_problem(item, depth + 1):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                return f"has a nested key {key!r} that is not a non-empty string"
            if problem := value_problem(item, depth + 1):
                return problem
        return None
    return f"value of type {type(value).__name__} is not a number, text, bool or list"


def record_problem(record_id: Any, metadata: Any, document: Any) -> str | None:
    """Why one record cannot be carried exactly, or None."""
    if not isinstance(record_id, str) or not record_id:
        return "the id is empty or not text"
    if document is not None and not isinstance(document, str):
        return f"its document is a {type(document).__name__}, not text"
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return f"its metadata is a {type(metadata).__name__}, not a mapping"
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            return f"metadata key {key!r} is empty or not text"
        if problem := value_problem(value):
            return f"metadata {key!r}: {problem}"
    return None


def first_problem(batch: Batch, seen: set[str] | None = None) -> tuple[str, str] | None:
    """(record id, why) of the first record in `batch` a target cannot hold, or None.
    `seen` collects ids across batches to find the same id twice."""
    import numpy as np

    if batch.vectors.size:
        finite = np.isfinite(batch.vectors).all(axis=1)
        if not bool(finite.all()):
            bad = [str(batch.ids[i]) for i in np.flatnonzero(~finite)]
            shown = ", ".join(repr(i) for i in bad[:5]) + (
                f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
            )
            return bad[0], f"NaN or infinite vector values in {len(bad)} record(s): {shown}"
    local: set[str] = set() if seen is None else seen
    for index, record_id in enumerate(batch.ids):
        metadata = batch.metadatas[index] if index < len(batch.metadatas) else None
        document = batch.documents[index] if index < len(batch.documents) else None
        if problem := record_problem(record_id, metadata, document):
            return str(record_id), problem
        if record_id in local:
            return str(record_id), "the same id appears twice"
        local.add(record_id)
    return None


def describe(collection: str, found: tuple[str, str]) -> str:
    record_id, why = found
    shown = record_id if len(record_id) <= 80 else record_id[:77] + "…"
    return f"{collection}: record {shown!r} cannot be copied exactly: {why}"


FIX = "fix or delete that record in the source, then run again"


def refuse_bad_records(batch: Batch, collection: str, where: str) -> None:
    """The engine's check of each batch it reads (after preflight saw the first ones)."""
    from ferry.core.errors import PermanentError

    if found := first_problem(batch):
        raise PermanentError(describe(collection, found), where=where, fix=FIX)


async def scan_collections(source: Any, names: Iterable[tuple[str, int]]) -> None:
    """Preflight: every record of small collections, the first batch of large ones. Reads
    are sized by bytes like the engine's (a probe, then what fits SCAN_BYTES)."""
    from ferry.core.errors import PreflightError

    for name, count in names:
        seen: set[str] = set()
        whole = count <= FULL_SCAN_RECORDS
        if not whole:
            # A large collection's first records, as the plan's sample reads them: O(records
            # checked), so preflight does not grow with the collection (a file reader's read
            # would first build its whole id → label map; the engine builds it while the
            # target prepares). Later batches are checked by the engine as it reads them.
            sample = await source.sample(name, PROBE_RECORDS)
            if sample is not None and (found := first_problem(sample, seen)):
                raise PreflightError(describe(name, found), where=source.uri, fix=FIX)
            continue
        size, cursor = PROBE_RECORDS, None
        stream = source.read(name, cursor, size)
        try:
            while True:
                try:
                    batch = await anext(stream)
                except StopAsyncIteration:
                    break
                if found := first_problem(batch, seen):
                    raise PreflightError(describe(name, found), where=source.uri, fix=FIX)
                if not whole:
                    break
                cursor = batch.cursor_after
                per_record = max(batch.nbytes / max(len(batch), 1), 1.0)
                wanted = max(1, min(SCAN_BATCH, int(SCAN_BYTES // per_record)))
                if wanted != size:
                    size = wanted
                    await stream.aclose()
                    stream = source.read(name, cursor, size)
                del batch
        finally:
            await stream.aclose()
