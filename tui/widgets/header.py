"""The one-line shell header: where from, where to, and what the attached run is doing."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ferry.core.runs import RunState
from ferry.tui.theme import banner_style_of
from ferry.tui.widgets.figures import short_uri


class ShellHeader(Static):
    """`ferry  source → target   run phase · screen`, updated by reactive values."""

    source: reactive[str | None] = reactive(None)
    target: reactive[str | None] = reactive(None)
    phase: reactive[str] = reactive("no run")  # the run's state and how far it is
    run_state: reactive[RunState | None] = reactive(None)  # colours the phase (core.runs)
    screen_title: reactive[str] = reactive("")
    route_label: reactive[str] = reactive("")  # "run's " when the pair is the run's, not chosen

    def on_resize(self) -> None:
        self.refresh()  # the route is cut to fit the width: redo it when the width changes

    def render(self) -> Text:
        left = Text.assemble((" ferry ", "bold reverse"), (f" {self.screen_title} ", "bold"))
        style = banner_style_of(self.run_state) if self.run_state else "dim"
        phase = Text(f" {self.phase} ", style=style)
        label = self.route_label  # kept whole: it says whose pair this is
        room = self.size.width - left.cell_len - phase.cell_len - 2 - len(label)
        route = f"{self.source or '—'} → {self.target or '—'}"  # whole, when it fits
        if len(route) > room:
            route = f"{short_uri(self.source)} → {short_uri(self.target)}"
        if len(route) > room:
            route = f"{short_uri(self.source, 1)} → {short_uri(self.target, 1)}"
        if room < len(route):  # the phase always shows; the route gives way, from its start
            route = "…" + route[len(route) - max(room - 1, 0) :] if room > 1 else ""
        route = label + route
        gap = max(self.size.width - left.cell_len - phase.cell_len - len(route) - 1, 1)
        return Text.assemble(left, " ", route, " " * gap, phase, no_wrap=True)
