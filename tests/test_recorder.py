"""RunRecorder: typed events become the journal rows every view reads, written off the loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.core.events import (
    CollectionFinished,
    CollectionStarted,
    CopyStarted,
    EventBus,
    PhaseChanged,
    PlannedCollection,
    ProgressSampled,
    RetryScheduled,
    RunFinished,
    RunStarted,
    WarningRaised,
)
from ferry.core.journal import Journal
from ferry.core.journal.recorder import RunRecorder
from ferry.core.model import Checkpoint, CollectionResult, Phase, Progress
from ferry.core.runs import RunState, RunView


def new_run(tmp_path: Path) -> tuple[Journal, str]:
    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("key", "chroma+file:///src", "qdrant+edge:///dst", [], {}, {})
    for name in ("docs", "notes"):
        journal.runs.ensure_collection(run_id, name, name)
    return journal, run_id


class FixedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_run_s_events_become_its_rows_and_log(tmp_path: Path) -> None:
    journal, run_id = new_run(tmp_path)
    bus = EventBus()
    recorder = RunRecorder(journal, run_id).attach(bus)
    planned = (PlannedCollection("docs", "docs", 300), PlannedCollection("notes", "notes", 0))
    bus.publish(RunStarted(run_id=run_id, collections=planned))
    bus.publish(
        CollectionStarted(run_id=run_id, collection="docs", total=300, dimension=8, metric="l2")
    )
    bus.publish(WarningRaised(run_id=run_id, collection="docs", warning="ids need mapping"))
    bus.publish(CopyStarted(run_id=run_id, collection="docs", total=300, resuming=True))
    bus.publish(
        RetryScheduled(run_id=run_id, collection="docs", what="write", attempt=1, error="timed out")
    )
    await recorder.commit("docs", Checkpoint({"after": 300}, 300, 9000, target_owned=True))
    done = CollectionResult("docs", Phase.COMPLETED, 300, 300, 2.0, 150.0)
    bus.publish(CollectionFinished(run_id=run_id, collection="docs", result=done))
    skipped = CollectionResult("notes", Phase.COMPLETED, skipped_reason="empty, no dimension")
    bus.publish(CollectionFinished(run_id=run_id, collection="notes", result=skipped))
    bus.publish(RunFinished(run_id=run_id, state=RunState.COMPLETED))
    await recorder.aclose()

    view = RunView.load(journal, run_id)
    assert view is not None and view.state is RunState.COMPLETED and view.finished_at
    docs, notes = view.collections
    assert (docs.phase, docs.total, docs.records_written, docs.watermark) == (
        Phase.COMPLETED,
        300,
        300,
        {"after": 300},
    )
    assert (docs.dimension, docs.metric, docs.seconds, docs.average_records_per_second) == (
        8,
        "l2",
        2.0,
        150.0,
    )
    assert journal.runs.target_owned("qdrant+edge:///dst", "docs")
    assert (notes.phase, notes.skipped_reason) == (Phase.SKIPPED, "empty, no dimension")
    log = [(e.kind, e.collection, e.message) for e in journal.events.after(run_id)]
    assert log == [
        ("phase", None, "run started"),
        ("warning", "docs", "ids need mapping"),
        ("phase", "docs", "copying 300 records (resuming)"),
        ("retry", "docs", "write failed (timed out); retry 1"),
        ("phase", "docs", "completed: 300 records"),
        ("phase", "notes", "skipped: empty, no dimension"),
        ("phase", None, "run completed"),
    ]


async def test_pause_resume_and_cancel_show_in_the_run_state(tmp_path: Path) -> None:
    journal, run_id = new_run(tmp_path)
    bus = EventBus()
    recorder = RunRecorder(journal, run_id).attach(bus)
    bus.publish(RunStarted(run_id=run_id))
    bus.publish(PhaseChanged(run_id=run_id, collection="docs", state=RunState.PAUSED))
    await recorder.flush()
    view = RunView.load(journal, run_id)
    assert view is not None and view.state is RunState.PAUSED
    assert view.collections[0].phase is Phase.PAUSED

    bus.publish(PhaseChanged(run_id=run_id, collection="docs", state=RunState.RUNNING))
    bus.publish(PhaseChanged(run_id=run_id, collection="docs", state=RunState.CANCELLING))
    await recorder.flush()
    view = RunView.load(journal, run_id)
    assert view is not None and view.state is RunState.CANCELLING and view.active
    cancelled = CollectionResult("docs", Phase.CANCELLED, records_written=0)
    bus.publish(CollectionFinished(run_id=run_id, collection="docs", result=cancelled))
    never = CollectionResult("notes", Phase.CANCELLED)
    bus.publish(CollectionFinished(run_id=run_id, collection="notes", result=never, started=False))
    bus.publish(RunFinished(run_id=run_id, state=RunState.CANCELLED))
    await recorder.aclose()
    view = RunView.load(journal, run_id)
    assert view is not None and view.state is RunState.CANCELLED and view.resumable
    assert [c.phase for c in view.collections] == [Phase.CANCELLED, Phase.CANCELLED]
    messages = [e.message for e in journal.events.after(run_id)]
    assert messages == [
        "run started",
        "run paused",
        "run running",
        "run cancelling",
        "cancelled; re-run to resume",  # only the collection that had started says so
        "run cancelled",
    ]


def sample(run_id: str, records_read: int, eta: float = 5.0) -> ProgressSampled:
    progress = Progress("docs", Phase.RUNNING, total=1000, records_read=records_read)
    progress.eta_seconds = eta
    return ProgressSampled(run_id=run_id, collection="docs", progress=progress)


async def test_progress_is_latest_value_and_throttled(tmp_path: Path) -> None:
    journal, run_id = new_run(tmp_path)
    clock = FixedClock()
    recorder = RunRecorder(journal, run_id, progress_interval=60.0, clock=clock)
    recorder.start()

    def records_read() -> int:
        return int(journal.runs.collections(run_id)[0].records_read)

    recorder.record(sample(run_id, 100))
    await recorder.flush()
    assert records_read() == 100
    for n in range(101, 200):  # a burst within one interval: one value survives, unwritten
        recorder.record(sample(run_id, n))
    await recorder.commit("notes", Checkpoint(None, 0, 0))  # queued behind the burst
    assert records_read() == 100
    clock.now += 60.0  # the interval passed: the next thing the recorder does writes it
    await recorder.commit("notes", Checkpoint(None, 0, 0))
    assert records_read() == 199
    await recorder.aclose()


async def test_a_status_never_precedes_the_progress_that_led_to_it(tmp_path: Path) -> None:
    journal, run_id = new_run(tmp_path)
    recorder = RunRecorder(journal, run_id, progress_interval=60.0, clock=FixedClock())
    recorder.start()
    recorder.record(sample(run_id, 10, eta=5.0))
    await recorder.flush()
    recorder.record(sample(run_id, 1000, eta=1.0))  # not due: held back…
    done = CollectionResult("docs", Phase.COMPLETED, 1000, 1000, 4.0, 250.0)
    recorder.record(CollectionFinished(run_id=run_id, collection="docs", result=done))
    await recorder.flush()
    row = journal.runs.collections(run_id)[0]
    # …yet written before the completion, which sets the ETA to 0 after it.
    assert (row.phase, row.records_read, row.eta_seconds) == ("completed", 1000, 0)
    await recorder.aclose()


async def test_close_writes_what_is_pending(tmp_path: Path) -> None:
    journal, run_id = new_run(tmp_path)
    recorder = RunRecorder(journal, run_id, progress_interval=60.0, clock=FixedClock())
    recorder.start()
    recorder.record(sample(run_id, 10))
    await recorder.flush()
    recorder.record(sample(run_id, 20))
    await recorder.aclose()
    assert journal.runs.collections(run_id)[0].records_read == 20


async def test_a_failed_write_is_raised_not_lost(tmp_path: Path) -> None:
    journal, run_id = new_run(tmp_path)
    recorder = RunRecorder(journal, run_id)
    recorder.start()
    journal.close()  # every write now fails
    with pytest.raises(Exception, match="closed database"):
        await recorder.commit("docs", Checkpoint({"after": 1}, 1, 1))
    with pytest.raises(Exception, match="closed database"):
        await recorder.aclose()
