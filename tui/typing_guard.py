"""Keys meant for a text field stay in it when the field lost focus without the person's say.

The shell's one-letter keys (`c` cut over, `s` switch app, `2` Inventory) act on whatever is
focused. A person typing an alias who looks at the field, not the footer, cannot tell that a
refresh, a field being disabled or a dialog closing moved the focus away: the next letters
fired keys. The guard remembers the field the person was typing in; when the focus has moved
since *without* the person moving it (tab, enter, esc, an arrow, a click), a printable key goes
back into that field instead of firing a key. A deliberate move forgets the field, so keys
act as the footer says.
"""

from __future__ import annotations

import weakref

from textual import events
from textual.widget import Widget
from textual.widgets import Input


class TypingGuard:
    """Owned by the app; `redirect` is asked about every key before the app handles it."""

    def __init__(self) -> None:
        self._field: weakref.ref[Input] | None = None
        # A field the guard gave the focus back to does not select its text on that focus
        # (Textual's select-on-focus would make the next letter replace what was typed).
        self._unselecting: weakref.ref[Input] | None = None

    def _forget(self) -> None:
        self._field = None
        field = self._unselecting() if self._unselecting is not None else None
        if field is not None:
            field.select_on_focus = True
        self._unselecting = None

    def give_back(self, field: Input, character: str) -> None:
        """Focus `field` again and put `character` where the person was typing."""
        field.select_on_focus = False
        self._unselecting = weakref.ref(field)
        field.focus()
        field.insert_text_at_cursor(character)

    def observe(self, event: events.Event, focused: Widget | None) -> None:
        """Learn from the person's own input: typing in a field, or moving deliberately."""
        if isinstance(event, events.MouseDown):
            self._forget()  # a click is a deliberate move
        elif isinstance(event, events.Key):
            if isinstance(focused, Input) and event.is_printable:
                self._field = weakref.ref(focused)
            elif not event.is_printable:
                self._forget()  # tab, enter, esc, arrows, ctrl+…: the person moved

    def redirect(self, event: events.Key, focused: Widget | None) -> Input | None:
        """The field a printable key belongs in, when focus left it behind the person's back."""
        field = self._field() if self._field is not None else None
        if field is None or not event.is_printable or event.character is None:
            return None
        if focused is field or isinstance(focused, Input):
            return None
        if not field.is_mounted or not field.focusable or field.screen is not field.app.screen:
            self._forget()
            return None
        return field
