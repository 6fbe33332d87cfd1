"""The Rich live display `ferry migrate` shows on a terminal: a view of engine events."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ferry.core.engine import MigrationEngine
from ferry.core.events import (
    CollectionFinished,
    ProgressSampled,
    RetryScheduled,
    RunEvent,
    WarningRaised,
)
from ferry.core.model import Phase


class LiveDisplay:
    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.tasks: dict[str, TaskID] = {}
        self._watcher: asyncio.Task[Any] | None = None

    def __enter__(self) -> LiveDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._watcher:
            self._watcher.cancel()
        self.progress.stop()

    def attach(self, engine: MigrationEngine) -> None:
        for name in engine.progress:
            self.tasks[name] = self.progress.add_task(name, total=None, rate="")
        self._watcher = asyncio.get_running_loop().create_task(self._watch(engine))

    async def _watch(self, engine: MigrationEngine) -> None:
        async for event in engine.subscribe():
            self.show(event)

    def show(self, event: RunEvent) -> None:
        task = self.tasks.get(event.collection or "")
        if isinstance(event, ProgressSampled) and task is not None:
            sample = event.progress
            if sample.phase is Phase.INDEXING:  # the target builds its index: elapsed, progress
                known = sample.indexed is not None and sample.index_total
                self.progress.update(
                    task,
                    total=sample.index_total if known else None,
                    completed=sample.indexed or 0,
                    rate=f"indexing {sample.index_seconds:,.0f}s",
                )
                return
            self.progress.update(
                task,
                total=max(sample.total, 1),
                completed=sample.records_written,
                rate=f"{sample.records_per_second:,.0f} rec/s "
                f"{sample.bytes_per_second / 1e6:,.1f} MB/s",
            )
        elif isinstance(event, RetryScheduled | WarningRaised) or (
            isinstance(event, CollectionFinished) and event.phase is Phase.FAILED
        ):
            self.console.print(f"[yellow]{event.kind}[/]: {event.collection}: {event.message}")
        elif (
            isinstance(event, CollectionFinished)
            and task is not None
            and event.phase in {Phase.COMPLETED, Phase.SKIPPED}
        ):
            self.progress.update(task, total=1, completed=1)
