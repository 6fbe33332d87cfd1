"""The streaming pipeline: one reader per collection → bounded queue → N writers.

Why it is shaped this way:

* Reading and writing overlap, so throughput approaches min(read rate, write rate).
* The queue is bounded (``workers`` batches) and each writer holds one batch, so memory is
  bounded by ``batch_size × (2 × workers + 1)`` whatever the collection size.
* Writers finish out of order, so the checkpoint is a *watermark* (`Watermark`): the cursor
  below which every batch is acknowledged by the target. It is committed only after the
  target's `sync`; resume replays from it and idempotent upserts make the replay harmless.
* The engine publishes typed events (core.events) and keeps exactly one persistence port:
  `CheckpointStore.commit`, awaited after `target.sync`, because that ordering *is* the
  algorithm. Everything else the journal shows is written by a listener (the RunRecorder).
  The runner hands the engine a `ResumePoint` per collection: the engine never reads state.
* Progress is latest-value: a slow viewer never slows the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from aiolimiter import AsyncLimiter

from core import faultpoints
from core.connectors.base import Connector, WriteMode
from core.errors import FerryError, PermanentError, ResourceError, TransientError, classify
from core.events import (
    CheckpointCommitted,
    CollectionFinished,
    CollectionStarted,
    CopyStarted,
    EventBus,
    IndexingStarted,
    PhaseChanged,
    PlannedCollection,
    ProgressSampled,
    RetryScheduled,
    RunEvent,
    RunFinished,
    RunStarted,
    Subscription,
    WarningRaised,
)
from core.mapping import PayloadFields
from core.model import Batch, Checkpoint, CollectionResult, Cursor, Phase, Progress, ResumePoint
from core.plan import CollectionPlan
from core.record_checks import refuse_bad_records
from core.retry import OnRetry, RetryNotice, RetryPolicy
from core.runs import RunState
from core.targets import TargetNames
from core.tuning import TuningOptions

RATE_WINDOW_SECONDS = 5.0
RESUMABLE = "the run is resumable: re-run the same command"
CHECKPOINT_INTERVAL = 0.5  # seconds between durable checkpoints (each costs a target sync)
# A sync blocks the target's writes (Qdrant Edge serves one request at a time, and a flush of
# a shard with payload indexes takes ~0.1–0.3 s): checkpoints are spaced so syncing takes at
# most 1/SYNC_SHARE of the time — never more often than CHECKPOINT_INTERVAL.
SYNC_SHARE = 10
INDEX_TICK_SECONDS = 1.0  # index-phase progress samples (elapsed time) while the target works

__all__ = [
    "CheckpointStore",
    "CollectionResult",
    "MigrationEngine",
    "MigrationOptions",
    "ProgressMeter",
    "RunControl",
    "Watermark",
    "run_status",
]


@dataclass
class MigrationOptions:
    batch_size: int = 1000
    workers: int = 2
    rate: float | None = None  # records per second, None for unlimited
    mode: WriteMode = WriteMode.CREATE
    fields: PayloadFields = field(default_factory=PayloadFields)
    # Payload layout (core/layouts.py) for every collection; None: each its detected one.
    layout: str | None = None
    # Who asked for `layout`, in the plan's words ("profile NAME"); None: `--layout`.
    layout_origin: str | None = None
    # Where each collection lands (`docs=docs_v2`, `{name}_v2`); default: its own name.
    targets: TargetNames = field(default_factory=TargetNames)
    max_attempts: int = 6
    retry_initial: float = 0.2
    retry_max: float = 10.0
    give_up_after: float = 120.0
    index: bool = True  # False: a staging copy (`--no-index`), completed without the index phase
    tuning: TuningOptions = field(default_factory=TuningOptions)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_attempts, self.retry_initial, self.retry_max, self.give_up_after
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch_size": self.batch_size,
            "workers": self.workers,
            "rate": self.rate,
            "mode": self.mode.value,
            "layout": self.layout,
        }
        if not self.index:  # a staging copy; journaled only when asked, like the targets
            data["index"] = False
        if self.tuning != TuningOptions():
            data["tuning"] = self.tuning.to_json()
        if not self.targets.trivial:  # journaled so a relaunch passes the same pairs
            data["targets"] = self.targets.to_json()
        return data


class CheckpointStore(Protocol):
    """The engine's one persistence port: make a collection's checkpoint durable.

    `commit` returns once the checkpoint is stored; the engine calls it only after the
    target's `sync`, so the store never holds a resume point above what the target could lose.
    """

    async def commit(self, collection: str, checkpoint: Checkpoint) -> None: ...


class RunControl:
    """Pause, resume and cancel as engine operations: the pipeline waits on these."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._running = asyncio.Event()
        self._running.set()
        self._cancelled = asyncio.Event()
        self.cancelled = False
        self.on_change: Callable[[RunState], None] | None = None
        self.clock = clock
        self._paused_at: float | None = None
        self._paused_before = 0.0  # seconds paused in earlier pauses

    def paused_seconds(self) -> float:
        """Seconds spent paused so far (the current pause included): averages leave them out."""
        ongoing = self.clock() - self._paused_at if self._paused_at is not None else 0.0
        return self._paused_before + ongoing

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        if not self.cancelled and not self.paused:
            self._running.clear()
            self._paused_at = self.clock()
            if self.on_change:
                self.on_change(RunState.PAUSED)

    def resume(self) -> None:
        if self.paused:
            self._running.set()
            self._end_pause()
            if self.on_change:
                self.on_change(RunState.RUNNING)

    def _end_pause(self) -> None:
        if self._paused_at is not None:
            self._paused_before += self.clock() - self._paused_at
            self._paused_at = None

    def cancel(self) -> None:
        self.cancelled = True
        self._cancelled.set()
        self._running.set()  # wake anything waiting so it can see the cancellation
        self._end_pause()
        if self.on_change:
            self.on_change(RunState.CANCELLING)

    async def gate(self) -> bool:
        """Wait while paused; False once cancelled."""
        await self._running.wait()
        return not self.cancelled

    async def until_cancelled(self) -> None:
        await self._cancelled.wait()


