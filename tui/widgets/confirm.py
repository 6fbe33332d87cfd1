"""`TypedConfirm`: the one confirmation modal for actions that change or delete data.

It reads the way it works: the name to type is shown as a label ("Type docs to confirm"),
never as placeholder text that looks like an answer; the input has the focus, so typing
starts at once; Enter confirms only when the text is exactly that name (otherwise a one-line
hint says so and the modal stays open); Esc cancels from anywhere in it; the confirm button
stays disabled until the text matches (a habit taken from GitHub's repository deletion).
It dismisses with True only after a deliberate confirm. Styles live in ferry.tcss.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static


class TypedConfirm(ModalScreen[bool]):
    """Ask for `expected_text` to be typed before `confirm_label` can be pressed."""

    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="confirm.cancel",
            tooltip="Close without changing anything",
        ),
    ]
    AUTO_FOCUS = "#typed"

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
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(Text(self.title_text), id="title", classes="dialog-title")
            # Long plans scroll, so the input and the buttons always fit (80×24).
            with VerticalScroll(id="confirm-details", classes="dialog-body"):
                # Names come from databases and users: plain text, never markup.
                yield Static(Text(self.details), id="details")
            yield Label(
                Text.assemble("Type ", (self.expected_text, "bold"), " to confirm"), id="prompt"
            )
            yield Input(id="typed")
            yield Static("", id="confirm-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(
                    self.confirm_label, id="confirm", variant="error", disabled=True, compact=True
                )
        yield Footer(compact=True)

    @property
    def matches(self) -> bool:
        return self.query_one("#typed", Input).value == self.expected_text

    @on(Input.Changed, "#typed")
    def _typed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self.matches
        self.query_one("#confirm-hint", Static).update("")

    @on(Input.Submitted, "#typed")
    def _submitted(self) -> None:
        if self.matches:
            self.dismiss(True)
            return
        hint = Text.assemble(
            "Type ", (self.expected_text, "bold"), " exactly to confirm, or esc to cancel"
        )
        self.query_one("#confirm-hint", Static).update(hint)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.matches:  # a disabled button cannot be pressed; checked again anyway
            self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
