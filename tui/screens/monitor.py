"""Monitor (3): the attached run, live — bars, rates, a throughput sparkline, the event log.

The screen never polls by itself: the app's single journal poller hands it a `RunView`
(core.runs: the run's state, its collections and their sums) about four times a second, and the screen updates the widgets it already has (a bar's
progress, a label's text, a few log lines). Nothing is rebuilt, so the cursor and the log's
scroll position survive, and drawing costs the engine process nothing: it is another process.
"""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Log, ProgressBar, Sparkline, Static

from ferry.core.journal import EventRecord
from ferry.core.runs import CollectionView, RunState, RunView, named_run
from ferry.tui.screens.base import FerryScreen, in_this_app
from ferry.tui.screens.quit import AskScreen
from ferry.tui.screens.runs import RunsScreen
from ferry.tui.theme import style_of
from ferry.tui.widgets.figures import count, duration, megabytes_per_second, rate

SPARKLINE_SAMPLES = 120  # 30 s at four polls a second
LOG_KINDS = {"phase", "retry", "error", "warning", "info"}
HINTS = {
    RunState.INTERRUPTED: "  its process died — r resumes from the watermark",
    RunState.CANCELLED: "  r resumes from the watermark",
    RunState.FAILED: "  see the log; r retries",
    RunState.PAUSED: "  p or r resumes",
    RunState.RUNNING: "  p pauses · c cancels · q leaves it running",
    RunState.CANCELLING: "  stopping after the batches in flight",
}
PAUSABLE = {RunState.RUNNING, RunState.PAUSED}
THROTTLE_SHOWN_SECONDS = 10.0  # "throttled" stays on the rates line this long after a 429


def pause_refusal(state: RunState | None) -> str:
    """Why `p` does nothing now, so the key never looks dead."""
    if state is None:
        return "Nothing to pause: the run has not reported yet."
    if state.resumable:
        return f"Nothing to pause: the run is {state.value}; r resumes it."
    if state.active:
        return f"Nothing to pause: the run is {state.value}."
    return f"Nothing to pause: the run is {state.value}; m starts a new one."


class CollectionRow(Horizontal):
    """One collection: name, bar, figures. Updated in place, never recreated."""

    def __init__(self, name: str) -> None:
        super().__init__(classes="collection-row")
        self.collection = name
        self.run_running = False  # set by the screen: the run itself is `running`
        # The newest view, kept so that one arriving before the row's children exist (the
        # poller is faster than a mount under load) is drawn on mount instead of raising.
        self.latest: CollectionView | None = None
        self.ready = False  # set in on_mount, when the children can be queried

    def compose(self) -> ComposeResult:
        yield Label(self.collection, classes="collection-name")
        yield ProgressBar(total=1, show_eta=False, classes="collection-bar")
        yield Static("", classes="collection-figures")

    def on_mount(self) -> None:
        self.ready = True
        if self.latest is not None:
            self.draw(self.latest)

    def show(self, view: CollectionView) -> None:
        self.latest = view
        if self.ready:
            self.draw(view)

    def draw(self, view: CollectionView) -> None:
        total, written = view.total, view.records_written
        bar = self.query_one(ProgressBar)
        if view.indexing:
            # The target builds its index: indexed/total where the engine says (Qdrant
            # server), an indeterminate bar where it does not (Qdrant Edge's optimizer).
            if view.index_fraction is None:
                bar.update(total=None)
            else:
                bar.update(total=view.index_total, progress=view.indexed)
        elif total == 0 and view.done:
            bar.update(total=1, progress=1)
        else:
            bar.update(total=max(total, 1), progress=min(written, max(total, 1)))
        figures = Text(no_wrap=True, overflow="ellipsis")
        figures.append(f"{count(written)}/{count(total)} ")
        figures.append(view.state_word, style=style_of(view.state_word))
        if view.moving and self.run_running:  # a rate only while it really moves
            figures.append(f" {rate(view.records_per_second)}")
        elif view.indexing:
            figures.append(f" {duration(view.index_elapsed())}")
            if view.indexed is not None and view.index_total:
                figures.append(f" {count(view.indexed)}/{count(view.index_total)} indexed")
        if view.live_words:  # a live source being followed or caught up (core/live)
            figures.append(f" · {view.live_words}")
        self.query_one(".collection-figures", Static).update(figures)