class Watermark:
    """The cursor below which every batch is acknowledged, over out-of-order acknowledgements.

    Batches are numbered in read order (0, 1, 2, …) and written by several writers, which
    finish in any order. `ack` notes a finished batch, keeping only its size and the cursor
    after it (so an early finish never pins a batch's vectors in memory); `advance` moves the
    cursor over every contiguous acknowledged batch and says what it moved over. The cursor
    is therefore always a safe resume point: nothing before it is missing on the target.
    """

    def __init__(self, cursor: Cursor = None) -> None:
        self.cursor: Cursor = cursor  # resume here: every batch before it is acknowledged
        self.next_seq = 0  # the first batch not yet acknowledged
        self._acked: dict[int, tuple[int, int, Cursor]] = {}

    @property
    def waiting(self) -> int:
        """Acknowledged batches held back by an earlier one still being written."""
        return len(self._acked)

    def ack(self, seq: int, cursor_after: Cursor, records: int = 0, nbytes: int = 0) -> None:
        if seq < self.next_seq or seq in self._acked:
            raise ValueError(f"batch {seq} acknowledged twice")
        self._acked[seq] = (records, nbytes, cursor_after)

    def advance(self) -> tuple[int, int, int]:
        """Move over contiguous acknowledged batches: (batches, records, bytes) moved over."""
        batches = records = nbytes = 0
        while self.next_seq in self._acked:
            batch_records, batch_bytes, self.cursor = self._acked.pop(self.next_seq)
            self.next_seq += 1
            batches += 1
            records += batch_records
            nbytes += batch_bytes
        return batches, records, nbytes


