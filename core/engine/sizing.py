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
    def __init__(self, batch_size: int, batch_bytes: int | None) -> None:
        self.most = max(1, batch_size)
        self.batch_bytes = batch_bytes
        self.size = min(self.most, PROBE_RECORDS) if batch_bytes else self.most
        self.largest_bytes = 0  # the heaviest batch read, for tests and reports

    def saw(self, batch: Batch) -> None:
        """Weigh a batch just read; the next read's size follows from its bytes per record."""
        if not self.batch_bytes or not len(batch):
            return
        nbytes = batch.nbytes
        self.largest_bytes = max(self.largest_bytes, nbytes)
        per_record = max(nbytes / len(batch), 1.0)
        fitting = max(1, min(self.most, int(self.batch_bytes // per_record)))
        if nbytes > self.batch_bytes or fitting >= GROW_FACTOR * self.size:
            self.size = fitting  # shrink on an overflow, grow on room for twice as many
