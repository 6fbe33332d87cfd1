"""Inventory (2): the source's collections beside the target's, the plan, and the start key.

The inventory *is* the plan: `ferry.core.plan.build_plan` describes both sides, checks
compatibility and writes the complexity/risk notes, so what this screen shows is exactly what
`ferry migrate` will check before its first write. Selecting collections updates the plan
summary and its preflight warnings below the table; `m` starts the run (detached); `b`
backs the highlighted collection up (core.backup, in a worker, progress on one line) into
$FERRY_BACKUPS or the XDG data dir's `backups/`, reusing a verified backup of the same state.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from ferry.core.backup import BackupResult, default_backup_root, run_backup
from ferry.core.errors import FerryError, in_words
from ferry.core.inventory import Inventory, brief, load_inventory
from ferry.core.model import CollectionInfo
from ferry.core.plan import CollectionPlan
from ferry.core.run_choices import RunChoices, save_choices
from ferry.core.uri import parse_uri
from ferry.tui.screens.base import FerryScreen, in_this_app, one_line
from ferry.tui.screens.run_dialog import RunDialog, RunRequest
from ferry.tui.widgets.backup_line import BackupLine
from ferry.tui.widgets.confirm import TypedConfirm
from ferry.tui.widgets.figures import count, fit_uri, short_count, short_uri
from ferry.tui.widgets.filter_bar import LIST_KEYS, FilterBar, ListKeysMixin
from ferry.tui.widgets.listing import ListingTable

COLUMNS = [  # (key, label, width): fixed, so the table never reflows; fits 80 columns
    ("sel", " ", 1),
    ("name", "Collection", None),
    ("count", "Count", 8),
    ("dim", "Dim", 4),
    ("metric", "Metric", 6),
    ("keys", "Keys", 4),
    ("ef", "Embed", 7),
    ("target", "Target", 8),
    ("risk", "Risk", 6),
]


def target_cell(plan: CollectionPlan, has_target: bool) -> Text:
    if not has_target:
        return Text("—", style="dim")
    if plan.error:
        return Text("✗ clash", style="bold red")
    if plan.skip_reason:
        return Text("skip", style="yellow")
    if plan.target_exists:
        return Text("exists ✓", style="yellow" if plan.warnings else "green")
    return Text("new", style="green")


def risk_cell(plan: CollectionPlan) -> Text:
    style = {"low": "green", "medium": "yellow", "high": "bold red"}[plan.complexity]
    return Text(plan.complexity, style=style)


def metric_of(info: CollectionInfo) -> str:
    return info.metric.value if info.metric else "?"


class InventoryScreen(ListKeysMixin, FerryScreen):
    TITLE = "Inventory"
    BINDINGS = [
        Binding("space", "toggle", "Select", id="inventory.toggle", key_display="space"),
        Binding("a", "select_all", "All/none", id="inventory.all"),
        Binding(
            "m",
            "migrate",
            "Migrate",
            id="inventory.migrate",
            tooltip="start the selected collections in a detached process",
        ),
        Binding(
            "b",
            "backup",
            "Backup",
            id="inventory.backup",
            tooltip="back up the highlighted collection (verified; reused when unchanged)",
        ),
        Binding("r", "refresh", "Refresh", id="inventory.refresh"),
        *LIST_KEYS,
    ]

    class BackedUp(Message):
        def __init__(self, result: BackupResult) -> None:
            super().__init__()
            self.result = result

    class BackupFailed(Message):
        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

    def __init__(self) -> None:
        super().__init__()
        self.inventory: Inventory | None = None
        self.selected: set[str] = set()
        # What the table was read for: the pair and the attached run's state then (a run
        # that finished since may have made targets: read again when shown).
        self.loaded_for: tuple[object, ...] | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="inventory-body"):
            yield Static("", id="inventory-source", markup=False)
            yield FilterBar("collections", id="collections-filter")
            yield ListingTable(id="collections", zebra_stripes=True)
            yield Static("", id="inventory-detail", markup=False)
            yield Static("", id="plan-summary", markup=False)
            yield BackupLine(id="backup-line")

    def on_mount(self) -> None:
        table = self.query_one("#collections", ListingTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        table.focus()
        self.load()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.loaded_for is not None and self.loaded_for != self._facts():
            self.load()

    def _facts(self) -> tuple[object, ...]:
        context, view = self.ferry.context, self.ferry.snapshot
        run = (view.run_id, view.state) if view is not None else None
        return (context.source_uri, context.target_uri, run)

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        context = self.ferry.context
        self.loaded_for = self._facts()
        status = self.query_one("#inventory-source", Static)
        if not context.source_uri:
            status.update("No source yet: choose one on Connections (1) with f.")
            self.query_one("#collections", ListingTable).set_rows([])
            self.inventory = None
            self.show_plan()
            return
        status.update(f"Reading {short_uri(context.source_uri)}…")
        self.load_worker(context.source_uri, context.target_uri)

    @work(exclusive=True, group="inventory")
    async def load_worker(self, source_uri: str, target_uri: str | None) -> None:
        journal = self.ferry.context.journal()

        def owned(name: str) -> bool:
            return bool(target_uri) and journal.runs.target_owned(target_uri or "", name)

        try:
            earlier = journal.runs.latest_pairs(source_uri, target_uri) if target_uri else {}
            inventory = await load_inventory(source_uri, target_uri, owned, earlier)
        except FerryError as exc:
            self.query_one("#inventory-source", Static).update(Text(f"✗ {exc.one_line()}", "red"))
            return
        except Exception as exc:  # a driver's own error: one line, never a traceback
            self.query_one("#inventory-source", Static).update(Text(f"✗ {in_words(exc)}", "red"))
            return
        self.show_inventory(inventory)

    def show_inventory(self, inventory: Inventory) -> None:
        self.inventory = inventory
        names = [p.source.name for p in inventory.plans]
        context = self.ferry.context
        if self.ferry.select_all and not context.selected:
            context.selected = [
                p.source.name for p in inventory.plans if not p.error and not p.skip_reason
            ]
            self.ferry.select_all = False
        self.selected = {n for n in context.selected if n in names}
        rows = []
        for plan in inventory.plans:
            info = plan.source
            cells = (
                self._mark(info.name),
                info.name,
                Text(short_count(info.count), justify="right"),
                str(info.dimension or "?"),
                metric_of(info),
                str(len(info.metadata_keys)),
                info.embedding_function or "—",
                target_cell(plan, inventory.has_target),
                risk_cell(plan),
            )
            rows.append((info.name, cells))
        self.query_one("#collections", ListingTable).set_rows(rows)
        self.show_route()
        self.show_detail()
        self.show_plan()

    def show_route(self) -> None:
        """From and To, as whole as the width allows (again on a resize: a load can finish
        before the terminal's final size is known)."""
        context, inventory = self.ferry.context, self.inventory
        if inventory is None or not context.source_uri:
            return
        width = self.size.width
        target = (
            fit_uri(context.target_uri, width - 8)
            if context.target_uri
            else "no target (o on Connections)"
        )
        summary = inventory.source_summary
        self.query_one("#inventory-source", Static).update(
            Text.assemble(
                ("From ", "bold"),
                f"{fit_uri(context.source_uri, width - 12 - len(summary))} ({summary})",
                ("\nTo   ", "bold"),
                target,
            )
        )

    def on_resize(self) -> None:
        self.show_route()

    def _mark(self, name: str) -> Text:
        return Text("✓", style="bold green") if name in self.selected else Text("·", style="dim")

    # -- details and plan -------------------------------------------------------------------
    def highlighted(self) -> CollectionPlan | None:
        if self.inventory is None or not self.inventory.plans:
            return None
        key = self.query_one("#collections", ListingTable).highlighted_key
        return next((p for p in self.inventory.plans if p.source.name == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_toggle()

    def show_detail(self) -> None:
        plan = self.highlighted()
        detail = self.query_one("#inventory-detail", Static)
        if plan is None:
            detail.update("")
            return
        info = plan.source
        text = Text(no_wrap=False)
        text.append(info.name, style="bold")
        keys = ", ".join(info.metadata_keys) or "none"
        text.append(f" · keys: {keys}")
        schema = info.facts.get("schema")
        if schema:
            text.append(f" · Chroma schema: {brief(str(schema))}")
        if plan.target is not None:
            text.append(
                f" · target: {count(plan.target.count)} × {plan.target.dimension or '?'} "
                f"{metric_of(plan.target)}"
            )
        for note in plan.notes:
            text.append(f"\n  {note}", style="dim")
        for warning in plan.warnings:
            text.append(f"\n  ! {warning}", style="yellow")
        if plan.skip_reason:
            text.append(f"\n  skip: {plan.skip_reason}", style="yellow")
        if plan.error:
            text.append(f"\n  ✗ {in_this_app(plan.error)}", style="bold red")
        detail.update(text)

    def chosen(self) -> list[CollectionPlan]:
        if self.inventory is None:
            return []
        return [p for p in self.inventory.plans if p.source.name in self.selected]

    def show_plan(self) -> None:
        found = self.query("#plan-summary")
        if not found:  # a worker finishing while the app closes (its widgets already gone)
            return
        summary = found.first(Static)
        chosen = self.chosen()
        if not chosen:
            summary.update(Text("Plan: nothing selected — space selects, a selects all.", "dim"))
            return
        records = sum(p.source.count for p in chosen)
        megabytes = sum(p.source.count * (p.source.dimension or 0) * 4 for p in chosen) / 1e6
        text = Text()
        text.append("Plan ", style="bold")
        text.append(
            f"{len(chosen)} collection(s) · {count(records)} records · ~{megabytes:,.0f} MB"
        )
        # Only where a framework wrote the data (a flat move says nothing new).
        framed = [p for p in chosen if p.detection.framework or p.layout != "flat"]
        for p in framed[:2]:
            text.append(f"\n{p.source.name}: layout {p.layout} — {p.layout_reason}", style="cyan")
        errors = [f"{p.source.name}: {in_this_app(p.error)}" for p in chosen if p.error]
        warnings = list(self.inventory.warnings if self.inventory else [])
        warnings += [f"{p.source.name}: {w}" for p in chosen for w in p.warnings]
        for warning in warnings[:3]:
            text.append(f"\n! {warning}", style="yellow")
        if len(warnings) > 3:
            text.append(f"\n! … {len(warnings) - 3} more", style="yellow")
        for error in errors[:2]:
            text.append(f"\n✗ {error}", style="bold red")
        if errors:
            text.append("\nm opens the run dialog: mode append, or fix the above.", style="red")
        elif not self.ferry.context.target_uri:
            text.append("\nChoose a target on Connections (1) with o.", style="yellow")
        else:
            text.append("  — press m to migrate", style="bold green")
        summary.update(text)

    # -- actions ----------------------------------------------------------------------------
    def _store_selection(self) -> None:
        order = [p.source.name for p in self.inventory.plans] if self.inventory else []
        self.ferry.context.selected = [n for n in order if n in self.selected]
        table = self.query_one("#collections", ListingTable)
        for name in order:
            table.set_cell(name, "sel", self._mark(name))
        self.show_plan()

    def action_toggle(self) -> None:
        plan = self.highlighted()
        if plan is None:
            return
        self.selected ^= {plan.source.name}
        self._store_selection()

    def action_select_all(self) -> None:
        if self.inventory is None:
            return
        # With a filter, `a` means the rows shown: "/ news, a" selects every news collection.
        every = set(self.query_one("#collections", ListingTable).shown_keys)
        self.selected = self.selected - every if self.selected >= every else self.selected | every
        self._store_selection()

    def action_refresh(self) -> None:
        self.load()

    def action_migrate(self) -> None:
        chosen = self.chosen()
        if self.refuse_while_busy():
            return
        if not chosen:
            self.notify("Select collections first (space, or a for all).", severity="warning")
            return
        source, target = self.ferry.context.source_uri, self.ferry.context.target_uri
        if not source or not target:
            self.notify("Choose a target on Connections (1) with o.", severity="warning")
            return
        names = [p.source.name for p in chosen]
        if self._writer_going(source, target, names):
            return
        journal = self.ferry.context.journal()

        def owned(name: str) -> bool:
            return journal.runs.target_owned(target, name)

        dialog = RunDialog(
            source,
            target,
            names,
            self.ferry.default_choices(source, target),
            owned,
            journal.runs.latest_pairs(source, target),
        )
        self.app.push_screen(dialog, lambda request: self._planned(names, request))

    def _writer_going(self, source: str, target: str, names: list[str]) -> bool:
        """A run of this app is writing here already: go to it instead of a dialog that
        would wait on the target's lock and end in a cut-off refusal."""
        same = self.ferry.active_run_for(source, target, names)
        busy = same or (parse_uri(target).is_embedded and self.ferry.active_run_into(target))
        if not busy:
            return False
        self.ferry.attach(busy)
        if same:
            self.notify(f"Run {busy} is already copying these: attached to it.")
        else:
            self.notify(
                f"Run {busy} is writing into {short_uri(target)}, which takes one writer at a "
                "time: attached to it. Start this run when it has finished.",
                severity="warning",
                timeout=10,
            )
        self.ferry.action_go("monitor")
        return True

    def _planned(self, names: list[str], request: RunRequest | None) -> None:
        """The dialog answered: confirm writing into what exists, then start."""
        if request is None:
            return
        existing = request.preview.existing
        if not existing:
            self._start(names, request)
            return
        expected = existing[0].target_name if len(existing) == 1 else "write"
        lines = [f"{r.name} → {r.target_name}: {r.existing_note}" for r in existing]
        lines.append(
            f"mode {request.choices.mode}: records are upserted; what is there and not in the "
            "source stays."
        )
        modal = TypedConfirm(
            f"Write into {len(existing)} existing collection(s)?",
            "\n".join(lines),
            expected,
            "Start",
        )
        self.app.push_screen(modal, lambda yes: self._start(names, request) if yes else None)

    def _start(self, names: list[str], request: RunRequest) -> None:
        context = self.ferry.context
        if context.source_uri and context.target_uri:
            save_choices(
                context.journal().path, context.source_uri, context.target_uri, request.choices
            )
        self.start_worker(names, request.choices)

    @work(exclusive=True, group="launch")
    async def start_worker(self, names: list[str], choices: RunChoices) -> None:
        self.busy = "starting the run"
        summary = self.query_one("#plan-summary", Static)
        summary.update(Text(f"Starting ferry migrate for {len(names)} collection(s)…", "bold"))
        try:
            run_id = await self.ferry.launch_run(names, choices)
        except FerryError as exc:
            self.notify(exc.one_line(), severity="error")
            run_id = None
        finally:
            self.busy = None
            self.show_plan()
        if run_id:
            self.ferry.action_go("monitor")

    # -- backup -----------------------------------------------------------------------------
    def action_backup(self) -> None:
        plan = self.highlighted()
        source = self.ferry.context.source_uri
        if plan is None or not source:
            self.notify("Highlight a collection to back up first.", severity="warning")
            return
        if self.refuse_while_busy():
            return
        name = plan.source.name
        self.busy = f"backing up {name}"
        self.query_one("#backup-line", BackupLine).start(f"Backup of {name}")
        self.backup_worker(source, name)

    @work(exclusive=True, group="backup", exit_on_error=False)
    async def backup_worker(self, source_uri: str, name: str) -> None:
        line = self.query_one("#backup-line", BackupLine)
        try:
            result = await run_backup(source_uri, name, default_backup_root(), line.progress)
        except Exception as exc:  # a driver's own error too: one line, never a traceback
            self.post_message(self.BackupFailed(f"backup of {name} failed: {one_line(exc)}"))
            return
        self.post_message(self.BackedUp(result))

    @on(BackedUp)
    def _backed_up(self, event: BackedUp) -> None:
        self.busy = None
        result = event.result
        verb = "reused verified backup" if result.reused else "backed up"
        message = f"✓ {verb} {result.manifest['collection']} → {result.path}"
        self.query_one("#backup-line", BackupLine).finish(message)
        self.notify(message)

    @on(BackupFailed)
    def _backup_failed(self, event: BackupFailed) -> None:
        self.busy = None
        self.query_one("#backup-line", BackupLine).finish(f"✗ {event.message}", error=True)
        self.notify(event.message, severity="error")
