"""Every list filters with `/` and sorts with `S`/`-` or a header click; the palette finds
runs, profiles and collections by name; states read without colour; and keys meant for a
text field stay in it when the field lost focus behind the person's back.

The real app on real embedded Chroma (three small collections) and Qdrant Edge.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input

from ferry.tui.app import FerryApp
from ferry.tui.screens.cutover import CutoverScreen
from ferry.tui.widgets.listing import ListingTable, sort_value
from tests.conftest import make_chroma
from tests.tui_helpers import fixed_journal, fixed_profiles, screen_text, wait_for, wait_for_text

COLLECTIONS = {
    "news-small": {"n": 30, "dim": 8, "metric": "cosine", "seed": 1},
    "news-large": {"n": 120, "dim": 8, "metric": "cosine", "seed": 2},
    "recipes": {"n": 60, "dim": 8, "metric": "l2", "seed": 3},
}


@pytest.fixture
def source(tmp_path: Path) -> str:
    make_chroma(tmp_path / "chroma", COLLECTIONS)
    return f"chroma+file://{tmp_path / 'chroma'}"


@pytest.fixture
def target(tmp_path: Path) -> str:
    return f"qdrant+edge://{tmp_path / 'qdrant'}"


def shown(app: FerryApp, table_id: str) -> list[str]:
    return app.screen.query_one(f"#{table_id}", ListingTable).shown_keys


def test_cells_sort_by_what_they_say() -> None:
    cells = ["1.2k", "900", "45%", "n/a", "Beta", "alpha", "-3"]
    assert sorted(cells, key=sort_value) == ["-3", "45%", "900", "1.2k", "alpha", "Beta", "n/a"]


async def test_inventory_filters_sorts_and_selects_what_is_shown(
    tmp_path: Path, source: str, target: str
) -> None:
    app = FerryApp(tmp_path / "state" / "journal.sqlite3", source, target, start="inventory")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "recipes")
        assert sorted(shown(app, "collections")) == ["news-large", "news-small", "recipes"]

        await pilot.press("slash", *"news")
        await wait_for(pilot, lambda: len(shown(app, "collections")) == 2, what="narrowed")
        assert "filter /" in screen_text(app)
        assert app.screen.query_one("FilterInput", Input).value == "news"
        await pilot.press("enter")  # back to the list, the filter kept
        assert isinstance(app.focused, ListingTable)
        await pilot.press("a")  # with a filter, `a` selects the rows shown
        await wait_for_text(pilot, "Plan 2 collection(s)")
        assert app.context.selected == ["news-large", "news-small"] or sorted(
            app.context.selected
        ) == ["news-large", "news-small"]

        await pilot.press("slash", "escape")  # cleared: every row is back, the ticks kept
        await wait_for(pilot, lambda: len(shown(app, "collections")) == 3, what="whole list")
        assert "filter /" not in screen_text(app)
        assert sorted(app.context.selected) == ["news-large", "news-small"]

        table = app.screen.query_one("#collections", ListingTable)
        await pilot.press("S", "S", "S")  # selection, name, then Count
        await wait_for(pilot, lambda: "Count ▲" in screen_text(app), what="sorted by count")
        assert shown(app, "collections") == ["news-small", "recipes", "news-large"]
        await pilot.press("minus")
        await wait_for(pilot, lambda: "Count ▼" in screen_text(app), what="reversed")
        assert shown(app, "collections") == ["news-large", "recipes", "news-small"]
        # The highlighted row stays highlighted through a sort, by its name.
        table.move_cursor(row=table.get_row_index("recipes"))
        await pilot.press("minus")
        await wait_for(pilot, lambda: "Count ▲" in screen_text(app), what="reversed again")
        assert table.highlighted_key == "recipes"


async def test_palette_finds_profiles_runs_and_collections(
    tmp_path: Path, source: str, target: str
) -> None:
    state = tmp_path / "state" / "journal.sqlite3"
    run_id = fixed_journal(state)
    fixed_profiles()
    app = FerryApp(state, source, target, start="inventory")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "recipes")

        await pilot.press("ctrl+p", *"prod-q")
        await wait_for_text(pilot, "Profile prod-qdrant")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "connections", what="connections")
        await wait_for(
            pilot,
            lambda: (
                app.screen.query_one("#profiles", ListingTable).highlighted_key == "prod-qdrant"
            ),
            what="the profile highlighted",
        )

        await pilot.press("ctrl+p", *"recip")
        await wait_for_text(pilot, "Collection recipes")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "inventory", what="inventory")
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#collections", ListingTable).highlighted_key == "recipes",
            what="the collection highlighted",
        )

        await pilot.press("ctrl+p", *f"run {run_id[:6]}")
        await wait_for_text(pilot, f"Run {run_id}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "monitor", what="monitor")
        assert app.context.run_id == run_id
        await wait_for_text(pilot, "completed")


async def test_a_key_for_a_field_that_lost_focus_stays_in_the_field(
    tmp_path: Path, target: str
) -> None:
    app = FerryApp(tmp_path / "journal.sqlite3", target=target, start="cutover")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "Canary")
        screen = app.screen
        assert isinstance(screen, CutoverScreen)
        alias = screen.query_one("#alias-input", Input)
        alias.focus()
        await pilot.press(*"do")
        # Something other than the person moves the focus (a refresh, a closing dialog).
        screen.query_one("#aliases", ListingTable).focus()
        await pilot.pause()
        await pilot.press("c", "s")  # "cut over", "switch app" — meant as letters of "docs"
        await wait_for(pilot, lambda: alias.value == "docs", what="the letters in the field")
        assert app.focused is alias and app.screen is screen  # no dialog opened

        # A deliberate move (shift+tab back to the list; a click too) makes letters keys again.
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: isinstance(app.focused, ListingTable), what="on the list")
        await pilot.press("c")  # the cut-over key acts (and asks for the collection)
        await wait_for_text(pilot, "type the alias and the collection")
        assert alias.value == "docs"


async def test_a_ticked_box_reads_without_colour(tmp_path: Path, target: str) -> None:
    app = FerryApp(tmp_path / "journal.sqlite3", target=target, start="cutover")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(pilot, "Force (skip validation gate)")
        force = app.screen.query_one("#force", Checkbox)
        assert "✓" not in screen_text(app)
        force.value = True
        await wait_for(pilot, lambda: "▐✓▌ Force" in screen_text(app), what="the tick")


async def test_a_run_whose_error_names_another_run_jumps_to_it(tmp_path: Path) -> None:
    from ferry.core.journal import Journal
    from ferry.core.runs import RunState

    state = tmp_path / "journal.sqlite3"
    journal = Journal(state)
    holder = journal.runs.create("a", "chroma+file:///s", "qdrant+edge:///t", ["docs"], {}, {})
    refused = journal.runs.create("b", "chroma+file:///s2", "qdrant+edge:///t", ["docs"], {}, {})
    journal.runs.set_status(
        refused,
        RunState.FAILED,
        f"target collection 'docs' is being written by another Ferry process (run {holder}, "
        "pid 1, host h)",
    )
    journal.close()
    app = FerryApp(state, start="monitor")
    async with app.run_test(size=(100, 30)) as pilot:
        app.attach(refused)
        app.poll_now()
        await wait_for_text(pilot, "j Go to run")
        await pilot.press("j")
        await wait_for(pilot, lambda: app.context.run_id == holder, what="attached to holder")
        await wait_for_text(pilot, f"Run {holder}")
