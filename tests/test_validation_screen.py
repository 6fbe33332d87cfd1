"""The Validation screen in the real app (Pilot): real Chroma → real Qdrant Edge, the
target corrupted directly; the screen must show exactly those differences, repair them, and
show a clean second check. Moving through difference rows reuses the connectors the screen
keeps open, leaving the screen lets go of them, and a key pressed mid-check says "busy".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import qdrant_edge as qe
from textual.app import App
from textual.widgets import DataTable, Static
from textual.worker import WorkerCancelled

from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.mapping import canonical_point_id
from ferry.core.runner import migrate
from ferry.tui.app import FerryApp
from ferry.tui.context import AppContext
from ferry.tui.screens.validation import ValidationScreen
from ferry.tui.widgets.confirm import TypedConfirm
from ferry.tui.widgets.diff_detail import DiffDetail
from tests.tui_helpers import (
    edge_worker_pids,
    screen_text,
    silent_server,
    wait_for,
    wait_for_text,
)

DIM = 8
N = 60
NAME = "papers"


def ferry_app(context: AppContext, target: str | None = None) -> FerryApp:
    """The real shell opened on Validation, with `context`'s pair and selection."""
    app = FerryApp(
        context.state_path, context.source_uri, target or context.target_uri, start="validation"
    )
    app.context.selected = list(context.selected)
    return app


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


async def settle(app: App[Any], pilot: Any) -> None:
    """Wait for the workers; one superseded by an exclusive newer one ends cancelled."""
    for _ in range(20):
        try:
            await app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause()


async def test_screen_shows_the_differences_repairs_and_rechecks(corrupted: AppContext) -> None:
    app = ferry_app(corrupted)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ValidationScreen)
        await pilot.press("f")
        await settle(app, pilot)

        summary = screen.query_one("#validation-summary", DataTable)
        assert rows(summary) == [
            [NAME, "✘", rows(summary)[0][2], "1", "1", "2", f"{N}", f"{N}", "full"]
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
        detail = screen.query_one(DiffDetail)
        text = await shown_record(pilot, detail, "p3")
        assert "2003 (int)" in text and "'2003'" in text and "metadata.year" in text

        # Repair re-copies the missing and mismatched records; the stranger stays.
        await pilot.press("R")
        await settle(app, pilot)
        status = _plain(screen.query_one("#validation-status", Static))
        assert "repaired 3 record(s), verified by reading back" in status

        await pilot.press("f")
        await settle(app, pilot)
        await pilot.press("t")  # back to "all"
        assert [(r[0], r[1]) for r in rows(differences)] == [("extra", "77")]

        # Deleting the extra asks for the collection's name first: typed, then Enter.
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, TypedConfirm)
        await pilot.press(*NAME, "enter")
        await pilot.pause()
        assert app.screen is screen
        await settle(app, pilot)
        await wait_for_text(pilot, "Deleted 1 extra record(s)")
        await pilot.press("f")
        await settle(app, pilot)
        assert rows(differences) == []
        assert rows(summary)[0][1] == "✔"
        stored = corrupted.journal().validations.latest(corrupted.target_uri or "", NAME)
        assert stored is not None and stored.ok == 1


async def test_small_terminal_and_stored_results(corrupted: AppContext, tmp_path: Path) -> None:
    """A second app opens on the stored validation; export writes JSON and Markdown."""
    first = ferry_app(corrupted)
    async with first.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await settle(first, pilot)
    app = ferry_app(corrupted)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        summary = screen.query_one("#validation-summary", DataTable)
        assert rows(summary)[0][0] == NAME and rows(summary)[0][-1] == "sample"
        assert (
            screen.query_one("#validation-differences").region.height >= 15
        )  # 80x24: room for rows
        await pilot.press("e")
        await pilot.pause()
    reports = sorted((tmp_path / "reports").iterdir())
    assert [p.suffix for p in reports] == [".json", ".md"]
    assert NAME in reports[1].read_text()


async def test_difference_rows_reuse_the_connectors_the_screen_keeps_open(
    corrupted: AppContext, tmp_path: Path
) -> None:
    """One Edge worker process serves the full diff and every highlighted row (re-opening
    both sides per row cost seconds a row); leaving the screen stops it, so another process
    (the next migration) can open the shard."""
    app = ferry_app(corrupted)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press("f")
        await settle(app, pilot)
        opened = edge_worker_pids()
        assert len(opened) == 1  # the target the full diff read is still open

        differences = screen.query_one("#validation-differences", DataTable)
        detail = screen.query_one(DiffDetail)
        differences.focus()
        served_by = []
        for record_id in ("p1", "p3"):
            differences.move_cursor(row=[r[1] for r in rows(differences)].index(record_id))
            await shown_record(pilot, detail, record_id)
            served_by.append(edge_worker_pids())
        assert served_by == [opened, opened]

        await pilot.press("1")  # Connections: the Validation screen is left
        await wait_for(pilot, lambda: not edge_worker_pids(), what="the Edge worker exits")
        shard = qe.EdgeShard.load(str(tmp_path / "dst" / NAME))  # the lock is free
        shard.close()

        await pilot.press("4")  # back: the next row opens the target again, once
        differences.move_cursor(row=[r[1] for r in rows(differences)].index("p1"))
        await shown_record(pilot, detail, "p1")
        assert len(edge_worker_pids()) == 1


async def test_a_key_pressed_while_checks_run_says_busy(corrupted: AppContext) -> None:
    """The target never answers, so the checks are certainly still running when `f` is
    pressed: the screen says so instead of dropping the key, and `s` stops them."""
    with silent_server() as port:
        app = ferry_app(corrupted, target=f"qdrant+http://127.0.0.1:{port}")
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await pilot.press("r")
            await wait_for_text(pilot, f"{NAME}: counts")  # waiting for the target's count
            await pilot.press("f")
            await wait_for_text(pilot, "busy… checks")
            await pilot.press("s")
            await wait_for_text(pilot, "Stopped. Nothing was recorded")
            await pilot.press("f")  # idle again: the key starts the full diff
            await wait_for(
                pilot,
                lambda: "Stopped." not in screen_text(app),
                what="the full diff starts",
            )
            await pilot.press("s")
            await wait_for_text(pilot, "Stopped. Nothing was recorded")


async def shown_record(pilot: Any, detail: DiffDetail, record_id: str) -> str:
    """The detail pane's text once it shows `record_id` on both sides."""
    return await wait_for(
        pilot,
        lambda: (text := _plain(detail)).startswith(f"record {record_id} ") and text,
        what=f"record {record_id} in the detail pane",
    )


def _plain(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()
