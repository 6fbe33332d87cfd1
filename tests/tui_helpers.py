"""What the pilot tests share: real data, and reading the screen the way a person does."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from tests.conftest import make_chroma

COLLECTIONS = {
    "alpha-docs": {"n": 1500, "dim": 32, "metric": "cosine", "seed": 1},
    "beta-notes": {"n": 1500, "dim": 32, "metric": "l2", "seed": 2},
}


def make_source(path: Path) -> str:
    make_chroma(path, COLLECTIONS)
    return f"chroma+file://{path}"


def screen_text(app: App[Any]) -> str:
    """The characters on the terminal right now, without colour: what a user reads."""
    console = Console(
        width=app.size.width,
        height=app.size.height,
        file=io.StringIO(),
        record=True,
        color_system=None,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], Any], timeout: float = 30.0, what: str = ""
) -> Any:
    """Let the app run until `condition` holds (waiting on a fact, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not met within {timeout}s: {what}\n--- screen ---\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.05)


async def wait_for_text(pilot: Pilot[Any], text: str, timeout: float = 30.0) -> str:
    """Wait until `text` is on screen. Returns the screen as it is then; anything else a test
    asserts in it must be waited for too (`wait_for_texts`, `wait_for_footer`): on a busy
    machine one widget is drawn before its neighbours (the footer last of all)."""
    return await wait_for(
        pilot, lambda: text in screen_text(pilot.app), timeout, f"{text!r} on screen"
    ) and screen_text(pilot.app)


async def wait_for_texts(pilot: Pilot[Any], *texts: str, timeout: float = 30.0) -> str:
    """Wait until every one of `texts` is on screen at once; returns that screen."""

    def all_shown() -> str:
        shown = screen_text(pilot.app)
        flat = " ".join(shown.split())
        return shown if all(t in shown or " ".join(t.split()) in flat for t in texts) else ""

    return await wait_for(pilot, all_shown, timeout, f"all of {texts!r} on screen")


def bottom_line(app: App[Any]) -> str:
    """The terminal's last line: where the Footer shows the keys of the screen in front."""
    return screen_text(app).rstrip("\n").splitlines()[-1]


async def wait_for_footer(pilot: Pilot[Any], *keys: str, timeout: float = 30.0) -> str:
    """Wait until the footer offers every one of `keys` (e.g. "d Delete"): the Footer
    recomposes after the screen's bindings settle, so it is drawn after the body."""
    return await wait_for(
        pilot,
        lambda: (line := bottom_line(pilot.app)) and all(k in line for k in keys) and line,
        timeout,
        f"footer offering {keys!r}",
    )


FIXED_RUN_ID = "20250301-120000-f3rry0"
FIXED_TS = 1740830400.0  # 2025-03-01 12:00:00 UTC


def fixed_journal(
    path: Path,
    source: str = "chroma+file:///data/chroma",
    target: str = "qdrant+edge:///data/qdrant",
) -> str:
    """A journal holding one finished run with fixed figures: the Monitor renders the same
    every time (no clock, no pid, fixed ids and timestamps)."""
    import sqlite3

    from ferry.core.journal import Journal
    from ferry.core.model import LogEntry, Progress
    from ferry.core.runs import RunState

    journal = Journal(path)
    run_id = journal.runs.create(
        "fixed-key",
        source,
        target,
        ["alpha-docs", "beta-notes"],
        {"source_id": "source_id", "document": "document"},
        {"batch_size": 250, "workers": 2, "rate": None, "mode": "create"},
    )
    figures = [("alpha-docs", 1500, 2.1, 1.2e6, 714.3), ("beta-notes", 1500, 1.9, 1.1e6, 789.5)]
    for name, total, seconds, byte_rate, average in figures:
        journal.runs.ensure_collection(run_id, name, name)
        journal.runs.start_collection(run_id, name, total, 32, None)
        progress = Progress(
            name,
            total=total,
            records_read=total,
            records_per_second=average,
            average_records_per_second=average,
            bytes_per_second=byte_rate,
            eta_seconds=0,
            seconds=seconds,
        )
        journal.runs.record_progress(run_id, name, progress)
        if name == "beta-notes":
            journal.runs.add_retry(run_id, name)  # what the recorder writes for a RetryScheduled
        journal.runs.checkpoint(run_id, name, None, total, total * 140)
        journal.runs.complete_collection(run_id, name, seconds, average)
    messages = [
        ("phase", None, "run started"),
        ("phase", "alpha-docs", "copying 1,500 records"),
        ("phase", "alpha-docs", "completed: 1,500 records"),
        ("phase", "beta-notes", "copying 1,500 records"),
        ("retry", "beta-notes", "write failed (timed out); retry 1"),
        ("phase", "beta-notes", "completed: 1,500 records"),
        ("phase", None, "run completed"),
    ]
    for offset, (kind, collection, message) in enumerate(messages):
        journal.events.add(LogEntry(kind, run_id, collection, message, {}, ts=FIXED_TS + offset))
    journal.runs.set_status(run_id, RunState.COMPLETED)
    journal.close()
    db = sqlite3.connect(path)
    with db:
        for table in ("runs", "run_collections", "events"):
            db.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", (FIXED_RUN_ID, run_id))
        db.execute(
            "UPDATE runs SET pid = NULL, host = NULL, created_at = ?, updated_at = ?, "
            "finished_at = ?",
            (FIXED_TS, FIXED_TS + 6, FIXED_TS + 6),
        )
    db.close()
    return FIXED_RUN_ID


def fixed_profiles() -> None:
    from ferry.core.profiles import Profile, upsert_profile

    upsert_profile(Profile("local-chroma", "chroma+file:///data/chroma"))
    upsert_profile(Profile("edge-target", "qdrant+edge:///data/qdrant"))
    upsert_profile(
        Profile("prod-qdrant", "qdrant+https://qdrant.example.com:6333", "QDRANT_API_KEY")
    )


def edge_worker_pids() -> set[int]:
    """The Qdrant Edge worker processes this test process runs (one per open Edge dir)."""
    import psutil

    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            running = child.status() != psutil.STATUS_ZOMBIE
            if running and "ferry.core.connectors.qdrant.edge_worker" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a request to it stays in
    flight until the test ends, so a worker is certainly still running when a key is
    pressed (a real socket, no clock)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


async def start_from_inventory(pilot: Pilot[Any], timeout: float = 30.0) -> str:
    """`m` on Inventory, wait for the run dialog's plan, Enter: what a person does to start
    a run. Returns the dialog's text as it was when Enter was pressed."""
    await pilot.press("m")
    text = await wait_for_text(pilot, "enter starts", timeout)
    await pilot.press("enter")
    return text
