"""The command palette (ctrl+p) finds things by name: runs, profiles and collections.

People who live in k9s or Harlequin type a name to get somewhere. A run found here is
attached and shown on the Monitor; a profile is highlighted on Connections; a collection on
Inventory (its filter cleared, so it is on screen). The lists are read once per palette
opening (recent runs from the journal, the profiles file, the collections Inventory read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import Hit, Hits, Provider

from ferry.core.profiles import load_profiles
from ferry.core.runs import recent_runs
from ferry.tui.widgets.figures import percent, short_uri
from ferry.tui.widgets.listing import ListingTable

RUNS_FOUND = 50  # how many recent runs the palette searches


class FerryFinder(Provider):
    async def startup(self) -> None:
        self.found: list[tuple[str, Callable[[], Any], str]] = []
        app: Any = self.app
        try:
            self.found = await asyncio.to_thread(self._things, app)
        except Exception:  # an unreadable journal or profiles file: the screens say why
            self.found = []

    def _things(self, app: Any) -> list[tuple[str, Callable[[], Any], str]]:
        things: list[tuple[str, Callable[[], Any], str]] = []
        for view in recent_runs(app.context.journal(), RUNS_FOUND):
            things.append(
                (
                    f"Run {view.run_id} · {view.state.value} {percent(view.written, view.total)}",
                    partial(show_run, app, view.run_id),
                    f"{short_uri(view.source_uri)} → {short_uri(view.target_uri)}",
                )
            )
        try:
            profiles = load_profiles()
        except Exception:
            profiles = []
        for profile in profiles:
            things.append(
                (
                    f"Profile {profile.name}",
                    partial(show_row, app, "connections", "profiles", profile.name),
                    short_uri(profile.uri),
                )
            )
        inventory = getattr(app.screen_for("inventory"), "inventory", None)
        for plan in getattr(inventory, "plans", []):
            things.append(
                (
                    f"Collection {plan.source.name}",
                    partial(show_row, app, "inventory", "collections", plan.source.name),
                    f"{plan.source.count:,} records in the source",
                )
            )
        return things

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in getattr(self, "found", []):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


def show_run(app: Any, run_id: str) -> None:
    app.attach(run_id)
    app.poll_now()
    app.action_go("monitor")


def show_row(app: Any, mode: str, table_id: str, key: str) -> None:
    """Go to `mode` and highlight the row `key` of its list, clearing a filter that hides it."""
    app.action_go(mode)

    def highlight() -> None:
        screen = app.screen_for(mode)
        if screen is None:
            return
        table = screen.query_one(f"#{table_id}", ListingTable)
        if key not in table.rows and table.filter_text:
            for bar in screen.query("FilterBar"):
                bar.clear()
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key))
            table.focus()

    app.call_after_refresh(highlight)
