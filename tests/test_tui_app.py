"""Pilot tests: the real app, the real core, real embedded Chroma and Qdrant Edge.

Runs start as detached `ferry migrate` processes exactly as they do for a user; the tests
wait on what the journal and the screen say (with deadlines), never on time alone.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input, Log

from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.profiles import load_profiles, profiles_path
from ferry.core.runner import migrate
from ferry.core.runs import RunState, RunView, process_alive
from ferry.tui.app import FerryApp
from tests.tui_helpers import (
    make_source,
    screen_text,
    start_from_inventory,
    wait_for,
    wait_for_text,
    wait_for_texts,
)

RATE = ["--rate", "1000", "--batch-size", "250"]


@pytest.fixture
def source(tmp_path: Path) -> str:
    return make_source(tmp_path / "data" / "chroma")


@pytest.fixture
def target(tmp_path: Path) -> str:
    return f"qdrant+edge://{tmp_path / 'data' / 'qdrant'}"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


async def type_text(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])


async def paste(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """What a terminal sends when the user pastes: one Paste event to the focused widget."""
    assert pilot.app.focused is not None
    pilot.app.focused.post_message(events.Paste(text))
    await pilot.pause()


async def test_add_a_profile_test_it_and_choose_source_and_target(
    tmp_path: Path, source: str, target: str, state: Path
) -> None:
    app = FerryApp(state)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "No profiles yet")
        for name, uri in (("local-src", source), ("edge-dst", target)):
            await pilot.press("a")
            await type_text(pilot, name)
            await pilot.press("enter")
            await paste(pilot, uri)
            await pilot.press("enter", "enter")
            await wait_for_text(pilot, name)
        text = screen_text(app)
        assert "chroma file" in text and "qdrant edge" in text
        assert [p.name for p in load_profiles()] == ["local-src", "edge-dst"]
        assert stat.S_IMODE(profiles_path().stat().st_mode) == 0o600

        await pilot.press("up", "t")
        await wait_for_texts(pilot, "✓ local-src", " ms", "2 collection(s)")
        await pilot.press("f", "down", "o")
        assert app.context.source_uri == source and app.context.target_uri == target
        await wait_for_texts(
            pilot, "data/chroma → qdrant+edge://…/data/qdrant", "source", "target"
        )  # the Role column

        # A key pasted where its variable's name belongs is refused, and never written.
        await pilot.press("a")
        await type_text(pilot, "cloud")
        await pilot.press("enter")
        await paste(pilot, "qdrant+http://127.0.0.1:9")
        await pilot.press("enter")
        await paste(pilot, "sk-live-0123456789abcdef")
        await pilot.press("enter")
        await wait_for_text(pilot, "NAME of an environment variable")
        assert "sk-live" not in profiles_path().read_text()
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="form closed")


async def test_inventory_shows_both_sides_and_the_plan(
    tmp_path: Path, source: str, target: str, state: Path
) -> None:
    # beta-notes already exists on the target (a Ferry run made it): "exists ✓".
    await migrate(source, target, ["beta-notes"], MigrationOptions(), Journal(state))
    app = FerryApp(state, source, target, start="inventory")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_texts(
            pilot, "alpha-docs", "1,500", "32", "cosine", " l2 ", "new", "exists ✓"
        )
        await wait_for_texts(pilot, "nothing selected")
        await pilot.press("space")
        await wait_for_text(pilot, "Plan 1 collection(s) · 1,500 records")
        await pilot.press("a")
        await wait_for_texts(
            pilot,
            "Plan 2 collection(s) · 3,000 records",
            "press m to migrate",
            "ids need mapping",  # the risk note of the highlighted collection
        )
        assert app.context.selected == ["alpha-docs", "beta-notes"]


async def test_start_pause_resume_and_reach_100_percent(
    source: str, target: str, state: Path
) -> None:
    app = FerryApp(state, source, target, start="inventory", select_all=True, migrate_args=RATE)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await start_from_inventory(pilot)
        await wait_for(pilot, lambda: app.current_mode == "monitor", what="monitor shown")
        await wait_for_text(pilot, "running")
        await wait_for(pilot, lambda: app.snapshot and app.snapshot.written > 0, what="progress")

        await pilot.press("p")
        journal = Journal(state)
        run_id = app.context.run_id
        assert run_id
        await wait_for(pilot, lambda: journal.runs.get(run_id).status == "paused", what="paused")
        # "paused" shows in the event log first; the status line follows on the next poll.
        await wait_for_texts(pilot, "p or r resumes", "paused")

        await pilot.press("p")
        await wait_for(pilot, lambda: journal.runs.get(run_id).status != "paused", what="resumed")
        await wait_for_texts(
            pilot, "completed 100%", "3,000/3,000", "run paused", "run running", timeout=60
        )  # the last two: the event log
        await wait_for(
            pilot, lambda: screen_text(app).count("1,500/1,500 completed") == 2, what="both rows"
        )


async def test_cancel_asks_first_then_resume_relaunches_the_same_run(
    source: str, target: str, state: Path
) -> None:
    app = FerryApp(
        state,
        source,
        target,
        start="inventory",
        select_all=True,
        migrate_args=["--rate", "600", "--batch-size", "200"],
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await start_from_inventory(pilot)
        await wait_for(
            pilot, lambda: app.snapshot and app.snapshot.state is RunState.RUNNING, what="running"
        )
        run_id = app.context.run_id
        await pilot.press("c")
        await wait_for_text(pilot, "Cancel the run")
        await pilot.press("escape")  # No is the default: nothing happens
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="modal closed")
        await pilot.press("c")
        await wait_for_text(pilot, "Cancel the run")
        await pilot.press("y")
        await wait_for_text(pilot, "r resumes from the watermark")
        cancelled = RunView.load(Journal(state), run_id)
        assert cancelled is not None and cancelled.state is RunState.CANCELLED
        # Where the cancel landed depends on the machine's speed (a collection may have
        # finished first); what must follow from it does not: a collection stopped with a
        # watermark resumes from it.
        midway = [c.name for c in cancelled.collections if c.watermark is not None and not c.done]

        await pilot.press("r")
        await wait_for_text(pilot, "completed 100%", timeout=60)
        assert app.context.run_id == run_id  # the same run, resumed
        await wait_for(  # the rows are drawn after the header says so
            pilot,
            lambda: screen_text(app).count("1,500/1,500 completed") == 2,
            what="both collections completed",
        )
        if midway:  # stopped midway: the copy or the index resumes, and the log says so
            # ("(resuming)" or "(resuming after the copy)"; it may have scrolled off the view)
            await wait_for(
                pilot,
                lambda: any(
                    "(resuming" in line for line in app.screen.query_one("#events", Log).lines
                ),
                what="the resumed copy or index in the event log",
            )


async def test_quit_leaves_the_run_going_and_reopening_attaches(
    source: str, target: str, state: Path
) -> None:
    slow = ["--rate", "500", "--batch-size", "250"]
    app = FerryApp(state, source, target, start="inventory", select_all=True, migrate_args=slow)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await start_from_inventory(pilot)
        await wait_for(
            pilot, lambda: app.snapshot and app.snapshot.state is RunState.RUNNING, what="running"
        )
        run_id = app.context.run_id
        pid = app.snapshot.pid
        await pilot.press("q")
        await wait_for_text(pilot, "Leave it running")
        await pilot.press("l")
    assert app.return_code == 0
    assert process_alive(pid, None)  # the app is gone, the engine is not

    reopened = FerryApp(state)
    async with reopened.run_test(size=(100, 30)) as pilot:
        assert reopened.context.run_id == run_id
        assert reopened.current_mode == "monitor"  # it was still running: shown at once
        await wait_for_texts(pilot, "completed 100%", "3,000/3,000", timeout=60)
        log = reopened.screen.query_one("#events")
        await wait_for(  # re-attached: the event log shows its latest line, not its first
            pilot, lambda: log.line_count > 0 and log.scroll_y >= log.max_scroll_y, what="latest"
        )
    journal = Journal(state)
    assert journal.runs.get(run_id).status == "completed"
    assert sum(c.records_written for c in journal.runs.collections(run_id)) == 3000


async def test_every_key_on_every_screen_of_mine_and_help_and_palette(
    source: str, target: str, state: Path
) -> None:
    """No traceback on any key: each screen's keys, with nothing selected and no run."""
    app = FerryApp(state, source, target, start="inventory")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "alpha-docs")
        for number, mode in (("1", "connections"), ("2", "inventory"), ("3", "monitor")):
            await pilot.press(number)
            assert app.current_mode == mode
            for binding in app.screen.BINDINGS:
                key = binding.key.split(",")[0]  # type: ignore[union-attr]
                if key in {"a", "e"} and mode == "connections":
                    continue  # opens the form: covered above
                await pilot.press(key)
                await pilot.pause()
                while len(app.screen_stack) > 1:  # any modal a key opened
                    await pilot.press("escape")
                if isinstance(app.focused, Input):  # `/` opened a list's filter
                    await pilot.press("escape")
                    assert not isinstance(app.focused, Input)
            await pilot.press("question_mark")
            await wait_for_texts(pilot, "Everywhere", "Connections", "Quit")
            await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await type_text(pilot, "go to inv")
        await wait_for_text(pilot, "Go to Inventory")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "inventory", what="palette went")
        await pilot.press("escape")  # back to the screen before
        assert app.current_mode == "monitor"
        assert app.is_running


async def test_m_while_a_run_writes_the_embedded_target_goes_to_that_run(
    source: str, target: str, state: Path
) -> None:
    """Another run into an Edge folder that a run of this app is writing would wait on the
    folder's lock; `m` says which run writes there and shows it instead."""
    slow = ["--rate", "100", "--batch-size", "100"]
    app = FerryApp(state, source, target, start="inventory", select_all=True, migrate_args=slow)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await start_from_inventory(pilot)
        await wait_for(
            pilot, lambda: app.snapshot and app.snapshot.state is RunState.RUNNING, what="running"
        )
        run_id = app.context.run_id
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "inventory", what="inventory")
        await pilot.press("space")  # one collection less: another run, same Edge folder
        await pilot.press("m")
        await wait_for_text(pilot, f"Run {run_id} is writing into")
        assert app.current_mode == "monitor" and app.context.run_id == run_id
        assert len(app.screen_stack) == 1  # no run dialog waiting on the lock
        await pilot.press("c")
        await wait_for_text(pilot, "Cancel the run")
        await pilot.press("y")
        await wait_for_text(pilot, "r resumes from the watermark")
