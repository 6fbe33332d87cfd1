"""`l` on the Monitor: recent runs, unfinished first, and enter attaches to one."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from ferry.core.runs import RunState, recent_runs
from ferry.tui.theme import style_of
from ferry.tui.widgets.figures import fit_uri, percent
from ferry.tui.widgets.filter_bar import LIST_KEYS, FilterBar, ListKeysMixin
from ferry.tui.widgets.listing import ListingTable


class RunsScreen(ListKeysMixin, ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="runs.close"),
        Binding("enter", "attach", "Attach", id="runs.attach"),
        *LIST_KEYS,
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="runs-dialog"):
            yield Static("Runs (enter attaches, esc closes)", classes="dialog-title")
            yield FilterBar("runs", id="runs-filter")
            yield ListingTable(id="runs")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#runs", ListingTable)
        table.add_columns("Run", "State", "Done", "From → To")
        journal: Any = self.app.context.journal()  # type: ignore[attr-defined]
        runs = recent_runs(journal, 30)
        # Unfinished first, newest first within each group (the sort is stable).
        room = max((self.app.size.width - 50) // 2, 20)  # each URI whole on a wide terminal
        ordered = sorted(runs, key=lambda v: v.state is RunState.COMPLETED)
        table.set_rows(
            (
                view.run_id,
                (
                    view.run_id,
                    Text(view.state.value, style=style_of(view.state)),
                    percent(view.written, view.total),
                    f"{fit_uri(view.source_uri, room)} → {fit_uri(view.target_uri, room)}",
                ),
            )
            for view in ordered
        )
        if not runs:
            self.query_one(".dialog-title", Static).update("No runs yet (esc closes)")
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_attach(self) -> None:
        key = self.query_one("#runs", ListingTable).highlighted_key
        if key:
            self.dismiss(key)

    def action_close(self) -> None:
        self.dismiss(None)
