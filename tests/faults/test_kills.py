"""A seeded schedule of kill -9s (FERRY_FAULT_KILLS, default 20) during migrate, validate
--repair and cutover: the same command again finishes, and the target matches the source
record by record (read with chromadb and qdrant_edge, not Ferry); the source never changes."""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults.kills import run_schedule
from tests.names import KEEP_NAMES


def test_kill_schedule_loses_nothing(tmp_path: Path) -> None:
    kills = int(os.environ.get("FERRY_FAULT_KILLS", "20"))
    outcomes = run_schedule(kills, int(os.environ.get("FERRY_FAULT_SEED", "13")), tmp_path)
    assert sum(o.kills for o in outcomes) >= kills
    for outcome in outcomes:
        assert (outcome.lost, outcome.duplicated, outcome.wrong) == (0, 0, 0), outcome.notes
        assert outcome.hangs == 0 and outcome.source_changed == 0, outcome.notes
        assert outcome.errors == 0, outcome.notes


def test_kill_in_the_index_phase_resumes_into_indexing(tmp_path: Path) -> None:
    """Killed once the copy is durable and the index build starts: the journal says
    `indexing`; the same command then indexes (not re-copies, not skips) and completes."""
    import signal
    import sqlite3

    from tests.faults import verify
    from tests.faults.kills import build_source, ferry

    source = build_source(tmp_path, 5)
    target, state = tmp_path / "target", tmp_path / "journal.sqlite3"
    env = {"FERRY_STATE": str(state), "XDG_STATE_HOME": str(tmp_path / "xdg")}
    args = [
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{source}",
        "--to",
        f"qdrant+edge://{target}",
    ]
    args += ["--yes", "--json"]

    def journaled() -> list[tuple]:
        with sqlite3.connect(state) as db:
            return db.execute(
                "SELECT status, search_ready, records_written FROM run_collections"
            ).fetchall()

    killed = ferry(args, {**env, "FERRY_KILL_AT": "index:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-500:]
    assert journaled() == [("indexing", 0, 900)]
    final = ferry(args, env)
    assert final.returncode == 0, final.stderr[-500:]
    assert journaled() == [("completed", 1, 900)]
    assert verify.edge_index_counts(target, "docs") == (900, 900)
    assert '"resumed": true' in final.stdout
