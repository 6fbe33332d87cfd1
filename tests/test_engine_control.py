"""Pause, resume and cancel are engine operations; a cancelled run resumes exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferry.core.connectors import open_connector
from ferry.core.engine import MigrationEngine, MigrationOptions, ProgressMeter
from ferry.core.events import ProgressSampled
from ferry.core.journal import Journal
from ferry.core.journal.recorder import RunRecorder
from ferry.core.runner import migrate
from tests.conftest import make_chroma


async def test_pause_then_resume_then_complete(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "cosine", "n": 1200, "dim": 8}})
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    journal = Journal(tmp_path / "j.sqlite3")
    engines: list[MigrationEngine] = []
    seen_phases: list[str] = []

    async def drive() -> None:
        while not engines:
            await asyncio.sleep(0)
        engine = engines[0]
        async for event in engine.subscribe():
            if (
                isinstance(event, ProgressSampled)
                and event.progress.records_written > 0
                and not engine.control.paused
                and "paused" not in seen_phases
            ):
                engine.pause()
                recorder = engine.checkpoints
                assert isinstance(recorder, RunRecorder)
                await recorder.flush()  # the journal is written off the loop: wait for it
                run = journal.runs.get(engine.run_id)
                assert run is not None and run.status == "paused"
                assert journal.runs.collections(engine.run_id)[0].phase == "paused"
                engine.resume()
            if event.kind == "phase":
                seen_phases.append(event.data.get("phase", ""))

    driver = asyncio.create_task(drive())
    outcome = await migrate(
        f"chroma+file://{src}",
        target,
        [],
        MigrationOptions(batch_size=50, rate=4000),
        journal,
        on_engine=engines.append,
    )
    await driver
    assert outcome.status == "completed"
    assert "paused" in seen_phases and seen_phases.index("paused") < seen_phases.index("completed")
    assert await open_connector(target).count("docs") == 1200


async def test_cancel_keeps_the_watermark_and_the_rerun_resumes(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "l2", "n": 1500, "dim": 8}})
    source, target = f"chroma+file://{src}", f"qdrant+edge://{tmp_path / 'edge'}"
    journal = Journal(tmp_path / "j.sqlite3")
    engines: list[MigrationEngine] = []

    async def cancel_midway() -> None:
        while not engines:
            await asyncio.sleep(0)
        async for event in engines[0].subscribe():
            if isinstance(event, ProgressSampled) and event.progress.records_written >= 300:
                engines[0].cancel()
                return

    canceller = asyncio.create_task(cancel_midway())
    first = await migrate(
        source,
        target,
        [],
        MigrationOptions(batch_size=50, rate=5000),
        journal,
        on_engine=engines.append,
    )
    await canceller
    assert first.status == "cancelled"
    durable = journal.runs.collections(first.run_id)[0].records_written
    assert 300 <= durable < 1500

    second = await migrate(source, target, [], MigrationOptions(batch_size=50, rate=5000), journal)
    assert second.resumed and second.run_id == first.run_id
    assert second.status == "completed"
    assert second.collections[0].records_written == 1500
    assert await open_connector(target).count("docs") == 1500


async def test_journal_control_requests_reach_the_engine(tmp_path: Path) -> None:
    """What the TUI does from another process: write a request, the engine obeys.

    The engine is paused first (in-process), so the run cannot finish before the journal
    request is polled: the outcome does not depend on timing.
    """
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "ip", "n": 1500, "dim": 8}})
    journal = Journal(tmp_path / "j.sqlite3")
    engines: list[MigrationEngine] = []

    async def request_cancel() -> None:
        while not engines:
            await asyncio.sleep(0)
        async for event in engines[0].subscribe():
            if isinstance(event, ProgressSampled):
                engines[0].pause()
                journal.mailbox.request(engines[0].run_id, "cancel")
                return

    task = asyncio.create_task(request_cancel())
    outcome = await migrate(
        f"chroma+file://{src}",
        f"qdrant+edge://{tmp_path / 'edge'}",
        [],
        MigrationOptions(batch_size=50),
        journal,
        on_engine=engines.append,
    )
    await task
    assert outcome.status == "cancelled"
    assert journal.runs.get(outcome.run_id).status == "cancelled"
    assert outcome.collections[0].records_written < 1500


def test_progress_meter_rates_and_eta_follow_a_fixed_clock() -> None:
    now = [100.0]
    meter = ProgressMeter(total=1000, already_written=200, clock=lambda: now[0])
    now[0] = 102.0
    meter.add(400, 4_000_000)
    rate, average, byte_rate = meter.rates()
    assert (rate, average, byte_rate) == (200.0, 200.0, 2_000_000.0)
    assert meter.eta(rate) == 2.0
    now[0] = 110.0
    meter.add(400, 0)
    assert meter.eta(meter.rates()[0]) == 0.0


async def test_a_rate_below_the_batch_size_paces_in_small_batches(tmp_path: Path) -> None:
    """Batch 1,000 at 300/s: about a second per batch, not one 1,000-record wait in which
    the progress stands still."""
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "l2", "n": 900, "dim": 8}})
    engines: list[MigrationEngine] = []
    checkpoints: list[int] = []

    async def count_checkpoints() -> None:
        while not engines:
            await asyncio.sleep(0)
        async for event in engines[0].subscribe():
            if event.kind == "checkpoint":
                checkpoints.append(1)

    counter = asyncio.create_task(count_checkpoints())
    outcome = await migrate(
        f"chroma+file://{src}",
        f"qdrant+edge://{tmp_path / 'edge'}",
        [],
        MigrationOptions(batch_size=1000, rate=300),
        Journal(tmp_path / "j.sqlite3"),
        on_engine=engines.append,
    )
    counter.cancel()
    assert outcome.status == "completed"
    assert len(checkpoints) >= 3  # 900 records in batches of at most 300
