"""`m` on Inventory: the run dialog — the plan and the options, before anything starts.

The top table is the dry run (core.preview, the same as `ferry migrate --dry-run`): per
collection source → target name, payload layout, records, and what to watch (an existing
target, an alias that points at it, warnings, errors). Below, the options: batch size,
workers, rate, write mode, and — when the installed `ferry migrate` knows the flag — the
target name template and the payload layout. Changing the mode, name or layout re-plans
(the preview only reads). The dialog opens with the choices remembered for this source →
target pair (core.run_choices) and answers a `RunRequest`; the Inventory asks for a typed
confirmation when the run would write into anything that already exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Label, Select, Static

from ferry.core.connectors.base import WriteMode
from ferry.core.errors import FerryError
from ferry.core.preview import RunPreview, preview_run
from ferry.core.run_choices import SAME_NAME, RunChoices
from ferry.tui.migrate_flags import layout_choices, migrate_options, supported_flags
from ferry.tui.screens.base import in_this_app, one_line
from ferry.tui.widgets.figures import duration, short_count, short_uri
from ferry.tui.widgets.option_fields import declared_fields, declared_values

WIDE_COLUMNS = 160  # from here on the title shows whole paths
REPLAN_SECONDS = 0.4  # a pause in typing the target name before the plan is redone


@dataclass(frozen=True)
class RunRequest:
    """What the dialog answers: the chosen options and the plan they were checked against."""

    choices: RunChoices
    preview: RunPreview


def plan_note(row) -> Text:  # type: ignore[no-untyped-def]
    """The last column: the one thing to know about this collection's move."""
    if row.error:
        return Text(f"✗ {in_this_app(row.error)}", style="bold red")
    if row.skip_reason:
        return Text(f"skip: {row.skip_reason}", style="yellow")
    if row.writes_into_existing:
        return Text(f"! {row.existing_note}", style="bold yellow")
    if row.warnings:
        return Text(f"! {row.warnings[0]}", style="yellow")
    return Text("new", style="green")


def planned_alike(choices: RunChoices, planned: RunChoices | None) -> bool:
    """Whether a plan made for `planned` holds for `choices`: batch size, workers and rate
    change how fast the run goes, not what it writes where, so they do not re-plan."""
    if planned is None:
        return False
    pace = {"batch_size": 0, "workers": 0, "rate": None}
    return replace(choices, **pace) == replace(planned, **pace)


