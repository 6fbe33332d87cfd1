"""Fields for declared dialog options that have no hand-made field in the run dialog.

An option added to `core/options.py` with `in_dialog=True` shows up in the run dialog without
touching the screen: an Input for a number or text, a Select for choices, a Checkbox for a
switch. The hand-made fields (batch, workers, rate, mode, layout, target, embed) stay as they
are; these come in one extra row below them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.containers import Horizontal
from textual.dom import DOMNode
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select

from ferry.core.errors import FerryError
from ferry.core.options import Option, dialog_options
from ferry.core.run_choices import RunChoices

FIELD_CLASS = "run-declared"


def generic_options() -> list[Option]:
    """Dialog options RunChoices has no field for (so the dialog has no hand-made field)."""
    own = set(RunChoices.__dataclass_fields__)
    return [o for o in dialog_options() if o.dest not in own]


def field_id(option: Option) -> str:
    return f"run-opt-{option.dest.replace('_', '-')}"


def option_field(option: Option, value: Any, widget_id: str, classes: str = FIELD_CLASS) -> Widget:
    """The widget for one declared option: Checkbox, Select or Input, by its type."""
    common: dict[str, Any] = {"id": widget_id, "compact": True, "classes": classes}
    if option.type is bool:
        return Checkbox(option.label, bool(value), tooltip=option.help, **common)
    if option.choices:
        return Select(
            [("default", ""), *((c, c) for c in option.choices)],
            value=value if value in option.choices else "",
            allow_blank=False,
            **common,
        )
    kind = {int: "integer", float: "number"}.get(option.type, "text")
    text = "" if value is None else option.to_text(value)
    return Input(text, type=kind, tooltip=option.help, **common)  # type: ignore[arg-type]


def declared_fields(choices: RunChoices) -> Iterator[Widget]:
    """One row with a labelled field per generic option; nothing when there is none."""
    options = generic_options()
    if not options:
        return
    widgets: list[Widget] = []
    for option in options:
        if option.type is not bool:
            widgets.append(Label(option.label, classes="run-label"))
        widgets.append(option_field(option, choices.value(option.dest), field_id(option)))
    yield Horizontal(*widgets, classes="run-options")


def declared_values(screen: DOMNode) -> dict[str, Any]:
    """What the generic fields say, as RunChoices extras (a FerryError names a bad field)."""
    return {
        option.dest: read_option(option, screen.query_one(f"#{field_id(option)}"))
        for option in generic_options()
    }


def read_option(option: Option, widget: Widget) -> Any:
    """What one declared option's field says (a FerryError names a bad value)."""
    if isinstance(widget, Checkbox):
        return widget.value
    if isinstance(widget, Select):
        return str(widget.value)
    text = widget.value.strip() if isinstance(widget, Input) else ""
    if not text:
        return option.default
    try:
        return option.parse(text)
    except ValueError:
        raise FerryError(
            f"{option.label.lower()} must be a {option.type.__name__}",
            where=option.flag,
            fix=f"e.g. {option.bounds.example if option.bounds else option.default}",
        ) from None
