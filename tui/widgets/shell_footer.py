"""The footer, with the shell's own keys (`? Keys`, `q Quit`) held at its right edge.

At 60 columns a screen's keys do not all fit; Textual's footer cuts the row at the right,
which is where the app's keys are — so a person on a narrow terminal lost the one key that
lists all the others. Here those two are docked right and the screen's keys are cut instead
(every one of them is in `?` and the command palette).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # the footer's own key widget

SHELL_ACTIONS = {"help", "quit_ferry"}


class ShellFooter(Footer):
    def compose(self) -> ComposeResult:
        shell = []
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.action in SHELL_ACTIONS:
                shell.append(widget)
            else:
                yield widget
        if shell:
            yield Horizontal(*shell, classes="shell-keys")
