"""How many records one read takes: the batch size, and no more bytes than the byte bound.

Why: memory is bounded by batches in flight, and a batch is bounded by records — which says
nothing about bytes. A collection of 2 MB documents (or 3,072-d vectors with long texts) read
1,000 at a time holds 2 GB per batch and ~10 GB in flight. So the first read of a collection
is a small probe; from then on each batch's measured bytes per record set the next size, so
one batch holds about `batch_bytes` whatever the records weigh. Records of ordinary size
reach the full batch size after the probe, so the common case pays one small batch.
"""

from __future__ import annotations

from ferry.core.model import Batch

PROBE_RECORDS = 16  # the first read of a collection, before its records were weighed
GROW_FACTOR = 2  # grow only when twice as many fit (a size change reopens the read)


class BatchSizing:
    """`known_bytes_per_record`: what a resumed copy already wrote weighs (its checkpoint).
    A resume then needs no probe — and reads the same batches the interrupted run read, so
    a write of that run still in flight at the target is the same request again, never one
    that overlaps it half-way (a Chroma server has given a None-metadata record another
    record's metadata when two upserts overlapping that way crossed)."""

    def __init__(
        self, batch_size: int, batch_bytes: int | None, known_bytes_per_record: float = 0.0
    ) -> None:
        self.most = max(1, batch_size)
        self.batch_bytes = batch_bytes
        self.largest_bytes = 0  # the heaviest batch read, for tests and reports
        self._weighed = not batch_bytes or known_bytes_per_record > 0  # no probe to top up
        if not batch_bytes:
            self.size = self.most
        elif known_bytes_per_record > 0:
            self.size = self._fitting(known_bytes_per_record)
        else:
            self.size = min(self.most, PROBE_RECORDS)

    def _fitting(self, per_record: float) -> int:
        assert self.batch_bytes
        return max(1, min(self.most, int(self.batch_bytes // max(per_record, 1.0))))

    def top_up(self, batch: Batch) -> int:
        """How many records to add to `batch`, the collection's probe, to make it the whole
        first batch (0: it is not a probe, or the records are too heavy for a whole batch).
        Light records then travel in exactly the batches a run without the bound would
        use, and a resume (which needs no probe) reads the same ones again."""
        probe = len(batch) == PROBE_RECORDS < self.most and not self._weighed
        self._weighed = True
        if not probe or self.size < self.most:
            return 0
        return self.most - len(batch)

    def saw(self, batch: Batch) -> None:
        """Weigh a batch just read; the next read's size follows from its bytes per record."""
        if not self.batch_bytes or not len(batch):
            return
        nbytes = batch.nbytes
        self.largest_bytes = max(self.largest_bytes, nbytes)
        fitting = self._fitting(nbytes / len(batch))
        if nbytes > self.batch_bytes or fitting >= GROW_FACTOR * self.size:
            self.size = fitting  # shrink on an overflow, grow on room for twice as many