class RunDialog(ModalScreen[RunRequest | None]):
    """The plan and the options of one run; Start answers a RunRequest."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="run.cancel", tooltip="Start nothing"),
        Binding("ctrl+s", "start", "Start", id="run.start", tooltip="Start the run as planned"),
    ]
    AUTO_FOCUS = "#run-batch"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-tall")]  # -short: no blank rows (60×20)

    def __init__(
        self,
        source_uri: str,
        target_uri: str,
        names: list[str],
        choices: RunChoices,
        owned=None,  # type: ignore[no-untyped-def]
        earlier: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.source_uri = source_uri
        self.target_uri = target_uri
        self.names = names
        self.initial = choices
        self.owned = owned
        self.earlier = earlier or {}  # where this pair's runs last wrote each collection
        self.preview: RunPreview | None = None
        self.planned: RunChoices | None = None  # the choices `preview` was made for
        self.planning: RunChoices | None = None  # the choices of the plan being made
        self.flags = supported_flags()
        self.layouts = layout_choices()
        self._replan_timer = None  # type: ignore[var-annotated]

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        choices = self.initial
        with Vertical(classes="dialog", id="run-dialog"):
            yield Static(self.title_text(), id="run-title")
            yield DataTable(id="run-plan", cursor_type="row", show_cursor=False)
            with Horizontal(classes="run-options"):
                yield Label("Batch", classes="run-label")
                yield Input(str(choices.batch_size), type="integer", id="run-batch",
                            compact=True, classes="run-number")  # fmt: skip
                yield Label("Workers", classes="run-label")
                yield Input(str(choices.workers), type="integer", id="run-workers",
                            compact=True, classes="run-number")  # fmt: skip
                yield Label("Rate/s", classes="run-label")
                yield Input(f"{choices.rate:g}" if choices.rate else "", type="number",
                            id="run-rate", compact=True, classes="run-number",
                            tooltip="records per second; empty: no cap")  # fmt: skip
            with Horizontal(classes="run-options"):
                yield Label("Mode", classes="run-label")
                yield Select(
                    [("create", WriteMode.CREATE.value), ("append", WriteMode.APPEND.value)],
                    value=choices.mode,
                    allow_blank=False,
                    compact=True,
                    id="run-mode",
                )
                if self.layouts:
                    yield Label("Layout", classes="run-label")
                    yield Select(
                        [("detected", ""), *((name, name) for name in self.layouts)],
                        value=choices.layout if choices.layout in self.layouts else "",
                        allow_blank=False,
                        compact=True,
                        id="run-layout",
                    )
            if "--target-name" in self.flags or "--embed" in self.flags:
                with Horizontal(classes="run-options"):
                    if "--target-name" in self.flags:
                        yield Label("Target", classes="run-label")
                        named = "" if choices.target_name == SAME_NAME else choices.target_name
                        yield Input(named, id="run-target-name", compact=True,
                                    placeholder="default (see the plan)",
                                    tooltip="{name} is the source collection's name; by "
                                    "default a target with aliases gets {name}_v1, so the "
                                    "app's name stays free for the cutover")  # fmt: skip
                    if "--embed" in self.flags:
                        yield Label("Embed", classes="run-label")
                        yield Input(choices.embed, id="run-embed", compact=True,
                                    placeholder="copy vectors",
                                    tooltip="re-embed every document: PROVIDER/MODEL, e.g. "
                                    "wordllama/l2_supercat; empty copies the vectors")  # fmt: skip
            yield from declared_fields(choices)  # options declared in core/options.py
            yield Static("Checking the target…", id="run-notes")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="run-cancel", compact=True)
                yield Button("Start", id="run-start", variant="primary", compact=True,
                             disabled=True)  # fmt: skip
        yield Footer(compact=True)

    def title_text(self, keep: int = 2) -> Text:
        """What moves where; `keep` path parts of each URI (all of them when wide)."""
        return Text.assemble(
            ("Migrate ", "bold"),
            f"{len(self.names)} collection(s) from ",
            (short_uri(self.source_uri, keep), "bold"),
            "\nto ",
            (short_uri(self.target_uri, keep), "bold"),
        )

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE_COLUMNS
        self.query_one("#run-title", Static).update(self.title_text(99 if wide else 2))

    def on_mount(self) -> None:
        table = self.query_one("#run-plan", DataTable)
        table.add_column("Collection", key="name")
        table.add_column("→ Target", key="target")
        table.add_column("Layout", key="layout")
        table.add_column("Records", key="records")
        table.add_column("Notes", key="notes")
        for field in self.query(Input):
            field.cursor_blink = not self.app.is_headless  # snapshots must not blink
        self.replan()

    # -- the choices ------------------------------------------------------------------------
    def choices(self) -> RunChoices:
        """What the fields say, checked (a FerryError names the field to fix)."""

        def number(selector: str, what: str) -> int:
            text = self.query_one(selector, Input).value.strip()
            try:
                return int(text)
            except ValueError:
                raise FerryError(f"{what} must be a whole number", where="run options") from None

        rate_text = self.query_one("#run-rate", Input).value.strip()
        try:
            rate = float(rate_text) if rate_text else None
        except ValueError:
            raise FerryError("rate must be a number", where="run options") from None
        layout = (
            str(self.query_one("#run-layout", Select).value)
            if self.layouts
            else self.initial.layout
        )
        target_name = (
            self.query_one("#run-target-name", Input).value.strip()
            if "--target-name" in self.flags
            else SAME_NAME
        )
        embed = (
            self.query_one("#run-embed", Input).value.strip()
            if "--embed" in self.flags
            else self.initial.embed
        )
        return RunChoices(
            embed=embed,
            embed_base_url=self.initial.embed_base_url,
            embed_api_key_env=self.initial.embed_api_key_env,
            batch_size=number("#run-batch", "batch size"),
            workers=number("#run-workers", "workers"),
            rate=rate or None,
            mode=str(self.query_one("#run-mode", Select).value),
            target_name=target_name or SAME_NAME,
            layout=layout,
            extras=declared_values(self),
        ).check()

    @on(Select.Changed)
    def _select_changed(self) -> None:
        self.replan()

    @on(Checkbox.Changed, ".run-declared")
    def _declared_toggled(self) -> None:
        self.replan()

    @on(Input.Changed, ".run-declared")
    @on(Input.Changed, "#run-target-name")
    @on(Input.Changed, "#run-embed")
    def _name_changed(self) -> None:
        if self._replan_timer is not None:
            self._replan_timer.stop()
        self._replan_timer = self.set_timer(REPLAN_SECONDS, self.replan)

    @on(Input.Changed, ".run-number")
    def _number_changed(self) -> None:
        self._show_notes()  # a bad number disables Start; the plan itself does not change

    # -- the plan ---------------------------------------------------------------------------
    def replan(self) -> None:
        """Plan again — unless the choices are the ones already planned: the fields post
        Changed events as they mount, and a replan for nothing would take Start away for a
        moment just after "enter starts" was shown (an Enter then did nothing)."""
        try:
            choices = self.choices()
        except FerryError as exc:
            self.query_one("#run-start", Button).disabled = True
            self.query_one("#run-notes", Static).update(Text(exc.one_line(), style="red"))
            return
        if self.preview is not None and planned_alike(choices, self.planned):
            self._show_notes()
            return
        if self.preview is None and planned_alike(choices, self.planning):
            return  # that plan is being made: starting it over would only wait longer
        self.query_one("#run-start", Button).disabled = True
        self.query_one("#run-notes", Static).update(Text("Checking the target…", style="dim"))
        self.preview = None  # until the new plan is made, Start has nothing to start
        self.planning = choices
        self._plan_worker(choices)

    @work(exclusive=True, group="run-plan", exit_on_error=False)
    async def _plan_worker(self, choices: RunChoices) -> None:
        try:
            args, options = migrate_options(self.source_uri, self.target_uri, self.names, choices)
            preview = await preview_run(
                args.source, args.target, args.collection, options, self.owned, self.earlier
            )
        except Exception as exc:  # shown in the dialog, in words
            self.preview = None
            self.planned = None
            self.query_one("#run-notes", Static).update(Text(f"✗ {one_line(exc)}", style="red"))
            return
        finally:
            if self.planning is choices:  # not a newer plan's (this one may be cancelled)
                self.planning = None
        self.planned = choices
        self.show_preview(preview)

    def show_preview(self, preview: RunPreview) -> None:
        self.preview = preview
        table = self.query_one("#run-plan", DataTable)
        table.clear()
        for row in preview.rows:
            table.add_row(
                row.name,
                row.target_name,
                row.layout,
                Text(short_count(row.records), justify="right"),
                plan_note(row),
                key=row.name,
            )
        self._show_notes()

    def _show_notes(self) -> None:
        notes = self.query_one("#run-notes", Static)
        start = self.query_one("#run-start", Button)
        preview = self.preview
        try:
            choices = self.choices()
        except FerryError as exc:
            notes.update(Text(exc.one_line(), style="red"))
            start.disabled = True
            return
        if preview is None:
            return
        text = Text()
        text.append(f"{preview.records:,} records", style="bold")
        rate = choices.rate
        if rate and preview.records:  # the demo's cap: say how long there is to watch
            text.append(f" · ~{duration(preview.records / rate)} at {rate:g}/s")
        if not preview.errors:  # first, so it is on the first line at any width
            text.append(" · enter starts", style="green")
        existing = preview.existing
        if existing:
            names = ", ".join(r.target_name for r in existing)
            text.append(f" · writes into existing: {names} (you will type to confirm)",
                        style="bold yellow")  # fmt: skip
        embedding = next((r for r in preview.rows if r.embed), None)
        if embedding is not None:  # re-embedding: the model, the new shape, the documents
            text.append(f"\n{embedding.embed[0]}", style="cyan")
        renamed = [r for r in preview.rows if r.target_name != r.name]
        if renamed and choices.target_name == SAME_NAME:  # the default copy names
            text.append(f"\n{renamed[0].name} → {renamed[0].target_name}", style="cyan")
            text.append(": the app's name stays free for the cutover (5)")
        for warning in preview.warnings[:1]:
            text.append(f"\n! {warning}", style="yellow")
        for error in preview.errors[:2]:
            text.append(f"\n✗ {in_this_app(error)}", style="bold red")
        if preview.errors:
            text.append("\nChange the mode or the target name, or esc.", style="red")
        notes.update(text)
        start.disabled = bool(preview.errors)

    # -- answers ----------------------------------------------------------------------------
    @on(Input.Submitted)
    @on(Button.Pressed, "#run-start")
    def action_start(self) -> None:
        if self.query_one("#run-start", Button).disabled or self.preview is None:
            self.notify("Not ready: see the note above Start.", severity="warning", timeout=3)
            return
        try:
            choices = self.choices()
        except FerryError as exc:
            self.notify(exc.one_line(), severity="error")
            return
        if not planned_alike(choices, self.planned):  # changed since the plan shown: plan first
            self.replan()
            self.notify("The plan is being redone for the new choices.", timeout=3)
            return
        self.dismiss(RunRequest(choices, self.preview))

    @on(Button.Pressed, "#run-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
