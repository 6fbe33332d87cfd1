"""The canary dial on the Cutover screen: one line — the share of keyed reads the target
serves, the split the apps measured, the last automatic rollback — moved a stop at a time
(0, 1, 5, 25, 50, 100 %) with `[` and `]`, each move behind the typed confirmation (the new
share typed) and journaled by core.router.dial, like `ferry router set canary --percent N`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Static

from ferry.core.router.canary import next_step
from ferry.core.router.dial import dial_view, move_dial
from ferry.tui.widgets.confirm import TypedConfirm


class CanaryDial(Static):
    """Shows the dial; `step(up)` asks for confirmation, then moves it in a worker."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state_path: Path | None = None
        self.journal: Any = None
        self.percent: float | None = None

    def show(self, state_path: str | None, journal: Any) -> None:
        self.state_path = Path(state_path) if state_path else None
        self.journal = journal
        if self.state_path is None:  # nothing to read: say so at once
            self.update(Text("Canary: no router state file", "dim"))
            return
        self._read()

    @work(exclusive=True, group="canary-read", thread=True, exit_on_error=False)
    def _read(self) -> None:
        if self.state_path is None:
            self.app.call_from_thread(self.update, Text("Canary: no router state file", "dim"))
            return
        try:
            view = dial_view(self.state_path)
        except Exception as exc:  # a broken state file: say so, never a traceback
            self.app.call_from_thread(self.update, Text(f"Canary: {exc}", "red"))
            return
        self.app.call_from_thread(self._render_view, view)

    def _render_view(self, view: dict[str, Any]) -> None:
        self.percent = view["percent"]
        if view["percent"] is None:
            line = Text(f"Canary: off (router {view['mode']})   [ ] move the dial", "dim")
        else:
            line = Text(f"Canary: {view['percent']:g} % of keyed reads on the target", "bold")
            if view["measured"] is not None:
                line.append(f"   measured {view['measured']:.1%}")
            line.append("   [ ] move the dial", "dim")
        if view["rolled_back"]:
            reasons = "; ".join(view["rolled_back"].get("reasons") or [])
            line.append(f"\nlast automatic rollback: {reasons}", "bold red")
        self.update(line)

    def step(self, up: bool) -> str | None:
        """Ask to move one stop up or down; returns why not, or None when asked."""
        if self.state_path is None:
            return "no router state file (ferry --router-state PATH, or $FERRY_ROUTER_STATE)"
        current = self.percent or 0.0
        wanted = next_step(current, up)
        if wanted == current:
            return f"the canary is already at {current:g} %"
        modal = TypedConfirm(
            f"Move the canary to {wanted:g} %?",
            f"{self.state_path}: canary {current:g} % → {wanted:g} % of keyed reads served by "
            "the target; running apps follow at their next call (journaled).",
            expected_text=f"{wanted:g}",
            confirm_label=f"Move to {wanted:g} %",
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._move(wanted)

        self.app.push_screen(modal, answered)
        return None

    @work(exclusive=True, group="canary-move", thread=True, exit_on_error=False)
    def _move(self, percent: float) -> None:
        assert self.state_path is not None
        try:
            moved = move_dial(self.state_path, percent, self.journal, reason="the Cutover screen")
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"canary not moved: {exc}", severity="error")
            return
        self.app.call_from_thread(
            self.notify, f"canary {moved['from_percent'] or 0:g} % → {percent:g} % (journaled)"
        )
        self._read()
