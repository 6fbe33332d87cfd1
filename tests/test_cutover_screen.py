"""The typed confirmation and the Cutover screen, driven with Textual's Pilot.

The confirmation is shown alone by a tiny host app; the Cutover screen runs in the real
shell. The target is a real Qdrant Edge directory, so a confirmed cutover really moves the
alias (Ferry's alias file) and really writes the journal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.app import App
from textual.widgets import Button, DataTable, Input, Static

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import WriteMode
from ferry.core.journal import Journal
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.router import edge_alias_target
from ferry.tui.app import FerryApp
from ferry.tui.screens.cutover import CutoverScreen
from ferry.tui.widgets.confirm import TypedConfirm
from tests.tui_helpers import (
    screen_text,
    silent_server,
    wait_for,
    wait_for_footer,
    wait_for_text,
    wait_for_texts,
)

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


async def test_confirm_starts_in_the_input_and_enter_confirms_the_exact_name() -> None:
    app = ConfirmHost()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TypedConfirm)
        typed = modal.query_one("#typed", Input)
        assert app.focused is typed  # typing starts at once
        assert typed.placeholder == ""  # nothing grey that looks like the answer
        assert "Type docs to confirm" in screen_text(app)
        confirm = modal.query_one("#confirm", Button)
        assert confirm.disabled

        await pilot.press(*"doc", "enter")  # not the name: refused, the modal stays
        assert app.screen is modal and app.answers == []
        assert "Type docs exactly to confirm, or esc to cancel" in screen_text(app)
        await pilot.press("S", "enter")  # "docS": case matters
        assert app.screen is modal and app.answers == []
        await pilot.press("backspace")
        assert confirm.disabled
        await pilot.press("s")  # "docs"
        assert not confirm.disabled
        assert "exactly" not in screen_text(app)  # the hint goes once the text changes
        await pilot.press("enter")
        await pilot.pause()
        assert app.answers == [True]
        assert not isinstance(app.screen, TypedConfirm)


async def test_confirm_button_waits_for_the_exact_text_and_esc_cancels() -> None:
    app = ConfirmHost()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TypedConfirm)
        confirm = modal.query_one("#confirm", Button)
        await pilot.press(*"docsx")
        assert confirm.disabled
        await pilot.press("backspace")  # "docs"
        assert not confirm.disabled
        await pilot.press("backspace")
        assert confirm.disabled
        await pilot.press("escape")  # from inside the input
        await pilot.pause()
        assert app.answers == [False]
        assert not isinstance(app.screen, TypedConfirm)


async def test_confirm_esc_cancels_from_the_buttons_too() -> None:
    app = ConfirmHost()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"docs", "tab")  # focus leaves the input for a button
        assert isinstance(app.focused, Button)
        await pilot.press("escape")
        await pilot.pause()
        assert app.answers == [False]


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
        journal.validations.record(
            "chroma+file:///src", uri, "docs", name, True, {"recall_at_10": 1.0}
        )
    return uri, journal


def _cell_texts(table: DataTable[Any], row: str) -> list[str]:
    return [str(cell) for cell in table.get_row(row)]


def cutover_app(journal_path: Path, target: str) -> FerryApp:
    """The real shell, opened on Cutover for this target."""
    return FerryApp(journal_path, target=target, start="cutover")


async def modal_opened(pilot: Any) -> TypedConfirm:
    return await wait_for(
        pilot, lambda: isinstance(pilot.app.screen, TypedConfirm) and pilot.app.screen,
        what="the typed confirmation",
    )  # fmt: skip


async def test_cutover_screen_confirms_by_typed_alias_and_journals(edge_target) -> None:
    uri, journal = edge_target
    root = Path(uri.removeprefix("qdrant+edge://"))
    app = cutover_app(journal.path, uri)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, CutoverScreen)
        table = screen.query_one("#aliases", DataTable)
        await wait_for(pilot, lambda: "docs" in table.rows, what="the alias row")
        cells = _cell_texts(table, "docs")
        assert cells[:3] == ["docs", "(unset)", "docs__b"]  # newest validated candidate
        assert cells[3].startswith("passed")
        assert screen.query_one("#alias-input", Input).value == "docs"
        assert screen.query_one("#collection-input", Input).value == "docs__b"

        # First attempt: a wrong name and Enter change nothing; esc cancels.
        await pilot.press("c")
        modal = await modal_opened(pilot)
        details = str(modal.query_one("#details", Static).render())
        assert "will point at: docs__b" in details and "(no alias yet)" in details
        await pilot.press(*"doc", "S", "enter")
        assert app.screen is modal
        assert modal.query_one("#confirm", Button).disabled
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert "cancelled: nothing changed" in str(screen.query_one("#outcome", Static).render())
        assert journal.cutovers.history(uri) == []
        assert edge_alias_target(root, "docs") == "docs"  # no alias yet

        # Second attempt: the alias typed, then Enter, cuts over.
        await pilot.press("c")
        await modal_opened(pilot)
        await pilot.press(*"docs", "enter")
        await wait_for_text(pilot, "cutover done: docs → docs__b")
        assert app.screen is screen
        await wait_for(
            pilot, lambda: _cell_texts(table, "docs")[1] == "docs__b", what="the table refreshed"
        )

    assert edge_alias_target(root, "docs") == "docs__b"
    rows = journal.cutovers.history(uri, "docs")
    assert len(rows) == 1
    row = rows[0]
    assert (row.action, row.from_collection, row.to_collection) == (
        "cutover",
        None,
        "docs__b",
    )
    assert row.validation["ok"] is True
    assert Path(row.detail["snapshot"]["path"]).is_dir()


async def test_cutover_screen_shows_the_gate_refusal(edge_target, tmp_path: Path) -> None:
    uri, _journal = edge_target
    fresh = Journal(tmp_path / "empty.sqlite3")  # no validations at all
    app = cutover_app(fresh.path, uri)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#aliases", DataTable)
        await wait_for(pilot, lambda: "docs" in table.rows, what="the alias row")
        await pilot.press("c")
        outcome = app.screen.query_one("#outcome", Static)
        await wait_for(pilot, lambda: "cutover refused" in str(outcome.render()), what="refusal")
        assert isinstance(app.screen, CutoverScreen)  # no modal: refused before asking
        said = str(outcome.render())
        assert "Validation (4) with r" in said and "ferry validate" not in said  # its own key
    assert fresh.cutovers.history(uri) == []


async def test_a_key_pressed_while_a_cutover_is_planned_says_busy(tmp_path: Path) -> None:
    """The target never answers, so planning is certainly still going when `c` is pressed
    again: the screen says so (and does not start a second plan)."""
    with silent_server() as port:
        app = cutover_app(tmp_path / "journal.sqlite3", f"qdrant+http://127.0.0.1:{port}")
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            screen = app.screen
            screen.query_one("#alias-input", Input).value = "docs"
            screen.query_one("#collection-input", Input).value = "docs__b"
            await pilot.press("c")
            await pilot.press("c")
            await wait_for_text(pilot, "busy… planning the cutover of docs")
            await pilot.press("r")
            await wait_for(
                pilot,
                lambda: screen_text(app).count("busy… planning the cutover of docs") == 2,
                what="a second busy notice",
            )


@pytest.fixture
def migrated_target(tmp_path: Path) -> tuple[str, Journal]:
    """An Edge target holding `docs_v2`, which a journaled run copied from the source
    collection `docs` (a completed run), and a passing validation of it with recall figures."""
    root = tmp_path / "edge"
    uri = f"qdrant+edge://{root}"

    async def build() -> None:
        async with open_connector(uri) as connector:
            await connector.prepare(
                CollectionInfo("docs_v2", 4, 4, Metric.COSINE), WriteMode.CREATE
            )
            vectors = np.eye(4, dtype=np.float32) + 0.1
            await connector.write(
                "docs_v2", Batch([f"d{i}" for i in range(4)], vectors, [None] * 4, [None] * 4)
            )

    asyncio.run(build())
    journal = Journal(tmp_path / "journal.sqlite3")
    source = "chroma+file:///src"
    run_id = journal.runs.create("key", source, uri, ["docs"], {}, {})
    journal.runs.ensure_collection(run_id, "docs", "docs_v2")
    journal.runs.start_collection(run_id, "docs", 4, 4, "cosine")
    journal.runs.checkpoint(run_id, "docs", None, 4, 64, True)
    journal.runs.complete_collection(run_id, "docs", 0.1, 40.0)
    result = {
        "ok": True,
        "recall_at_k": 1.0,
        "k": 10,
        "recall": {"k": 10, "queries": 20, "recall_at_k": 0.985,
                   "query_ms": {"source": 1.5, "target": 2.0}},
    }  # fmt: skip
    journal.validations.record(source, uri, "docs", "docs_v2", True, result)
    return uri, journal


async def test_cutover_screen_lists_journal_candidates_with_their_figures(
    migrated_target,
) -> None:
    uri, journal = migrated_target
    app = cutover_app(journal.path, uri)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#aliases", DataTable)
        await wait_for(pilot, lambda: "docs" in table.rows, what="the candidate row")
        cells = _cell_texts(table, "docs")
        # The alias is the source's name; the candidate is the run's target; nothing typed.
        assert cells[:3] == ["docs", "(unset)", "docs_v2"]
        assert cells[3].startswith("passed")
        assert cells[4:] == ["0.985@10", "+0.5 ms", "0.0%"]  # from the validation
        assert "from validation (no router figures)" in screen_text(app)
        # Drawn at the measured widths, not cut at the header's (a Textual cache, redrawn).
        await wait_for(pilot, lambda: "ago (#1)  0.985@10" in screen_text(app), what="widths")
        assert screen.query_one("#alias-input", Input).value == "docs"
        assert screen.query_one("#collection-input", Input).value == "docs_v2"

        await pilot.press("c")
        await modal_opened(pilot)
        await pilot.press(*"docs", "enter")
        await wait_for_text(pilot, "cutover done: docs → docs_v2")
    assert journal.cutovers.history(uri, "docs")[0].to_collection == "docs_v2"


async def test_cutover_screen_rolls_back_a_first_cutover_by_removing_the_alias(
    migrated_target,
) -> None:
    uri, journal = migrated_target
    root = Path(uri.removeprefix("qdrant+edge://"))
    from ferry.core.cutover import cutover

    await cutover(uri, "docs_v2", "docs", journal)  # the first cutover: `docs` is new
    app = cutover_app(journal.path, uri)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#aliases", DataTable)
        await wait_for(
            pilot,
            lambda: "docs" in table.rows and _cell_texts(table, "docs")[1] == "docs_v2",
            what="the alias row",
        )
        await pilot.press("r")
        modal = await modal_opened(pilot)
        details = str(modal.query_one("#details", Static).render())
        assert "will point at: (nothing: the alias is removed)" in details
        assert "Roll back (remove) alias docs?" in screen_text(app)
        await pilot.press(*"doc", "enter")  # not the name: nothing happens
        assert app.screen is modal
        await pilot.press("s", "enter")
        await wait_for_text(pilot, "rollback done: docs → (removed)")
        await wait_for(
            pilot, lambda: _cell_texts(table, "docs")[1] == "(unset)", what="the table refreshed"
        )
    assert edge_alias_target(root, "docs") == "docs"  # no alias any more
    latest = journal.cutovers.history(uri, "docs")[0]
    assert (latest.action, latest.from_collection, latest.to_collection) == (
        "rollback",
        "docs_v2",
        None,
    )


@pytest.fixture
def langchain_target(tmp_path: Path) -> tuple[str, Path]:
    """`ferry migrate --layout langchain` of an l2 collection `docs` into Edge as `docs_v2`."""
    from ferry.cli import main
    from tests.conftest import make_chroma

    source = f"chroma+file://{make_chroma(tmp_path / 'src', {'docs': {'n': 12, 'metric': 'l2'}})}"
    uri = f"qdrant+edge://{tmp_path / 'edge'}"
    state = tmp_path / "journal.sqlite3"
    argv = ["migrate", "--from", source, "--to", uri, "--collection", "docs=docs_v2"]
    assert main([*argv, "--layout", "langchain", "--yes", "--json", "--state", str(state)]) == 0
    return uri, state


async def test_switch_the_app_shows_the_framework_store_and_the_score_conversion(
    langchain_target: tuple[str, Path],
) -> None:
    """`s` on the highlighted candidate shows what `ferry migrate` printed: LangChain's Qdrant
    store with Euclid distance, and Chroma's squared-distance threshold as √t; `y` copies it."""
    uri, state = langchain_target
    app = cutover_app(state, uri)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        table = screen.query_one("#aliases", DataTable)
        await wait_for(pilot, lambda: "docs" in table.rows, what="the candidate row")
        assert screen.query_one("#collection-input", Input).value == "docs_v2"
        await wait_for_footer(pilot, "s Switch app")  # in the footer at 80 columns
        await pilot.press("s")
        text = await wait_for_texts(
            pilot,
            "score_threshold=√t",
            "Switch the app to docs_v2",
            "layout langchain, as migrated (journal)",
        )
        flat = " ".join(line.strip() for line in text.splitlines())
        assert "from langchain_qdrant import QdrantVectorStore" in flat
        # The app reads through the alias its cutover creates, so a rollback reaches it.
        assert "read through the alias docs" in flat
        assert 'collection_name="docs"' in flat and "Distance.EUCLID" in flat
        assert "Chroma gave the squared distance d², Qdrant gives d" in flat
        await pilot.press("y")
        copied = app.clipboard
        assert "QdrantVectorStore(" in copied and "score_threshold=√t" in copied
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on Cutover")
        await pilot.press("question_mark")
        assert "Switch app" in await wait_for_text(pilot, "Everywhere")
