"""A checkbox whose state reads without colour: ✓ when ticked, blank when not.

Textual's Checkbox draws the same "X" in both states and tells them apart by colour alone,
which a person on a monochrome terminal, a colour-blind person or a screenshot in a ticket
cannot read.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "✓" if self.value else " "
        return super()._button
