"""The engine under injected faults, at exact points: no pacing, no timing.

Source and target are `memory://` stores (core/connectors/memory.py) driven through the same
`migrate()` as `ferry migrate`. A fault strikes at the n-th call of a method; a hold stops a
call until the test lets it go, so "cancel while a write is in flight" is a fact, not a race.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from ferry.core.connectors import WriteMode, open_connector
from ferry.core.connectors.memory import MemoryStore, memory_store
from ferry.core.engine import MigrationOptions
from ferry.core.errors import PermanentError
from ferry.core.journal import Journal
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.runner import migrate

N, BATCH, DIM = 200, 20, 4
SOURCE, TARGET = "memory://src", "memory://dst"


def options() -> MigrationOptions:
    # No byte bound: these records are small, and the tests count whole batches of BATCH
    # (with a bound the first read is a small probe: core/engine/sizing.py).
    return MigrationOptions(
        batch_size=BATCH, workers=2, retry_initial=0.001, retry_max=0.002, batch_bytes=None
    )


async def filled_source() -> MemoryStore:
    rng = np.random.default_rng(3)
    ids = [f"id-{i}" for i in range(N)]
    async with open_connector(SOURCE) as source:
        await source.prepare(CollectionInfo("docs", 0, DIM, Metric.L2), WriteMode.CREATE)
        await source.write(
            "docs",
            Batch(
                ids,
                rng.normal(size=(N, DIM)).astype(np.float32),
                [{"i": i} for i in range(N)],
                [f"doc {i}" for i in range(N)],
            ),
        )
    return memory_store("src")


def engine_reads(store: MemoryStore) -> list:  # type: ignore[type-arg]
    """The engine's reads (the plan samples with its own, larger batch size)."""
    return [r for r in store.reads if r.batch_size == BATCH]


async def test_transient_write_faults_are_retried_and_lose_nothing(tmp_path: Path) -> None:
    source, target = await filled_source(), memory_store("dst")
    target.faults.fail("write", times=2, after=3)
    outcome = await migrate(SOURCE, TARGET, [], options(), Journal(tmp_path / "j.sqlite3"))
    assert outcome.status == "completed"
    assert outcome.collections[0].records_written == N
    assert target.snapshot_of("docs") == source.snapshot_of("docs")
    assert target.faults.calls["write"] == N // BATCH + 2  # each batch once, plus two retries


async def test_a_read_broken_midway_resumes_exactly_after_the_last_batch(tmp_path: Path) -> None:
    source, target = await filled_source(), memory_store("dst")
    # Armed once the engine exists: the preflight's own record scan reads the source first.
    outcome = await migrate(
        SOURCE,
        TARGET,
        [],
        options(),
        Journal(tmp_path / "j.sqlite3"),
        on_engine=lambda engine: source.faults.fail("read", after=4),
    )
    assert outcome.status == "completed"
    first, second = engine_reads(source)  # one break, one resumed read
    assert first.cursor is None and first.delivered
    assert second.cursor == first.delivered[-1]  # not a record skipped, none read twice
    assert len(first.delivered) + len(second.delivered) == N // BATCH
    assert target.snapshot_of("docs") == source.snapshot_of("docs")


async def test_a_permanent_fault_fails_the_collection_with_its_reason(tmp_path: Path) -> None:
    await filled_source()
    memory_store("dst").faults.fail("write", times=10**6, error=PermanentError)
    outcome = await migrate(SOURCE, TARGET, [], options(), Journal(tmp_path / "j.sqlite3"))
    assert outcome.status == "failed"
    result = outcome.collections[0]
    assert result.records_written == 0
    assert result.error and "injected write fault" in result.error


async def test_cancel_during_a_held_write_keeps_an_honest_watermark_and_resumes_there(
    tmp_path: Path,
) -> None:
    """What `rate=`-paced tests approximate: cancel while the sixth write is in flight."""
    source, target = await filled_source(), memory_store("dst")
    journal = Journal(tmp_path / "j.sqlite3")
    held = target.faults.hold("write", after=5)
    engines: list = []  # type: ignore[type-arg]
    run = asyncio.create_task(
        migrate(SOURCE, TARGET, [], options(), journal, on_engine=engines.append)
    )
    await held.reached()
    engines[0].cancel()
    held.release()
    first = await run
    assert first.status == "cancelled"
    durable = first.collections[0].records_written
    assert BATCH * 5 <= durable < N and durable % BATCH == 0
    in_order = sorted(source.snapshot_of("docs"), key=lambda sid: int(sid.split("-")[1]))
    assert set(in_order[:durable]) <= set(target.snapshot_of("docs"))  # never ahead of data

    second = await migrate(SOURCE, TARGET, [], options(), journal)
    assert second.resumed and second.run_id == first.run_id and second.status == "completed"
    resumed = engine_reads(source)[-1]
    assert resumed.cursor == durable - 1  # the watermark: the last durable record's sequence
    assert target.snapshot_of("docs") == source.snapshot_of("docs")