class ProgressMeter:
    """Sliding-window rate, average rate and ETA for one collection."""

    def __init__(
        self,
        total: int,
        already_written: int,
        clock: Callable[[], float],
        paused: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.clock = clock
        self.total = total
        self.written = already_written
        self.bytes = 0
        self.started = clock()
        self._paused = paused  # seconds paused so far (RunControl.paused_seconds)
        self._paused_at_start = paused()
        self._start_written = already_written
        self._window: deque[tuple[float, int, int]] = deque()
        self._window.append((self.started, already_written, 0))

    def add(self, records: int, nbytes: int) -> None:
        self.written += records
        self.bytes += nbytes
        now = self.clock()
        self._window.append((now, self.written, self.bytes))
        while len(self._window) > 2 and now - self._window[0][0] > RATE_WINDOW_SECONDS:
            self._window.popleft()

    def rates(self) -> tuple[float, float, float]:
        """(records/s now, records/s average, bytes/s now)."""
        now = self.clock()
        t0, w0, b0 = self._window[0]
        span = max(now - t0, 1e-6)
        elapsed = max(self.running_seconds(now), 1e-6)
        return (
            (self.written - w0) / span,
            (self.written - self._start_written) / elapsed,
            (self.bytes - b0) / span,
        )

    def running_seconds(self, now: float | None = None) -> float:
        """Seconds this collection has been copying, paused time left out."""
        now = self.clock() if now is None else now
        return now - self.started - (self._paused() - self._paused_at_start)

    def eta(self, rate: float) -> float | None:
        remaining = max(self.total - self.written, 0)
        if remaining == 0:
            return 0.0
        return remaining / rate if rate > 0 else None


@dataclass
class _Copy:
    """One collection's copy in flight: what `_advance` needs, in one place."""

    plan: CollectionPlan
    meter: ProgressMeter
    watermark: Watermark
    committed: Checkpoint  # the last durable checkpoint
    committed_at: float
    sync_seconds: float = 0.0  # how long the last target sync took
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def name(self) -> str:
        return self.plan.source.name


class MigrationEngine:
    """Drives one run: its collections in order, each through the streaming pipeline."""

    def __init__(
        self,
        source: Connector,
        target: Connector,
        run_id: str,
        plans: list[CollectionPlan],
        options: MigrationOptions,
        checkpoints: CheckpointStore,
        resume: Mapping[str, ResumePoint] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.target = target
        self.run_id = run_id
        self.plans = plans
        self.options = options
        self.checkpoints = checkpoints
        self.resume_points = dict(resume or {})
        self.clock = clock
        self.retry = options.retry_policy
        self.control = RunControl(clock)
        self.control.on_change = self._on_control
        self.bus = EventBus()
        self.progress: dict[str, Progress] = {p.source.name: Progress(p.source.name) for p in plans}
        self._limiter = AsyncLimiter(max(options.rate, 1.0), 1.0) if options.rate else None
        self._current: str | None = None
        self._finished = False

    # -- public operations ------------------------------------------------------------------
    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def cancel(self) -> None:
        self.control.cancel()

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()

    async def run(self) -> list[CollectionResult]:
        # Every collection visible, with its total, from the start.
        planned = tuple(
            PlannedCollection(p.source.name, p.target_name, p.source.count) for p in self.plans
        )
        self._emit(RunStarted(run_id=self.run_id, collections=planned))
        results: list[CollectionResult] = []
        for plan in self.plans:
            resume = self.resume_points.get(plan.source.name, ResumePoint())
            if self.control.cancelled and not resume.done:
                result = CollectionResult(plan.source.name, Phase.CANCELLED)
                self._emit(
                    CollectionFinished(
                        run_id=self.run_id, collection=result.name, result=result, started=False
                    )
                )
                results.append(result)
                continue
            results.append(await self._migrate_collection(plan, resume))
        state = run_status(results)
        self._finished = True
        error = next((r.error for r in results if r.error), None)
        self._emit(RunFinished(run_id=self.run_id, state=state, error=error))
        self.bus.close()
        return results

    # -- events -----------------------------------------------------------------------------
    def _failed(
        self,
        name: str,
        progress: Progress,
        error: str,
        records_read: int,
        records_written: int,
        seconds: float,
    ) -> CollectionResult:
        """End a collection as failed (copy or index phase): its row, its event, its result.
        The records written stay counted: the next run resumes after them."""
        progress.phase = Phase.FAILED
        progress.error = error
        progress.errors += 1
        result = CollectionResult(
            name,
            Phase.FAILED,
            records_read=records_read,
            records_written=records_written,
            seconds=seconds,
            error=error,
        )
        self._emit(
            CollectionFinished(
                run_id=self.run_id, collection=name, result=result, errors=progress.errors
            )
        )
        return result

    def _emit(self, event: RunEvent) -> None:
        self.bus.publish(event)

    def _on_control(self, state: RunState) -> None:
        if self._finished:
            return  # a late signal after the run ended changes nothing
        current = self._current
        if current and self.progress[current].phase is Phase.INDEXING:
            current = None  # the index phase is the database's work: a pause does not stop it
        if current and state in {RunState.PAUSED, RunState.RUNNING}:
            self.progress[current].phase = Phase(state.value)
        self._emit(PhaseChanged(run_id=self.run_id, collection=current, state=state))

    def _on_retry(self, name: str, what: str) -> OnRetry:
        def on_retry(notice: RetryNotice) -> None:
            self.progress[name].retries += 1
            self._emit(
                RetryScheduled(
                    run_id=self.run_id,
                    collection=name,
                    what=what,
                    attempt=notice.attempt,
                    error=str(notice.error),
                    delay=notice.delay,
                )
            )

        return on_retry

    def _publish_progress(self, name: str, meter: ProgressMeter) -> None:
        progress = self.progress[name]
        rate, average, byte_rate = meter.rates()
        progress.records_per_second = rate
        progress.average_records_per_second = average
        progress.bytes_per_second = byte_rate
        progress.records_written = meter.written
        progress.bytes_written = meter.bytes
        progress.eta_seconds = meter.eta(rate)
        progress.seconds = meter.running_seconds()
        sample = dataclasses.replace(progress)  # a copy: the engine keeps updating its own
        self._emit(ProgressSampled(run_id=self.run_id, collection=name, progress=sample))

    # -- one collection ---------------------------------------------------------------------
    async def _migrate_collection(
        self, plan: CollectionPlan, resume: ResumePoint
    ) -> CollectionResult:
        name = plan.source.name
        info = plan.source
        progress = self.progress[name]
        progress.total = info.count
        if resume.done:
            progress.phase = resume.phase
            return CollectionResult(
                name,
                Phase.COMPLETED,  # a skipped collection is done: see skipped_reason
                records_read=resume.records_read,
                records_written=resume.checkpoint.records_written,
                seconds=resume.seconds,
                records_per_second=resume.average_records_per_second,
                skipped_reason=resume.skipped_reason,
            )
        if plan.skip_reason:
            progress.phase = Phase.SKIPPED
            progress.skipped_reason = plan.skip_reason
            # Done, with nothing to do: the JSON contract says "completed" + skipped_reason.
            result = CollectionResult(name, Phase.COMPLETED, skipped_reason=plan.skip_reason)
            self._emit(CollectionFinished(run_id=self.run_id, collection=name, result=result))
            return result

        if resume.copied:
            return await self._resume_indexing(plan, resume)

        self._current = name
        point = resume.checkpoint
        meter = ProgressMeter(
            info.count, point.records_written, self.clock, self.control.paused_seconds
        )
        meter.bytes = point.bytes_written
        progress.records_read = point.records_written
        copy = _Copy(plan, meter, Watermark(point.watermark), point, self.clock())
        self._emit(
            CollectionStarted(
                run_id=self.run_id,
                collection=name,
                total=info.count,
                dimension=info.dimension,
                metric=info.metric.value if info.metric else None,
            )
        )
        progress.phase = Phase.RUNNING
        try:
            prepared = await self.retry.call(
                lambda: self.target.prepare(
                    dataclasses.replace(info, name=plan.target_name),  # what to create
                    self.options.mode,
                    owned=point.target_owned,
                    tuning=plan.tuning,
                ),
                self._on_retry(name, "prepare target"),
            )
            if prepared.created or (prepared.existed and self.options.mode is WriteMode.CREATE):
                # Created now, or accepted in create mode, which happens only for a collection
                # that is empty (e.g. created by a run killed before it could say so) or already
                # Ferry's: from here on it is Ferry's, so re-runs and resumes may write to it.
                # Durable before the first write, like any checkpoint.
                await self._commit(copy, dataclasses.replace(copy.committed, target_owned=True))
            for warning in prepared.warnings:
                self._emit(WarningRaised(run_id=self.run_id, collection=name, warning=warning))
            self._emit(
                CopyStarted(
                    run_id=self.run_id,
                    collection=name,
                    total=info.count,
                    resuming=point.watermark is not None,
                )
            )
            copy_started = self.clock()
            await self._pipeline(copy)
            copied_seconds = self.clock() - copy_started  # records/s: the copy's own time
            if self.control.cancelled:
                raise asyncio.CancelledError
            await self.retry.call(
                lambda: self.target.finish(plan.target_name), self._on_retry(name, "finish")
            )
            await self._reconcile(plan, prepared.created or copy.committed.target_owned)
            index_seconds, ready = await self._index(plan, resuming=False)
        except asyncio.CancelledError:
            progress.phase = Phase.CANCELLED
            self._publish_progress(name, meter)
            result = CollectionResult(
                name,
                Phase.CANCELLED,
                records_read=progress.records_read,
                records_written=copy.committed.records_written,
                seconds=meter.running_seconds(),
            )
            self._emit(CollectionFinished(run_id=self.run_id, collection=name, result=result))
            return result
        except Exception as exc:  # a FerryError, or a client exception no connector sorted
            error = classify(exc, f"copying {name}", self.target.uri)
            if isinstance(error, TransientError | ResourceError):
                # Nothing is lost: the watermark is durable and the target idempotent.
                error = type(error)(
                    error.what
                    + (
                        f" (gave up after {self.retry.describe()})"
                        if isinstance(error, TransientError)
                        else ""
                    ),
                    where=error.where,
                    fix=error.fix
                    if "resume" in error.fix
                    else "; ".join(f for f in (error.fix, RESUMABLE) if f),
                )
            progress.records_per_second = 0.0
            progress.eta_seconds = None
            return self._failed(
                name,
                progress,
                error.one_line(),
                progress.records_read,
                copy.committed.records_written,
                meter.running_seconds(),
            )
        finally:
            self._current = None
        seconds = meter.running_seconds()
        written_now = meter.written - point.records_written
        # The copy's rate: the index phase moves no records.
        average = written_now / copied_seconds if copied_seconds > 0 else 0.0
        progress.phase = Phase.COMPLETED
        self._publish_progress(name, meter)
        result = CollectionResult(
            name,
            Phase.COMPLETED,
            records_read=progress.records_read,
            records_written=meter.written,
            seconds=seconds,
            records_per_second=average,
            index_seconds=index_seconds,
            search_ready=ready,
            hnsw_ef=plan.tuning.hnsw_ef,
        )
        self._emit(CollectionFinished(run_id=self.run_id, collection=name, result=result))
        return result

    # -- the index phase --------------------------------------------------------------------
    async def _index(self, plan: CollectionPlan, resuming: bool) -> tuple[float, bool]:
        """After the copy: the target builds its search index; (seconds, search-ready).

        The collection's phase is `indexing` meanwhile (a resumed run starts here again),
        and a cancel stops the wait (the database may go on indexing by itself; a resume
        asks again, which costs nothing when it is done).
        """
        name, target_name = plan.source.name, plan.target_name
        progress = self.progress[name]
        if not self.options.index:
            return 0.0, False
        started = self.clock()
        progress.phase = Phase.INDEXING
        progress.index_seconds = 0.0
        self._emit(
            IndexingStarted(
                run_id=self.run_id,
                collection=name,
                total=plan.source.count,
                how=self.target.index_words(),
                tuning=plan.tuning.to_json(),
                resuming=resuming,
            )
        )

        def on_progress(indexed: int | None, total: int | None) -> None:
            progress.indexed, progress.index_total = indexed, total
            progress.index_seconds = self.clock() - started
            sample = dataclasses.replace(progress)
            self._emit(ProgressSampled(run_id=self.run_id, collection=name, progress=sample))

        on_progress(None, plan.source.count)
        build = asyncio.ensure_future(
            self.retry.call(
                lambda: self.target.build_index(target_name, plan.tuning, on_progress),
                self._on_retry(name, "build index"),
            )
        )
        watcher = asyncio.ensure_future(self.control.until_cancelled())
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
        return self.clock() - started, state.ready

    async def _resume_indexing(self, plan: CollectionPlan, resume: ResumePoint) -> CollectionResult:
        """A run that stopped while the target indexed: the copy is done, index again."""
        name = plan.source.name
        progress = self.progress[name]
        progress.records_read = resume.records_read
        progress.records_written = resume.checkpoint.records_written
        progress.total = plan.source.count
        self._current = name
        try:
            index_seconds, ready = await self._index(plan, resuming=True)
        except asyncio.CancelledError:
            progress.phase = Phase.CANCELLED  # the watermark is at the end: a resume indexes
            result = CollectionResult(
                name,
                Phase.CANCELLED,
                records_read=resume.records_read,
                records_written=resume.checkpoint.records_written,
                seconds=resume.seconds,
            )
            self._emit(CollectionFinished(run_id=self.run_id, collection=name, result=result))
            return result
        except FerryError as exc:
            return self._failed(
                name,
                progress,
                exc.one_line(),
                resume.records_read,
                resume.checkpoint.records_written,
                resume.seconds,
            )
        finally:
            self._current = None
        progress.phase = Phase.COMPLETED
        result = CollectionResult(
            name,
            Phase.COMPLETED,
            records_read=resume.records_read,
            records_written=resume.checkpoint.records_written,
            seconds=resume.seconds + index_seconds,
            records_per_second=resume.average_records_per_second,
            index_seconds=index_seconds,
            search_ready=ready,
            hnsw_ef=plan.tuning.hnsw_ef,
        )
        self._emit(CollectionFinished(run_id=self.run_id, collection=name, result=result))
        return result

    async def _reconcile(self, plan: CollectionPlan, owned: bool) -> None:
        """Counts must agree when Ferry owns the target: two ids on one point would show here."""
        if not owned or self.options.mode is WriteMode.APPEND:
            return
        target_count = await self.target.count(plan.target_name)
        source_count = await self.source.count(plan.source.name)
        if target_count != source_count:
            raise PermanentError(
                f"{plan.source.name}: target holds {target_count} records, source {source_count}",
                where=self.target.uri,
                fix="the source changed during the copy or ids collided; run `ferry validate --full`",
            )

    async def _pipeline(self, copy: _Copy) -> None:
        name, target_name = copy.name, copy.plan.target_name
        options = self.options
        queue: asyncio.Queue[tuple[int, Batch] | None] = asyncio.Queue(maxsize=options.workers)
        progress = self.progress[name]
        batch_size = min(options.batch_size, self.target.max_batch_size() or options.batch_size)
        on_read_retry = self._on_retry(name, "read")
        on_write_retry = self._on_retry(name, "write")

        async def read_into_queue() -> None:
            seq = 0
            cursor = copy.watermark.cursor
            stream: Any = None

            async def next_batch() -> Batch | None:
                # One retried unit per batch: a failed stream is reopened at the last cursor,
                # and every batch read starts a fresh series of attempts.
                nonlocal stream
                if stream is None:
                    stream = self.source.read(name, cursor, batch_size)
                try:
                    return await anext(stream)
                except StopAsyncIteration:
                    return None
                except TransientError:
                    await stream.aclose()
                    stream = None
                    raise

            try:
                while True:
                    batch = await self.retry.call(next_batch, on_read_retry)
                    if batch is None:
                        return
                    refuse_non_finite(batch, name, self.source.uri)
                    refuse_bad_records(batch, name, self.source.uri)  # core/record_checks.py
                    faultpoints.reached("read")
                    if not await self.control.gate():
                        return
                    if self._limiter is not None:
                        await self._take_rate(len(batch))
                    progress.records_read += len(batch)
                    await queue.put((seq, batch))
                    seq += 1
                    cursor = batch.cursor_after
            finally:
                if stream is not None:
                    await stream.aclose()

        async def reader() -> None:
            await read_into_queue()
            # Only after a normal end: on failure or cancellation the writers are cancelled,
            # and waiting here for room in a queue nobody drains would hang the run.
            for _ in range(options.workers):
                await queue.put(None)

        async def writer() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    return
                seq, batch = item
                if not await self.control.gate():
                    continue  # drain without writing; the watermark stays where it is
                await self.retry.call(
                    lambda b=batch: self.target.write(target_name, b), on_write_retry
                )
                faultpoints.reached("write")
                copy.watermark.ack(seq, batch.cursor_after, len(batch), batch.nbytes)
                del batch, item
                await self._advance(copy)

        tasks = [asyncio.create_task(reader(), name=f"read:{name}")]
        tasks += [
            asyncio.create_task(writer(), name=f"write:{name}:{i}") for i in range(options.workers)
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # What was acknowledged before the failure is kept: commit it (best effort).
            with contextlib.suppress(Exception):
                await self._advance(copy, final=True)
            raise
        await self._advance(copy, final=True)

    async def _advance(self, copy: _Copy, final: bool = False) -> None:
        """Move the watermark over every contiguous acknowledged batch; commit it when due.

        A commit first asks the target to `sync` (flush to disk), so the journal never holds
        a watermark above data the target could lose; commits are spaced by
        CHECKPOINT_INTERVAL (or more, when a sync is slow: SYNC_SHARE) so the flush cost is
        a small share of the time, not paid per batch.
        """
        async with copy.lock:
            meter = copy.meter
            batches, records, nbytes = copy.watermark.advance()
            if batches:
                meter.add(records, nbytes)
                self._publish_progress(copy.name, meter)
            now = self.clock()
            interval = max(CHECKPOINT_INTERVAL, SYNC_SHARE * copy.sync_seconds)
            due = now - copy.committed_at >= interval
            if copy.committed.records_written == meter.written or not (due or final):
                return
            await self.retry.call(
                lambda: self.target.sync(copy.plan.target_name), self._on_retry(copy.name, "sync")
            )
            copy.sync_seconds = self.clock() - now
            checkpoint = Checkpoint(
                copy.watermark.cursor, meter.written, meter.bytes, copy.committed.target_owned
            )
            faultpoints.reached("checkpoint")
            await self._commit(copy, checkpoint)
            faultpoints.reached("committed")
            copy.committed_at = now

    async def _commit(self, copy: _Copy, checkpoint: Checkpoint) -> None:
        """The one persistence port: durable first, then announced."""
        await self.checkpoints.commit(copy.name, checkpoint)
        copy.committed = checkpoint
        self._emit(
            CheckpointCommitted(run_id=self.run_id, collection=copy.name, checkpoint=checkpoint)
        )

    async def _take_rate(self, records: int) -> None:
        assert self._limiter is not None
        chunk = max(int(self._limiter.max_rate), 1)
        while records > 0:
            amount = min(records, chunk)
            await self._limiter.acquire(amount)
            records -= amount


def refuse_non_finite(batch: Batch, collection: str, where: str) -> None:
    """NaN or infinite vector values poison every search that meets them: never copied
    silently. The batch is refused before it is written, naming the records."""
    finite = np.isfinite(batch.vectors).all(axis=1) if batch.vectors.size else None
    if finite is None or bool(finite.all()):
        return
    bad = [str(batch.ids[i]) for i in np.flatnonzero(~finite)]
    shown = ", ".join(repr(i) for i in bad[:5]) + (
        f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
    )
    raise PermanentError(
        f"{collection}: {len(bad)} record(s) have NaN or infinite vector values: {shown}",
        where=where,
        fix="fix or delete them in the source, then re-run to resume",
    )


def run_status(results: list[CollectionResult]) -> RunState:
    """A run is failed if any collection failed, else cancelled if any was, else completed."""
    statuses = {r.status for r in results}
    if Phase.FAILED in statuses:
        return RunState.FAILED
    if Phase.CANCELLED in statuses:
        return RunState.CANCELLED
    return RunState.COMPLETED
