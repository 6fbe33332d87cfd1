"""`l` on the Monitor: recent runs, unfinished first, and enter attaches to one."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from core import launcher
from tui.widgets.figures import percent, short_uri


class RunsScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="runs.close"),
        Binding("enter", "attach", "Attach", id="runs.attach"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="runs-dialog"):
            yield Static("Runs (enter attaches, esc closes)", classes="dialog-title")
            yield DataTable(id="runs", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("Run", "State", "Done", "From → To")
        journal: Any = self.app.context.journal()  # type: ignore[attr-defined]
        runs = journal.list_runs(30)
        rows = []
        for run in runs:
            state = launcher.run_state(run)
            collections = journal.collections(run["run_id"])
            total = sum(int(c["total"] or 0) for c in collections)
            written = sum(int(c["records_written"] or 0) for c in collections)
            rows.append((state == "completed", run, state, percent(written, total)))
        rows.sort(key=lambda r: r[0])  # unfinished first, newest first within each group
        for _done, run, state, done in rows:
            style = (
                "green" if state in launcher.ACTIVE else ("red" if state == "interrupted" else "")
            )
            table.add_row(
                run["run_id"],
                Text(state, style=style),
                done,
                f"{short_uri(run['source_uri'])} → {short_uri(run['target_uri'])}",
                key=run["run_id"],
            )
        if not runs:
            self.query_one(".dialog-title", Static).update("No runs yet (esc closes)")
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_attach(self) -> None:
        table = self.query_one("#runs", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            self.dismiss(str(key))

    def action_close(self) -> None:
        self.dismiss(None)
