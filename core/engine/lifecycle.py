"""One collection's lifecycle in a run: skip, prepare, copy, reconcile, index, finish.

Why an object per collection (the Singer SDK's `Sink`, dlt's load job): the engine owns the
loop over collections and the checkpoint ordering; everything that decides how *one*
collection ends — already done, skipped, cancelled before it began, copied and indexed,
resumed into the index phase, cancelled or failed on the way — lives here, and the
`CollectionResult` and its `CollectionFinished` event are built in exactly one place
(`_finish`), from the figures the steps left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ferry.core.errors import FerryError, PermanentError, ResourceError, TransientError, classify
from ferry.core.events import (
    CollectionFinished,
    CollectionStarted,
    CopyStarted,
    IndexingStarted,
    ProgressSampled,
    WarningRaised,
)
from ferry.core.model import CollectionResult, Phase, ResumePoint, WriteMode
from ferry.core.plan import CollectionPlan

from .control import ProgressMeter, Watermark

if TYPE_CHECKING:
    from ferry.core.connectors.base import Connector
    from ferry.core.events import RunEvent
    from ferry.core.model import Checkpoint, Progress
    from ferry.core.retry import OnRetry, RetryPolicy

    from .control import CopyInFlight, RunControl
    from .options import MigrationOptions

RESUMABLE = "the run is resumable: re-run the same command"
INDEX_TICK_SECONDS = 1.0  # index-phase progress samples (elapsed time) while the target works


class Engine(Protocol):
    """What a lifecycle uses of the engine that drives it (core.engine.loop.MigrationEngine)."""

    run_id: str
    options: MigrationOptions
    source: Connector
    target: Connector
    retry: RetryPolicy
    control: RunControl
    clock: Callable[[], float]
    progress: dict[str, Progress]
    current: str | None

    def emit(self, event: RunEvent) -> None: ...
    def on_retry(self, name: str, what: str) -> OnRetry: ...
    def publish_progress(self, name: str, meter: ProgressMeter) -> None: ...
    def target_shape(self) -> dict[str, Any]: ...
    def new_copy(
        self, plan: CollectionPlan, meter: ProgressMeter, watermark: Watermark, point: Checkpoint
    ) -> CopyInFlight: ...
    async def copy(self, copy: CopyInFlight) -> None: ...
    async def commit(self, copy: CopyInFlight, checkpoint: Checkpoint) -> None: ...


@dataclass
class _Figures:
    """What a collection's result reports: filled in by the steps as they go."""

    records_read: int = 0
    records_written: int = 0
    seconds: float = 0.0
    records_per_second: float = 0.0
    index_seconds: float = 0.0
    search_ready: bool | None = None
    hnsw_ef: int | None = None
    skipped_reason: str | None = None


