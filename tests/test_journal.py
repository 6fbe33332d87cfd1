"""The journal's schema discipline: applied migrations are hashed and must not change."""

from __future__ import annotations

import dataclasses
import sqlite3
import stat
from pathlib import Path

import pytest

from ferry.core.errors import FerryError
from ferry.core.journal import Journal, bundled_migrations
from ferry.core.model import LogEntry, Phase
from ferry.core.states import RunState


def test_fresh_journal_applies_every_migration_and_is_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    applied = journal.applied_migrations()
    assert [m["version"] for m in applied] == [v for v, _, _ in bundled_migrations()]
    assert stat.S_IMODE((tmp_path / "j.sqlite3").stat().st_mode) == 0o600
    journal.close()
    Journal(tmp_path / "j.sqlite3").close()  # reopening verifies hashes and succeeds


def test_a_tampered_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_migrations SET sha256 = 'deadbeef' WHERE version = 1")
    with pytest.raises(FerryError, match="modified after it was applied"):
        Journal(path)


def test_a_migration_unknown_to_this_ferry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'x', 0)")
    with pytest.raises(FerryError, match="missing from this Ferry"):
        Journal(path)


def test_runs_checkpoints_and_controls_round_trip(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("key", "chroma+file:///a", "qdrant+edge:///b", [], {}, {})
    journal.runs.ensure_collection(run_id, "docs", "docs")
    journal.runs.checkpoint(run_id, "docs", {"offset": 7, "id": "x"}, 7000, 123)
    row = journal.runs.collections(run_id)[0]
    assert (row.watermark, row.records_written) == ({"offset": 7, "id": "x"}, 7000)
    journal.mailbox.request(run_id, "pause")
    journal.mailbox.request(run_id, "cancel")
    assert journal.mailbox.take(run_id) == "cancel"
    assert journal.mailbox.take(run_id) is None
    assert journal.runs.get(run_id[:12]).run_id == run_id


def test_each_store_hands_back_frozen_typed_records(tmp_path: Path) -> None:
    """Rows leave the journal decoded once (JSON columns as dicts, flags as bools, states as
    enums); a caller reads attributes and cannot change what it was given."""
    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("key", "chroma+file:///a", "qdrant+edge:///b", ["docs"], {}, {})
    journal.runs.ensure_collection(run_id, "docs", "docs_v2")
    journal.runs.start_collection(run_id, "docs", 10, 8, "cosine")
    journal.runs.checkpoint(run_id, "docs", None, 10, 80, target_owned=True)
    journal.runs.complete_collection(run_id, "docs", 1.0, 10.0, search_ready=True, hnsw_ef=64)
    run = journal.runs.get(run_id)
    assert run is not None and (run.status, run.collections) == (RunState.PENDING, ("docs",))
    row = journal.runs.collections(run_id)[0]
    assert (row.phase, row.records_written, row.target_created) == (Phase.COMPLETED, 10, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.records_written = 0  # type: ignore[misc]
    settings = journal.runs.search_settings("qdrant+edge:///b", "docs_v2")
    assert settings is not None and (settings.hnsw_ef, settings.search_ready) == (64, True)
    [copied] = journal.runs.migrated_collections("qdrant+edge:///b")
    assert (copied.name, copied.target_name, copied.run_status) == ("docs", "docs_v2", "pending")

    journal.events.add(LogEntry("retry", run_id, "docs", "retrying", {"throttled": True}))
    [event] = journal.events.after(run_id)
    assert (event.kind, event.data) == ("retry", {"throttled": True})
    assert journal.events.last_retries(run_id)["docs"].id == event.id

    journal.validations.record(
        "chroma+file:///a", "qdrant+edge:///b", "docs", "docs_v2", True, {"k": 5}
    )
    stored = journal.validations.latest("qdrant+edge:///b", "docs_v2")
    assert stored is not None and (stored.ok, stored.result) == (True, {"k": 5})

    journal.cutovers.record(
        action="cutover", target_uri="qdrant+edge:///b", alias="docs", to_collection="docs_v2",
        forced=0, detail={"backup": None},
    )  # fmt: skip
    [cutover] = journal.cutovers.history("qdrant+edge:///b", "docs")
    assert (cutover.forced, cutover.detail, cutover.validation) == (False, {"backup": None}, None)


def test_an_edited_migration_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the same check: the file changed after it was applied."""
    import ferry.core.journal as journal_module

    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    edited = [
        (version, name, sql + "\n-- an innocent-looking edit\n")
        for version, name, sql in bundled_migrations()
    ]
    monkeypatch.setattr(journal_module, "bundled_migrations", lambda: edited)
    with pytest.raises(FerryError, match="0001_init.sql was modified"):
        Journal(path)


def test_a_second_journal_in_this_process_keeps_another_process_writes_visible(
    tmp_path: Path,
) -> None:
    """The TUI keeps one Journal open and opens others beside it (screens, tests) while a
    detached `ferry migrate` writes the runs. Opening another must not drop this process's
    SQLite locks (a raw open/close of the file does): the writer would then believe it is
    alone, unlink the WAL index when it exits, and this process would never see a later run.
    """
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "journal.sqlite3"
    watcher = Journal(path)
    writer = (
        "import sys\n"
        "from ferry.core.journal import Journal\n"
        "j = Journal(sys.argv[1])\n"
        "print('open', flush=True)\n"
        "sys.stdin.readline()\n"
        "j.runs.create('k', 'chroma+file:///s', 'qdrant+edge:///t', ['docs'], {}, {})\n"
        "print('written', flush=True)\n"
        "sys.stdin.readline()\n"
        "j.close()\n"
    )

    def one_run(open_another: bool) -> None:
        process = subprocess.Popen(
            [sys.executable, "-c", writer, str(path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        assert process.stdout.readline() == "open\n"
        if open_another:
            Journal(path)
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.stdout.readline() == "written\n"
        watcher.runs.recent()  # the TUI polls while the run goes
        process.communicate("go\n", timeout=60)
        assert process.returncode == 0

    one_run(open_another=False)
    one_run(open_another=True)
    one_run(open_another=False)  # the run the TUI never saw
    assert len(watcher.runs.recent()) == 3
