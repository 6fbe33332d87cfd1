"""What every screen of the shell shares: the header above, the footer below."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from tui.widgets.header import ShellHeader

if TYPE_CHECKING:
    from tui.app import FerryApp


class FerryScreen(Screen[None]):
    """A top-level screen (1–5). Subclasses yield their body from `compose_body`."""

    TITLE: ClassVar[str] = ""

    @property
    def ferry(self) -> FerryApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ShellHeader(id="shell-header")
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.ferry.refresh_header()
