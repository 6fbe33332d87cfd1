"""One migration, start to finish: plan, preflight, find or create the run, drive the engine.

Shared by `ferry migrate` and anything else that runs a migration in-process, so that
"the same command again resumes the unfinished run" holds everywhere. The runner is where
the journal meets the engine: it reads each collection's resume point for the engine, and
attaches a RunRecorder to the engine's events, which writes everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.connectors import open_connector
from core.connectors.base import Connector
from core.engine import MigrationEngine, MigrationOptions, run_status
from core.errors import PreflightError
from core.journal import Journal
from core.journal.recorder import RunRecorder
from core.model import CollectionResult, ResumePoint
from core.plan import MigrationPlan, build_plan, run_key
from core.runs import CollectionView, RunState

CONTROL_POLL_SECONDS = 0.2


@dataclass
class RunOutcome:
    run_id: str
    status: RunState
    collections: list[CollectionResult]
    plan: MigrationPlan
    resumed: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "resumed": self.resumed,
            "collections": [c.to_json() for c in self.collections],
            "warnings": self.warnings,
        }


async def preflight(
    source: Connector,
    target: Connector,
    journal: Journal,
    collections: list[str],
    options: MigrationOptions,
) -> MigrationPlan:
    plan = await options.retry_policy.call(  # describing is read-only: safe to repeat
        lambda: build_plan(
            source,
            target,
            collections or None,
            options.mode,
            options.fields,
            owned=lambda name: journal.target_owned(target.uri, name),
            tuning=options.tuning,
            index=options.index,
        )
    )
    if plan.errors:
        first = plan.errors[0]
        more = f" (+{len(plan.errors) - 1} more)" if len(plan.errors) > 1 else ""
        raise PreflightError(first + more)
    return plan


async def migrate(
    source_uri: str,
    target_uri: str,
    collections: list[str],
    options: MigrationOptions,
    journal: Journal,
    restart: bool = False,
    on_engine: Callable[[MigrationEngine], None] | None = None,
) -> RunOutcome:
    """Run (or resume) the migration the arguments identify; returns when it ends."""
    source = open_connector(source_uri)
    target = open_connector(target_uri, options.fields)
    try:
        plan = await preflight(source, target, journal, collections, options)
        key = run_key(source_uri, target_uri, collections, options.fields, options.mode.value)
        previous = journal.latest_run(key)
        resumed = bool(previous and previous["status"] != RunState.COMPLETED.value and not restart)
        if resumed:
            assert previous is not None
            run_id = previous["run_id"]
        else:
            run_id = journal.create_run(
                key,
                source_uri,
                target_uri,
                collections,
                {"source_id": options.fields.source_id, "document": options.fields.document},
                options.to_json(),
            )
        journal.take_request(run_id)  # a stale pause/cancel from a dead process means nothing
        recorder = RunRecorder(journal, run_id)
        engine = MigrationEngine(
            source,
            target,
            run_id,
            plan.collections,
            options,
            checkpoints=recorder,
            resume=resume_points(journal, run_id, target.uri, plan),
        )
        recorder.attach(engine.bus)
        if on_engine:
            on_engine(engine)
        poller = asyncio.create_task(_poll_controls(journal, engine))
        try:
            results = await engine.run()
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await recorder.aclose()  # every row written before we say the run ended
        return RunOutcome(run_id, run_status(results), results, plan, resumed, plan.warnings)
    finally:
        await source.close()
        await target.close()


def resume_points(
    journal: Journal, run_id: str, target_uri: str, plan: MigrationPlan
) -> dict[str, ResumePoint]:
    """Where each collection of the run starts: its journal row (made now if new), and
    whether a Ferry run owns its target collection."""
    points = {}
    for item in plan.collections:
        row = journal.ensure_collection(run_id, item.source.name, item.target_name)
        owned = journal.target_owned(target_uri, item.target_name)
        points[item.source.name] = CollectionView.from_row(row).resume_point(owned)
    return points


async def _poll_controls(journal: Journal, engine: MigrationEngine) -> None:
    """Pause/resume/cancel asked by another process (the TUI) through the journal."""
    while True:
        command = await asyncio.to_thread(journal.take_request, engine.run_id)
        if command == "pause":
            engine.pause()
        elif command == "resume":
            engine.resume()
        elif command == "cancel":
            engine.cancel()
        await asyncio.sleep(CONTROL_POLL_SECONDS)
