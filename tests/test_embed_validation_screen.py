"""The Validation screen on a re-embedded copy (real app, Pilot): the A/B search panel
appears with the model, the overlap figures and the worst queries; `r` runs it."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from ferry.core.embed import EmbedSettings
from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.runner import migrate
from ferry.tui.app import FerryApp
from ferry.tui.widgets.ab_panel import ABPanel
from tests.test_embed_validate import semantic_source
from tests.test_validation_screen import rows, settle


async def test_validation_screen_shows_the_ab_report_of_a_reembedded_copy(tmp_path: Path) -> None:
    source = semantic_source(tmp_path / "src")
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    state = tmp_path / "journal.sqlite3"
    options = MigrationOptions(embed=EmbedSettings("wordllama/l2_supercat"))
    outcome = await migrate(source, target, [], options, Journal(state))
    assert outcome.status == "completed"
    app = FerryApp(state, source, target, start="validation")
    app.context.selected = ["notes"]
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        panel = screen.query_one(ABPanel)
        assert not panel.display  # nothing validated yet: no A/B panel
        await pilot.press("r")
        await settle(app, pilot)
        assert panel.display
        text = str(panel.render())
        assert "A/B search (wordllama/l2_supercat)" in text
        assert "overlap@10 mean 1.00" in text  # the source was embedded by the same model
        assert "worst:" in text and "determinism" in text
        summary = screen.query_one("#validation-summary", DataTable)
        assert rows(summary)[0][1] == "✔"


def test_the_monitor_says_throttled_while_the_endpoint_answers_429() -> None:
    import dataclasses
    import time

    from ferry.core.events import EmbedRetried
    from ferry.core.journal import EventRecord
    from ferry.tui.screens.monitor import MonitorScreen

    def logged(event: EmbedRetried) -> EventRecord:  # the row the journal keeps of it
        return EventRecord(1, "r", event.ts, event.kind, event.collection, event.message, {})

    event = EmbedRetried(
        run_id="r", collection="notes", what="embed", attempt=1, error="HTTP 429", delay=1.0,
        throttled=True,
    )  # fmt: skip
    row = logged(event)
    assert MonitorScreen().throttling([row])
    assert not MonitorScreen().throttling([])
    assert not MonitorScreen().throttling([dataclasses.replace(row, ts=time.time() - 60)])
    failed = EmbedRetried(run_id="r", what="embed", attempt=2, error="HTTP 500", delay=0.5)
    assert not MonitorScreen().throttling([logged(failed)])
