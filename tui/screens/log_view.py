"""`l` on the Monitor: the run's log file, followed as it grows.

A detached `ferry migrate` writes its output to `logs/<run_id>-<pid>.log` beside the journal
(core.launcher; one file per process, so a resumed run has several). This screen shows them
oldest first and reads what was appended a few times a second — by file offset, so a long
log costs one read of the new bytes, never a re-read. A run started from a shell
(`ferry migrate` in a terminal) has no log file: its output went to that terminal, and the
screen says so. esc goes back to the Monitor; `y` copies the log's path.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Log, Static

from ferry.core.launcher import run_logs
from ferry.tui.screens.base import FerryScreen

FOLLOW_SECONDS = 0.25
MAX_LINES = 5000


class LogScreen(FerryScreen):
    """One run's log files, followed live."""

    TITLE = "Run log"
    BINDINGS = [
        Binding("l", "app.back", "Back", id="log.back", tooltip="back to the Monitor"),
        Binding("y", "copy_path", "Copy path", id="log.copy", tooltip="copy the log's path"),
        Binding("home", "top", "Top", id="log.top", show=False),
        Binding("end", "bottom", "End (follow)", id="log.end", show=False),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.offsets: dict[Path, int] = {}  # bytes already shown, per file
        self._partial: dict[Path, str] = {}  # a last line without its newline yet

    def compose_body(self) -> ComposeResult:
        yield Static("", id="log-title", markup=False)
        yield Log(id="run-log", max_lines=MAX_LINES, auto_scroll=True)

    def on_mount(self) -> None:
        self.follow()
        self.set_interval(FOLLOW_SECONDS, self.follow)
        self.query_one(Log).focus()

    @property
    def files(self) -> list[Path]:
        return run_logs(self.ferry.context.journal().path, self.run_id)

    def follow(self) -> None:
        """Show what was appended to the run's log files since the last look."""
        files = self.files
        title = self.query_one("#log-title", Static)
        if not files:
            title.update(
                f"Run {self.run_id}: no log file — it was started outside this app, so its "
                "output went to that terminal. The Monitor's event list has its events."
            )
            return
        earlier = f" (+{len(files) - 1} earlier)" if len(files) > 1 else ""
        title.update(f"{files[-1].name}{earlier} · in the state dir's logs/ · y copies its path")
        log = self.query_one(Log)
        for path in files:
            lines = self._read_new(path)
            if lines:
                log.write_lines(lines)

    def _read_new(self, path: Path) -> list[str]:
        offset = self.offsets.get(path, 0)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return []
        if not data:
            return []
        self.offsets[path] = offset + len(data)
        text = self._partial.pop(path, "") + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines[-1]:  # the writer is mid-line: keep the tail for the next look
            self._partial[path] = lines[-1]
        return lines[:-1]

    def action_copy_path(self) -> None:
        files = self.files
        if files:
            self.ferry.copy(str(files[-1]), "log path")
        else:
            self.notify("This run has no log file.", severity="warning")

    def action_top(self) -> None:
        self.query_one(Log).scroll_home()

    def action_bottom(self) -> None:
        self.query_one(Log).scroll_end()
