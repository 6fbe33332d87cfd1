"""The TUI as a daily driver (issue 12): the run dialog, honest states, logs and copying,
validation settings and reasons, keys, messages.

Real parts throughout: runs are detached `ferry migrate` processes over real embedded Chroma
and Qdrant Edge; tests wait on what the journal and the screen say, with deadlines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual import events

from ferry.cli import main
from ferry.core.engine import ProgressMeter, RunControl
from ferry.core.journal import Journal
from ferry.core.model import CollectionInfo, Metric, Phase, Progress
from ferry.core.run_choices import RunChoices, load_choices
from ferry.core.runs import RunState, RunView
from ferry.tui.app import FerryApp
from tests.tui_helpers import (
    fixed_journal,
    make_source,
    screen_text,
    start_from_inventory,
    wait_for,
    wait_for_footer,
    wait_for_text,
    wait_for_texts,
)


@pytest.fixture
def source(tmp_path: Path) -> str:
    return make_source(tmp_path / "data" / "chroma")


@pytest.fixture
def target(tmp_path: Path) -> str:
    return f"qdrant+edge://{tmp_path / 'data' / 'qdrant'}"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


async def replace_text(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Empty the focused input and type `text` (keys only, as a person would)."""
    await pilot.press("end", *["backspace"] * 12, *text)


