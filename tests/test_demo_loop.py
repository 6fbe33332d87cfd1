"""The demo shows the whole check-and-repair loop: after the demo copy, the demo's
application writes to its source (core.demo_app, a process of its own), a full validation
lists exactly those differences, `R` repairs them, `x` deletes the extra record after a typed
confirmation, and the next full check is clean — into a real Qdrant Edge target, search-ready
again after the repair."""

from __future__ import annotations

from pathlib import Path

from ferry.core.demo import build_demo_source
from ferry.tui.app import FerryApp
from tests.tui_helpers import start_from_inventory, wait_for, wait_for_text, wait_for_texts


async def test_demo_app_changes_are_found_repaired_and_then_clean(tmp_path: Path) -> None:
    source_dir = tmp_path / "demo" / "chroma"
    build_demo_source(source_dir, per_collection=40)
    source = f"chroma+file://{source_dir}"
    target = f"qdrant+edge://{tmp_path / 'demo' / 'qdrant'}"
    app = FerryApp(
        tmp_path / "state" / "journal.sqlite3",
        source,
        target,
        start="inventory",
        select_all=True,
        migrate_args=["--rate", "400"],
        demo_source=source_dir,
    )
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        plan = await start_from_inventory(pilot)
        assert "stdlib-classes_v1" in plan  # the app's name stays free for the cutover
        await wait_for_text(pilot, "the demo app wrote to its source", timeout=90)

        await pilot.press("4")
        await wait_for(pilot, lambda: app.current_mode == "validation", what="validation")
        await pilot.press("f")
        await wait_for_texts(pilot, "3 missing", "1 extra", "1 mismatched", timeout=60)
        await wait_for_text(pilot, "demo-app.round1.note0")  # the differences, by id

        await pilot.press("R")
        await wait_for_text(pilot, "repaired 4 record(s), verified", timeout=60)
        await pilot.press("x")
        await wait_for_text(pilot, "Type stdlib-classes_v1 to confirm")
        await pilot.press(*"stdlib-classes_v1", "enter")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="confirm closed")
        await wait_for(pilot, lambda: app.screen.busy is None, what="deleted", timeout=60)
        await pilot.press("f")
        screen = app.screen

        def clean() -> bool:
            result = screen.results.get("stdlib-classes", {})
            return result.get("ok") is True and result.get("mode") == "full"

        await wait_for(
            pilot,
            clean,
            what="stdlib-classes clean and search-ready after the repair",
            timeout=60,
        )
