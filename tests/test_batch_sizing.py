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


def test_a_resumed_copy_reads_the_batches_the_interrupted_one_read() -> None:
    """No probe on resume: the checkpoint says what records weigh, so the batches are the
    interrupted run's (a write of it still in flight is the same request again)."""
    assert BatchSizing(120, 32 * 2**20, known_bytes_per_record=900.0).size == 120
    assert BatchSizing(1000, 8 * 2**20, known_bytes_per_record=2 * 2**20).size == 4


def test_a_light_probe_is_topped_up_to_the_whole_first_batch() -> None:
    """Light records travel in the batches a run without the bound uses (0..1000, …)."""
    sizing = BatchSizing(1000, 32 * 2**20)
    probe = batch(sizing.size, 1000)
    sizing.saw(probe)
    assert sizing.top_up(probe) == 1000 - PROBE_RECORDS
    heavy = BatchSizing(1000, 8 * 2**20)
    probe = batch(heavy.size, 2 * 2**20)
    heavy.saw(probe)
    assert heavy.top_up(probe) == 0  # too heavy: the probe goes alone, then small batches


def test_joined_batches_keep_order_and_the_later_cursor() -> None:
    first, second = batch(2, 1), batch(3, 1)
    second.cursor_after = "after-5"
    joined = first.joined(second)
    assert len(joined) == 5 and joined.vectors.shape == (5, 4)
    assert joined.ids == first.ids + second.ids and joined.cursor_after == "after-5"
