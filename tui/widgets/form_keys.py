"""Tab and shift+tab, as the app's priority bindings, so a burst of keys keeps its order.

Over a laggy SSH link a person's keys arrive together: "name", Tab, "uri". The app hands each
key to the focused widget's queue as it reads it; a non-priority Tab reaches the app's
focus-next binding only after bubbling back up from the input — by then the keys typed
after it were already queued for the same input, and the Tab seems lost. A priority
binding moves the focus when the Tab is read, so the keys after it go to the next field.
"""

from __future__ import annotations

from textual.binding import Binding

FORM_KEYS = [
    Binding("tab", "app.focus_next", "Next field", id="form.next", show=False, priority=True),
    Binding(
        "shift+tab",
        "app.focus_previous",
        "Previous field",
        id="form.previous",
        show=False,
        priority=True,
    ),
]
