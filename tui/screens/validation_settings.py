"""`o` on Validation: how deep the checks go — the `ferry validate` options, in a form.

Sample size, k, number of queries, float tolerance and the recall threshold, checked the way
the CLI checks them; Enter (or ctrl+s) keeps them for this session's checks, esc leaves them
as they were.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static

from ferry.core.errors import FerryError
from ferry.core.validate import ValidationOptions

FIELDS = [  # (id, label, help, type)
    ("sample", "Sample", "records compared field by field (0: none)", "integer"),
    ("k", "k", "top-k of recall@k", "integer"),
    ("queries", "Queries", "search queries for recall (0: no recall)", "integer"),
    ("tolerance", "Tolerance", "largest vector difference that still matches", "number"),
    ("recall_threshold", "Recall ≥", "recall@k below this fails the collection", "number"),
]


def read_settings(values: dict[str, str], base: ValidationOptions) -> ValidationOptions:
    """The form's text as options, or a FerryError naming the field to fix."""
    changes: dict[str, float | int] = {}
    for key, label, _help, kind in FIELDS:
        text = values[key].strip()
        try:
            changes[key] = int(text) if kind == "integer" else float(text)
        except ValueError:
            raise FerryError(
                f"{label}: {text!r} is not a number", where="validation settings"
            ) from None
    if changes["sample"] < 0 or changes["queries"] < 0:
        raise FerryError("sample and queries cannot be negative", fix="0 turns a check off")
    if changes["k"] < 1:
        raise FerryError("k must be at least 1", where="validation settings")
    if changes["tolerance"] < 0:
        raise FerryError("tolerance cannot be negative", where="validation settings")
    if not 0 <= changes["recall_threshold"] <= 1:
        raise FerryError("the recall threshold is between 0 and 1", where="validation settings")
    return replace(base, **changes)  # type: ignore[arg-type]


def settings_line(options: ValidationOptions) -> str:
    """The settings in one short line, for the screen's status row."""
    return (
        f"sample {options.sample:,} · k {options.k} · queries {options.queries} · "
        f"tol {options.tolerance:g} · recall ≥ {options.recall_threshold:g}"
    )


class ValidationSettings(ModalScreen[ValidationOptions | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
        Binding("ctrl+s", "save", "Keep", id="settings.save"),
    ]
    AUTO_FOCUS = "#setting-sample"

    def __init__(self, options: ValidationOptions) -> None:
        super().__init__()
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="settings-dialog"):
            yield Static("Validation settings", classes="dialog-title")
            for key, label, help_text, kind in FIELDS:
                with Horizontal(classes="setting-row"):
                    yield Label(label, classes="setting-label")
                    yield Input(
                        f"{getattr(self.options, key):g}"
                        if kind == "number"
                        else str(getattr(self.options, key)),
                        type=kind,
                        id=f"setting-{key}",
                        compact=True,
                        classes="setting-input",
                    )
                    yield Label(help_text, classes="setting-help")
            yield Static("", id="settings-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="settings-cancel", compact=True)
                yield Button("Keep", id="settings-keep", variant="primary", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = not self.app.is_headless

    @on(Input.Submitted)
    @on(Button.Pressed, "#settings-keep")
    def action_save(self) -> None:
        values = {key: self.query_one(f"#setting-{key}", Input).value for key, *_ in FIELDS}
        try:
            options = read_settings(values, self.options)
        except FerryError as exc:
            self.query_one("#settings-error", Static).update(Text(exc.one_line(), style="red"))
            return
        self.dismiss(options)

    @on(Button.Pressed, "#settings-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
