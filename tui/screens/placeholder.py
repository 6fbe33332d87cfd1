"""Stands in for a screen whose issue has not landed yet (Validation, Cutover)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.widgets import Static

from tui.screens.base import FerryScreen


class PlaceholderScreen(FerryScreen):
    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.TITLE = title
        self.message = message

    def compose_body(self) -> ComposeResult:
        with Middle(id="placeholder"), Center():
            yield Static(self.message, id="placeholder-text")
