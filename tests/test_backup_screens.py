"""The `b` key on Inventory and Cutover, driven with Textual's Pilot on real data: the backup
runs in a worker, says where it went (or why not, in one line), and is reused when the
collection has not changed — by a second `b` and by the cutover that follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferry.core.backup import BACKUPS_ENV
from ferry.core.backup_store import MANIFEST
from ferry.tui.app import FerryApp
from tests.test_cutover_screen import SIZE, cutover_app, edge_target, modal_opened  # noqa: F401
from tests.tui_helpers import (
    make_source,
    screen_text,
    wait_for_footer,
    wait_for_text,
    wait_for_texts,
)


async def test_inventory_b_backs_up_the_highlighted_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source(tmp_path / "chroma")
    backups = tmp_path / "backups"
    monkeypatch.setenv(BACKUPS_ENV, str(backups))
    app = FerryApp(tmp_path / "journal.sqlite3", source, None, start="inventory")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "alpha-docs")
        await wait_for_footer(pilot, "b Backup")  # the footer offers it
        await pilot.press("b")
        await wait_for_text(pilot, "backed up alpha-docs →")
        made = [p for p in backups.iterdir() if not p.name.startswith(".")]
        assert len(made) == 1
        manifest = json.loads((made[0] / MANIFEST).read_text())
        assert manifest["collection"] == "alpha-docs" and manifest["counts"]["records"] == 1500

        await pilot.press("b")  # unchanged: the verified backup is reused
        await wait_for_text(pilot, "reused verified backup alpha-docs")
        assert [p for p in backups.iterdir() if not p.name.startswith(".")] == made

        # A destination that cannot hold backups: one line, in red, nothing else breaks.
        monkeypatch.setenv(BACKUPS_ENV, str(made[0] / MANIFEST))
        await pilot.press("b")
        await wait_for_texts(
            pilot, "backup of alpha-docs failed", "the backup destination is a file"
        )
        assert "Traceback" not in screen_text(app)


async def test_cutover_b_backs_up_and_the_cutover_reuses_it(edge_target) -> None:  # noqa: F811
    uri, journal = edge_target
    app = cutover_app(journal.path, uri)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "docs__b")
        await wait_for_footer(pilot, "b Backup")
        await pilot.press("b")
        await wait_for_text(pilot, "backed up docs__b →")
        await pilot.press("c")
        await modal_opened(pilot)
        await pilot.press(*"docs", "enter")
        await wait_for_text(pilot, "cutover done: docs → docs__b")
        assert "(reused)" in screen_text(app)
    detail = journal.cutovers.history(uri, "docs")[0].detail
    assert detail["backup"]["reused"] is True
    assert (Path(detail["backup"]["path"]) / MANIFEST).is_file()
