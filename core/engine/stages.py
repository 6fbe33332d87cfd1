"""The steps a batch passes between the reader and the writers: read → map → [embed] → write.

Why stages: the engine's loop (read into a bounded queue, N writers, the watermark) is the
same whatever happens to a batch on the way. A step that changes or checks batches — the
map step's refusal of non-finite vectors today, re-embedding tomorrow — is a `BatchStage`
the engine runs in each writer before the write, in order, not a branch in the loop.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ferry.core.errors import PermanentError
from ferry.core.model import Batch
from ferry.core.record_checks import refuse_bad_records


class BatchStage(Protocol):
    """One step on every batch of a collection, between reading and writing.

    It returns the batch to write (the same one, or a new one: e.g. with other vectors) or
    raises a `FerryError`; transient errors it raises are retried by the engine's policy.
    It must be deterministic for the same input, so a replay after a resume is harmless.
    """

    name: str

    async def __call__(self, collection: str, batch: Batch) -> Batch: ...


class FiniteVectors:
    """The map step's checks: NaN or infinite vectors, and records no target could hold exactly
    (core/record_checks.py), are refused by id, never copied silently."""

    name = "map"

    def __init__(self, where: str) -> None:
        self.where = where

    async def __call__(self, collection: str, batch: Batch) -> Batch:
        refuse_non_finite(batch, collection, self.where)
        refuse_bad_records(batch, collection, self.where)  # core/record_checks.py
        return batch


def refuse_non_finite(batch: Batch, collection: str, where: str) -> None:
    """NaN or infinite vector values poison every search that meets them: never copied
    silently. The batch is refused before it is written, naming the records."""
    finite = np.isfinite(batch.vectors).all(axis=1) if batch.vectors.size else None
    if finite is None or bool(finite.all()):
        return
    bad = [str(batch.ids[i]) for i in np.flatnonzero(~finite)]
    shown = ", ".join(repr(i) for i in bad[:5]) + (
        f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
    )
    raise PermanentError(
        f"{collection}: {len(bad)} record(s) have NaN or infinite vector values: {shown}",
        where=where,
        fix="fix or delete them in the source, then re-run to resume",
    )
