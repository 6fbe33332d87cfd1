"""The command palette (ctrl+p): the shell's screens, and what the current screen can do.

Built from the same `Binding`s the footer shows, so a command is never missing from one
and present in the other; actions the screen says are unavailable now are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


class FerryCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        from ferry.tui.app import SCREENS

        app: Any = self.app
        screen: Any = self.screen
        commands: list[tuple[str, Callable[[], Any], str]] = []
        title = getattr(screen, "TITLE", "")
        for binding in getattr(screen, "BINDINGS", []):
            if not isinstance(binding, Binding) or not binding.description:
                continue
            action = binding.action.split("(", 1)[0]
            if screen.check_action(action, ()) is False:
                continue
            key = binding.key_display or binding.key.split(",")[0]
            commands.append(
                (
                    f"{title}: {binding.description}",
                    partial(screen.run_action, binding.action),
                    f"key {key}",
                )
            )
        for number, (mode, screen_title, *_rest) in enumerate(SCREENS, start=1):
            commands.append(
                (f"Go to {screen_title}", partial(app.action_go, mode), f"key {number}")
            )
        commands.append(("Show every key", app.action_help, "key ?"))
        commands.append(("Quit ferry", app.action_quit_ferry, "key q"))
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
