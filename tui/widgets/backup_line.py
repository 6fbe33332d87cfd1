"""One line that follows a backup: its phase and percentage while it runs, then where it went.

The backup runs in a thread (core.backup); its progress callback only stores the latest
figures here, and a timer samples them a few times a second — a message per copied chunk
would flood the app, and the callback may be called from a thread that is not the app's.
"""

from __future__ import annotations

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

from ferry.core.backup_store import BackupProgress

PHASES = {
    "reuse-check": "checking earlier backups",
    "copy": "copying",
    "hash": "hashing the copy",
    "verify": "verifying",
    "done": "done",
}


class BackupLine(Static):
    """Hidden until a backup starts; `progress` is safe to call from any thread."""

    DEFAULT_CSS = """
    BackupLine {
        height: auto;
        max-height: 2;
        padding: 0 1;
        display: none;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]
        self.latest: BackupProgress | None = None
        self.label = ""
        self._timer: Timer | None = None

    def progress(self, update: BackupProgress) -> None:
        self.latest = update  # sampled by `_sample`

    def start(self, label: str) -> None:
        self.latest = None
        self.label = label
        self.display = True
        self.update(Text(f"{label}…", style="bold"))
        if self._timer is None:
            self._timer = self.set_interval(0.25, self._sample)

    def _sample(self) -> None:
        update = self.latest
        if update is None:
            return
        phase = PHASES.get(update.phase, update.phase)
        fraction = update.fraction
        figure = f" {fraction:.0%}" if fraction is not None else ""
        self.update(Text(f"{self.label}: {phase}{figure}", style="bold"))

    def finish(self, message: str, error: bool = False) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.display = True
        self.update(Text(message, style="bold red" if error else "bold green"))

    def hide(self) -> None:
        """The cutover's own message says where its backup went: the line steps aside."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.display = False
