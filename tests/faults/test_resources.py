"""Resource faults read as one line naming the resource and the fix, not as crashes."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from ferry.core.connectors.qdrant.edge_worker import _describe, _rebuild
from ferry.core.errors import FerryError, ResourceError, TransientError, classify
from ferry.core.journal import Journal
from ferry.core.model import Phase, Progress


def test_a_full_journal_disk_is_named(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", [], {}, {})
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    with pytest.raises(ResourceError) as caught:
        for i in range(2000):
            journal.runs.add_retry(run_id, "docs")
            journal.runs.create(
                f"k{i}", "chroma+file:///s", "qdrant+edge:///t", ["x" * 500], {}, {}
            )
    line = caught.value.one_line()
    assert "disk full" in line and str(journal.path) in line and "resume" in line


def test_edge_disk_full_says_disk_full_not_worker_stopped() -> None:
    # What the worker process sends back when the Rust side fails to write.
    error = _rebuild(*_describe(OSError(errno.ENOSPC, "No space left on device"), "/t/docs"))
    assert isinstance(error, ResourceError) and "disk full" in error.one_line()
    rust = RuntimeError("Service internal error: No space left on device (os error 28)")
    assert "disk full" in _rebuild(*_describe(rust, "/t")).one_line()


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (OSError(errno.EROFS, "Read-only file system"), ResourceError, "read-only"),
        (
            PermissionError(errno.EACCES, "Permission denied", "/s/chroma.sqlite3"),
            ResourceError,
            "permission denied",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file", "/s/x/data_level0.bin"),
            ResourceError,
            "missing",
        ),
        (sqlite3.DatabaseError("database disk image is malformed"), ResourceError, "damaged"),
        (
            ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
            TransientError,
            "did not answer",
        ),
        (TimeoutError("timed out"), TransientError, "did not answer"),
        (ValueError("bad dimension"), FerryError, "refused"),
    ],
)
def test_classify_names_the_resource(exc: BaseException, kind: type, words: str) -> None:
    error = classify(exc, "a read", "/s")
    assert isinstance(error, kind) and words in error.one_line()


def test_a_failed_collection_shows_no_rate_or_eta(tmp_path: Path) -> None:
    from ferry.core.runs import RunView

    journal = Journal(tmp_path / "j.sqlite3")
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", [], {}, {})
    journal.runs.ensure_collection(run_id, "docs", "docs")
    journal.runs.start_collection(run_id, "docs", 1000, 8, "l2")
    journal.runs.record_progress(
        run_id, "docs", Progress("docs", records_per_second=13094.0, eta_seconds=1.0)
    )
    journal.runs.fail_collection(run_id, "docs", "disk full during upsert", 1)
    view = RunView.load(journal, run_id)
    assert view is not None
    collection = view.collection("docs")
    assert collection is not None and collection.phase is Phase.FAILED
    assert not collection.records_per_second and collection.eta_seconds is None
