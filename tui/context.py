"""What every screen needs to know about the session: which source, which target, which
collections, which run, and where the journal lives. Screens read it from `app.context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ferry.core.journal import Journal


@dataclass
class AppContext:
    state_path: Path | None = None
    source_uri: str | None = None
    target_uri: str | None = None
    selected: list[str] = field(default_factory=list)
    run_id: str | None = None
    # The pair came from the attached run (the app was opened with none chosen): the
    # header says so, instead of passing it off as a choice.
    pair_from_run: bool = False
    # The router state file apps embed (core/router); shadow figures come from beside it.
    router_state: Path | None = None
    _journal: Journal | None = None

    def journal(self) -> Journal:
        """The journal, opened once per app (SQLite WAL: safe beside the engine process)."""
        if self._journal is None:
            self._journal = Journal(self.state_path)
        return self._journal
