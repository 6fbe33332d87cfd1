"""Closing a Chroma file reader while a worker thread is inside one of its SQLite statements
waits for that statement; it does not crash the process.

It happens in ordinary use: a cancelled `await asyncio.to_thread(...)` leaves its thread
running, so a plan the TUI replaces (or a run cancelled mid-read) closes its reader under a
read. Unguarded, CPython's sqlite3 module frees the connection under the running step and the
process dies with SIGSEGV (the TUI with it). The statement here calls back into Python once it
is running, so the close lands inside the step on every try; it runs in a child process, so a
regression is a failed test and not a dead test session.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, make_chroma

CHILD = """
import sqlite3, sys, threading
from ferry.core.connectors.chroma.files import ChromaDirectory

LONG = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
    "SELECT sum(running(x)) FROM c"
)
outcomes = {"finished": 0, "closed under it": 0}
for _ in range(20):
    reader = ChromaDirectory(sys.argv[1])
    reader.describe("docs")  # an ordinary read first: the connection is the reader's own
    inside = threading.Event()
    shared = reader._conn()
    raw = getattr(shared, "_db", shared)  # the sqlite3 connection under the guard
    raw.create_function("running", 1, lambda x: inside.set() or x)

    def statement() -> None:
        try:
            reader._conn().execute(LONG).fetchall()
            outcomes["finished"] += 1
        except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
            outcomes["closed under it"] += 1

    worker = threading.Thread(target=statement)
    worker.start()
    inside.wait()  # the statement is running in the worker
    reader.close()
    worker.join()
print("survived", outcomes)
"""


def test_closing_a_reader_under_a_running_statement_waits_for_it(tmp_path: Path) -> None:
    source = make_chroma(tmp_path / "app", {"docs": {"metric": "cosine", "n": 50, "dim": 8}})
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    # The close waited for the running step; a fetch after it is told the reader is closed.
    outcome = done.stdout.split("survived ", 1)[1]
    assert sum(ast.literal_eval(outcome).values()) == 20
