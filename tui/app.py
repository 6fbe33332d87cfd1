"""The Ferry app shell: five screens on number keys, one journal poller, detached runs.

Why it is shaped this way:

* Each of the five screens is a Textual *mode* (its own screen stack), so switching with
  `1`–`5` keeps every screen's state (cursor, selection, log) instead of rebuilding it.
* The app never runs the engine. A migration is a detached ``ferry migrate`` process
  (core.launcher) and the app is one more viewer of the journal: a single poll, in a worker
  thread, rescheduled with `set_timer` when it finishes, so polls never pile up and a slow
  disk never blocks a keypress. Quitting, or a dropped SSH connection, leaves the run going.
* A screen's module is imported when the screen is first shown (a quick start); a screen
  that fails to import fails loudly.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from ferry.core import launcher
from ferry.core.errors import FerryError
from ferry.core.journal import EventRecord
from ferry.core.option_layers import layered_choices
from ferry.core.profile_defaults import profiles_for_uris
from ferry.core.run_choices import RunChoices, load_choices
from ferry.core.runs import RunState, RunView, unfinished_runs
from ferry.tui.commands import FerryCommands
from ferry.tui.context import AppContext
from ferry.tui.finder import FerryFinder
from ferry.tui.migrate_flags import supported_flags
from ferry.tui.screens.help import HelpScreen
from ferry.tui.screens.quit import QuitScreen
from ferry.tui.theme import FERRY_THEME
from ferry.tui.typing_guard import TypingGuard
from ferry.tui.widgets.figures import percent
from ferry.tui.widgets.form_keys import FORM_KEYS
from ferry.tui.widgets.header import ShellHeader

# (mode, title, module, class) in number-key order.
SCREENS: list[tuple[str, str, str, str]] = [
    ("connections", "Connections", "ferry.tui.screens.connections", "ConnectionsScreen"),
    ("inventory", "Inventory", "ferry.tui.screens.inventory", "InventoryScreen"),
    ("monitor", "Monitor", "ferry.tui.screens.monitor", "MonitorScreen"),
    ("validation", "Validation", "ferry.tui.screens.validation", "ValidationScreen"),
    ("cutover", "Cutover", "ferry.tui.screens.cutover", "CutoverScreen"),
]
POLL_SECONDS = 0.25  # ~4 updates a second while a run is active
IDLE_POLL_SECONDS = 1.0  # a finished run can still be resumed by someone else


@dataclass(frozen=True)
class RunSnapshot:
    """What one poll of the journal saw: the attached run, and its events new since the last."""

    view: RunView
    events: list[EventRecord] = field(default_factory=list)


class FerryApp(App[None]):
    """`ferry`: Connections, Inventory, Monitor, Validation, Cutover on keys 1–5."""

    CSS_PATH = "ferry.tcss"
    TITLE = "ferry"
    COMMANDS = App.COMMANDS | {FerryCommands, FerryFinder}
    BINDINGS = [
        Binding("1", "go('connections')", "Connections", id="go.connections", show=False),
        Binding("2", "go('inventory')", "Inventory", id="go.inventory", show=False),
        Binding("3", "go('monitor')", "Monitor", id="go.monitor", show=False),
        Binding("4", "go('validation')", "Validation", id="go.validation", show=False),
        Binding("5", "go('cutover')", "Cutover", id="go.cutover", show=False),
        Binding("question_mark", "help", "Keys", id="help", key_display="?"),
        Binding("escape", "back", "Back", id="back", show=False),
        Binding("q", "quit_ferry", "Quit", id="quit"),
        *FORM_KEYS,  # Tab moves the focus when it is read, so a burst of keys keeps its order
    ]

    def __init__(
        self,
        state: str | Path | None = None,
        source: str | None = None,
        target: str | None = None,
        *,
        start: str | None = None,
        select_all: bool = False,
        migrate_args: list[str] | None = None,
        poll_seconds: float = POLL_SECONDS,
        demo_source: Path | None = None,
    ) -> None:
        super().__init__()
        # `ferry demo`: the demo's application writes to this source once a run has copied it
        # (core.demo_app), so validation has differences to show and repair.
        self.demo_source = demo_source
        self.context = AppContext(
            state_path=Path(state) if state else None, source_uri=source, target_uri=target
        )
        self.start = start
        self.select_all = select_all
        self.migrate_args = list(migrate_args or [])
        self.poll_seconds = poll_seconds
        self.snapshot: RunView | None = None  # the attached run, as of the last poll
        self.recent_events: deque[EventRecord] = deque(maxlen=300)
        self.launched: dict[str, launcher.Launched] = {}
        self._last_event_id = 0
        self._mode_history: list[str] = []
        self._screens: dict[str, Screen[Any]] = {}
        for mode, *_ in SCREENS:
            self.add_mode(mode, self._factory(mode))
        self.register_theme(FERRY_THEME)
        self.theme = FERRY_THEME.name
        self.typing = TypingGuard()

    async def on_event(self, event: events.Event) -> None:
        """Every key and click first passes the typing guard (see tui/typing_guard.py)."""
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            if isinstance(event, events.Key):
                field = self.typing.redirect(event, self.focused)
                if field is not None and event.character is not None:
                    self.typing.give_back(field, event.character)
                    return
            self.typing.observe(event, self.focused)
        await super().on_event(event)

    # -- screens ----------------------------------------------------------------------------
    def _factory(self, mode: str) -> Callable[[], Screen[Any]]:
        def make() -> Screen[Any]:
            screen = self._make_screen(mode)
            self._screens[mode] = screen
            return screen

        return make

    def _make_screen(self, mode: str) -> Screen[Any]:
        _, _title, module_name, class_name = next(s for s in SCREENS if s[0] == mode)
        screen_class = getattr(importlib.import_module(module_name), class_name)
        return screen_class()

    def screen_for(self, mode: str) -> Screen[Any] | None:
        """The base screen of a mode, if it was shown once (screens are made lazily)."""
        return self._screens.get(mode)

    def on_mount(self) -> None:
        start = self.start or (
            "inventory" if self.context.source_uri and self.context.target_uri else "connections"
        )
        active = self._attach_on_start()
        if active and not self.start:
            start = "monitor"
        first = self.read_journal()  # before any screen mounts: they all see the same facts
        if first is not None:
            self.apply_snapshot(first)
        self.switch_mode(start)
        self._mode_history = [start]
        self.poll_now()

    def _attach_on_start(self) -> bool:
        """Attach to the most recent running run (else the latest run); say what is unfinished."""
        journal = self.context.journal()
        unfinished = unfinished_runs(journal)
        running = [r for r in unfinished if r.active]
        if running:
            self.attach(running[0].run_id)
        else:
            latest = journal.runs.recent(1)
            if latest:
                self.attach(latest[0].run_id)
        if unfinished:
            names = ", ".join(f"{r.run_id} ({r.state.value})" for r in unfinished[:3])
            more = f" +{len(unfinished) - 3}" if len(unfinished) > 3 else ""
            self.notify(f"Unfinished runs: {names}{more}. Monitor (3) → u lists them.", timeout=8)
        return bool(running)

    # -- the journal poller -----------------------------------------------------------------
    def attach(self, run_id: str) -> None:
        """Show this run on the Monitor and in the header from now on."""
        if run_id != self.context.run_id:
            self.context.run_id = run_id
            self._last_event_id = 0
            self.recent_events.clear()
            self.snapshot = None
            monitor = self.screen_for("monitor")
            if monitor is not None and hasattr(monitor, "reset"):
                monitor.reset()

    def poll_now(self) -> None:
        if self.is_running:  # a timer may fire while the app closes
            self.run_worker(self._poll, group="journal-poll", exclusive=True, exit_on_error=False)

    async def _poll(self) -> None:
        delay = IDLE_POLL_SECONDS
        try:
            snapshot = await asyncio.to_thread(self.read_journal)
            if snapshot is not None:
                self.apply_snapshot(snapshot)
                if snapshot.view.active:
                    delay = self.poll_seconds
        finally:
            if self.is_running:
                self.set_timer(delay, self.poll_now)

    def read_journal(self) -> RunSnapshot | None:
        """One look at the attached run (runs in a worker thread: SQLite reads only)."""
        for launched in self.launched.values():
            launched.exited()  # reap finished children so they are not zombies
        run_id = self.context.run_id
        if not run_id:
            return None
        journal = self.context.journal()
        view = RunView.load(journal, run_id)
        if view is None:
            return None
        events = journal.events.after(run_id, self._last_event_id)
        if run_id != self.context.run_id:
            return None  # attached elsewhere while we read
        if events:
            self._last_event_id = events[-1].id
        return RunSnapshot(view, events)

    def apply_snapshot(self, snapshot: RunSnapshot) -> None:
        view = snapshot.view
        if view.run_id != self.context.run_id:
            return
        before, self.snapshot = self.snapshot, view
        same_run = before is not None and before.run_id == view.run_id
        if same_run and before.state.active and view.state.finished:  # type: ignore[union-attr]
            self.run_finished(view)
        if not self.context.source_uri and not self.context.target_uri:
            # Reopened with no profile chosen: the attached run says where from and to.
            self.context.source_uri = view.source_uri
            self.context.target_uri = view.target_uri
            self.context.pair_from_run = True
        self.recent_events.extend(snapshot.events)
        self.refresh_header()
        monitor = self.screen_for("monitor")
        if monitor is not None and hasattr(monitor, "show_snapshot"):
            monitor.show_snapshot(view, snapshot.events)

    def run_finished(self, view: RunView) -> None:
        """The attached run has just ended: say so wherever the person is (a toast, and the
        terminal bell when they are not watching the Monitor); in the demo, the demo's
        application then writes to its source."""
        done = f"{view.written:,}/{view.total:,} records"
        severity = "information" if view.state is RunState.COMPLETED else "error"
        next_step = " — 4 validates" if view.state is RunState.COMPLETED else " — 3 shows it"
        self.notify(f"Run {view.state.value}: {done}{next_step}", severity=severity, timeout=8)
        if self.current_mode != "monitor":
            self.bell()
        if self.demo_source is not None and view.state is RunState.COMPLETED:
            self.demo_app_writes(self.demo_source)

    @work(group="demo-app", exclusive=True, exit_on_error=False, thread=True)
    def demo_app_writes(self, source: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "ferry.core.demo_app", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            message = f"the demo app could not write: {done.stderr.strip()[-200:]}"
            self.call_from_thread(self.notify, message, severity="error")
            return
        self.call_from_thread(
            self.notify,
            f"{done.stdout.strip()}. Validate (4), f for a full check, to see and repair them.",
            title="demo app",
            timeout=20,
        )

    def run_phase(self) -> str:
        """The header's right side, labelled: the attached run's state, and "other run"
        when that run is not between the source and target the header shows."""
        view = self.snapshot
        if view is None:
            return "no run"
        done = percent(view.written, view.total)
        same = (view.source_uri, view.target_uri) == (
            self.context.source_uri,
            self.context.target_uri,
        )
        return f"{'run' if same else 'other run'} {view.state.value} {done}"

    def refresh_header(self) -> None:
        try:
            header = self.screen.query_one(ShellHeader)
        except Exception:
            return
        header.source = self.context.source_uri
        header.target = self.context.target_uri
        header.route_label = "run's " if self.context.pair_from_run else ""
        header.phase = self.run_phase()
        header.run_state = self.snapshot.state if self.snapshot else None
        titles = {mode: title for mode, title, *_ in SCREENS}
        header.screen_title = getattr(self.screen, "TITLE", None) or titles.get(
            self.current_mode, ""
        )

    # -- starting and resuming runs ---------------------------------------------------------
    def active_run_for(self, source: str, target: str, names: list[str]) -> str | None:
        """A live run of exactly these collections between these two: attach to it instead
        of starting a twin (whatever options it was started with)."""
        wanted = set(names)
        for view in unfinished_runs(self.context.journal()):
            same_pair = (view.source_uri, view.target_uri) == (source, target)
            if view.active and same_pair and set(view.requested) == wanted:
                return view.run_id
        return None

    def active_run_into(self, target: str) -> str | None:
        """A live run writing into this target, whatever its collections: an embedded target
        (a Qdrant Edge or local folder) takes one writing process at a time."""
        for view in unfinished_runs(self.context.journal()):
            if view.active and view.target_uri == target:
                return view.run_id
        return None

    async def launch_run(self, names: list[str], choices: RunChoices | None = None) -> str | None:
        """Start `ferry migrate` detached for these collections and attach to its run.

        `choices` (the run dialog's) become the command's flags; without them, the options
        the app was started with (`ferry demo`'s rate cap)."""
        source, target = self.context.source_uri, self.context.target_uri
        if not source or not target:
            raise FerryError("choose a source and a target first", fix="Connections (1): f / o")
        existing = self.active_run_for(source, target, names)
        if existing:
            self.attach(existing)
            self.notify(f"Run {existing} is already going: attached to it.")
            return existing
        journal = self.context.journal()
        choices = choices or self.default_choices(source, target)
        extra = choices.to_argv(supported_flags())
        launched = await asyncio.to_thread(
            launcher.launch, source, target, names, journal.path, extra
        )
        return await self._claimed(launched)

    def default_choices(self, source: str, target: str) -> RunChoices:
        """What the run dialog offers first: the choices last used for this pair, else the
        defaults with the app's own flags (`ferry demo`'s rate cap) on top; the layout a
        profile of the pair names replaces a remembered one (the profile is where a person
        says which framework the app uses; the dialog can still pick another)."""
        remembered = load_choices(self.context.journal().path, source, target)
        return layered_choices(remembered, self.migrate_args, profiles_for_uris(source, target))

    async def resume_run(self, run: RunView) -> str | None:
        """Relaunch an interrupted/cancelled/failed run: it resumes from its watermark."""
        journal = self.context.journal()
        launched = await asyncio.to_thread(launcher.resume, run, journal.path)
        return await self._claimed(launched)

    async def _claimed(self, launched: launcher.Launched) -> str | None:
        journal = self.context.journal()
        run_id = await asyncio.to_thread(launcher.find_launched_run, journal, launched, 600)
        if run_id is None:
            self.notify(
                launcher.launch_failure(launched),
                title="migration did not start",
                severity="error",
                timeout=15,
            )
            return None
        launched = await asyncio.to_thread(launcher.name_log, launched, run_id)
        self.launched[run_id] = launched
        self.attach(run_id)
        self.poll_now()
        return run_id

    # -- actions ----------------------------------------------------------------------------
    def _modal_open(self) -> bool:
        return isinstance(self.screen, ModalScreen)

    def action_go(self, mode: str) -> None:
        if self._modal_open() or mode == self.current_mode:
            return
        self._mode_history.append(mode)
        del self._mode_history[:-20]
        self.switch_mode(mode)

    def action_back(self) -> None:
        if self._modal_open():
            return
        if len(self.screen_stack) > 1:
            self.pop_screen()
            return
        if len(self._mode_history) > 1:
            self._mode_history.pop()
            self.switch_mode(self._mode_history[-1])

    def action_help(self) -> None:
        if self._modal_open():
            return
        self.push_screen(HelpScreen(self.screen, list(self.BINDINGS)))

    async def action_quit(self) -> None:
        """ctrl+q and the palette's "Quit": the same question as `q` while a run is going."""
        self.action_quit_ferry()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Under a modal, the shell's keys (screens, help, quit) are not offered: a modal's
        footer shows the modal's own keys only."""
        return not (action in {"go", "help", "quit_ferry"} and self._modal_open())

    def copy(self, text: str, what: str) -> None:
        """Copy `text` to the terminal's clipboard (OSC 52, works over SSH) and say so."""
        self.copy_to_clipboard(text)
        shown = text if len(text) <= 60 else text[:57] + "…"
        self.notify(f"Copied {what}: {shown}", title="Clipboard", timeout=4)

    def action_quit_ferry(self) -> None:
        if self._modal_open():
            return
        view = self.snapshot
        if view is None or not view.active:
            self.exit()
            return

        def answered(answer: str | None) -> None:
            if answer == "leave":
                self.exit()
            elif answer == "cancel":
                self.context.journal().mailbox.request(view.run_id, "cancel")
                self.exit()

        self.push_screen(QuitScreen(view.run_id, view.state.value), answered)


def run_tui(
    state: str | None = None,
    source: str | None = None,
    target: str | None = None,
    start: str | None = None,
    select_all: bool = False,
    migrate_args: list[str] | None = None,
    demo_source: Path | None = None,
) -> int:
    """Entry point of `ferry` and `ferry demo` (which caps the rate so the run can be watched)."""
    FerryApp(
        state,
        source,
        target,
        start=start,
        select_all=select_all,
        migrate_args=migrate_args,
        demo_source=demo_source,
    ).run()
    return 0
