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


def _field(option: Option, value: Any) -> Widget:
    common: dict[str, Any] = {"id": field_id(option), "compact": True, "classes": FIELD_CLASS}
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
        widgets.append(_field(option, choices.value(option.dest)))
    yield Horizontal(*widgets, classes="run-options")


def declared_values(screen: DOMNode) -> dict[str, Any]:
    """What the generic fields say, as RunChoices extras (a FerryError names a bad field)."""
    values: dict[str, Any] = {}
    for option in generic_options():
        widget = screen.query_one(f"#{field_id(option)}")
        if isinstance(widget, Checkbox):
            values[option.dest] = widget.value
        elif isinstance(widget, Select):
            values[option.dest] = str(widget.value)
        elif isinstance(widget, Input):
            text = widget.value.strip()
            if not text:
                values[option.dest] = option.default
                continue
            try:
                values[option.dest] = option.parse(text)
            except ValueError:
                raise FerryError(
                    f"{option.label.lower()} must be a {option.type.__name__}",
                    where=option.flag,
                    fix=f"e.g. {option.bounds.example if option.bounds else option.default}",
                ) from None
    return values
