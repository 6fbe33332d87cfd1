"""Small modals of the shell: leave-or-cancel on quit, and a plain yes/no question.

Quitting never stops a migration by accident: "Leave it running" is focused first.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static


class QuitScreen(ModalScreen[str]):
    """Answers "leave", "cancel" or "stay"."""

    BINDINGS = [
        Binding("escape", "answer('stay')", "Stay", id="quit.stay"),
        Binding("l", "answer('leave')", "Leave running", id="quit.leave"),
        Binding("c", "answer('cancel')", "Cancel the run", id="quit.cancel"),
    ]

    def __init__(self, run_id: str, state: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.state = state

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="quit-dialog"):
            yield Static(f"Run {self.run_id} is {self.state}.", classes="dialog-title")
            yield Static(
                "It runs in its own process: leaving keeps it going, and `ferry` or "
                "`ferry status --follow` shows it again later.",
                classes="dialog-body",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Leave it running", id="leave", variant="primary", compact=True)
                yield Button("Cancel the run", id="cancel", variant="error", compact=True)
                yield Button("Stay", id="stay", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "stay")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


class AskScreen(ModalScreen[bool]):
    """A yes/no question with "No" focused: for destructive single keys (cancel, delete)."""

    BINDINGS = [
        Binding("escape", "answer(False)", "No", id="ask.no"),
        Binding("y", "answer(True)", "Yes", id="ask.yes"),
        Binding("n", "answer(False)", "No", id="ask.no-key", show=False),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="ask-dialog"):
            yield Static(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.no, id="no", variant="primary", compact=True)
                yield Button(self.yes, id="yes", variant="error", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
