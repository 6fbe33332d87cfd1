"""Two commands on one target at once, kill -9 into a Chroma server, a thousand empty
collections, records too large for whole batches: each ends exact (read back without Ferry's
code) or refused in one clean line — never a traceback, a hang or silent damage."""

from __future__ import annotations

from pathlib import Path

from tests.faults.kills import Outcome
from tests.faults.together import (
    backup_during_migrate,
    kill_into_chroma_server,
    large_records,
    many_empty_collections,
    tui_and_cli_resume_at_once,
    two_repairs_at_once,
)


def assert_clean(outcome: Outcome) -> None:
    assert (outcome.lost, outcome.duplicated, outcome.wrong) == (0, 0, 0), outcome.notes
    assert outcome.hangs == 0 and outcome.clean_errors == outcome.errors, outcome.notes


def test_two_repairs_of_one_target_at_once_leave_it_exact(tmp_path: Path) -> None:
    assert_clean(two_repairs_at_once(tmp_path))


def test_a_backup_while_a_migration_writes_the_same_target(tmp_path: Path) -> None:
    outcome = backup_during_migrate(tmp_path)
    assert_clean(outcome)
    assert outcome.errors == 0, outcome.notes  # the migration finished; the backup too


def test_kill_9_into_a_chroma_server_target_then_resume_is_exact(
    tmp_path: Path, chroma_server: str
) -> None:
    outcome = kill_into_chroma_server(tmp_path, chroma_server, kills=1)
    assert outcome.kills == 1, outcome.notes
    assert_clean(outcome)
    assert outcome.errors == 0, outcome.notes


def test_a_thousand_empty_collections_are_each_accounted_for(tmp_path: Path) -> None:
    outcome = many_empty_collections(tmp_path, 1000)
    assert_clean(outcome)
    assert outcome.errors == 0, outcome.notes


def test_large_records_stay_within_the_byte_bound(tmp_path: Path) -> None:
    outcome, peaks = large_records(tmp_path)
    assert_clean(outcome)
    assert outcome.errors == 0, outcome.notes
    # ~48 MB of documents: unbounded, one batch holds all of it (and its copies on the way to
    # the target); bounded by --batch-mb 4, ~4 MB batches do. Compared within one run.
    assert peaks["bounded"] + 40 < peaks["unbounded"], peaks


def test_the_tui_and_a_cli_resuming_one_run_at_once_finish_it_once(tmp_path: Path) -> None:
    outcome = tui_and_cli_resume_at_once(tmp_path)
    assert outcome.kills == 1, outcome.notes
    assert_clean(outcome)


def test_a_qdrant_local_folder_held_by_another_process_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    """qdrant-client allows one process per local folder: a second is one line, exit 2."""
    from qdrant_client import QdrantClient

    from tests.conftest import make_chroma
    from tests.faults.kills import ferry

    src = make_chroma(tmp_path / "src", {"docs": {"n": 20, "metric": "l2", "dim": 4}})
    folder = tmp_path / "local"
    holder = QdrantClient(path=str(folder))  # another process's client, as far as Ferry knows
    try:
        result = ferry(
            ["validate", "--from", f"chroma+file://{src}", "--to", f"qdrant+file://{folder}",
             "--queries", "0", "--json"],
            {"FERRY_STATE": str(tmp_path / "journal.sqlite3")},
        )  # fmt: skip
    finally:
        holder.close()
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "another process has this Qdrant local folder open" in line and str(folder) in line
    assert "Traceback" not in result.stderr
