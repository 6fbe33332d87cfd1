"""`TypedConfirm`: the one confirmation modal for actions that change what users are served.

Cancel has the focus, so a stray Enter cancels; the confirm button stays disabled until the
exact name of what changes is typed (a habit taken from GitHub's repository deletion); Esc
cancels. It dismisses with True only after a deliberate confirm.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class TypedConfirm(ModalScreen[bool]):
    """Ask for `expected_text` to be typed before `confirm_label` can be pressed."""

    DEFAULT_CSS = """
    TypedConfirm {
        align: center middle;
    }
    TypedConfirm > #dialog {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $error;
        background: $surface;
        padding: 1 2;
    }
    TypedConfirm #title {
        text-style: bold;
        margin-bottom: 1;
    }
    TypedConfirm #details {
        margin-bottom: 1;
    }
    TypedConfirm #buttons {
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    TypedConfirm Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="confirm.cancel",
            tooltip="Close without changing anything",
        ),
    ]
    AUTO_FOCUS = "#cancel"

    def __init__(
        self,
        title: str,
        details: str,
        expected_text: str,
        confirm_label: str = "Confirm",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.details = details
        self.expected_text = expected_text
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(self.title_text), id="title")
            # Names come from databases and users: shown as plain text, never as markup.
            yield Static(Text(self.details), id="details")
            yield Label(Text(f"Type {self.expected_text} to confirm:"), id="prompt")
            yield Input(placeholder=self.expected_text, id="typed")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.confirm_label, id="confirm", variant="error", disabled=True)

    @property
    def matches(self) -> bool:
        return self.query_one("#typed", Input).value == self.expected_text

    @on(Input.Changed, "#typed")
    def _typed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self.matches

    @on(Input.Submitted, "#typed")
    def _submitted(self) -> None:
        if self.matches:
            self.dismiss(True)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.matches:  # a disabled button cannot be pressed; checked again anyway
            self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