# -- 1. the run dialog -----------------------------------------------------------------------
async def test_opening_the_run_dialog_plans_once(
    source: str, target: str, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dialog's fields post Changed events as they mount; a plan already being made for
    the same choices is not started over (each start over re-read the source, and cancelled
    the read under its worker thread)."""
    from ferry.tui.screens import run_dialog

    plans: list[str] = []
    real = run_dialog.preview_run

    async def counted(*args: Any, **kwargs: Any) -> Any:
        plans.append("started")
        return await real(*args, **kwargs)

    monkeypatch.setattr(run_dialog, "preview_run", counted)
    app = FerryApp(state, source, target, start="inventory", select_all=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await pilot.press("m")
        await wait_for_texts(pilot, "enter starts", "3,000 records")
        # a replan after this one is made finds it made (planned_alike): none can follow
        assert plans == ["started"]


async def test_run_dialog_options_reach_the_run_are_remembered_and_existing_needs_typing(
    source: str, target: str, state: Path
) -> None:
    app = FerryApp(state, source, target, start="inventory", select_all=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await pilot.press("m")
        await wait_for_texts(
            pilot, "enter starts", "alpha-docs", "beta-notes", "1,500", "flat", "3,000 records"
        )  # layout and records per collection
        await wait_for_footer(pilot, "esc Cancel")  # the dialog's own keys, not Inventory's
        await replace_text(pilot, "250")  # batch size (focused first)
        await pilot.press("tab")
        await replace_text(pilot, "3")  # workers
        await pilot.press("tab")
        await replace_text(pilot, "900")  # rate
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "monitor", what="monitor shown")
        run_id = await wait_for(pilot, lambda: app.context.run_id, what="attached")

        journal = Journal(state)
        view = RunView.load(journal, run_id)
        assert view is not None
        assert {k: view.options.get(k) for k in ("batch_size", "workers", "rate", "mode")} == {
            "batch_size": 250,
            "workers": 3,
            "rate": 900.0,
            "mode": "create",
        }
        assert view.options.get("layout") is None  # the detected one, per collection
        assert load_choices(state, source, target) == RunChoices(250, 3, 900.0, "create")

        # The log view follows the run's log file: the options first, "run completed" later.
        await pilot.press("l")
        await wait_for_texts(pilot, "options batch_size=250 workers=3 rate=900.0", "Run log")

        def log_lines() -> str:
            return "\n".join(app.screen.query_one("#run-log").lines)

        await wait_for(pilot, lambda: "run completed" in log_lines(), 60, "followed")
        assert "completed: 1,500 records" in log_lines()
        assert log_lines().index("options") < log_lines().index("run completed")
        await pilot.press("y")
        copied = app.clipboard
        assert copied.endswith(".log") and run_id in copied and Path(copied).exists()
        await wait_for_text(pilot, "Copied log path")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="back on the Monitor")
        await wait_for(
            pilot, lambda: app.snapshot and app.snapshot.state is RunState.COMPLETED, what="done"
        )

        # Again: the dialog remembers the options; both targets now exist and are written
        # into, so starting needs the word typed; a wrong word is refused.
        await pilot.press("2")
        await wait_for_text(pilot, "exists ✓")
        await pilot.press("m")
        await wait_for_texts(pilot, "writes into existing", "250", "900")
        await pilot.press("enter")
        await wait_for_text(pilot, "Type write to confirm")
        await pilot.press(*"wrong", "enter")
        await wait_for_text(pilot, "exactly")
        assert app.context.run_id == run_id  # nothing started
        await replace_text(pilot, "write")
        await pilot.press("enter")
        # The same run again after it completed, on a live-readable source: a catch-up of
        # that run (core/live) applies what changed since its cut instead of a second copy.
        from ferry.core.live.store import LiveStore

        def catch_ups() -> int:
            view = Journal(state)
            try:
                return sum(c.catch_ups for c in LiveStore(view).of_run(run_id).values())
            finally:
                view.close()

        await wait_for(pilot, lambda: catch_ups() >= 2, timeout=60, what="both caught up")
        await wait_for(
            pilot,
            lambda: (v := RunView.load(journal, run_id)) and v.state is RunState.COMPLETED,
            timeout=60,
            what="the run completed again",
        )


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, source: str, target: str, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["migrate", "--from", source, "--to", target, "--state", str(state), "--dry-run"]
    assert main([*argv, "--batch-size", "300", "--mode", "append"]) == 0
    out = capsys.readouterr().out
    assert "alpha-docs → alpha-docs_v1  [flat]  1,500 records" in out
    assert "batch size 300" in out and "mode append" in out
    assert "dry run, nothing written" in out
    assert main([*argv, "--json", "--collection", "beta-notes"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["dry_run"] is True and plan["records"] == 1500
    assert [c["name"] for c in plan["collections"]] == ["beta-notes"]
    assert plan["collections"][0]["writes_into_existing"] is False
    assert not (tmp_path / "data" / "qdrant").exists()  # nothing written on the target
    assert not state.exists()  # and no journal made


# -- 5. honest states ------------------------------------------------------------------------
async def test_cancelling_then_cancelled_in_order_and_resume_shows_pending(
    source: str, target: str, state: Path
) -> None:
    slow = ["--rate", "300", "--batch-size", "100"]
    app = FerryApp(state, source, target, start="inventory", select_all=True, migrate_args=slow)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await start_from_inventory(pilot)
        await wait_for(
            pilot, lambda: app.snapshot and app.snapshot.written > 0, what="copying started"
        )
        run_id = app.context.run_id
        await pilot.press("c")
        await wait_for_text(pilot, "Cancel the run")
        await pilot.press("y")
        await wait_for(
            pilot, lambda: app.snapshot.state is RunState.CANCELLED, timeout=30, what="cancelled"
        )
        journal = Journal(state)
        messages = [e.message for e in journal.events.after(run_id)]
        assert messages.index("run cancelling") < messages.index("run cancelled")
        # the hint, and the figures without a rate or ETA (drawn in the same refresh or after)
        text = await wait_for_texts(pilot, "r resumes from the watermark", "ETA —", "now —")
        shown = list(app.screen.query_one("#events").lines)  # the Monitor's event list
        said = [i for i, t in enumerate(shown) if "run cancelling" in t or "run cancelled" in t]
        assert ["run cancelling" in shown[i] for i in said] == [True, False]
        assert "ETA —" in text and "now —" in text  # no rate or ETA outside running
        rows = [t for t in text.splitlines() if "alpha-docs" in t or "beta-notes" in t]
        assert rows and not any("/s" in t for t in rows)

        await pilot.press("r")  # resume: the collection that never started waits as pending

        def beta_pending_while_alpha_copies() -> bool:
            phases = {c.name: c.phase for c in journal.runs.collections(run_id)}
            return phases == {"alpha-docs": "running", "beta-notes": "pending"}

        if journal.runs.collections(run_id)[0].phase != "completed":
            await wait_for(pilot, beta_pending_while_alpha_copies, what="beta pending")
        await wait_for(
            pilot,
            lambda: app.snapshot and app.snapshot.state is RunState.RUNNING,
            what="resumed",
        )
        assert "beta-notes" not in [
            c.name for c in app.snapshot.collections if c.phase is Phase.CANCELLED
        ]
        await pilot.press("c")
        await wait_for_text(pilot, "Cancel the run")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.snapshot.active, timeout=30, what="stopped")


def test_average_leaves_paused_time_out() -> None:
    now = [100.0]
    control = RunControl(lambda: now[0])
    meter = ProgressMeter(1000, 0, lambda: now[0], control.paused_seconds)
    now[0] += 2
    meter.add(200, 0)
    control.pause()
    now[0] += 60  # a long pause: nothing moves
    control.resume()
    now[0] += 2
    meter.add(200, 0)
    assert meter.running_seconds() == pytest.approx(4.0)
    assert meter.rates()[1] == pytest.approx(100.0)  # 400 records in 4 s of running


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_run_shows_no_rate_and_its_collection_as_interrupted(state: Path) -> None:
    journal = Journal(state)
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", ["docs"], {}, {})
    journal.runs.ensure_collection(run_id, "docs", "docs")
    journal.runs.start_collection(run_id, "docs", 1000, 8, "cosine")
    journal.runs.record_progress(
        run_id,
        "docs",
        Progress("docs", Phase.RUNNING, total=1000, records_per_second=617.0, eta_seconds=3.0),
    )
    journal.runs.set_status(run_id, RunState.RUNNING)
    journal._exec("UPDATE runs SET pid = ? WHERE run_id = ?", (dead_pid(), run_id))
    view = RunView.load(journal, run_id)
    assert view is not None and view.state is RunState.INTERRUPTED
    docs = view.collections[0]
    assert docs.state_word == "interrupted" and not docs.moving
    assert view.records_per_second == 0 and view.eta_seconds is None
    code = main(["status", run_id, "--state", str(state)])
    assert code == 0


# -- 6 and 2. validation: reasons, settings, search, copying ------------------------------------
def recall_only_failure(state: Path, source: str, target: str) -> None:
    """A stored validation that fails on recall alone: no record differs."""
    journal = Journal(state)
    result = {
        "name": "alpha-docs", "target_name": "alpha-docs", "ok": False, "mode": "sample",
        "metric": "cosine", "source_count": 1500, "target_count": 1500, "checked": 1000,
        "missing": [], "missing_total": 0, "extra": [], "extra_total": 0, "mismatched": [],
        "mismatched_total": 0, "rounded": [], "rounded_total": 0, "recall_at_k": 0.8, "k": 10,
        "reasons": ["recall@10 0.80 is below the threshold 0.95"],
    }  # fmt: skip
    journal.validations.record(source, target, "alpha-docs", "alpha-docs", False, result)
    journal.close()


async def test_every_cross_states_its_reason_and_settings_reach_the_checks(
    source: str, target: str, state: Path
) -> None:
    recall_only_failure(state, source, target)
    app = FerryApp(state, source, target, start="validation")
    app.context.selected = ["alpha-docs"]
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_for_texts(
            pilot, "✘ recall@10 0.80 is below the threshold 0.95", "fails because: recall@10 0.80"
        )
        assert "differences found" not in text
        await wait_for_footer(pilot, "x Extras", "o Options")

        await pilot.press("o")
        await wait_for_text(pilot, "Validation settings")
        await wait_for_footer(pilot, "esc Cancel")
        await replace_text(pilot, "0")  # sample: none
        await pilot.press("tab")
        await replace_text(pilot, "5")  # k
        await pilot.press("tab")
        await replace_text(pilot, "4")  # queries
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="settings closed")
        screen = app.screen
        assert (screen.settings.sample, screen.settings.k, screen.settings.queries) == (0, 5, 4)
        await wait_for_text(pilot, "sample 0 · k 5 · queries 4")


async def test_search_and_copy_differences(
    source: str, target: str, state: Path, tmp_path: Path
) -> None:
    from ferry.core.connectors import open_connector
    from ferry.core.engine import MigrationOptions
    from ferry.core.runner import migrate as run_migrate

    await run_migrate(source, target, ["alpha-docs"], MigrationOptions(), Journal(state))
    async with open_connector(source) as reader:
        first = await reader.sample("alpha-docs", 3)
    assert first is not None
    async with open_connector(target) as writer:
        await writer.delete("alpha-docs", first.ids[:2])
        await writer.sync("alpha-docs")
    app = FerryApp(state, source, target, start="validation")
    app.context.selected = ["alpha-docs"]
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("f")
        await wait_for_texts(pilot, "Full diff:", "counts differ", timeout=60)
        await pilot.press("slash")
        await pilot.press(*first.ids[1])
        await pilot.press("enter")
        table = app.screen.query_one("#validation-differences")
        await wait_for(pilot, lambda: table.row_count == 1, what="one match")
        await pilot.press("y")
        assert app.clipboard == first.ids[1]
        await wait_for_text(pilot, f"Copied record id: {first.ids[1]}")
        await pilot.press("Y")
        assert app.clipboard.split("\t")[:3] == ["alpha-docs", "missing", first.ids[1]]
        await pilot.press("e")
        await wait_for(pilot, lambda: app.clipboard.endswith(".json"), what="report path")
        assert Path(app.clipboard).exists()
        await pilot.press("slash", "escape")  # esc in the search clears it
        await wait_for(pilot, lambda: table.row_count == 2, what="both differences again")


# -- 7. keys ---------------------------------------------------------------------------------
def running_journal(state: Path) -> str:
    """A run whose row says running and whose pid is ours (alive): the app treats it as a
    live run, with no engine behind it."""
    journal = Journal(state)
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", ["docs"], {}, {})
    journal.runs.ensure_collection(run_id, "docs", "docs")
    journal.runs.set_status(run_id, RunState.RUNNING)
    journal.close()
    return run_id


async def test_palette_quit_asks_like_q(state: Path) -> None:
    running_journal(state)
    app = FerryApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot and app.snapshot.active, what="attached")
        await pilot.press("ctrl+p")
        await pilot.press(*"quit")
        await wait_for_text(pilot, "Quit")
        await pilot.press("enter")
        await wait_for_text(pilot, "Leave it running")
        await wait_for_footer(pilot, "l Leave running")  # the modal's own footer
        await pilot.press("escape")  # stay
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="stayed")
        assert app.is_running


async def test_footers_help_and_a_burst_of_keys_in_the_profile_form(state: Path) -> None:
    from ferry.core.profiles import load_profiles

    fixed_journal(state)
    app = FerryApp(state, start="connections")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "No profiles yet")
        await wait_for_footer(pilot, "d Delete")
        await pilot.press("a")
        await wait_for_text(pilot, "Add a profile")
        # Everything at once, as over a laggy link (every key queued before the first is
        # handled; pilot.press would wait after each): the Tabs must not be lost.
        burst = [*"burst", "tab", *"qdrant+edge:///tmp/x", "tab", *"MY_KEY", "enter"]
        for key in burst:
            character = {"tab": "\t", "enter": "\r"}.get(key, key)
            app.post_message(events.Key(key, character))
        await wait_for(pilot, lambda: load_profiles(), what="saved")
        profile = load_profiles()[0]
        assert (profile.name, profile.uri, profile.api_key_env) == (
            "burst",
            "qdrant+edge:///tmp/x",
            "MY_KEY",
        )
        await pilot.press("5", "question_mark")
        await wait_for_text(pilot, "Everywhere")
        text = str(app.screen.query_one("#help-text").render())
        assert text.startswith("Cutover") and "CutoverScreen" not in text
        for key in ("Moving around", "tab", "↑ ↓ ← →", "home end", "enter", "space"):
            assert key in text
        await wait_for_footer(pilot, "esc Close")
        await pilot.press("escape")


async def test_header_says_whose_pair_it_shows(state: Path) -> None:
    fixed_journal(state)
    app = FerryApp(state, start="monitor")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "run completed 100%")
        await wait_for(
            pilot, lambda: "run's …" in screen_text(app).splitlines()[0], what="the header"
        )
    other = FerryApp(state, "chroma+file:///else/chroma", "qdrant+edge:///else/q", start="monitor")
    async with other.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "other run completed 100%")


# -- 9. messages -----------------------------------------------------------------------------
def test_messages_in_words() -> None:
    from ferry.core.connectors.traits import CHROMA
    from ferry.core.errors import in_words
    from ferry.core.plan import assess
    from ferry.tui.screens.base import in_this_app, one_line

    assert in_words(ValueError("Could not connect to a Chroma server")) == (
        "Could not connect to a Chroma server"
    )
    assert in_words(TimeoutError()) == "timeout error"
    assert "ferry validate" not in in_this_app(
        "cutover refused — run `ferry validate` on docs (or --force --reason TEXT)"
    )
    assert "Validation (4)" in one_line(RuntimeError("run `ferry validate --full`"))
    for metric in Metric:
        info = CollectionInfo("docs", 10, 8, metric)
        assert not any("Qdrant" in n for n in assess(info, [], CHROMA, CHROMA).notes)


def test_library_warnings_stay_off_stderr() -> None:
    """In a process of its own (pytest records warnings itself): what qdrant-client warns
    reaches stderr without Ferry's setting, and not with it."""
    from tests.conftest import ROOT

    code = (
        "import warnings\n"
        "from ferry.cli import quiet_library_warnings\n"
        "{}\n"
        "warnings.warn('Api key is used with an insecure connection.', UserWarning)\n"
    )
    for setup, expected in (("", True), ("quiet_library_warnings(debug=False)", False)):
        done = subprocess.run(
            [sys.executable, "-c", code.format(setup)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert ("insecure connection" in done.stderr) is expected


def test_demo_says_building_only_when_it_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["demo", "--headless", "--records", "20", "--dir", str(tmp_path / "demo")]
    argv += ["--state", str(tmp_path / "state.sqlite3")]
    assert main(argv) == 0
    assert "(building once)" in capsys.readouterr().err
    assert main(argv) == 0
    assert "(building once)" not in capsys.readouterr().err
