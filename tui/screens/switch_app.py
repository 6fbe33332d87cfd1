"""`s` on Cutover: the few lines the application changes to read the candidate collection.

The same text `ferry migrate` and `ferry validate` print ("switch the app: …"), made by the
same core function (core.switch_app → core.plan.app_switch) from what the target and the
journal say: the framework's Qdrant store class with the settings this collection needs, how
ids are found, and how a score threshold tuned on Chroma converts for its metric. The lines
are long code, so they wrap in a scrollable box; `y` copies them all.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from ferry.core.journal import Journal
from ferry.core.switch_app import SwitchText, switch_for
from ferry.tui.screens.base import one_line


def switch_body(found: SwitchText) -> Text:
    """The lines, a blank line between them (each is one thing to change)."""
    text = Text()
    if found.layout:
        text.append(f"layout {found.layout}, {found.layout_reason}\n", style="dim")
    for index, line in enumerate(found.lines):
        text.append(("\n\n" if index else "") + line)
    return text


class SwitchAppScreen(ModalScreen[None]):
    """What the app changes for one collection; read from the target when opened."""

    BINDINGS = [
        Binding("escape,s,q", "close", "Close", id="switch.close"),
        Binding("y", "copy", "Copy", id="switch.copy", tooltip="copy the lines to the clipboard"),
    ]

    def __init__(self, target_uri: str, collection: str, journal: Journal) -> None:
        super().__init__()
        self.target_uri = target_uri
        self.collection = collection
        self.journal = journal
        self.found: SwitchText | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="switch-dialog"):
            yield Static(
                Text.assemble(("Switch the app to ", "bold"), (self.collection, "bold")),
                id="switch-title",
            )
            with VerticalScroll(id="switch-scroll"):
                yield Static(
                    Text(f"Reading {self.collection} on the target…", style="dim"),
                    id="switch-text",
                )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#switch-scroll", VerticalScroll).focus()
        self._read()

    @work(exclusive=True, group="switch-app", exit_on_error=False)
    async def _read(self) -> None:
        body = self.query_one("#switch-text", Static)
        try:
            found = await switch_for(self.target_uri, self.collection, self.journal)
        except Exception as exc:  # shown in the box, in words
            body.update(Text(f"✗ {one_line(exc)}", style="bold red"))
            return
        self.found = found
        if found.read_as and found.read_as != self.collection:
            self.query_one("#switch-title", Static).update(
                Text.assemble(
                    ("Switch the app to ", "bold"),
                    (self.collection, "bold"),
                    f" — read through the alias {found.read_as}",
                )
            )
        body.update(switch_body(found))

    def action_copy(self) -> None:
        if self.found is None:
            self.notify("Nothing to copy yet.", severity="warning", timeout=3)
            return
        copy = getattr(self.app, "copy", None)
        if callable(copy):
            copy(self.found.text(), f"how to switch the app to {self.collection}")
        else:  # a host app without Ferry's copy helper (tests)
            self.app.copy_to_clipboard(self.found.text())

    def action_close(self) -> None:
        self.dismiss(None)
