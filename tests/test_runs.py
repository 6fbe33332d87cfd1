"""ferry.core.runs: the one read model every view renders — states, sums, the status contract."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ferry.core.journal import Journal
from ferry.core.model import Phase, Progress
from ferry.core.runs import RunState, RunView, process_alive, unfinished_runs
from ferry.tui.theme import banner_style_of, style_of


@pytest.mark.parametrize(
    ("status", "alive", "cancel", "expected"),
    [
        ("running", True, False, RunState.RUNNING),
        ("running", False, False, RunState.INTERRUPTED),
        ("paused", False, False, RunState.INTERRUPTED),
        ("cancelling", False, False, RunState.INTERRUPTED),
        ("running", True, True, RunState.CANCELLING),
        ("paused", True, True, RunState.CANCELLING),
        ("completed", False, False, RunState.COMPLETED),  # a finished run's process is gone
        ("cancelled", False, True, RunState.CANCELLED),
        ("failed", False, False, RunState.FAILED),
    ],
)
def test_state_derivation(status: str, alive: bool, cancel: bool, expected: RunState) -> None:
    assert RunState.derive(status, alive, cancel) is expected


def test_which_states_are_active_resumable_and_styled() -> None:
    assert {s for s in RunState if s.active} == {
        RunState.PENDING,
        RunState.RUNNING,
        RunState.PAUSED,
        RunState.CANCELLING,
    }
    assert {s for s in RunState if s.resumable} == {
        RunState.INTERRUPTED,
        RunState.CANCELLED,
        RunState.FAILED,
    }
    assert (
        style_of(RunState.RUNNING) == "green" and banner_style_of(RunState.RUNNING) == "bold green"
    )
    assert style_of(Phase.SKIPPED) == "dim" and style_of("unknown") == ""


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_whose_process_died_is_interrupted_and_listed_unfinished(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    done = journal.runs.create("a", "chroma+file:///s", "qdrant+edge:///t", [], {}, {})
    journal.runs.set_status(done, RunState.COMPLETED)
    killed = journal.runs.create("b", "chroma+file:///s", "qdrant+edge:///t", ["docs"], {}, {})
    journal.runs.set_status(killed, RunState.RUNNING)
    pid = dead_pid()
    assert not process_alive(pid, None)
    with sqlite3.connect(journal.path) as db:
        db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (pid, killed))
    view = RunView.load(journal, killed)
    assert view is not None and view.state is RunState.INTERRUPTED and view.resumable
    assert view.requested == ("docs",)
    assert [v.run_id for v in unfinished_runs(journal)] == [killed]


def test_sums_and_the_status_json_contract(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", [], {}, {"w": 2})
    journal.runs.claim(run_id)  # this process: alive
    for name, total, written, rate in (("a", 1000, 400, 100.0), ("b", 500, 500, 0.0)):
        journal.runs.ensure_collection(run_id, name, name)
        journal.runs.start_collection(run_id, name, total, 8, "l2")
        progress = Progress(name, records_per_second=rate, retries=1, seconds=4.0)
        journal.runs.record_progress(run_id, name, progress)  # progress rows do not carry retries:
        journal.runs.add_retry(run_id, name)  # each retry event counts, across processes
        journal.runs.checkpoint(run_id, name, {"after": written}, written, written * 10)
    journal.runs.complete_collection(run_id, "b", 4.0, 125.0)
    journal.mailbox.request(run_id, "cancel")  # not yet taken by the engine process

    view = RunView.load(journal, run_id)
    assert view is not None
    assert view.state is RunState.CANCELLING
    assert (view.total, view.written, view.retries) == (1500, 900, 2)
    # Cancelling: nothing is said to be moving, so no rate and no ETA (issue 12).
    assert view.running == () and view.collections[0].state_word == "cancelling"
    assert view.records_per_second == 0.0 and view.eta_seconds is None
    data = view.to_json()
    assert list(data) == [
        "run_id",
        "status",
        "source",
        "target",
        "created_at",
        "finished_at",
        "error",
        "options",
        "collections",
    ]
    assert data["status"] == "cancelling" and data["options"] == {"w": 2}
    assert list(data["collections"][0]) == [
        "name",
        "target_name",
        "status",
        "total",
        "records_read",
        "records_written",
        "records_per_second",
        "average_records_per_second",
        "bytes_per_second",
        "eta_seconds",
        "retries",
        "errors",
        "seconds",
        "skipped_reason",
        "error",
        "indexing",  # the index phase: {"seconds", "indexed", "total"}
        "search_ready",
        "hnsw_ef",
        "tuning",
        "throttled",  # waiting on a server that answered 429/503 (issue 16)
    ]
    assert data["collections"][1]["status"] == "completed"


def test_a_collection_waiting_on_a_throttling_server_is_throttled_then_running(
    tmp_path: Path,
) -> None:
    """The Monitor and `ferry status` show *throttled* (not a failure, not unreachable)
    from a throttled retry until its wait is over; an ordinary retry changes nothing."""
    import time

    from ferry.core.events import RetryScheduled
    from ferry.core.runs import THROTTLED_GRACE_SECONDS

    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("k", "chroma+file:///s", "chroma+http://h:8000", [], {}, {})
    journal.runs.claim(run_id)  # this process: alive, so the run is running
    for name in ("slowed", "blipped"):
        journal.runs.ensure_collection(run_id, name, name)
        journal.runs.start_collection(run_id, name, 100, 8, "l2")

    def retry(name: str, error: str, ago: float) -> None:
        event = RetryScheduled(
            run_id=run_id, collection=name, what="write", attempt=1, error=error, delay=2.0
        )
        entry = event.log_entry()
        assert entry is not None
        journal.events.add(dataclasses.replace(entry, ts=time.time() - ago))

    retry("slowed", "throttled: Chroma answered 429 to upsert, Retry-After 2s: busy", ago=1)
    retry("blipped", "Chroma did not answer upsert: timed out", ago=1)
    view = RunView.load(journal, run_id)
    assert view is not None
    words = {c.name: c.state_word for c in view.collections}
    assert words == {"slowed": "throttled", "blipped": "running"}
    assert view.to_json()["collections"][0]["throttled"] is True

    retry("slowed", "throttled: Chroma answered 429 to upsert", ago=2 + THROTTLED_GRACE_SECONDS + 5)
    view = RunView.load(journal, run_id)
    assert view is not None and view.collections[0].state_word == "running"  # the wait is over
