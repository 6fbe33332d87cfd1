"""Snapshots of every screen at 80×24 and 120×40 (pytest-textual-snapshot).

Deterministic by construction: fixed profiles, a journal holding a finished run with fixed
figures and timestamps (TZ=UTC), source data generated from fixed seeds in a directory whose
last two path parts are fixed (the header shows only those), no cursor blink in headless mode.
Regenerate with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the diff.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot

from ferry.tui.app import FerryApp
from tests.tui_helpers import (
    fixed_journal,
    fixed_profiles,
    make_source,
    screen_text,
    wait_for,
    wait_for_text,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.mark.parametrize("size", SIZES)
def test_connections(snap_compare, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    fixed_profiles()

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for_text(pilot, "prod-qdrant")

    assert snap_compare(FerryApp(state), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_inventory(snap_compare, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    # A fixed place: at 120 columns the paths are shown whole, so they must not vary by run.
    root = Path("/tmp/ferry-snapshot-inventory") / f"{size[0]}x{size[1]}"  # not $TMPDIR
    shutil.rmtree(root, ignore_errors=True)
    source = make_source(root / "data" / "chroma")
    target = f"qdrant+edge://{root / 'data' / 'qdrant'}"
    app = FerryApp(state, source, target, start="inventory", select_all=True)

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for_text(pilot, "press m to migrate")

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_monitor(snap_compare, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    fixed_journal(state)
    app = FerryApp(state, start="monitor")

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for_text(pilot, "run completed")
        await wait_for(pilot, lambda: screen_text(app).count("1,500/1,500 completed") == 2)

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    fixed_journal(state)
    app = FerryApp(state, start="monitor")

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for_text(pilot, "run completed")
        await wait_for(pilot, lambda: screen_text(app).count("1,500/1,500 completed") == 2)
        await pilot.press("question_mark")
        await wait_for_text(pilot, "Everywhere")

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_cutover(snap_compare, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    fixed_journal(state)
    app = FerryApp(state, start="cutover")

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for(pilot, lambda: app.current_mode == "cutover")
        await pilot.pause(0.3)
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_validation(snap_compare, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    fixed_journal(state)
    app = FerryApp(state, start="validation")

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for(pilot, lambda: app.current_mode == "validation")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_typed_confirmation(snap_compare, state: Path) -> None:  # type: ignore[no-untyped-def]
    """The one confirmation modal over Cutover at 80×24, after a wrong name and Enter."""
    from ferry.tui.widgets.confirm import TypedConfirm

    fixed_journal(state)
    app = FerryApp(state, start="cutover")

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for(pilot, lambda: app.current_mode == "cutover")
        changes = "\n".join(
            [
                "cutover: alias 'docs' on qdrant+edge:///data/qdrant",
                "  now points at: docs__a",
                "  will point at: docs__b",
                "  validation:    passed (recall@10 1.00), 2m ago",
                "  backup first:  docs__a snapshot in /data/qdrant/.ferry-backups",
                "  docs__a is kept (Ferry never deletes it)",
            ]
        )
        app.push_screen(TypedConfirm("Cut over alias docs?", changes, "docs", "Cut over"))
        await wait_for_text(pilot, "Type docs to confirm")
        await pilot.press(*"doc", "enter")
        await wait_for_text(pilot, "exactly")

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_run_dialog(snap_compare, tmp_path: Path, state: Path) -> None:  # type: ignore[no-untyped-def]
    """`m` on Inventory at 80×24: the plan and the options before anything starts."""
    source = make_source(tmp_path / "data" / "chroma")
    target = f"qdrant+edge://{tmp_path / 'data' / 'qdrant'}"
    app = FerryApp(state, source, target, start="inventory", select_all=True)

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for_text(pilot, "press m to migrate")
        await pilot.press("m")
        await wait_for_text(pilot, "enter starts")

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_log_view(snap_compare, state: Path) -> None:  # type: ignore[no-untyped-def]
    """`l` on the Monitor at 80×24: the run's log file (fixed lines), followed."""
    run_id = fixed_journal(state)
    logs = state.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{run_id}-4242.log").write_text(
        "12:00:00 run 20250301-120000-f3rry0: chroma+file:///data/chroma → "
        "qdrant+edge:///data/qdrant\n"
        "12:00:00 options batch_size=250 workers=2 rate=None mode=create\n"
        "12:00:00 phase   run: run started\n"
        "12:00:01 phase   alpha-docs: copying 1,500 records\n"
        "12:00:03 phase   alpha-docs: completed: 1,500 records\n"
        "12:00:04 retry   beta-notes: write failed (timed out); retry 1\n"
        "12:00:06 phase   run: run completed\n"
    )
    app = FerryApp(state, start="monitor")

    async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
        await wait_for_text(pilot, "run completed")
        await pilot.press("l")
        await wait_for(pilot, lambda: len(app.screen.query_one("#run-log").lines) >= 7)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)
