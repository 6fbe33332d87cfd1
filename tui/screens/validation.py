"""Validation (4): does the target hold what the source holds, and does it search the same?

Top: one summary row per collection (counts, differences, recall@k with a small bar). Below:
the differences of the highlighted collection, filterable by kind, and a detail pane that
shows the highlighted record on both sides. Checks, repair and extra deletion run in a thread
worker with its own event loop, so the UI never waits on a database; progress is
latest-value, sampled a few times a second. Results come from (and go to) the journal, so the
screen shows the last validation as soon as it opens.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from core.validate import (
    ValidationOptions,
    ValidationProgress,
    delete_extras_for,
    fetch_pair,
    report_markdown,
    validate,
)
from tui.widgets.diff_detail import DiffDetail

KINDS = ("all", "missing", "extra", "mismatched")
BAR_WIDTH = 8


class ValidationCancelled(Exception):
    """Raised from the progress callback when the user stops the checks."""


def recall_bar(value: float | None, width: int = BAR_WIDTH) -> Text:
    """`██████▉░ 0.97`: a bar a glance can read, and the figure."""
    if value is None:
        return Text("—", style="dim")
    filled = max(0.0, min(1.0, value)) * width
    full = int(filled)
    bar = "█" * full + ("▌" if filled - full >= 0.5 else "")
    style = "green" if value >= 0.95 else ("yellow" if value >= 0.8 else "red")
    return Text.assemble((bar.ljust(width, "░"), style), f" {value:.2f}")


class TypedConfirm(ModalScreen[bool]):
    """Cancel is focused; Delete stays disabled until the user types the collection's name."""

    DEFAULT_CSS = """
    TypedConfirm { align: center middle; }
    TypedConfirm > Vertical {
        width: 64; max-width: 100%; height: auto; padding: 1 2;
        border: thick $error; background: $surface;
    }
    TypedConfirm Horizontal { height: auto; margin-top: 1; }
    TypedConfirm Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="validation.confirm.cancel")]

    def __init__(self, message: str, expected: str) -> None:
        super().__init__()
        self.message = message
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.message)
            yield Static(f"Type [b]{self.expected}[/b] to confirm:")
            yield Input(id="typed", placeholder=self.expected)
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Delete", id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Input.Changed, "#typed")
    def typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.expected

    @on(Input.Submitted, "#typed")
    def submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")


class ValidationScreen(Screen[None]):
    """Counts, sampled and full diffs, recall@k, repair, and one record side by side."""

    TITLE: ClassVar[str] = "Validation"
    BINDINGS = [
        Binding("r", "run_checks(False)", "Check", id="validation.run",
                tooltip="Counts, a seeded sample of records, and recall@k on both sides"),
        Binding("f", "run_checks(True)", "Full diff", id="validation.full",
                tooltip="Compare every record and look for extras in the target"),
        Binding("R,ctrl+r", "repair", "Repair", id="validation.repair", key_display="R",
                tooltip="Re-copy missing and mismatched records (idempotent upserts)"),
        Binding("x", "delete_extra", "Delete extras", id="validation.delete-extra", show=False,
                tooltip="Delete target records the source lacks (asks you to type the name)"),
        Binding("t", "cycle_kind", "Filter", id="validation.filter",
                tooltip="Show all differences, or only missing / extra / mismatched"),
        Binding("e", "export", "Export", id="validation.export",
                tooltip="Write the report as JSON and Markdown beside the journal"),
        Binding("s", "stop", "Stop", id="validation.stop", tooltip="Stop the running checks"),
    ]  # fmt: skip
    DEFAULT_CSS = """
    ValidationScreen { layout: vertical; }
    ValidationScreen #validation-summary { height: auto; max-height: 8; }
    ValidationScreen #validation-status-row { height: 1; margin: 0 1; }
    ValidationScreen #validation-progress { width: 24; }
    ValidationScreen #validation-progress Bar { width: 18; }
    ValidationScreen #validation-status { width: 1fr; padding-left: 1; }
    ValidationScreen #validation-filter { height: 1; margin: 0 1; color: $text-muted; }
    ValidationScreen #validation-body { height: 1fr; }
    ValidationScreen #validation-differences { width: 2fr; min-width: 28; height: 1fr; }
    ValidationScreen #validation-detail-scroll {
        width: 3fr; border-left: solid $primary-darken-2;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, dict[str, Any]] = {}  # collection -> its JSON result
        self.source_uri: str | None = None
        self.target_uri: str | None = None
        self.current: str | None = None  # collection whose differences are listed
        self.kind = "all"
        self.busy = False
        self._latest: ValidationProgress | None = None

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        header = _shell_header()
        if header is not None:
            yield header
        yield DataTable(id="validation-summary", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="validation-status-row"):
            yield ProgressBar(id="validation-progress", total=100, show_eta=False)
            yield Static("r: check · f: full diff", id="validation-status")
        yield Static("", id="validation-filter")
        with Horizontal(id="validation-body"):
            yield DataTable(id="validation-differences", cursor_type="row")
            with VerticalScroll(id="validation-detail-scroll"):
                yield DiffDetail(id="validation-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        summary = self.query_one("#validation-summary", DataTable)
        for label, key in (
            ("collection", "name"), ("mode", "mode"), ("source", "source"),
            ("target", "target"), ("miss", "missing"), ("extra", "extra"),
            ("diff", "mismatched"), ("recall@k", "recall"), ("ok", "ok"),
        ):  # fmt: skip
            summary.add_column(label, key=key)
        differences = self.query_one("#validation-differences", DataTable)
        differences.add_column("kind", key="kind", width=10)
        differences.add_column("id", key="id")
        differences.add_column("fields", key="fields")
        self.query_one(DiffDetail).show_message("Select a difference to see both sides.")
        self.set_interval(0.2, self._show_progress)
        self._load_from_journal()

    def on_screen_resume(self) -> None:
        refresh = getattr(self.app, "refresh_header", None)
        if callable(refresh):
            refresh()
        ctx = self._session()
        if ctx is not None and not self.results and not self.busy:
            self._load_from_journal()

    # -- context ----------------------------------------------------------------------------
    def _session(self) -> Any:
        return getattr(self.app, "context", None)

    def _uris(self) -> tuple[str, str] | None:
        ctx = self._session()
        source = getattr(ctx, "source_uri", None)
        target = getattr(ctx, "target_uri", None)
        if not source or not target:
            return None
        return source, target

    def _selected(self) -> list[str]:
        return list(getattr(self._session(), "selected", None) or [])

    def _journal(self) -> Any:
        ctx = self._session()
        return ctx.journal() if ctx is not None else None

    def _target_names(self) -> dict[str, str]:
        """Where the attached run wrote each collection (the same name unless it says so)."""
        run_id, journal = getattr(self._session(), "run_id", None), self._journal()
        if not run_id or journal is None:
            return {}
        return {row["name"]: row["target_name"] for row in journal.collections(run_id)}

    def _load_from_journal(self) -> None:
        """The last stored validation of each selected collection, before anything runs."""
        uris, journal = self._uris(), self._journal()
        if uris is None or journal is None:
            self._status("Choose a source and a target first (Connections, 1).")
            return
        target_names = self._target_names()
        for name in self._selected():
            row = journal.latest_validation(uris[1], target_names.get(name, name))
            if row and row.get("source_uri") == uris[0]:
                self.results[name] = row["result"]
        if self.results:
            self.source_uri, self.target_uri = uris
            self._show_results()
            self._status("Last stored validation. r: check again · f: full diff")

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in {"run_checks", "repair", "delete_extra"} and self.busy:
            return None
        if action == "stop":
            return True if self.busy else None
        if action == "delete_extra":
            return True if self._with_extras() else None
        if action in {"export", "cycle_kind"}:
            return True if self.results else None
        return True

    def action_run_checks(self, full: bool) -> None:
        self._start(ValidationOptions(full=full), "full diff" if full else "checks")

    def action_repair(self) -> None:
        self._start(ValidationOptions(full=True, repair=True), "repair")

    def action_stop(self) -> None:
        self.workers.cancel_group(self, "validation")
        self._status("Stopping…")

    def action_cycle_kind(self) -> None:
        self.kind = KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)]
        self._show_differences()

    def action_delete_extra(self) -> None:
        name = self._with_extras()
        if name is None or self.target_uri is None:
            return
        total = self.results[name]["extra_total"]
        target_name = self.results[name].get("target_name", name)
        message = (
            f"Delete {total:,} record(s) from {target_name!r} in the target that the source does not "
            f"hold? This cannot be undone."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete_extras(name)

        self.app.push_screen(TypedConfirm(message, target_name), answered)

    def action_export(self) -> None:
        journal = self._journal()
        folder = Path(journal.path).parent / "reports" if journal else Path.cwd()
        path = export_report(self.report_json(), folder)
        self.notify(f"Report written: {path} (+ .md)", title="Export")

    # -- running ----------------------------------------------------------------------------
    def _start(self, options: ValidationOptions, what: str) -> None:
        uris = self._uris()
        if uris is None:
            self.notify("Choose a source and a target first (Connections, 1).", severity="warning")
            return
        self.busy = True
        self.refresh_bindings()
        self._latest = None
        self.query_one("#validation-progress", ProgressBar).update(total=100, progress=0)
        self._status(f"Running {what}…")
        self._run_validation(uris[0], uris[1], self._selected(), options, what)

    @work(thread=True, group="validation", exclusive=True, exit_on_error=False)
    def _run_validation(
        self, source: str, target: str, names: list[str], options: ValidationOptions, what: str
    ) -> tuple[str, dict[str, Any]]:
        worker = get_current_worker()

        def progress(p: ValidationProgress) -> None:
            if worker.is_cancelled:
                raise ValidationCancelled
            self._latest = p  # latest value: the interval timer shows it

        report = asyncio.run(
            validate(
                source,
                target,
                names or None,
                options,
                self._journal(),
                progress,
                target_names=self._target_names(),
            )
        )
        return what, report.to_json()

    @work(
        thread=True, group="validation", exclusive=True, exit_on_error=False, name="delete-extras"
    )
    def _delete_extras_worker(self, source: str, target: str, name: str) -> tuple[str, int]:
        target_name = self.results.get(name, {}).get("target_name", name)
        deleted = asyncio.run(delete_extras_for(source, target, name, target_name))
        return name, deleted

    def _delete_extras(self, name: str) -> None:
        uris = self._uris()
        if uris is None:
            return
        self.busy = True
        self.refresh_bindings()
        self._status(f"Deleting extras from {name}…")
        self._delete_extras_worker(uris[0], uris[1], name)

    @work(thread=True, group="detail", exclusive=True, exit_on_error=False)
    def _fetch_detail(self, source: str, target: str, name: str, record_id: str, kind: str) -> None:
        target_name = self.results.get(name, {}).get("target_name", name)
        pair = asyncio.run(fetch_pair(source, target, name, record_id, target_name))
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.query_one(DiffDetail).show_pair, pair, kind)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "detail":
            if event.state == WorkerState.ERROR:
                self.query_one(DiffDetail).show_message(f"Could not fetch: {worker.error}")
            return
        if worker.group != "validation" or event.state not in (
            WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED,
        ):  # fmt: skip
            return
        self.busy = False
        self.refresh_bindings()
        if event.state == WorkerState.CANCELLED or isinstance(worker.error, ValidationCancelled):
            self._status("Stopped. Nothing was recorded for the unfinished collection.")
            return
        if event.state == WorkerState.ERROR:
            message = getattr(worker.error, "one_line", lambda: str(worker.error))()
            self._status(f"Failed: {message}")
            self.notify(message, title="Validation failed", severity="error", timeout=10)
            return
        result = worker.result
        if worker.name == "delete-extras":
            name, deleted = result
            self.notify(f"Deleted {deleted:,} extra record(s) from {name}. f: check again.")
            self._status(f"Deleted {deleted:,} extra record(s) from {name}. f: check again.")
            return
        what, data = result
        self.source_uri, self.target_uri = data["source"], data["target"]
        self.results = {c["name"]: c for c in data["collections"]}
        self.query_one("#validation-progress", ProgressBar).update(total=100, progress=100)
        self._show_results()
        verdict = "everything matches" if data["ok"] else "differences found"
        if what == "repair":
            fixed = sum((c.get("repair") or {}).get("rewritten", 0) for c in data["collections"])
            verdict += f"; re-copied {fixed:,} record(s) — f: check again"
        self._status(f"{what.capitalize()}: {verdict}.")

    # -- showing ----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one("#validation-status", Static).update(text)

    def _show_progress(self) -> None:
        p = self._latest
        if p is None or not self.busy:
            return
        bar = self.query_one("#validation-progress", ProgressBar)
        if p.fraction is not None:
            bar.update(total=100, progress=round(p.fraction * 100, 1))
        figure = f" {p.done:,}/{p.total:,}" if p.total else ""
        self._status(f"{p.collection}: {p.step}{figure} · {p.message}")

    def _show_results(self) -> None:
        summary = self.query_one("#validation-summary", DataTable)
        with self.app.batch_update():
            existing = {key.value for key in summary.rows}
            for name, c in self.results.items():
                cells = summary_cells(c)
                if name in existing:
                    for column, value in zip(
                        ("name", "mode", "source", "target", "missing", "extra", "mismatched",
                         "recall", "ok"), cells, strict=True,
                    ):  # fmt: skip
                        summary.update_cell(name, column, value)
                else:
                    summary.add_row(*cells, key=name)
            for key in existing - set(self.results):
                summary.remove_row(key)
        if self.current not in self.results:
            self.current = next(iter(self.results), None)
        self._show_differences()

    def _show_differences(self) -> None:
        table = self.query_one("#validation-differences", DataTable)
        table.clear()
        c = self.results.get(self.current or "")
        label = self.query_one("#validation-filter", Static)
        if c is None:
            label.update("")
            return
        rows = difference_rows(c, self.kind)
        for kind, record_id, fields in rows:
            table.add_row(
                Text(kind, style=KIND_STYLE[kind]), record_id, fields, key=f"{kind}\x00{record_id}"
            )
        totals = {k: c.get(f"{k}_total", 0) for k in KINDS[1:]}
        shown_of = " · ".join(f"{k} {totals[k]:,}" for k in KINDS[1:])
        capped = any(totals[k] > len(c.get(k) or []) for k in KINDS[1:])
        label.update(
            f"{self.current}: {shown_of} — showing {self.kind} ({len(rows):,})"
            + (" · lists capped" if capped else "")
            + " · t: filter"
        )
        if not rows:
            self.query_one(DiffDetail).show_message(
                "No differences here." if self.kind == "all" else f"No {self.kind} records."
            )

    @on(DataTable.RowHighlighted, "#validation-summary")
    def summary_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key else None
        if name and name != self.current:
            self.current = name
            self._show_differences()

    @on(DataTable.RowHighlighted, "#validation-differences")
    def difference_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not event.row_key or not event.row_key.value or not self.current:
            return
        kind, record_id = event.row_key.value.split("\x00", 1)
        if self.source_uri and self.target_uri:
            self.query_one(DiffDetail).show_message(f"Fetching {record_id} from both sides…")
            self._fetch_detail(self.source_uri, self.target_uri, self.current, record_id, kind)

    def _with_extras(self) -> str | None:
        """The collection whose extras `x` deletes: the highlighted one, else the first."""
        if self.current and self.results.get(self.current, {}).get("extra_total"):
            return self.current
        return next((n for n, c in self.results.items() if c.get("extra_total")), None)

    def report_json(self) -> dict[str, Any]:
        return {
            "ok": all(c.get("ok") for c in self.results.values()) if self.results else False,
            "source": self.source_uri,
            "target": self.target_uri,
            "collections": list(self.results.values()),
        }


