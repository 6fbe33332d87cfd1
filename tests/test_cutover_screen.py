"""The typed confirmation and the Cutover screen, driven with Textual's Pilot.

A tiny host app stands in for the shell: it sets `app.context` the way the shell does and
shows the screen or the modal. The target is a real Qdrant Edge directory, so a confirmed
cutover really moves the alias (Ferry's alias file) and really writes the journal.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.app import App
from textual.widgets import Button, DataTable, Input, Static

from core.connectors import open_connector
from core.connectors.base import WriteMode
from core.journal import Journal
from core.model import Batch, CollectionInfo, Metric
from core.router import edge_alias_target
from tui.context import AppContext
from tui.screens.cutover import CutoverScreen
from tui.widgets.confirm import TypedConfirm

SIZE = (100, 30)


class ConfirmHost(App[None]):
    """Shows one TypedConfirm and keeps what it was dismissed with."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(
            TypedConfirm("Cut over alias docs?", "docs: docs__a → docs__b", "docs"),
            self.answers.append,
        )


class ScreenHost(App[None]):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def on_mount(self) -> None:
        self.push_screen(CutoverScreen())


async def test_confirm_button_waits_for_the_exact_text_and_esc_cancels() -> None:
    app = ConfirmHost()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TypedConfirm)
        confirm = modal.query_one("#confirm", Button)
        assert app.focused is modal.query_one("#cancel", Button)  # Enter would cancel
        assert confirm.disabled
        modal.query_one("#typed", Input).focus()
        await pilot.press(*"doc")
        assert confirm.disabled
        await pilot.press("s", "x")  # "docsx"
        assert confirm.disabled
        await pilot.press("backspace")  # "docs"
        assert not confirm.disabled
        await pilot.press("backspace")
        assert confirm.disabled
        await pilot.press("escape")
        await pilot.pause()
        assert app.answers == [False]
        assert not isinstance(app.screen, TypedConfirm)


@pytest.fixture
def edge_target(tmp_path: Path) -> tuple[str, Journal]:
    root = tmp_path / "edge"
    uri = f"qdrant+edge://{root}"

    async def build() -> None:
        connector = open_connector(uri)
        for name, n in (("docs__a", 3), ("docs__b", 4)):
            await connector.prepare(CollectionInfo(name, n, 4, Metric.COSINE), WriteMode.CREATE)
            vectors = np.eye(4, dtype=np.float32)[:n] + 0.1
            await connector.write(
                name, Batch([f"{name}-{i}" for i in range(n)], vectors, [None] * n, [None] * n)
            )
        await connector.close()

    asyncio.run(build())
    journal = Journal(tmp_path / "journal.sqlite3")
    for name in ("docs__a", "docs__b"):
        journal.record_validation(
            "chroma+file:///src", uri, "docs", name, True, {"recall_at_10": 1.0}
        )
    return uri, journal


def _cell_texts(table: DataTable[Any], row: str) -> list[str]:
    return [str(cell) for cell in table.get_row(row)]


async def test_cutover_screen_confirms_by_typed_alias_and_journals(edge_target) -> None:
    uri, journal = edge_target
    root = Path(uri.removeprefix("qdrant+edge://"))
    app = ScreenHost(AppContext(state_path=journal.path, target_uri=uri, _journal=journal))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CutoverScreen)
        table = screen.query_one("#aliases", DataTable)
        cells = _cell_texts(table, "docs")
        assert cells[:3] == ["docs", "(unset)", "docs__b"]  # newest validated candidate
        assert cells[3].startswith("passed")
        assert screen.query_one("#alias-input", Input).value == "docs"
        assert screen.query_one("#collection-input", Input).value == "docs__b"

        # First attempt: wrong text keeps the button disabled; esc cancels; nothing changes.
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TypedConfirm)
        details = str(modal.query_one("#details", Static).render())
        assert "will point at: docs__b" in details and "(no alias yet)" in details
        modal.query_one("#typed", Input).focus()
        await pilot.press(*"doc", "S")
        assert modal.query_one("#confirm", Button).disabled
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert journal.cutovers(uri) == []
        assert edge_alias_target(root, "docs") == "docs"  # no alias yet

        # Second attempt: the right text enables the button, and pressing it cuts over.
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TypedConfirm)
        modal.query_one("#typed", Input).focus()
        await pilot.press(*"docs")
        confirm = modal.query_one("#confirm", Button)
        assert not confirm.disabled
        await pilot.click("#confirm")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        outcome = str(screen.query_one("#outcome", Static).render())
        assert "cutover done: docs → docs__b" in outcome
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert _cell_texts(table, "docs")[1] == "docs__b"

    assert edge_alias_target(root, "docs") == "docs__b"
    rows = journal.cutovers(uri, "docs")
    assert len(rows) == 1
    row = rows[0]
    assert (row["action"], row["from_collection"], row["to_collection"]) == (
        "cutover",
        None,
        "docs__b",
    )
    assert json.loads(row["validation"])["ok"] is True
    assert Path(json.loads(row["detail"])["snapshot"]["path"]).is_dir()


async def test_cutover_screen_shows_the_gate_refusal(edge_target, tmp_path: Path) -> None:
    uri, _journal = edge_target
    fresh = Journal(tmp_path / "empty.sqlite3")  # no validations at all
    app = ScreenHost(AppContext(state_path=fresh.path, target_uri=uri, _journal=fresh))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CutoverScreen)  # no modal: refused before asking
        outcome = str(app.screen.query_one("#outcome", Static).render())
        assert "cutover refused" in outcome and "ferry validate" in outcome
    assert fresh.cutovers(uri) == []
