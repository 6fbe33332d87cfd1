"""Detached runs: a migration started for a terminal outlives that terminal's session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ferry.core import launcher
from ferry.core.journal import Journal
from ferry.core.runs import RunView, unfinished_runs
from tests.conftest import ROOT, make_chroma, wait_until


@pytest.fixture
def source(tmp_path: Path) -> str:
    make_chroma(tmp_path / "src", {"alpha-docs": {"n": 3000, "dim": 32}})
    return f"chroma+file://{tmp_path / 'src'}"


def journal_status(state: Path, run_id: str) -> str:
    journal = Journal(state)
    try:
        view = RunView.load(journal, run_id)
        return view.state.value if view else "missing"
    finally:
        journal.close()


def test_run_survives_a_hangup_of_the_session_that_started_it(tmp_path: Path, source: str) -> None:
    """What a dropped SSH connection does: SIGHUP to the terminal's session, then it is gone."""
    state = tmp_path / "state" / "journal.sqlite3"
    target = f"qdrant+edge://{tmp_path / 'dst'}"
    code = (
        "import sys, time\n"
        "from ferry.core.launcher import launch\n"
        f"l = launch({source!r}, {target!r}, ['alpha-docs'], {str(state)!r}, ['--rate', '3000'])\n"
        "print(l.pid, flush=True)\n"
        "sys.stdin.read()\n"  # the 'terminal' waits until it is hung up
    )
    terminal = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert terminal.stdout is not None
    pid = int(terminal.stdout.readline())
    assert os.getsid(pid) == pid != os.getsid(terminal.pid)  # a session of its own
    os.killpg(terminal.pid, signal.SIGHUP)
    terminal.wait(timeout=10)
    assert terminal.returncode == -signal.SIGHUP
    journal = Journal(state)
    run_id = wait_until(
        lambda: next((r.run_id for r in journal.runs.recent() if r.pid == pid), None)
    )
    wait_until(lambda: journal_status(state, run_id) == "completed", timeout=60)
    assert sum(c.records_written for c in journal.runs.collections(run_id)) == 3000


def test_killed_run_shows_interrupted_and_resume_continues_the_same_run(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state" / "journal.sqlite3"
    target = f"qdrant+edge://{tmp_path / 'dst'}"
    journal = Journal(state)
    # The run kills itself (SIGKILL) right after its first checkpoint commit: mid-copy on any
    # machine (the rate keeps 3,000 records over 2 s, checkpoints come every 0.5 s); a poller
    # that killed it after seeing 400 records was late on a busy machine (all were written).
    monkeypatch.setenv("FERRY_KILL_AT", "committed:1")
    launched = launcher.launch(
        source, target, ["alpha-docs"], state, ["--rate", "1000", "--batch-size", "200"]
    )
    monkeypatch.delenv("FERRY_KILL_AT")  # the resumed run goes to the end
    run_id = launcher.find_launched_run(journal, launched, attempts=600)
    assert run_id is not None, launcher.launch_failure(launched)
    wait_until(lambda: launched.exited() is not None)
    assert launched.exited() == -signal.SIGKILL
    assert journal_status(state, run_id) == "interrupted"
    assert [r.run_id for r in unfinished_runs(journal)] == [run_id]
    written_before = sum(c.records_written for c in journal.runs.collections(run_id))
    assert 0 < written_before < 3000

    view = RunView.load(journal, run_id)
    assert view is not None and view.resumable
    resumed = launcher.resume(view, state)
    assert "--rate" in resumed.argv and "--batch-size" in resumed.argv
    assert launcher.find_launched_run(journal, resumed, attempts=600) == run_id
    wait_until(lambda: journal_status(state, run_id) == "completed", timeout=60)
    assert sum(c.records_written for c in journal.runs.collections(run_id)) == 3000
    resumed.exited()
    events = [e.message for e in journal.events.after(run_id)]
    assert any("resuming" in m for m in events)


def test_a_run_that_cannot_start_says_why(tmp_path: Path, source: str) -> None:
    state = tmp_path / "state" / "journal.sqlite3"
    launched = launcher.launch(source, f"qdrant+edge://{tmp_path / 'dst'}", ["no-such"], state)
    assert launcher.find_launched_run(Journal(state), launched, attempts=600) is None
    assert "no collection 'no-such'" in launcher.launch_failure(launched)
    assert launched.log_path.parent == state.parent / "logs"
