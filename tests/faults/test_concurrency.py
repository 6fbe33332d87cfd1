"""One owner per target collection; a new journal created by several processes at once."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from ferry.core.journal import Journal, bundled_migrations
from ferry.core.locks import TargetLocks, lock_path
from tests.conftest import make_chroma
from tests.faults.kills import ferry
from tests.names import KEEP_NAMES


def test_a_second_migrate_on_a_held_target_is_refused_naming_the_holder(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 20, "dim": 4}})
    target = f"qdrant+edge://{tmp_path / 'target'}"
    env = {"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]}
    args = [
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{src}",
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        str(tmp_path / "other-journal.sqlite3"),
    ]
    with TargetLocks(target, "run-holding-it").acquire(["docs"]):
        refused = ferry(args, env)
        assert refused.returncode == 2, refused.stderr
        line = refused.stderr.strip().splitlines()[-1]
        assert "run-holding-it" in line and f"pid {os.getpid()}" in line, line
        assert not (tmp_path / "target").exists()  # refused before anything was written
        assert not (tmp_path / "other-journal.sqlite3").exists() or "runs" not in line
    finished = ferry(args, env)  # the holder is gone: the lock is free
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["status"] == "completed"


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 10, "dim": 4}})
    target = f"qdrant+edge://{tmp_path / 'target'}"
    stale = lock_path(target, "docs")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(json.dumps({"run_id": "dead", "pid": 999_999_999, "host": "x"}))
    result = ferry(
        [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{src}",
            "--to",
            target,
            "--yes",
            "--json",
            "--state",
            str(tmp_path / "j.sqlite3"),
        ],
        {"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]},
    )
    assert result.returncode == 0, result.stderr


def _open(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    Journal(path).close()


def test_processes_creating_one_new_journal_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = str(tmp_path / f"journal-{attempt}.sqlite3")
        barrier = context.Barrier(6)
        workers = [context.Process(target=_open, args=(path, barrier)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0] * 6
        applied = [m["version"] for m in Journal(path).applied_migrations()]
        assert applied == [version for version, _name, _sql in bundled_migrations()]
