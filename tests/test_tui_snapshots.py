"""Snapshots of every screen at 80×24 and 120×40 (pytest-textual-snapshot).

Deterministic by construction: fixed profiles, a journal holding a finished run with fixed
figures and timestamps (TZ=UTC), source data generated from fixed seeds in a directory whose
last two path parts are fixed (the header shows only those), no cursor blink in headless mode.
Regenerate with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the diff.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.tui_helpers import (
    fixed_journal,
    fixed_profiles,
    make_source,
    screen_text,
    wait_for,
    wait_for_text,
)
from tui.app import FerryApp

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
def test_inventory(snap_compare, tmp_path: Path, state: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path / "data" / "chroma")
    target = f"qdrant+edge://{tmp_path / 'data' / 'qdrant'}"
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
    from tui.widgets.confirm import TypedConfirm

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