KIND_STYLE = {
    "missing": "bold red",
    "extra": "bold yellow",
    "mismatched": "bold magenta",
    "rounded": "cyan",
}


def summary_cells(c: dict[str, Any]) -> list[Any]:
    def figure(n: int) -> Text:
        return Text(f"{n:,}", style="bold red" if n else "green", justify="right")

    counts_style = "" if c["source_count"] == c["target_count"] else "bold red"
    recall = c.get("recall_at_k")
    return [
        c["name"],
        c.get("mode", ""),
        Text(f"{c['source_count']:,}", justify="right"),
        Text(f"{c['target_count']:,}", style=counts_style, justify="right"),
        figure(c.get("missing_total", 0)),
        figure(c.get("extra_total", 0)),
        figure(c.get("mismatched_total", 0)),
        recall_bar(recall) if c.get("error") is None else Text("error", style="bold red"),
        Text("✔", style="bold green") if c.get("ok") else Text("✘", style="bold red"),
    ]


def difference_rows(c: dict[str, Any], kind: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if kind in ("all", "missing"):
        rows += [("missing", i, "not in target") for i in c.get("missing") or []]
    if kind in ("all", "extra"):
        rows += [("extra", i, "not in source") for i in c.get("extra") or []]
    if kind in ("all", "mismatched"):
        rows += [("mismatched", m["id"], ", ".join(m["fields"])) for m in c.get("mismatched") or []]
    if kind == "all":  # not differences: floats the target engine rounds (Qdrant Edge)
        rows += [
            (
                "rounded",
                r["id"],
                f"{', '.join(r['fields'])}: target rounds doubles, {r['ulps']} ulp",
            )
            for r in c.get("rounded") or []
        ]
    return rows


def export_report(data: dict[str, Any], folder: Path) -> Path:
    """JSON and Markdown side by side; URIs never hold credentials, so neither does this."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / time.strftime("validation-%Y%m%d-%H%M%S")
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(report_markdown(data), encoding="utf-8")
    return json_path


def _shell_header() -> Any:
    """The shell's one-line header when the shell provides one (screens share it)."""
    try:
        from tui.widgets.header import ShellHeader
    except ImportError:
        return None
    return ShellHeader(id="shell-header")
