"""The Validation screen in a real Textual app (Pilot): real Chroma → real Qdrant Edge,
the target corrupted directly; the screen must show exactly those differences, repair them,
and show a clean second check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import qdrant_edge as qe
from textual.app import App
from textual.widgets import DataTable, Input, Static
from textual.worker import WorkerCancelled

from core.engine import MigrationOptions
from core.journal import Journal
from core.mapping import canonical_point_id
from core.runner import migrate
from tui.context import AppContext
from tui.screens.validation import TypedConfirm, ValidationScreen
from tui.widgets.diff_detail import DiffDetail

DIM = 8
N = 60
NAME = "papers"


class Host(App[None]):
    """The smallest app that gives the screen what the shell gives it: `app.context`."""

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def on_mount(self) -> None:
        self.push_screen(ValidationScreen())


@pytest.fixture
async def corrupted(tmp_path: Path) -> AppContext:
    client = chromadb.PersistentClient(str(tmp_path / "src"))
    collection = client.create_collection(NAME, configuration={"hnsw": {"space": "cosine"}})
    rng = np.random.default_rng(5)
    collection.add(
        ids=[f"p{i}" for i in range(N)],
        embeddings=rng.normal(size=(N, DIM)).astype(np.float32),
        metadatas=[{"year": 2000 + i, "title": f"paper {i}"} for i in range(N)],
        documents=[f"the text of paper {i}" for i in range(N)],
    )
    source = f"chroma+file://{tmp_path / 'src'}"
    target = f"qdrant+edge://{tmp_path / 'dst'}"
    journal_path = tmp_path / "journal.sqlite3"
    outcome = await migrate(source, target, [NAME], MigrationOptions(), Journal(journal_path))
    assert outcome.status == "completed"
    shard = qe.EdgeShard.load(str(tmp_path / "dst" / NAME))
    try:
        point = shard.retrieve([canonical_point_id("p1")], True, True)[0]
        shard.update(
            qe.UpdateOperation.upsert_points([qe.Point(point.id, [1.0] * DIM, point.payload)])
        )
        shard.update(qe.UpdateOperation.delete_points([canonical_point_id("p2")]))
        point = shard.retrieve([canonical_point_id("p3")], True, True)[0]
        payload = dict(point.payload)
        payload["year"] = str(payload["year"])  # 2003 -> "2003"
        shard.update(qe.UpdateOperation.set_payload([point.id], payload))
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(77, [0.3] * DIM, {"x": 1})]))
        shard.flush()
    finally:
        shard.close()
    return AppContext(
        state_path=journal_path, source_uri=source, target_uri=target, selected=[NAME]
    )


def rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row(key)] for key in table.rows]


async def settle(app: App[None], pilot: Any) -> None:
    """Wait for the workers; one superseded by an exclusive newer one ends cancelled."""
    for _ in range(20):
        try:
            await app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause()


async def test_screen_shows_the_differences_repairs_and_rechecks(corrupted: AppContext) -> None:
    app = Host(corrupted)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ValidationScreen)
        await pilot.press("f")
        await settle(app, pilot)

        summary = screen.query_one("#validation-summary", DataTable)
        assert rows(summary) == [
            [NAME, "full", f"{N}", f"{N}", "1", "1", "2", rows(summary)[0][7], "✘"]
        ]
        differences = screen.query_one("#validation-differences", DataTable)
        assert sorted((r[0], r[1], r[2]) for r in rows(differences)) == [
            ("extra", "77", "not in source"),
            ("mismatched", "p1", "vector"),
            ("mismatched", "p3", "metadata.year"),
            ("missing", "p2", "not in target"),
        ]

        # Filter by kind: t cycles all → missing → extra → mismatched.
        await pilot.press("t")
        assert [r[1] for r in rows(differences)] == ["p2"]
        await pilot.press("t", "t")
        assert sorted(r[1] for r in rows(differences)) == ["p1", "p3"]

        # The detail pane: the retyped metadata value, both sides, types visible.
        differences.focus()
        target_row = next(i for i, r in enumerate(rows(differences)) if r[1] == "p3")
        differences.move_cursor(row=target_row)
        await settle(app, pilot)
        detail = screen.query_one(DiffDetail)
        for _ in range(200):  # the fetch worker may start after settle returned: wait for it
            if "Fetching" not in _plain(detail):
                break
            await settle(app, pilot)
        text = _plain(detail)
        assert "2003 (int)" in text and "'2003'" in text and "metadata.year" in text

        # Repair re-copies the missing and mismatched records; the stranger stays.
        await pilot.press("R")
        await settle(app, pilot)
        status = _plain(screen.query_one("#validation-status", Static))
        assert "re-copied 3" in status

        await pilot.press("f")
        await settle(app, pilot)
        await pilot.press("t")  # back to "all"
        assert [(r[0], r[1]) for r in rows(differences)] == [("extra", "77")]

        # Deleting the extra asks for the collection's name first.
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, TypedConfirm)
        app.screen.query_one(Input).value = NAME
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(app, pilot)
        await pilot.press("f")
        await settle(app, pilot)
        assert rows(differences) == []
        assert rows(summary)[0][-1] == "✔"
        stored = corrupted.journal().latest_validation(corrupted.target_uri or "", NAME)
        assert stored is not None and stored["ok"] == 1


async def test_small_terminal_and_stored_results(corrupted: AppContext, tmp_path: Path) -> None:
    """A second app opens on the stored validation; export writes JSON and Markdown."""
    first = Host(corrupted)
    async with first.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await settle(first, pilot)
    context = AppContext(
        state_path=corrupted.state_path,
        source_uri=corrupted.source_uri,
        target_uri=corrupted.target_uri,
        selected=[NAME],
    )
    app = Host(context)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        summary = screen.query_one("#validation-summary", DataTable)
        assert rows(summary)[0][0] == NAME and rows(summary)[0][1] == "sample"
        assert (
            screen.query_one("#validation-differences").region.height >= 15
        )  # 80x24: room for rows
        await pilot.press("e")
        await pilot.pause()
    reports = sorted((tmp_path / "reports").iterdir())
    assert [p.suffix for p in reports] == [".json", ".md"]
    assert NAME in reports[1].read_text()


def _plain(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()
