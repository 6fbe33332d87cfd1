"""Batches are bounded by bytes as well as records (core/engine/sizing.py)."""

from __future__ import annotations

import numpy as np

from ferry.core.engine.sizing import PROBE_RECORDS, BatchSizing
from ferry.core.model import Batch


def batch(n: int, document_bytes: int, dim: int = 4) -> Batch:
    vectors = np.zeros((n, dim), dtype=np.float32)
    return Batch([f"id-{i}" for i in range(n)], vectors, [None] * n, ["x" * document_bytes] * n)


def test_small_records_reach_the_batch_size_after_one_probe() -> None:
    sizing = BatchSizing(1000, 32 * 2**20)
    assert sizing.size == PROBE_RECORDS
    sizing.saw(batch(sizing.size, 1000))
    assert sizing.size == 1000
    sizing.saw(batch(1000, 1200))  # a little heavier: no reopen for a few percent
    assert sizing.size == 1000


def test_large_records_shrink_batches_to_the_byte_bound() -> None:
    budget = 8 * 2**20
    sizing = BatchSizing(1000, budget)
    sizing.saw(batch(sizing.size, 100))  # light at first: full size
    assert sizing.size == 1000
    sizing.saw(batch(10, 2 * 2**20))  # then 2 MB documents
    assert sizing.size * (2 * 2**20) <= budget and sizing.size >= 1
    sizing.saw(batch(sizing.size, 100))  # light again: room for many more, it grows
    assert sizing.size == 1000


def test_no_byte_bound_reads_whole_batches() -> None:
    sizing = BatchSizing(500, None)
    assert sizing.size == 500
    sizing.saw(batch(500, 10**6))
    assert sizing.size == 500
