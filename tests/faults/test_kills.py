"""A seeded schedule of kill -9s (FERRY_FAULT_KILLS, default 20) during migrate, validate
--repair and cutover: the same command again finishes, and the target matches the source
record by record (read with chromadb and qdrant_edge, not Ferry); the source never changes."""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults.kills import run_schedule


def test_kill_schedule_loses_nothing(tmp_path: Path) -> None:
    kills = int(os.environ.get("FERRY_FAULT_KILLS", "20"))
    outcomes = run_schedule(kills, int(os.environ.get("FERRY_FAULT_SEED", "13")), tmp_path)
    assert sum(o.kills for o in outcomes) >= kills
    for outcome in outcomes:
        assert (outcome.lost, outcome.duplicated, outcome.wrong) == (0, 0, 0), outcome.notes
        assert outcome.hangs == 0 and outcome.source_changed == 0, outcome.notes
        assert outcome.errors == 0, outcome.notes
