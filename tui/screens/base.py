"""What every screen of the shell shares: the header above, the footer below, the app's
context, and one answer to a key pressed while the screen's worker is still at work.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen

from ferry.core.errors import in_words
from ferry.tui.widgets.header import ShellHeader
from ferry.tui.widgets.shell_footer import ShellFooter

if TYPE_CHECKING:
    from ferry.tui.app import FerryApp

BUSY_TIMEOUT = 3.0  # seconds a "busy…" notice stays up


def one_line(exc: BaseException) -> str:
    """What a worker's failure says on screen: a FerryError's what/where/fix line, else
    the driver's own message."""
    return in_this_app(in_words(exc, 300))


# The CLI's advice, said the way this app does it: the screen names its own keys and never
# sends a person to the command line. (pattern, replacement) in order.
IN_THIS_APP = [
    (re.compile(r"pass --mode append"), "choose mode append in the run dialog (m on Inventory)"),
    (
        re.compile(r"run `ferry validate` on (\S+) \(or --force --reason TEXT\)"),
        r"validate \1 on Validation (4) with r, or tick Force and give a reason",
    ),
    (re.compile(r"run `ferry validate --full`"), "run a full diff on Validation (4) with f"),
    (re.compile(r"run `ferry validate`"), "validate on Validation (4) with r"),
]


def in_this_app(message: str) -> str:
    """A core message with its CLI advice rewritten as this app's keys."""
    for pattern, replacement in IN_THIS_APP:
        message = pattern.sub(replacement, message)
    return message


class FerryScreen(Screen[None]):
    """A top-level screen (1–5). Subclasses yield their body from `compose_body`."""

    TITLE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        # What this screen's worker is doing ("checks", "cutover"), or None when idle.
        self.busy: str | None = None

    @property
    def ferry(self) -> FerryApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ShellHeader(id="shell-header")
        yield from self.compose_body()
        # The palette (ctrl+p) is named in `?`, not in the footer: 80 columns go to keys.
        yield ShellFooter(compact=True, show_command_palette=False)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.ferry.refresh_header()

    def refuse_while_busy(self, hint: str = "") -> bool:
        """True, after saying "busy…", when a worker of this screen is still at work.

        Actions that must not overlap call this first: a key pressed at the wrong moment
        gets an answer instead of being silently dropped (over a laggy link, a person
        cannot tell a dropped key from a slow screen).
        """
        if self.busy is None:
            return False
        self.notify(
            f"busy… {self.busy}" + (f" — {hint}" if hint else ""),
            severity="warning",
            timeout=BUSY_TIMEOUT,
        )
        return True
