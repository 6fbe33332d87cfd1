"""Cutover (5): where each alias points, what could replace it, and whether that is safe.

One row per alias on the target: where it points now, the candidate collection, the
candidate's latest validation (and its age), and the shadow-read figures the router library
reported (overlap@k, latency difference, error rate). Cutover and rollback first build a plan
in a worker, then open `TypedConfirm`, which states exactly what will change and stays
disabled until the alias name is typed. The outcome is shown here and journaled by core.

Database calls run in thread workers with their own event loop, so a slow server never
freezes the keyboard.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Static

from core.cutover import (
    AliasView,
    CutoverOutcome,
    CutoverPlan,
    alias_overview,
    describe_validation,
    execute,
    open_alias_backend,
    plan_cutover,
    plan_rollback,
)
from core.errors import FerryError
from core.router.state import STATE_ENV
from tui.widgets.confirm import TypedConfirm

COLUMNS = [
    ("alias", "Alias"),
    ("current", "Points at"),
    ("candidate", "Candidate"),
    ("validation", "Validation"),
    ("overlap", "Overlap@k"),
    ("latency", "Δ latency"),
    ("errors", "Err rate"),
]


class CutoverScreen(Screen[None]):
    """Move an alias to a validated collection, or back, after a typed confirmation."""

    DEFAULT_CSS = """
    CutoverScreen #target-line { height: 1; padding: 0 1; }
    CutoverScreen #aliases { height: 1fr; min-height: 5; }
    CutoverScreen .form { height: auto; padding: 0 1; margin-top: 1; }
    CutoverScreen .form Input { width: 1fr; margin-right: 1; }
    CutoverScreen .form Button { margin-right: 2; }
    CutoverScreen #outcome { height: auto; min-height: 1; padding: 0 1; }
    """

    BINDINGS = [
        Binding(
            "c",
            "cutover",
            "Cut over",
            id="cutover.cutover",
            tooltip="Point the alias at the candidate (asks to type the alias)",
        ),
        Binding(
            "r",
            "rollback",
            "Roll back",
            id="cutover.rollback",
            tooltip="Point the alias back to where it was before the latest cutover",
        ),
        Binding(
            "f5",
            "refresh",
            "Refresh",
            id="cutover.refresh",
            tooltip="Read aliases, validations and router figures again",
        ),
    ]

    def compose(self) -> ComposeResult:
        if hasattr(self.app, "refresh_header"):
            from tui.widgets.header import ShellHeader

            yield ShellHeader(id="shell-header")
        yield Static(id="target-line")
        table: DataTable[Any] = DataTable(id="aliases", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with Horizontal(classes="form"):
            yield Input(placeholder="alias the app uses", id="alias-input", compact=True)
            yield Input(placeholder="physical collection", id="collection-input", compact=True)
        with Horizontal(classes="form"):
            yield Checkbox("Force (skip validation gate)", id="force", compact=True)
            yield Input(placeholder="reason (needed with force)", id="reason-input", compact=True)
        with Horizontal(classes="form"):
            yield Button("Cut over (c)", id="do-cutover", variant="warning", compact=True)
            yield Button("Roll back (r)", id="do-rollback", compact=True)
            yield Button("Refresh (f5)", id="do-refresh", compact=True)
        yield Static(id="outcome")
        yield Footer()

    # -- context ----------------------------------------------------------------------------
    @property
    def context(self) -> Any:
        return getattr(self.app, "context", None)

    @property
    def target_uri(self) -> str | None:
        return getattr(self.context, "target_uri", None)

    @property
    def router_state(self) -> str | None:
        chosen = getattr(self.context, "router_state", None) or os.environ.get(STATE_ENV)
        return str(chosen) if chosen else None

    def _journal(self) -> Any:
        context = self.context
        if context is None or not hasattr(context, "journal"):
            raise FerryError("no journal in this session", fix="start ferry with --state PATH")
        return context.journal()

    def on_mount(self) -> None:
        self._show_target()
        self.action_refresh()

    def on_screen_resume(self) -> None:
        refresh_header = getattr(self.app, "refresh_header", None)
        if callable(refresh_header):
            refresh_header()
        self._show_target()

    def _show_target(self) -> None:
        target = self.target_uri or "no target chosen (Connections, key 1)"
        router = f"   router: {self.router_state}" if self.router_state else ""
        self.query_one("#target-line", Static).update(Text(f"Target: {target}{router}"))

    def _say(self, message: str, error: bool = False) -> None:
        self.query_one("#outcome", Static).update(
            Text(message, style="bold red" if error else "bold green")
        )
        self.notify(message, severity="error" if error else "information")

    # -- the table --------------------------------------------------------------------------
    def action_refresh(self) -> None:
        if self.target_uri:
            self._load_overview(self.target_uri)

    @work(thread=True, exclusive=True, group="cutover-overview")
    def _load_overview(self, target_uri: str) -> None:
        try:
            views = asyncio.run(alias_overview(target_uri, self._journal(), self.router_state))
        except FerryError as exc:
            self.app.call_from_thread(self._say, exc.one_line(), True)
            return
        self.app.call_from_thread(self._show_views, views)

    def _show_views(self, views: list[AliasView]) -> None:
        table = self.query_one("#aliases", DataTable)
        seen = set()
        with self.app.batch_update():
            for view in views:
                seen.add(view.alias)
                cells = _cells(view)
                if view.alias in table.rows:
                    for (key, _label), value in zip(COLUMNS, cells, strict=True):
                        table.update_cell(view.alias, key, value)
                else:
                    table.add_row(*cells, key=view.alias)
            for key in [k for k in table.rows if k.value not in seen]:
                table.remove_row(key)
        self._views = {v.alias: v for v in views}
        alias_input = self.query_one("#alias-input", Input)
        if views and not alias_input.value:
            self._fill_form(views[min(table.cursor_row, len(views) - 1)].alias)

    @on(DataTable.RowHighlighted, "#aliases")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._fill_form(str(event.row_key.value))

    def _fill_form(self, alias: str) -> None:
        view = getattr(self, "_views", {}).get(alias)
        self.query_one("#alias-input", Input).value = alias
        self.query_one("#collection-input", Input).value = (view.candidate or "") if view else ""

    # -- actions ----------------------------------------------------------------------------
    @on(Button.Pressed, "#do-cutover")
    def action_cutover(self) -> None:
        self._start("cutover")

    @on(Button.Pressed, "#do-rollback")
    def action_rollback(self) -> None:
        self._start("rollback")

    @on(Button.Pressed, "#do-refresh")
    def _refresh_pressed(self) -> None:
        self.action_refresh()

    def _start(self, action: str) -> None:
        target = self.target_uri
        alias = self.query_one("#alias-input", Input).value.strip()
        collection = self.query_one("#collection-input", Input).value.strip()
        if not target:
            self._say("choose a target first (Connections, key 1)", True)
            return
        if not alias or (action == "cutover" and not collection):
            self._say(
                "type the alias" + (" and the collection" if action == "cutover" else ""), True
            )
            return
        force = self.query_one("#force", Checkbox).value
        reason = self.query_one("#reason-input", Input).value.strip() or None
        self._plan(action, target, alias, collection, force, reason)

    @work(thread=True, exclusive=True, group="cutover-action")
    def _plan(
        self, action: str, target: str, alias: str, collection: str, force: bool, reason: str | None
    ) -> None:
        journal = self._journal()

        async def make() -> CutoverPlan:
            async with open_alias_backend(target) as backend:
                if action == "cutover":
                    return await plan_cutover(
                        backend, journal, collection, alias, force, reason, self.router_state
                    )
                return await plan_rollback(backend, journal, alias, self.router_state)

        try:
            plan = asyncio.run(make())
        except FerryError as exc:
            self.app.call_from_thread(self._say, exc.one_line(), True)
            return
        self.app.call_from_thread(self._ask, plan)

    def _ask(self, plan: CutoverPlan) -> None:
        verb = "Cut over" if plan.action == "cutover" else "Roll back"
        modal = TypedConfirm(
            f"{verb} alias {plan.alias}?",
            "\n".join(plan.changes()),
            expected_text=plan.alias,
            confirm_label=verb,
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._execute(plan)
            else:
                self.query_one("#outcome", Static).update(Text("cancelled: nothing changed"))

        self.app.push_screen(modal, answered)

    @work(thread=True, exclusive=True, group="cutover-action")
    def _execute(self, plan: CutoverPlan) -> None:
        journal = self._journal()

        async def run() -> CutoverOutcome:
            # Reopened: execute checks again that the alias is where the plan saw it.
            async with open_alias_backend(plan.target_uri) as backend:
                return await execute(backend, journal, plan)

        try:
            outcome = asyncio.run(run())
        except FerryError as exc:
            self.app.call_from_thread(self._say, exc.one_line(), True)
            return
        self.app.call_from_thread(self._done, outcome)

    def _done(self, outcome: CutoverOutcome) -> None:
        plan = outcome.plan
        backup = ""
        if outcome.snapshot:
            backup = outcome.snapshot.get("path") or outcome.snapshot.get("name") or ""
            backup = f"; backup {backup}" if backup else ""
        self._say(
            f"{plan.action} done: {plan.alias} → {plan.to_collection} "
            f"(was {plan.from_collection or 'unset'}; journal #{outcome.journal_id}{backup})"
        )
        self.action_refresh()


def _cells(view: AliasView) -> list[Text]:
    validation = describe_validation(view.validation) if view.candidate else "—"
    style = "green" if view.validation and view.validation["ok"] else "red"
    shadow = view.shadow or {}
    overlap = shadow.get("overlap_at_k")
    latency = shadow.get("latency_diff_ms")
    errors = shadow.get("error_rate")
    overlap_text = "—" if overlap is None else f"{overlap:.3f}@{shadow.get('k')}"
    return [
        Text(view.alias, style="bold"),
        Text(view.current or "(unset)", style="" if view.current else "dim"),
        Text(view.candidate or "—", style="" if view.candidate else "dim"),
        Text(validation, style=style if view.candidate else "dim"),
        Text(overlap_text),
        Text("—" if latency is None else f"{latency:+.1f} ms"),
        Text(
            "—" if errors is None else f"{errors:.1%}", style="red" if view.recommendation else ""
        ),
    ]
