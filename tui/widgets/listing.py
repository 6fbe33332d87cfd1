"""A table that keeps every row and shows those matching a filter, sorted by a column.

Every list of the shell (Inventory, Connections, runs, Cutover, Validation's summary) is one
of these, so `/` and `S` mean the same everywhere — what people who live in k9s or lazygit
expect. The screen hands over all its rows (`set_rows`); what is shown is derived: rows whose
text contains the filter (case-insensitive), ordered by the sort column. The sorted column's
header carries ▲ or ▼, so the order never relies on colour. The highlighted row stays
highlighted across a filter, a sort or a refresh, by its key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

# "1.2k", "3M", "45%", "-0.5", "12 ms": the number a cell shows, for a numeric sort.
_NUMBER = re.compile(r"^\s*([-+]?\d[\d,]*(?:\.\d+)?)\s*([kKM%]?)")
_SCALE = {"k": 1e3, "K": 1e3, "M": 1e6}


def plain(cell: object) -> str:
    """A cell as the text a person reads (a Rich Text's plain string)."""
    return cell.plain if isinstance(cell, Text) else str(cell)


def sort_value(cell: object) -> tuple[int, float, str]:
    """Numbers before words, numbers by value ("1.2k" > "900"), words case-insensitively."""
    text = plain(cell)
    match = _NUMBER.match(text)
    if match:
        number = float(match.group(1).replace(",", "")) * _SCALE.get(match.group(2), 1.0)
        return (0, number, "")
    return (1, 0.0, text.casefold())


class ListingTable(DataTable[Any]):
    """A DataTable whose rows are filtered and sorted by the person, not only by the screen."""

    class Narrowed(Message):
        """The filter or the sort changed what is shown (screens update their counts)."""

        def __init__(self, table: ListingTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        super().__init__(**kwargs)
        self.rows_all: list[tuple[str, tuple[Any, ...]]] = []
        self._positions: dict[str, int] = {}  # key -> index in rows_all (a tick is O(1))
        self.filter_text = ""
        self.sort_column: ColumnKey | None = None
        self.sort_reverse = False
        self._labels: dict[ColumnKey, Text] = {}

    # -- what the screen gives ----------------------------------------------------------------
    def set_rows(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Every row the screen has, as (key, cells); what is shown follows filter and sort."""
        self.rows_all = [(key, tuple(cells)) for key, cells in rows]
        self._positions = {key: i for i, (key, _cells) in enumerate(self.rows_all)}
        self.redraw()

    def set_cell(self, key: str, column: str, value: Any) -> None:
        """Change one cell of a row, shown or filtered out (a tick on a hidden row stays)."""
        index = list(self.columns).index(ColumnKey(column))
        position = self._positions.get(key)
        if position is not None:
            row_key, cells = self.rows_all[position]
            self.rows_all[position] = (row_key, cells[:index] + (value,) + cells[index + 1 :])
        if key in self.rows:
            self.update_cell(key, column, value)

    @property
    def shown_keys(self) -> list[str]:
        """The keys of the rows on screen, in screen order."""
        return [
            str(self.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(self.row_count)
        ]

    @property
    def highlighted_key(self) -> str | None:
        if not self.row_count or not 0 <= self.cursor_row < self.row_count:
            return None
        return str(self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value)

    def matches(self, cells: Sequence[Any]) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.casefold()
        return any(needle in plain(cell).casefold() for cell in cells)

    # -- what the person asks ----------------------------------------------------------------
    def filter_by(self, text: str) -> None:
        self.filter_text = text.strip()
        self.redraw()

    def sort_next(self) -> None:
        """`S`: sort by the next column (none → first → … → last → none)."""
        keys = list(self.columns)
        if not keys:
            return
        if self.sort_column is None:
            self.sort_column = keys[0]
        else:
            index = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
            self.sort_column = keys[index] if index < len(keys) else None
        self.sort_reverse = False
        self.redraw()

    def reverse(self) -> None:
        """`-`: the other direction (sorts by the first column when nothing is sorted)."""
        if self.sort_column is None and self.columns:
            self.sort_column = next(iter(self.columns))
        else:
            self.sort_reverse = not self.sort_reverse
        self.redraw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by it; a second click reverses."""
        event.stop()
        if self.sort_column == event.column_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = event.column_key, False
        self.redraw()

    @property
    def order_words(self) -> str:
        """ "sorted by Count ▼" — for a status line; "" when unsorted."""
        if self.sort_column is None or self.sort_column not in self._labels:
            return ""
        arrow = "▼" if self.sort_reverse else "▲"
        name = self._labels[self.sort_column].plain.strip() or str(self.sort_column.value)
        return f"sorted by {name} {arrow}"

    # -- drawing --------------------------------------------------------------------------------
    def redraw(self) -> None:
        keep = self.highlighted_key
        self.clear()
        for key, cells in self.rows_all:
            if self.matches(cells):
                self.add_row(*cells, key=key)
        if self.sort_column is not None and self.sort_column in self.columns:
            self.sort(self.sort_column, key=sort_value, reverse=self.sort_reverse)
        self._mark_headers()
        if keep is not None:
            try:
                self.move_cursor(row=self.get_row_index(keep))
            except Exception:  # filtered out: the cursor stays at the top
                pass
        self.post_message(self.Narrowed(self))

    def _mark_headers(self) -> None:
        for key, column in self.columns.items():
            label = self._labels.setdefault(key, column.label.copy())
            if key == self.sort_column:
                column.label = Text.assemble(label, " ▼" if self.sort_reverse else " ▲")
            else:
                column.label = label.copy()
        self._require_update_dimensions = True
        self.refresh()