class CollectionLifecycle:
    """Drives one collection of a run from its resume point to its result."""

    def __init__(self, engine: Engine, plan: CollectionPlan, resume: ResumePoint):
        self.engine = engine
        self.plan = plan
        self.resume = resume
        self.name = plan.source.name
        self.progress = engine.progress[self.name]
        self.figures = _Figures()

    # -- the one way out ----------------------------------------------------------------------
    async def run(self) -> CollectionResult:
        """Take the collection as far as it goes; its result is built (and announced) once."""
        engine, resume = self.engine, self.resume
        if engine.control.cancelled and not resume.done:
            return self._finish(Phase.CANCELLED, started=False)
        if resume.done:
            return self._already_done()
        if self.plan.skip_reason:
            self.progress.phase = Phase.SKIPPED
            self.progress.skipped_reason = self.plan.skip_reason
            self.figures.skipped_reason = self.plan.skip_reason
            # Done, with nothing to do: the JSON contract says "completed" + skipped_reason.
            return self._finish(Phase.COMPLETED)
        engine.current = self.name
        try:
            if resume.copied:
                return await self._index_again()
            return await self._copy_and_index()
        finally:
            engine.current = None

    def _finish(
        self, status: Phase, error: str | None = None, started: bool = True, announce: bool = True
    ) -> CollectionResult:
        """The collection's result, from its figures; announced unless it was done before."""
        f = self.figures
        result = CollectionResult(
            self.name,
            status,
            records_read=f.records_read,
            records_written=f.records_written,
            seconds=f.seconds,
            records_per_second=f.records_per_second,
            skipped_reason=f.skipped_reason,
            error=error,
            index_seconds=f.index_seconds,
            search_ready=f.search_ready,
            hnsw_ef=f.hnsw_ef,
        )
        if error is not None:
            # The records written stay counted: the next run resumes after them.
            self.progress.phase = Phase.FAILED
            self.progress.error = error
            self.progress.errors += 1
        if announce:
            self.engine.emit(
                CollectionFinished(
                    run_id=self.engine.run_id,
                    collection=self.name,
                    result=result,
                    started=started,
                    errors=self.progress.errors if error is not None else 0,
                )
            )
        return result

    # -- the ways through -------------------------------------------------------------------
    def _already_done(self) -> CollectionResult:
        """Completed (or skipped) by an earlier process of this run: nothing to announce."""
        resume = self.resume
        self.progress.total = self.plan.source.count
        self.progress.phase = resume.phase
        self.figures = _Figures(
            records_read=resume.records_read,
            records_written=resume.checkpoint.records_written,
            seconds=resume.seconds,
            records_per_second=resume.average_records_per_second,
            skipped_reason=resume.skipped_reason,
        )
        return self._finish(Phase.COMPLETED, announce=False)  # skipped is completed too

    async def _index_again(self) -> CollectionResult:
        """A run that stopped while the target indexed: the copy is done, index again."""
        resume, progress, f = self.resume, self.progress, self.figures
        progress.records_read = f.records_read = resume.records_read
        progress.records_written = f.records_written = resume.checkpoint.records_written
        progress.total = self.plan.source.count
        f.seconds = resume.seconds
        try:
            index_seconds, ready = await self._index(resuming=True)
        except asyncio.CancelledError:
            progress.phase = Phase.CANCELLED  # the watermark is at the end: a resume indexes
            return self._finish(Phase.CANCELLED)
        except FerryError as exc:
            return self._finish(Phase.FAILED, error=exc.one_line())
        progress.phase = Phase.COMPLETED
        f.seconds = resume.seconds + index_seconds
        f.records_per_second = resume.average_records_per_second
        f.index_seconds, f.search_ready = index_seconds, ready
        f.hnsw_ef = self.plan.tuning.hnsw_ef
        return self._finish(Phase.COMPLETED)

    async def _copy_and_index(self) -> CollectionResult:
        engine, plan, progress, f = self.engine, self.plan, self.progress, self.figures
        info, point = plan.source, self.resume.checkpoint
        progress.total = info.count
        meter = ProgressMeter(
            info.count, point.records_written, engine.clock, engine.control.paused_seconds
        )
        meter.bytes = point.bytes_written
        progress.records_read = point.records_written
        copy = engine.new_copy(plan, meter, Watermark(point.watermark), point)
        engine.emit(
            CollectionStarted(
                run_id=engine.run_id,
                collection=self.name,
                total=info.count,
                dimension=info.dimension,
                metric=info.metric.value if info.metric else None,
            )
        )
        progress.phase = Phase.RUNNING
        try:
            created = await self._prepare(copy)
            copy_started = engine.clock()
            await engine.copy(copy)
            copied_seconds = engine.clock() - copy_started  # records/s: the copy's own time
            if engine.control.cancelled:
                raise asyncio.CancelledError
            await engine.retry.call(
                lambda: engine.target.finish(plan.target_name),
                engine.on_retry(self.name, "finish"),
            )
            await self._reconcile(created or copy.committed.target_owned)
            index_seconds, ready = await self._index(resuming=False)
        except asyncio.CancelledError:
            progress.phase = Phase.CANCELLED
            engine.publish_progress(self.name, meter)
            self._copied_so_far(copy, meter)
            return self._finish(Phase.CANCELLED)
        except Exception as exc:  # a FerryError, or a client exception no connector sorted
            progress.records_per_second = 0.0
            progress.eta_seconds = None
            self._copied_so_far(copy, meter)
            return self._finish(Phase.FAILED, error=self._copy_error(exc))
        written_now = meter.written - point.records_written
        progress.phase = Phase.COMPLETED
        engine.publish_progress(self.name, meter)
        f.records_read = progress.records_read
        f.records_written = meter.written
        f.seconds = meter.running_seconds()
        # The copy's rate: the index phase moves no records.
        f.records_per_second = written_now / copied_seconds if copied_seconds > 0 else 0.0
        f.index_seconds, f.search_ready = index_seconds, ready
        f.hnsw_ef = plan.tuning.hnsw_ef
        return self._finish(Phase.COMPLETED)

    def _copied_so_far(self, copy: CopyInFlight, meter: ProgressMeter) -> None:
        """A copy that stopped: what was read, and what is durable (the resume point)."""
        self.figures.records_read = self.progress.records_read
        self.figures.records_written = copy.committed.records_written
        self.figures.seconds = meter.running_seconds()

    def _copy_error(self, exc: Exception) -> str:
        """One line for a failed copy; a transient one says it gave up and is resumable."""
        engine = self.engine
        error = classify(exc, f"copying {self.name}", engine.target.uri)
        if isinstance(error, TransientError | ResourceError):
            # Nothing is lost: the watermark is durable and the target idempotent.
            error = type(error)(
                error.what
                + (
                    f" (gave up after {engine.retry.describe(error)})"
                    if isinstance(error, TransientError)
                    else ""
                ),
                where=error.where,
                fix=error.fix
                if "resume" in error.fix
                else "; ".join(f for f in (error.fix, RESUMABLE) if f),
            )
        return error.one_line()

    # -- the steps ----------------------------------------------------------------------------
    async def _prepare(self, copy: CopyInFlight) -> bool:
        """Create (or accept) the target collection; True when this run created it."""
        engine, plan, point = self.engine, self.plan, self.resume.checkpoint
        # The source gets ready to read (e.g. builds an id map) while the target prepares.
        warm = getattr(engine.source, "warm", None)
        warming = asyncio.ensure_future(warm(self.name)) if warm else None
        if warming is not None:  # awaited below; if prepare fails first, not left unread
            warming.add_done_callback(lambda f: f.cancelled() or f.exception())
        prepared = await engine.retry.call(
            lambda: engine.target.prepare(
                # what to create (the new model's shape when re-embedding)
                dataclasses.replace(plan.source, name=plan.target_name, **engine.target_shape()),
                engine.options.mode,
                owned=point.target_owned,
                tuning=plan.tuning,
            ),
            engine.on_retry(self.name, "prepare target"),
        )
        if prepared.created or (prepared.existed and engine.options.mode is WriteMode.CREATE):
            # Created now, or accepted in create mode, which happens only for a collection
            # that is empty (e.g. created by a run killed before it could say so) or already
            # Ferry's: from here on it is Ferry's, so re-runs and resumes may write to it.
            # Durable before the first write, like any checkpoint.
            await engine.commit(copy, dataclasses.replace(copy.committed, target_owned=True))
        if warming is not None:
            await warming
        for warning in prepared.warnings:
            engine.emit(WarningRaised(run_id=engine.run_id, collection=self.name, warning=warning))
        engine.emit(
            CopyStarted(
                run_id=engine.run_id,
                collection=self.name,
                total=plan.source.count,
                resuming=point.watermark is not None,
            )
        )
        return prepared.created

    async def _reconcile(self, owned: bool) -> None:
        """Counts must agree when Ferry owns the target: two ids on one point would show here."""
        engine, plan = self.engine, self.plan
        if not owned or engine.options.mode is WriteMode.APPEND:
            return
        on_retry = engine.on_retry(plan.source.name, "count")  # a blip here is no mismatch
        target_count = await engine.retry.call(
            lambda: engine.target.count(plan.target_name), on_retry
        )
        source_count = await engine.retry.call(
            lambda: engine.source.count(plan.source.name), on_retry
        )
        if plan.embed is not None and plan.embed.missing_policy == "skip":
            source_count -= plan.embed.missing  # left out, counted in the plan
        if target_count != source_count and getattr(engine.source, "cut", None) is not None:
            # A live source was read as a cut (core/live): the app may write the target too
            # (dual-write). Catch-up settles it; the copy is complete and is indexed.
            engine.emit(
                WarningRaised(
                    run_id=engine.run_id,
                    collection=plan.source.name,
                    warning=f"target holds {target_count} records, the source's cut "
                    f"{source_count}: the application wrote meanwhile (dual-write); run the same "
                    "command again (catch-up) or --follow, and `ferry validate` once writes pause",
                )
            )
        elif target_count != source_count:
            raise PermanentError(
                f"{plan.source.name}: target holds {target_count} records, source {source_count}",
                where=engine.target.uri,
                fix="the source changed during the copy or ids collided; run `ferry validate --full`",
            )

    async def _index(self, resuming: bool) -> tuple[float, bool]:
        """After the copy: the target builds its search index; (seconds, search-ready).

        The collection's phase is `indexing` meanwhile (a resumed run starts here again),
        and a cancel stops the wait (the database may go on indexing by itself; a resume
        asks again, which costs nothing when it is done).
        """
        engine, plan, progress = self.engine, self.plan, self.progress
        name, target_name = self.name, plan.target_name
        if not engine.options.index:
            return 0.0, False
        started = engine.clock()
        progress.phase = Phase.INDEXING
        progress.index_seconds = 0.0
        engine.emit(
            IndexingStarted(
                run_id=engine.run_id,
                collection=name,
                total=plan.source.count,
                how=engine.target.indexing.words,
                tuning=plan.tuning.to_json(),
                resuming=resuming,
            )
        )

        def on_progress(indexed: int | None, total: int | None) -> None:
            progress.indexed, progress.index_total = indexed, total
            progress.index_seconds = engine.clock() - started
            sample = dataclasses.replace(progress)
            engine.emit(ProgressSampled(run_id=engine.run_id, collection=name, progress=sample))

        on_progress(None, plan.source.count)
        build = asyncio.ensure_future(
            engine.retry.call(
                lambda: engine.target.build_index(target_name, plan.tuning, on_progress),
                engine.on_retry(name, "build index"),
            )
        )
        watcher = asyncio.ensure_future(engine.control.until_cancelled())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {build, watcher}, timeout=INDEX_TICK_SECONDS, return_when=FIRST_COMPLETED
                )
                if done:
                    break
                # Edge's optimizer says nothing until it is done: the elapsed time moves on.
                on_progress(progress.indexed, progress.index_total)
        finally:
            watcher.cancel()
            if not build.done():
                build.cancel()
                with contextlib.suppress(BaseException):
                    await build
        if not build.done() or build.cancelled():
            raise asyncio.CancelledError
        state = build.result()
        on_progress(state.indexed, state.total)
        return engine.clock() - started, state.ready
