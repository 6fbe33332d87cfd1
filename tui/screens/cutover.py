"""Cutover (5): where each alias points, what could replace it, and whether that is safe.

One row per alias on the target, and one per collection a run migrated here (read from the
journal: its alias is the source's name, the name the app used): where it points now, the
candidate collection, the candidate's latest validation and its age (or when it was
migrated, if never validated), and overlap@k / Δ latency / error rate — the router's
shadow-read figures when an app reported some, else the candidate's validation (recall@k and
query timings). Highlighting a row fills the form, so nothing needs typing but the
confirmation. Cutover, rollback (of a first cutover: the alias is removed) and "remove alias"
first build a plan in a worker, then open `TypedConfirm`, which states exactly what will
change and stays disabled until the alias name is typed. The outcome is shown here and
journaled by core.

Database calls run in async workers that report back with typed messages, so a slow server
never freezes the keyboard; a key pressed while a cutover is being planned or carried out
is answered "busy…" (and never interrupts it).

`s` shows the few lines the application changes to read the candidate (its framework's
Qdrant store class and settings, and the score-threshold conversion for its metric): the
text `ferry migrate` prints, made by the same core function (tui/screens/switch_app.py).

`b` backs up the collection typed in the form now, with the same code and into the same
place as the cutover's own backup (the target's snapshot capability): a cutover of that
unchanged collection then reuses the verified backup instead of copying it again.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Checkbox, DataTable, Input, Static

from ferry.core.connectors import TargetConnector, open_connector
from ferry.core.cutover import (
    AliasView,
    CutoverOutcome,
    CutoverPlan,
    alias_overview,
    describe_validation,
    execute,
    format_age,
    open_alias_backend,
    plan_alias_delete,
    plan_cutover,
    plan_rollback,
)
from ferry.core.journal import Journal
from ferry.core.router.state import STATE_ENV
from ferry.tui.screens.base import FerryScreen, one_line
from ferry.tui.screens.switch_app import SwitchAppScreen
from ferry.tui.widgets.backup_line import BackupLine
from ferry.tui.widgets.canary_dial import CanaryDial
from ferry.tui.widgets.confirm import TypedConfirm
from ferry.tui.widgets.filter_bar import FilterBar, ListKeysMixin, list_keys
from ferry.tui.widgets.listing import ListingTable
from ferry.tui.widgets.tick_box import TickBox

COLUMNS = [
    ("alias", "Alias"),
    ("current", "Points at"),
    ("candidate", "Candidate"),
    ("validation", "Validation"),
    ("overlap", "Overlap@k"),
    ("latency", "Δ latency"),
    ("errors", "Err rate"),
]


class CutoverScreen(ListKeysMixin, FerryScreen):
    """Move an alias to a validated collection, or back, after a typed confirmation."""

    TITLE = "Cutover"
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
            tooltip="Point the alias back to where it was before the latest cutover "
            "(removes it if that cutover created it)",
        ),
        Binding(
            "x",
            "remove_alias",
            "Remove",  # short: the footer must fit 80 columns (the button says "alias")
            id="cutover.remove-alias",
            tooltip="Delete the alias; the collection it points at stays (asks to type it)",
        ),
        Binding(
            "s",
            "switch_app",
            "Switch app",
            id="cutover.switch-app",
            tooltip="What the app changes to read the collection: its framework's Qdrant "
            "store and settings, and how score thresholds convert (y copies)",
        ),
        Binding(
            "b",
            "backup",
            "Backup",
            id="cutover.backup",
            tooltip="Back up the collection now (a later cutover reuses it if unchanged)",
        ),
        Binding(
            "right_square_bracket",
            "canary(True)",
            "Canary +",
            id="cutover.canary-up",
            show=False,  # the dial's line says `[ ]`; the footer must fit 80 columns
            tooltip="Move the canary dial one stop up (asks to type the new share)",
        ),
        Binding(
            "left_square_bracket",
            "canary(False)",
            "Canary -",
            id="cutover.canary-down",
            show=False,
            tooltip="Move the canary dial one stop down (asks to type the new share)",
        ),
        Binding(
            "f5",
            "refresh",
            "Refresh",
            id="cutover.refresh",
            tooltip="Read aliases, validations and router figures again",
        ),
        *list_keys(in_footer=False),  # the footer is full at 80 columns
    ]

    # -- what the workers report ------------------------------------------------------------
    class AliasesLoaded(Message):
        def __init__(self, views: list[AliasView]) -> None:
            super().__init__()
            self.views = views

    class Planned(Message):
        """A cutover or rollback plan, ready to be confirmed."""

        def __init__(self, plan: CutoverPlan) -> None:
            super().__init__()
            self.plan = plan

    class Done(Message):
        def __init__(self, outcome: CutoverOutcome) -> None:
            super().__init__()
            self.outcome = outcome

    class BackedUp(Message):
        def __init__(self, collection: str, snapshot: dict[str, Any]) -> None:
            super().__init__()
            self.collection = collection
            self.snapshot = snapshot

    class Failed(Message):
        """A refusal or an error, as the one line the user reads."""

        def __init__(self, message: str, acting: bool) -> None:
            super().__init__()
            self.message = message
            self.acting = acting  # it ended a cutover/rollback (not a refresh)

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, AliasView] = {}

    def compose_body(self) -> ComposeResult:
        yield Static(id="target-line")
        yield FilterBar("aliases", id="aliases-filter")
        table = ListingTable(id="aliases", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(id="figures-note")
        yield CanaryDial(id="canary-dial")
        with Horizontal(classes="form"):
            yield Input(placeholder="alias the app uses", id="alias-input", compact=True)
            yield Input(placeholder="physical collection", id="collection-input", compact=True)
        with Horizontal(classes="form"):
            yield TickBox("Force (skip validation gate)", id="force", compact=True)
            yield Input(placeholder="reason (needed with force)", id="reason-input", compact=True)
        with Horizontal(classes="form"):
            yield Button("Cut over (c)", id="do-cutover", variant="warning", compact=True)
            yield Button("Roll back (r)", id="do-rollback", compact=True)
            yield Button("Remove alias (x)", id="do-remove", compact=True)
            yield Button("Refresh (f5)", id="do-refresh", compact=True)
        yield Static(id="outcome")
        yield BackupLine(id="backup-line")

    # -- context ----------------------------------------------------------------------------
    @property
    def target_uri(self) -> str | None:
        return self.ferry.context.target_uri

    @property
    def router_state(self) -> str | None:
        chosen = self.ferry.context.router_state or os.environ.get(STATE_ENV)
        return str(chosen) if chosen else None

    def _journal(self) -> Journal:
        return self.ferry.context.journal()

    def on_mount(self) -> None:
        self._show_target()
        self.action_refresh()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
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
        self.query_one("#canary-dial", CanaryDial).show(self.router_state, self._journal())
        if self.target_uri:
            self._load_overview(self.target_uri)

    def action_canary(self, up: bool) -> None:
        if self.refuse_while_busy():
            return
        why_not = self.query_one("#canary-dial", CanaryDial).step(up)
        if why_not:
            self._say(why_not, True)

    @work(exclusive=True, group="cutover-overview", exit_on_error=False)
    async def _load_overview(self, target_uri: str) -> None:
        try:
            views = await alias_overview(target_uri, self._journal(), self.router_state)
        except Exception as exc:
            self.post_message(self.Failed(one_line(exc), acting=False))
            return
        self.post_message(self.AliasesLoaded(views))

    @on(AliasesLoaded)
    def _show_views(self, event: AliasesLoaded) -> None:
        views = event.views
        table = self.query_one("#aliases", ListingTable)
        with self.app.batch_update():
            table.set_rows((view.alias, _cells(view)) for view in views)
        # Textual measures new cells on its next idle, after it may have drawn (and cached)
        # the rows at the old column widths: drop those drawings once the widths are known.
        self.call_after_refresh(_redraw, table)
        self._views = {v.alias: v for v in views}
        self.query_one("#figures-note", Static).update(_figures_note(views))
        alias_input = self.query_one("#alias-input", Input)
        if views and not alias_input.value:
            self._fill_form(table.highlighted_key or views[0].alias)

    @on(DataTable.RowHighlighted, "#aliases")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._fill_form(str(event.row_key.value))

    def _fill_form(self, alias: str) -> None:
        view = self._views.get(alias)
        self.query_one("#alias-input", Input).value = alias
        self.query_one("#collection-input", Input).value = (view.candidate or "") if view else ""

    # -- actions ----------------------------------------------------------------------------
    @on(Button.Pressed, "#do-cutover")
    def action_cutover(self) -> None:
        self._start("cutover")

    @on(Button.Pressed, "#do-rollback")
    def action_rollback(self) -> None:
        self._start("rollback")

    @on(Button.Pressed, "#do-remove")
    def action_remove_alias(self) -> None:
        self._start("alias-delete")

    @on(Button.Pressed, "#do-refresh")
    def _refresh_pressed(self) -> None:
        self.action_refresh()

    def _start(self, action: str) -> None:
        if self.refuse_while_busy():
            return
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
        self.busy = f"planning the {action} of {alias}"
        self._plan(action, target, alias, collection, force, reason)

    @work(exclusive=True, group="cutover-action", exit_on_error=False)
    async def _plan(
        self, action: str, target: str, alias: str, collection: str, force: bool, reason: str | None
    ) -> None:
        journal = self._journal()
        try:
            async with open_alias_backend(target) as backend:
                if action == "cutover":
                    plan = await plan_cutover(
                        backend, journal, collection, alias, force, reason, self.router_state
                    )
                elif action == "alias-delete":
                    plan = await plan_alias_delete(backend, alias)
                else:
                    plan = await plan_rollback(backend, journal, alias, self.router_state)
        except Exception as exc:
            self.post_message(self.Failed(one_line(exc), acting=True))
            return
        self.post_message(self.Planned(plan))

    @on(Planned)
    def _ask(self, event: Planned) -> None:
        plan = event.plan
        verb = {"cutover": "Cut over", "rollback": "Roll back"}.get(plan.action, "Remove")
        if plan.to_collection is None:  # a first cutover rolled back, or a removal
            verb = "Remove alias" if plan.action == "alias-delete" else "Roll back (remove)"
        modal = TypedConfirm(
            f"{verb} alias {plan.alias}?",
            "\n".join(plan.changes()),
            expected_text=plan.alias,
            confirm_label=verb,
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.busy = f"{plan.action} of {plan.alias}"
                if plan.action == "cutover":
                    self.query_one("#backup-line", BackupLine).start(
                        f"Backup of {plan.to_collection} before the cutover"
                    )
                self._execute(plan)
            else:
                self.busy = None
                self.query_one("#outcome", Static).update(Text("cancelled: nothing changed"))

        self.busy = f"waiting for the confirmation of {plan.alias}"
        self.app.push_screen(modal, answered)

    @work(exclusive=True, group="cutover-action", exit_on_error=False)
    async def _execute(self, plan: CutoverPlan) -> None:
        journal = self._journal()
        line = self.query_one("#backup-line", BackupLine)
        try:
            # Reopened: execute checks again that the alias is where the plan saw it.
            async with open_alias_backend(plan.target_uri) as backend:
                outcome = await execute(backend, journal, plan, line.progress)
        except Exception as exc:
            self.post_message(self.Failed(one_line(exc), acting=True))
            return
        self.post_message(self.Done(outcome))

    @on(Failed)
    def _failed(self, event: Failed) -> None:
        if event.acting:
            self.busy = None
            self.query_one("#backup-line", BackupLine).hide()
        self._say(event.message, True)

    def _target_and_collection(self, missing: str) -> tuple[str, str] | None:
        """The target and the collection in the form, or None after saying what is missing."""
        target = self.target_uri
        collection = self.query_one("#collection-input", Input).value.strip()
        if not target:
            self._say("choose a target first (Connections, key 1)", True)
            return None
        if not collection:
            self._say(missing, True)
            return None
        return target, collection

    # -- switching the app ------------------------------------------------------------------
    def action_switch_app(self) -> None:
        """The lines the app changes for the collection in the form (the highlighted
        candidate): read from the target in the modal's own worker (read-only, so it never
        waits for a cutover being planned)."""
        view = self._views.get(self.query_one("#alias-input", Input).value.strip())
        typed = self.query_one("#collection-input", Input).value.strip()
        if not typed and view is not None and view.current and self.target_uri:
            # A cut-over row has no candidate: the app reads what the alias points at now.
            self.app.push_screen(SwitchAppScreen(self.target_uri, view.current, self._journal()))
            return
        chosen = self._target_and_collection(
            "highlight a row with a candidate, or type the collection"
        )
        if chosen:
            self.app.push_screen(SwitchAppScreen(*chosen, self._journal()))

    # -- backup -----------------------------------------------------------------------------
    def action_backup(self) -> None:
        if self.refuse_while_busy():
            return
        chosen = self._target_and_collection("type the collection to back up")
        if not chosen:
            return
        target, collection = chosen
        self.busy = f"backing up {collection}"
        self.query_one("#backup-line", BackupLine).start(f"Backup of {collection}")
        self._backup(target, collection)

    @work(exclusive=True, group="cutover-action", exit_on_error=False)
    async def _backup(self, target: str, collection: str) -> None:
        line = self.query_one("#backup-line", BackupLine)
        try:
            async with open_connector(target) as connector:
                if not isinstance(connector, TargetConnector):
                    raise TypeError(f"{target} is not a target")
                snapshot = await connector.snapshot(collection, line.progress)
        except Exception as exc:
            self.post_message(self.Failed(f"backup of {collection}: {one_line(exc)}", True))
            return
        self.post_message(self.BackedUp(collection, snapshot))

    @on(BackedUp)
    def _backed_up(self, event: BackedUp) -> None:
        self.busy = None
        snapshot = event.snapshot
        where = snapshot.get("path") or snapshot.get("name")
        if where:
            verb = "reused verified backup" if snapshot.get("reused") else "backed up"
            message = f"{verb} {event.collection} → {where}"
        else:
            message = f"no backup of {event.collection}: {snapshot.get('note', 'not possible')}"
        self.query_one("#backup-line", BackupLine).finish(message, error=not where)
        self._say(message, error=not where)

    @on(Done)
    def _done(self, event: Done) -> None:
        self.busy = None
        self.query_one("#backup-line", BackupLine).hide()
        outcome = event.outcome
        plan = outcome.plan
        backup = ""
        if outcome.snapshot:
            backup = outcome.snapshot.get("path") or outcome.snapshot.get("name") or ""
            reused = " (reused)" if outcome.snapshot.get("reused") else ""
            backup = f"; backup {backup}{reused}" if backup else ""
        self._say(
            f"{plan.action} done: {plan.alias} → {plan.to_collection or '(removed)'} "
            f"(was {plan.from_collection or 'unset'}; journal #{outcome.journal_id}{backup})"
        )
        self.action_refresh()


def _redraw(table: DataTable[Any]) -> None:
    table.notify_style_update()  # clears the table's render caches
    table.refresh()


def _cells(view: AliasView) -> list[Text]:
    if view.validation:
        validation = describe_validation(view.validation)
        style = "green" if view.validation["ok"] else "red"
    elif view.candidate and view.migrated_at:
        validation = f"migrated {format_age(time.time() - view.migrated_at)} ago"
        style = "yellow"  # migrated, not validated yet: the gate will refuse
    else:
        validation, style = "—", "dim"
    figures = view.figures
    overlap = figures.get("overlap_at_k")
    latency = figures.get("latency_diff_ms")
    errors = figures.get("error_rate")
    overlap_text = "—" if overlap is None else f"{overlap:.3f}@{figures.get('k')}"
    if view.current:
        points_at = Text(view.current)
    elif view.is_collection:
        points_at = Text("(a collection)", style="yellow")
    else:
        points_at = Text("(unset)", style="dim")
    return [
        Text(view.alias, style="bold"),
        points_at,
        Text(view.candidate or "—", style="" if view.candidate else "dim"),
        Text(validation, style=style),
        Text(overlap_text),
        Text("—" if latency is None else f"{latency:+.1f} ms"),
        Text(
            "—" if errors is None else f"{errors:.1%}", style="red" if view.recommendation else ""
        ),
    ]


def _figures_note(views: list[AliasView]) -> Text:
    """Where overlap@k, Δ latency and the error rate come from (the router or validation)."""
    sources = {v.figures.get("from") for v in views if v.figures}
    if "router" in sources:
        return Text("Overlap, Δ latency, errors: the router's shadow reads", style="dim")
    if "validation" in sources:
        return Text("Overlap, Δ latency, errors: from validation (no router figures)", style="dim")
    return Text("Overlap, Δ latency, errors: none yet (validate a candidate: 4)", style="dim")
