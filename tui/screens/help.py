"""`?`: every key of the screen underneath and of the shell, with what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

# Keys every table, list and form answers (Textual's own): not in any screen's bindings.
MOVING = [
    ("tab", "next field or table (shift+tab: previous)"),
    ("↑ ↓ ← →", "move in a table or list"),
    ("pgup pgdn", "a page up or down"),
    ("home end", "first or last row (in a log: top, or follow the end)"),
    ("space", "select a row (Inventory) or press a button"),
    ("enter", "open, confirm or submit what is focused"),
]
KEY_NAMES = {"question_mark": "?", "escape": "esc", "delete": "del"}


def describe(bindings: list[BindingType]) -> list[tuple[str, str]]:
    """(keys, description) for every described Binding, keys joined the way users type them."""
    rows = []
    listed = [b for b in bindings if isinstance(b, Binding) and (b.id or "").startswith("list.")]
    for binding in bindings:
        if binding in listed:
            continue
        if isinstance(binding, Binding) and binding.description:
            keys = binding.key_display or ",".join(
                KEY_NAMES.get(k, k) for k in binding.key.split(",")
            )
            rows.append((keys, binding.description))
    if listed:  # the same on every list: one row, so the help still fits 24 rows
        keys = " ".join(b.key_display or b.key for b in listed)
        words = ", ".join(b.description.lower() for b in listed)
        rows.append((keys, f"{words} the list"))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, screen: Screen[object], app_bindings: list[BindingType]) -> None:
        super().__init__()
        self.title_text = getattr(screen, "TITLE", "") or "This screen"
        self.screen_rows = describe(list(getattr(screen, "BINDINGS", [])))
        self.app_rows = describe(app_bindings)

    def compose(self) -> ComposeResult:
        lines = [f"[b]{self.title_text}[/b]"]
        lines += [f"  [b]{keys:>10}[/b]  {text}" for keys, text in self.screen_rows]
        lines += ["", "[b]Everywhere[/b]"]
        lines += [f"  [b]{keys:>10}[/b]  {text}" for keys, text in self.app_rows]
        lines += ["", "[b]Moving around[/b]"]
        lines += [f"  [b]{keys:>10}[/b]  {text}" for keys, text in MOVING]
        lines += ["", "  [dim]ctrl+p: command palette · esc: close[/dim]"]
        with Vertical(classes="dialog", id="help-dialog"), VerticalScroll():
            yield Static("\n".join(lines), id="help-text", markup=True)
        yield Footer(compact=True)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
