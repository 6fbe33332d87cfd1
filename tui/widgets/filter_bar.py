"""`/` on a list: a one-line filter above it, and the keys that go with every list.

The bar is hidden until `/`; typing narrows the list as you type; enter goes back to the list
with the filter kept (the bar stays, so a narrowed list never looks whole); esc clears it.
`LIST_KEYS` are the bindings a screen with a `ListingTable` adds: `/` filter, `S` sort by the
next column, `-` reverse — the same keys on every list.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static

from ferry.tui.widgets.listing import ListingTable

SORT_KEYS = [
    Binding("S", "sort_list", "Sort", id="list.sort", show=False,
            tooltip="sort by the next column (a header click sorts by it)"),
    Binding("minus", "reverse_list", "Reverse", id="list.reverse", key_display="-", show=False,
            tooltip="reverse the sort"),
]  # fmt: skip


def list_keys(in_footer: bool = True) -> list[Binding]:
    """`/`, `S` and `-`; `/` named in the footer unless the screen's footer is full at 80
    columns (it is always in `?` and the palette)."""
    return [
        Binding("slash", "filter_list", "Filter", id="list.filter", key_display="/",
                show=in_footer, tooltip="show only rows that contain what you type (esc clears)"),
        *SORT_KEYS,
    ]  # fmt: skip


LIST_KEYS = list_keys()


class FilterInput(Input):
    """What the person types; focusable only while its bar is shown, so a hidden bar never
    takes the screen's first focus (nor the letters meant for the list's keys)."""

    BINDINGS = [Binding("escape", "clear", "Clear filter", id="list.filter-clear")]

    def allow_focus(self) -> bool:
        return self.parent is not None and self.parent.has_class("-shown")

    def action_clear(self) -> None:
        bar = self.parent
        if isinstance(bar, FilterBar):
            bar.clear()


class FilterBar(Horizontal):
    """The filter of one `ListingTable` (named by `table_id`): "filter /" and what is typed."""

    def __init__(self, table_id: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.table_id = table_id

    def compose(self) -> ComposeResult:
        yield Static("filter /", classes="filter-label")
        yield FilterInput(placeholder="type to narrow; enter keeps it, esc clears", compact=True)

    @property
    def table(self) -> ListingTable:
        return self.screen.query_one(f"#{self.table_id}", ListingTable)

    @property
    def text(self) -> str:
        return self.query_one(FilterInput).value.strip()

    def open(self) -> None:
        self.add_class("-shown")
        self.query_one(FilterInput).focus()

    def clear(self) -> None:
        self.query_one(FilterInput).value = ""
        self.table.filter_by("")
        self.remove_class("-shown")
        self.table.focus()

    @on(Input.Changed)
    def _narrow(self, event: Input.Changed) -> None:
        event.stop()
        self.table.filter_by(event.value)

    @on(Input.Submitted)
    def _keep(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_class(bool(self.text), "-shown")
        self.table.focus()


class ListKeysMixin:
    """The actions behind `LIST_KEYS`: on the focused list, else the screen's first one."""

    def _list(self) -> ListingTable | None:
        focused = self.focused  # type: ignore[attr-defined]
        if isinstance(focused, ListingTable):
            return focused
        if isinstance(focused, FilterInput) and isinstance(focused.parent, FilterBar):
            return focused.parent.table
        found = self.query(ListingTable)  # type: ignore[attr-defined]
        return found.first() if found else None

    def action_filter_list(self) -> None:
        table = self._list()
        for bar in self.query(FilterBar):  # type: ignore[attr-defined]
            if table is None or bar.table_id == table.id:
                bar.open()
                return

    def action_sort_list(self) -> None:
        table = self._list()
        if table is not None:
            table.sort_next()
            self.notify(table.order_words or "unsorted", timeout=2)  # type: ignore[attr-defined]

    def action_reverse_list(self) -> None:
        table = self._list()
        if table is not None:
            table.reverse()
            self.notify(table.order_words or "unsorted", timeout=2)  # type: ignore[attr-defined]
