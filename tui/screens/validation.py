"""Validation (4): does the target hold what the source holds, and does it search the same?

Top: one summary row per collection (counts, differences, recall@k with a small bar). Below:
the differences of the highlighted collection, filterable by kind, and a detail pane that
shows the highlighted record on both sides.

Checks, repair and extra deletion run in async workers on connectors the screen keeps open
while it is shown (tui/open_connectors.py), so moving through difference rows fetches one
record per side instead of re-opening both databases. Workers report back with typed
messages; progress is latest-value, sampled a few times a second into a reactive bound to
the progress line. A key pressed while a worker runs is answered "busy…". Results come
from (and go to) the journal, so the screen shows the last validation as soon as it opens.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, ProgressBar, Static

from ferry.core.journal import Journal
from ferry.core.validate import (
    RecordPair,
    ValidationOptions,
    ValidationProgress,
    delete_extras,
    fetch_pair_connectors,
    report_markdown,
    validate_connectors,
)
from ferry.tui.open_connectors import OpenConnectors
from ferry.tui.screens.base import FerryScreen, one_line
from ferry.tui.screens.validation_settings import ValidationSettings, settings_line
from ferry.tui.widgets.ab_panel import ABPanel
from ferry.tui.widgets.confirm import TypedConfirm
from ferry.tui.widgets.diff_detail import DiffDetail
from ferry.tui.widgets.filter_bar import SORT_KEYS, ListKeysMixin
from ferry.tui.widgets.listing import ListingTable

KINDS = ("all", "missing", "extra", "mismatched")
BAR_WIDTH = 8
PROGRESS_SECONDS = 0.2  # how often the progress line samples the latest progress
STOP_HINT = "s stops it"


def recall_bar(value: float | None, width: int = BAR_WIDTH) -> Text:
    """`██████▉░ 0.97`: a bar a glance can read, and the figure."""
    if value is None:
        return Text("—", style="dim")
    filled = max(0.0, min(1.0, value)) * width
    full = int(filled)
    bar = "█" * full + ("▌" if filled - full >= 0.5 else "")
    style = "green" if value >= 0.95 else ("yellow" if value >= 0.8 else "red")
    return Text.assemble((bar.ljust(width, "░"), style), f" {value:.2f}")


class ProgressLine(Horizontal):
    """The progress bar and the status line; follows `progress` (bound to the screen's)."""

    progress: reactive[ValidationProgress | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield ProgressBar(id="validation-progress", total=100, show_eta=False)
        yield Static("r: check · f: full diff", id="validation-status")

    def watch_progress(self, p: ValidationProgress | None) -> None:
        if p is None:
            return
        if p.fraction is not None:
            self.query_one(ProgressBar).update(total=100, progress=round(p.fraction * 100, 1))
        figure = f" {p.done:,}/{p.total:,}" if p.total else ""
        self.say(f"{p.collection}: {p.step}{figure} · {p.message}")

    def say(self, text: str) -> None:
        self.query_one("#validation-status", Static).update(text)

    def set_percent(self, percent: float) -> None:
        self.query_one(ProgressBar).update(total=100, progress=percent)


class ValidationScreen(ListKeysMixin, FerryScreen):
    """Counts, sampled and full diffs, recall@k, repair, and one record side by side."""

    TITLE = "Validation"
    BINDINGS = [
        Binding("r", "run_checks(False)", "Check", id="validation.run",
                tooltip="Counts, a seeded sample of records, and recall@k on both sides"),
        Binding("f", "run_checks(True)", "Full", id="validation.full",
                tooltip="Compare every record and look for extras in the target"),
        Binding("R,ctrl+r", "repair", "Repair", id="validation.repair", key_display="R",
                tooltip="Re-copy missing and mismatched records (idempotent upserts)"),
        Binding("x", "delete_extra", "Extras", id="validation.delete-extra",
                tooltip="Delete target records the source lacks (asks you to type the name)"),
        Binding("t", "cycle_kind", "Filter", id="validation.filter",
                tooltip="Show all differences, or only missing / extra / mismatched"),
        Binding("e", "export", "Export", id="validation.export", show=False,
                tooltip="Write the report as JSON and Markdown beside the journal"),
        Binding("s", "stop", "Stop", id="validation.stop", tooltip="Stop the running checks"),
        Binding("o", "settings", "Options", id="validation.settings",
                tooltip="Sample size, k, queries, tolerance, recall threshold"),
        Binding("slash", "search", "Search", id="validation.search", key_display="/",
                tooltip="Show only differences whose id or field contains a text"),
        Binding("y", "copy_id", "Copy id", id="validation.copy-id", show=False,
                tooltip="Copy the highlighted difference's record id"),
        Binding("Y", "copy_row", "Copy row", id="validation.copy-row", show=False,
                tooltip="Copy the highlighted difference as one line (kind, id, fields)"),
        *SORT_KEYS,
    ]  # fmt: skip

    # The latest progress of the running checks, sampled; the progress line is bound to it.
    progress: reactive[ValidationProgress | None] = reactive(None)

    # -- what the workers report ------------------------------------------------------------
    class Checked(Message):
        """Checks (or a repair) finished; `report` is the report's JSON."""

        def __init__(self, what: str, report: dict[str, Any]) -> None:
            super().__init__()
            self.what = what
            self.report = report

    class ExtrasDeleted(Message):
        def __init__(self, name: str, deleted: int) -> None:
            super().__init__()
            self.name = name
            self.deleted = deleted

    class Failed(Message):
        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

    class Stopped(Message):
        """The user stopped the checks (or the screen went away)."""

    class RecordFetched(Message):
        def __init__(self, collection: str, pair: RecordPair, kind: str) -> None:
            super().__init__()
            self.collection = collection
            self.pair = pair
            self.kind = kind

    class FetchFailed(Message):
        def __init__(self, collection: str, record_id: str, message: str) -> None:
            super().__init__()
            self.collection = collection
            self.record_id = record_id
            self.message = message

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, dict[str, Any]] = {}  # collection -> its JSON result
        self.source_uri: str | None = None
        self.target_uri: str | None = None
        self.current: str | None = None  # collection whose differences are listed
        self.kind = "all"
        self.connectors = OpenConnectors()
        self._latest: ValidationProgress | None = None
        self._showing: tuple[str, str] | None = None  # (collection, id) in the detail pane
        self.settings = ValidationOptions()  # `o` changes them; r, f and R use them
        self.search = ""  # `/`: only differences whose id or fields contain this
        self._shown = True  # False while another mode is on screen

    # -- layout -----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        yield ListingTable(id="validation-summary", zebra_stripes=True)
        yield ProgressLine(id="validation-status-row").data_bind(ValidationScreen.progress)
        yield Static("", id="validation-filter", markup=False)
        yield ABPanel("", id="validation-ab", markup=False)  # a re-embedded copy's A/B
        yield SearchInput(placeholder="id or field; enter keeps it, esc clears",
                          id="validation-search", compact=True)  # fmt: skip
        with Horizontal(id="validation-body"):
            yield ListingTable(id="validation-differences")
            with VerticalScroll(id="validation-detail-scroll"):
                yield DiffDetail(id="validation-detail")

    def on_mount(self) -> None:
        summary = self.query_one("#validation-summary", DataTable)
        # The verdict first, the figures after: at 60 columns the table is cut at the right,
        # and "ok" and recall@k are what a person reads first.
        for label, key in (
            ("collection", "name"), ("ok", "ok"), ("recall@k", "recall"),
            ("miss", "missing"), ("extra", "extra"), ("diff", "mismatched"),
            ("source", "source"), ("target", "target"), ("mode", "mode"),
        ):  # fmt: skip
            summary.add_column(label, key=key)
        differences = self.query_one("#validation-differences", DataTable)
        differences.add_column("kind", key="kind", width=10)
        differences.add_column("id", key="id")
        differences.add_column("fields", key="fields")
        self.query_one(DiffDetail).show_message("Select a difference to see both sides.")
        self.query_one(ABPanel).show(None)
        self.set_interval(PROGRESS_SECONDS, self._sample_progress)
        self._load_from_journal()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._shown = True
        shown_pair = (self.source_uri, self.target_uri)
        if self.results and self.busy is None and shown_pair != self._uris():
            # Results are about the pair they were made for: another pair starts clean.
            self.results = {}
            self.source_uri = self.target_uri = None
            self._show_results()
        if not self.results and self.busy is None:
            self._load_from_journal()

    def on_screen_suspend(self) -> None:
        if self in self.app.screen_stack:
            return  # a modal of ours (confirm, help) is on top: we are still in use
        # Another screen is shown: let go of the databases (another process may need the
        # target), unless checks are still running; they close them when they finish.
        self._shown = False
        self.workers.cancel_group(self, "detail")
        if self.busy is None:
            self._release()

    async def on_unmount(self) -> None:
        self.workers.cancel_node(self)
        await self.connectors.close()

    def _release(self) -> None:
        self.app.run_worker(
            self.connectors.close(), group="release-connectors", exit_on_error=False
        )

    # -- context ----------------------------------------------------------------------------
    def _uris(self) -> tuple[str, str] | None:
        context = self.ferry.context
        if not context.source_uri or not context.target_uri:
            return None
        return context.source_uri, context.target_uri

    def _journal(self) -> Journal:
        return self.ferry.context.journal()

    def _target_names(self) -> dict[str, str]:
        """Where the runs of the selected pair last wrote each collection (the same name
        unless one says so) — never a run of another target, whichever run is attached."""
        uris = self._uris()
        if uris is None:
            return {}
        return self._journal().runs.latest_pairs(*uris)

    def _target_name(self, name: str) -> str:
        return str(self.results.get(name, {}).get("target_name", name))

    def _load_from_journal(self) -> None:
        """The last stored validation of each selected collection, before anything runs."""
        uris = self._uris()
        if uris is None:
            self._status("Choose a source and a target first (Connections, 1).")
            return
        journal = self._journal()
        target_names = self._target_names()
        for name in self.ferry.context.selected:
            row = journal.validations.latest(uris[1], target_names.get(name, name))
            if row and row.source_uri == uris[0]:
                self.results[name] = row.result
        if self.results:
            self.source_uri, self.target_uri = uris
            self._show_results()
            self._status("Last stored validation · r checks again · f full diff")

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return bool(self.busy)  # in the footer only while it can act
        if action == "settings":
            return not self.busy
        if action == "delete_extra":
            return True if self._with_extras() else None
        if action in {"export", "cycle_kind", "search"}:
            return True if self.results else None
        if action in {"copy_id", "copy_row"}:
            return True if self._highlighted_difference() else None
        return True  # run_checks and repair answer "busy…" themselves

    def action_run_checks(self, full: bool) -> None:
        if not self.refuse_while_busy(STOP_HINT):
            self._start(replace(self.settings, full=full), "full diff" if full else "checks")

    def action_repair(self) -> None:
        if not self.refuse_while_busy(STOP_HINT):
            self._start(replace(self.settings, full=True, repair=True), "repair")

    def action_settings(self) -> None:
        if self.refuse_while_busy(STOP_HINT):
            return

        def kept(options: ValidationOptions | None) -> None:
            if options is not None:
                self.settings = options
                self._status(f"Settings: {settings_line(options)} · r checks")

        self.app.push_screen(ValidationSettings(self.settings), kept)

    def action_search(self) -> None:
        search = self.query_one("#validation-search", SearchInput)
        search.display = True
        search.value = self.search
        search.focus()

    @on(Input.Changed, "#validation-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self._show_differences()

    @on(Input.Submitted, "#validation-search")
    def _search_done(self) -> None:
        search = self.query_one("#validation-search", SearchInput)
        search.display = bool(self.search)
        self.query_one("#validation-differences", DataTable).focus()

    def clear_search(self) -> None:
        search = self.query_one("#validation-search", SearchInput)
        search.value = ""
        self.search = ""
        search.display = False
        self._show_differences()
        self.query_one("#validation-differences", DataTable).focus()

    def _highlighted_difference(self) -> tuple[str, str, str] | None:
        """(kind, id, fields) of the highlighted difference row, if any."""
        table = self.query_one("#validation-differences", DataTable)
        if not table.row_count or table.cursor_row < 0:
            return None
        row = table.get_row_at(table.cursor_row)
        return str(row[0]), str(row[1]), str(row[2])

    def action_copy_id(self) -> None:
        row = self._highlighted_difference()
        if row:
            self.ferry.copy(row[1], "record id")

    def action_copy_row(self) -> None:
        row = self._highlighted_difference()
        if row:
            self.ferry.copy(f"{self.current}\t{row[0]}\t{row[1]}\t{row[2]}", "difference")

    def action_stop(self) -> None:
        self.workers.cancel_group(self, "validation")
        self._status("Stopping…")

    def action_cycle_kind(self) -> None:
        self.kind = KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)]
        self._show_differences()

    def action_delete_extra(self) -> None:
        if self.refuse_while_busy(STOP_HINT):
            return
        name = self._with_extras()
        if name is None or self.target_uri is None:
            return
        total = self.results[name]["extra_total"]
        target_name = self._target_name(name)
        message = (
            f"Delete {total:,} record(s) from {target_name!r} in the target that the source "
            f"does not hold? This cannot be undone."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete_extras(name)

        modal = TypedConfirm("Delete extra records?", message, target_name, "Delete")
        self.app.push_screen(modal, answered)

    def action_export(self) -> None:
        folder = Path(self._journal().path).parent / "reports"
        path = export_report(self.report_json(), folder)
        self.ferry.copy(str(path), "report path (+ .md beside it)")

    # -- running ----------------------------------------------------------------------------
    def _begin(self, what: str) -> tuple[str, str] | None:
        uris = self._uris()
        if uris is None:
            self.notify("Choose a source and a target first (Connections, 1).", severity="warning")
            return None
        self.busy = what
        self.refresh_bindings()
        return uris

    def _start(self, options: ValidationOptions, what: str) -> None:
        uris = self._begin(what)
        if uris is None:
            return
        self._latest = None
        self.progress = None
        self.query_one(ProgressLine).set_percent(0)
        self._status(f"Running {what}…")
        names = list(self.ferry.context.selected)
        self._run_validation(uris[0], uris[1], names, options, what)

    @work(group="validation", exclusive=True, exit_on_error=False)
    async def _run_validation(
        self, source_uri: str, target_uri: str, names: list[str], options: ValidationOptions,
        what: str,
    ) -> None:  # fmt: skip
        try:
            async with self.connectors.lease(source_uri, target_uri) as (source, target):
                report = await validate_connectors(
                    source,
                    target,
                    names or None,
                    options,
                    self._journal(),
                    self._on_progress,
                    target_names=self._target_names(),
                )
        except asyncio.CancelledError:
            self.post_message(self.Stopped())
            raise
        except Exception as exc:
            self.post_message(self.Failed(one_line(exc)))
            return
        self.post_message(self.Checked(what, report.to_json()))

    def _on_progress(self, p: ValidationProgress) -> None:
        self._latest = p  # latest value: the interval timer shows it

    def _delete_extras(self, name: str) -> None:
        uris = self._begin(f"deleting extras from {name}")
        if uris is None:
            return
        self._status(f"Deleting extras from {name}…")
        self._delete_extras_worker(uris[0], uris[1], name)

    @work(group="validation", exclusive=True, exit_on_error=False)
    async def _delete_extras_worker(self, source_uri: str, target_uri: str, name: str) -> None:
        try:
            async with self.connectors.lease(source_uri, target_uri) as (source, target):
                deleted = await delete_extras(source, target, name, self._target_name(name))
        except asyncio.CancelledError:
            self.post_message(self.Stopped())
            raise
        except Exception as exc:
            self.post_message(self.Failed(one_line(exc)))
            return
        self.post_message(self.ExtrasDeleted(name, deleted))

    @work(group="detail", exclusive=True, exit_on_error=False)
    async def _fetch_detail(
        self, source_uri: str, target_uri: str, name: str, record_id: str, kind: str
    ) -> None:
        try:
            async with self.connectors.lease(source_uri, target_uri) as (source, target):
                pair = await fetch_pair_connectors(
                    source, target, name, record_id, self._target_name(name)
                )
        except asyncio.CancelledError:
            raise  # a newer row was highlighted
        except Exception as exc:
            self.post_message(self.FetchFailed(name, record_id, str(exc)))
            return
        self.post_message(self.RecordFetched(name, pair, kind))

    # -- what the workers said --------------------------------------------------------------
    def _worker_done(self) -> None:
        self.busy = None
        self.refresh_bindings()
        if not self._shown:
            self._release()

    @on(Stopped)
    def _stopped(self) -> None:
        self._worker_done()
        self._status("Stopped. Nothing was recorded for the unfinished collection.")

    @on(Failed)
    def _failed(self, event: Failed) -> None:
        self._worker_done()
        self._status(f"Failed: {event.message}")
        self.notify(event.message, title="Validation failed", severity="error", timeout=10)

    @on(ExtrasDeleted)
    def _extras_deleted(self, event: ExtrasDeleted) -> None:
        self._worker_done()
        said = f"Deleted {event.deleted:,} extra record(s) from {event.name}. f: check again."
        self.notify(said)
        self._status(said)

    @on(Checked)
    def _checked(self, event: Checked) -> None:
        self._worker_done()
        data = event.report
        self.source_uri, self.target_uri = data["source"], data["target"]
        self.results = {c["name"]: c for c in data["collections"]}
        self.query_one(ProgressLine).set_percent(100)
        self._show_results()
        failing = [c for c in data["collections"] if not c.get("ok")]
        if not failing:
            verdict = "✔ everything matches"
        else:
            first = failing[0]
            why = "; ".join(first.get("reasons") or ["not ok"])
            more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
            verdict = f"✘ {first['name']}: {why}{more}"
        if event.what == "repair":
            repairs = [c.get("repair") or {} for c in data["collections"]]
            rewritten = sum(r.get("rewritten", 0) for r in repairs)
            verified = sum(r.get("verified", 0) for r in repairs)  # read back, found equal
            unverified = f" ({rewritten - verified:,} NOT verified)" if verified < rewritten else ""
            verdict = (
                f"repaired {verified:,} record(s), verified by reading back{unverified}; "
                f"f checks again · {verdict}"
            )
        self._status(f"{event.what.capitalize()}: {verdict}")

    @on(RecordFetched)
    def _record_fetched(self, event: RecordFetched) -> None:
        if self._showing == (event.collection, event.pair.id):  # not a row left behind
            self.query_one(DiffDetail).show_pair(event.pair, event.kind)

    @on(FetchFailed)
    def _fetch_failed(self, event: FetchFailed) -> None:
        if self._showing == (event.collection, event.record_id):
            self.query_one(DiffDetail).show_message(f"Could not fetch: {event.message}")

    # -- showing ----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one(ProgressLine).say(text)

    def _sample_progress(self) -> None:
        if self.busy is not None and self._latest is not None:
            self.progress = self._latest

    def _show_results(self) -> None:
        summary = self.query_one("#validation-summary", ListingTable)
        with self.app.batch_update():
            summary.set_rows((name, summary_cells(c)) for name, c in self.results.items())
        if self.current not in self.results:
            self.current = next(iter(self.results), None)
        self._show_differences()

    def _show_differences(self) -> None:
        table = self.query_one("#validation-differences", ListingTable)
        c = self.results.get(self.current or "")
        label = self.query_one("#validation-filter", Static)
        self.query_one(ABPanel).show((c or {}).get("ab"))
        if c is None:
            table.set_rows([])
            label.update("")
            return
        rows = difference_rows(c, self.kind)
        if self.search:
            needle = self.search.lower()
            rows = [r for r in rows if needle in r[1].lower() or needle in r[2].lower()]
        table.set_rows(
            (f"{kind}\x00{record_id}", (Text(kind, style=KIND_STYLE[kind]), record_id, fields))
            for kind, record_id, fields in rows
        )
        totals = {k: c.get(f"{k}_total", 0) for k in KINDS[1:]}
        shown_of = " · ".join(f"{k} {totals[k]:,}" for k in KINDS[1:])
        capped = any(totals[k] > len(c.get(k) or []) for k in KINDS[1:])
        reasons = c.get("reasons") or []
        verdict = Text()
        verdict.append(f"{self.current} ", style="bold")
        if c.get("ok"):
            verdict.append("✔ ok", style="bold green")
        else:
            verdict.append("✘ " + "; ".join(reasons or ["not ok"]), style="bold red")
        verdict.append(f"\n{shown_of} · {self.kind} ({len(rows):,})")
        if self.search:
            verdict.append(f" matching {self.search!r}", style="bold")
        verdict.append(" · lists capped" if capped else "", style="dim")
        label.update(verdict)
        if not rows:
            if self.search:
                message = f"No difference matches {self.search!r} (esc in the search clears it)."
            elif self.kind != "all":
                message = f"No {self.kind} records."
            elif c.get("ok"):
                message = "No differences here."
            else:
                message = (
                    "No record differences listed; this collection fails because: "
                    + "; ".join(reasons or ["see the summary"])
                )
            self.query_one(DiffDetail).show_message(message)

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
            self._showing = (self.current, record_id)
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


class SearchInput(Input):
    """The differences' search box: esc clears it and gives the table the focus back."""

    BINDINGS = [Binding("escape", "clear", "Clear search", id="validation.search-clear")]

    def action_clear(self) -> None:
        screen = self.screen
        if isinstance(screen, ValidationScreen):
            screen.clear_search()


KIND_STYLE = {
    "missing": "bold red",
    "extra": "bold yellow",
    "mismatched": "bold magenta",
    "rounded": "cyan",
}


def summary_cells(c: dict[str, Any]) -> list[Any]:
    def figure(n: int) -> Text:
        if c.get("error") is not None:  # not compared: a green 0 would read "nothing missing"
            return Text("—", style="dim", justify="right")
        return Text(f"{n:,}", style="bold red" if n else "green", justify="right")

    counts_style = "" if c["source_count"] == c["target_count"] else "bold red"
    recall = c.get("recall_at_k")
    if recall is None and c.get("ab"):  # a re-embedded copy: its A/B overlap instead
        recall = c["ab"].get("mean_overlap")
    return [
        c["name"],
        Text("✔", style="bold green") if c.get("ok") else Text("✘", style="bold red"),
        recall_bar(recall) if c.get("error") is None else Text("error", style="bold red"),
        figure(c.get("missing_total", 0)),
        figure(c.get("extra_total", 0)),
        figure(c.get("mismatched_total", 0)),
        Text(f"{c['source_count']:,}", justify="right"),
        Text(f"{c['target_count']:,}", style=counts_style, justify="right"),
        c.get("mode", ""),
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