class MonitorScreen(FerryScreen):
    TITLE = "Monitor"
    throttled_at = 0.0  # when the embedding endpoint last answered 429 (re-embedding)
    BINDINGS = [
        Binding(
            "p",
            "pause",
            "Pause/resume",
            id="monitor.pause",
            tooltip="ask the engine process to pause or resume",
        ),
        Binding(
            "r",
            "resume",
            "Resume",
            id="monitor.resume",
            tooltip="resume a paused run, or relaunch an interrupted one",
        ),
        Binding(
            "c",
            "cancel_run",
            "Cancel",
            id="monitor.cancel",
            tooltip="stop the run; it can be resumed later",
        ),
        Binding("l", "log", "Log", id="monitor.log", tooltip="the run's log, followed live"),
        Binding("u", "runs", "Runs", id="monitor.runs", tooltip="list runs and attach to one"),
        Binding(
            "j",
            "jump",
            "Go to run",
            id="monitor.jump",
            tooltip="attach to the run this run's error names (the one holding its target)",
        ),  # fmt: skip
        Binding(
            "y", "copy_run_id", "Copy id", id="monitor.copy", show=False, tooltip="copy the run id"
        ),  # fmt: skip
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, CollectionRow] = {}
        self.samples: deque[float] = deque(maxlen=SPARKLINE_SAMPLES)
        self.state: RunState | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="monitor-body"):
            yield Static(
                "No run attached: start one from Inventory (2) with m, or u to list runs.",
                id="run-line",
                markup=False,
            )
            with Horizontal(id="overall-row"):
                yield Label("Overall", classes="collection-name")
                yield ProgressBar(total=1, show_eta=False, id="overall")
                yield Static("", id="overall-figures")
            yield Vertical(id="collection-rows")
            yield Static("", id="rates", markup=False)
            yield Sparkline([], id="throughput")
            yield Log(id="events", max_lines=500, auto_scroll=True)

    def on_mount(self) -> None:
        view = self.ferry.snapshot
        if view is not None:
            self.write_events(list(self.ferry.recent_events))
            self.call_after_refresh(self.show_snapshot, view, [])
        # Lines written before the first layout scroll a log of height 0: open at the latest.
        self.call_after_refresh(self.show_latest_events)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.call_after_refresh(self.show_latest_events)

    def show_latest_events(self) -> None:
        if self.is_mounted:
            self.query_one("#events", Log).scroll_end(animate=False, immediate=True)

    # -- updates from the app's poller -------------------------------------------------------
    def reset(self) -> None:
        """Another run was attached: forget the previous one's rows, samples and log."""
        for row in self.rows.values():
            row.remove()
        self.rows.clear()
        self.samples.clear()
        self.state = None
        if self.is_mounted:
            self.query_one("#throughput", Sparkline).data = []
            self.query_one("#events", Log).clear()

    def show_snapshot(self, view: RunView, events: list[EventRecord]) -> None:
        if not self.is_mounted:
            return
        container = self.query_one("#collection-rows", Vertical)
        for collection in view.collections:
            widget = self.rows.get(collection.name)
            if widget is None:
                widget = self.rows[collection.name] = CollectionRow(collection.name)
                widget.run_running = view.state is RunState.RUNNING
                container.mount(widget)
            widget.run_running = view.state is RunState.RUNNING
            widget.show(collection)
        total, written = view.total, view.written
        overall = self.query_one("#overall", ProgressBar)
        if total == 0 and view.state is RunState.COMPLETED:
            overall.update(total=1, progress=1)
        else:
            overall.update(total=max(total, 1), progress=min(written, max(total, 1)))
        self.query_one("#overall-figures", Static).update(f"{count(written)}/{count(total)}")
        now = view.records_per_second
        moving = view.state is RunState.RUNNING  # rates and an ETA mean something only then
        retries, errors = view.retries, view.errors
        rates = Text(no_wrap=True, overflow="ellipsis")
        rates.append("now ", style="dim")
        rates.append(rate(now) if moving else "—", style="bold")
        rates.append("  avg ", style="dim")
        rates.append(rate(view.average_records_per_second))
        rates.append(f"  {megabytes_per_second(view.bytes_per_second)}" if moving else "")
        rates.append("  ETA ", style="dim")
        rates.append(duration(view.eta_seconds) if moving else "—")
        rates.append("  retries ", style="dim")
        rates.append(str(retries), style="yellow" if retries else "")
        rates.append("  errors ", style="dim")
        rates.append(str(errors), style="bold red" if errors else "")
        if self.throttling(events) and moving:  # the endpoint's rate limit sets the pace
            rates.append("  throttled", style="bold yellow")
        self.query_one("#rates", Static).update(rates)
        if view.state is RunState.RUNNING:
            self.samples.append(now)
            self.query_one("#throughput", Sparkline).data = list(self.samples)
        self.query_one("#run-line", Static).update(self.run_line(view))
        self.write_events(events)
        if view.state != self.state:
            self.state = view.state
            self.refresh_bindings()

    def run_line(self, view: RunView) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("Run ", style="bold")
        text.append(f"{view.run_id}  ")
        text.append(view.state.value, style=style_of(view.state))
        text.append(HINTS.get(view.state, ""), style="dim")
        return text

    def throttling(self, events: list[EventRecord]) -> bool:
        """Whether the embedding endpoint throttled the run in the last few seconds."""
        for event in events:
            if event.kind == "retry" and event.message.startswith("embed throttled"):
                self.throttled_at = max(self.throttled_at, event.ts)
        return time.time() - self.throttled_at < THROTTLE_SHOWN_SECONDS

    def write_events(self, events: list[EventRecord]) -> None:
        log = self.query_one("#events", Log)
        lines = []
        for event in events:
            if event.kind not in LOG_KINDS:
                continue
            stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
            where = event.collection or "run"
            lines.append(f"{stamp} {event.kind:<7} {where}: {in_this_app(event.message)}")
        if lines:
            log.write_lines(lines)

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.ferry.snapshot.state if self.ferry.snapshot else None
        if action == "pause":
            return state in PAUSABLE
        if action == "cancel_run":
            return state in PAUSABLE or state is RunState.PENDING
        if action == "resume":
            return state is not None and (state is RunState.PAUSED or state.resumable)
        if action == "jump":  # only when an error names another run: shown, or not at all
            return self.ferry.snapshot is not None and named_run(self.ferry.snapshot) is not None
        return True

    def _run_id(self) -> str | None:
        return self.ferry.snapshot.run_id if self.ferry.snapshot else None

    def _log(self, message: str) -> None:
        self.query_one("#events", Log).write_line(message)

    def action_pause(self) -> None:
        run_id, state = self._run_id(), self.state
        if not run_id:
            self.notify("No run attached: u lists runs.", severity="warning")
            return
        if state not in PAUSABLE:
            self.notify(pause_refusal(state), severity="warning")
            return
        command = "resume" if state is RunState.PAUSED else "pause"
        self.ferry.context.journal().mailbox.request(run_id, command)
        self._log(f"{command} requested…")

    def action_resume(self) -> None:
        run_id, state = self._run_id(), self.state
        if not run_id or state is None:
            return
        if state is RunState.PAUSED:
            self.ferry.context.journal().mailbox.request(run_id, "resume")
            self._log("resume requested…")
        elif state.resumable and self.ferry.snapshot is not None:
            self._log("relaunching ferry migrate: it resumes from the watermark…")
            self.relaunch(self.ferry.snapshot)

    @work(exclusive=True, group="relaunch")
    async def relaunch(self, run: RunView) -> None:
        run_id = await self.ferry.resume_run(run)
        if run_id:
            self._log(f"run {run_id} resumed in a new process")

    def action_cancel_run(self) -> None:
        run_id = self._run_id()
        if not run_id or not (self.state in PAUSABLE or self.state is RunState.PENDING):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.ferry.context.journal().mailbox.request(run_id, "cancel")
                self._log("cancel requested…")

        self.app.push_screen(
            AskScreen(
                f"Cancel run {run_id}? What is written stays; r resumes it later.",
                yes="Cancel the run",
                no="Keep it running",
            ),
            answered,
        )

    def action_log(self) -> None:
        run_id = self._run_id()
        if not run_id:
            self.notify("No run attached: u lists runs.", severity="warning")
            return
        from ferry.tui.screens.log_view import LogScreen

        self.app.push_screen(LogScreen(run_id))

    def action_copy_run_id(self) -> None:
        run_id = self._run_id()
        if run_id:
            self.ferry.copy(run_id, "run id")

    def action_jump(self) -> None:
        view = self.ferry.snapshot
        other = named_run(view) if view is not None else None
        if other is None:
            return
        self.ferry.attach(other)
        self.ferry.poll_now()
        self.notify(f"Attached to run {other}, named by the error of {view.run_id}.")  # type: ignore[union-attr]

    def action_runs(self) -> None:
        def chosen(run_id: str | None) -> None:
            if run_id:
                self.ferry.attach(run_id)
                self.ferry.poll_now()

        self.app.push_screen(RunsScreen(), chosen)
