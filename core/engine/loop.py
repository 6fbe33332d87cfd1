"""The engine's loop: a run's collections in order, each streamed read → stages → write.

Why it is shaped this way:

* Reading and writing overlap, so throughput approaches min(read rate, write rate).
* The queue is bounded (``workers`` batches) and each writer holds one batch, so memory is
  bounded by ``batch_size × (2 × workers + 1)`` whatever the collection size — and by bytes:
  `BatchSizing` shrinks batches of large records to ``batch_bytes`` each (2 MB documents
  read 1,000 at a time would hold 2 GB per batch).
* Writers finish out of order, so the checkpoint is a *watermark* (`Watermark`): the cursor
  below which every batch is acknowledged by the target. It is committed only after the
  target's `sync`; resume replays from it and idempotent upserts make the replay harmless.
* The engine publishes typed events (core.events) and keeps exactly one persistence port:
  `CheckpointStore.commit`, awaited after `target.sync`, because that ordering *is* the
  algorithm. Everything else the journal shows is written by a listener (the RunRecorder).
  The runner hands the engine a `ResumePoint` per collection: the engine never reads state.
* What happens to each collection (skip, prepare, copy, reconcile, index, its result) is
  its `CollectionLifecycle`'s business; what happens to each batch on the way is a list of
  `BatchStage`s (core/engine/stages.py). The loop only pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiolimiter import AsyncLimiter

from ferry.core import faultpoints
from ferry.core.connectors.base import Connector
from ferry.core.engine.sizing import BatchSizing
from ferry.core.errors import TransientError
from ferry.core.events import (
    CheckpointCommitted,
    EventBus,
    PhaseChanged,
    PlannedCollection,
    ProgressSampled,
    RetryScheduled,
    RunEvent,
    RunFinished,
    RunStarted,
    Subscription,
)
from ferry.core.model import Batch, Checkpoint, CollectionResult, Phase, Progress, ResumePoint
from ferry.core.plan import CollectionPlan
from ferry.core.retry import OnRetry, RetryNotice
from ferry.core.states import RunState

from .control import CheckpointStore, CopyInFlight, ProgressMeter, RunControl, Watermark
from .lifecycle import CollectionLifecycle
from .options import MigrationOptions
from .stages import BatchStage, FiniteVectors

if TYPE_CHECKING:
    from ferry.core.embed import EmbedStage

CHECKPOINT_INTERVAL = 0.5  # seconds between durable checkpoints (each costs a target sync)
# A sync blocks the target's writes (Qdrant Edge serves one request at a time, and a flush of
# a shard with payload indexes takes ~0.1–0.3 s): checkpoints are spaced so syncing takes at
# most 1/SYNC_SHARE of the time — never more often than CHECKPOINT_INTERVAL.
SYNC_SHARE = 30  # Edge's flush has a fixed cost (~50 ms): 10 put 9 % of a copy in flushes


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
        stages: Sequence[BatchStage] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.run_id = run_id
        self.plans = plans
        self.options = options
        self.checkpoints = checkpoints
        self.resume_points = dict(resume or {})
        self.clock = clock
        # Between read and write, in order: the map step's check, then any given (embed).
        self.stages: list[BatchStage] = [FiniteVectors(source.uri), *(stages or ())]
        self.retry = options.retry_policy
        self.control = RunControl(clock)
        self.control.on_change = self._on_control
        self.bus = EventBus()
        self.progress: dict[str, Progress] = {p.source.name: Progress(p.source.name) for p in plans}
        self._limiter = AsyncLimiter(max(options.rate, 1.0), 1.0) if options.rate else None
        self.current: str | None = None  # the collection being copied or indexed
        # The embed stage (`--embed`), set by the runner: new vectors between map and write,
        # the last of the stages; the target collection takes the model's shape.
        self.embedder: EmbedStage | None = None
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
        self.emit(RunStarted(run_id=self.run_id, collections=planned))
        results: list[CollectionResult] = []
        for plan in self.plans:
            resume = self.resume_points.get(plan.source.name, ResumePoint())
            results.append(await CollectionLifecycle(self, plan, resume).run())
        state = run_status(results)
        self._finished = True
        error = next((r.error for r in results if r.error), None)
        self.emit(RunFinished(run_id=self.run_id, state=state, error=error))
        self.bus.close()
        return results

    # -- what lifecycles use ------------------------------------------------------------------
    def emit(self, event: RunEvent) -> None:
        self.bus.publish(event)

    def on_retry(self, name: str, what: str) -> OnRetry:
        def on_retry(notice: RetryNotice) -> None:
            self.progress[name].retries += 1
            self.emit(
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

    def publish_progress(self, name: str, meter: ProgressMeter) -> None:
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
        self.emit(ProgressSampled(run_id=self.run_id, collection=name, progress=sample))

    def target_shape(self) -> dict[str, Any]:
        """What the target collection is created with beyond the source's own description:
        re-embedding gives it the model's dimension and metric."""
        if self.embedder is None:
            return {}
        return {"dimension": self.embedder.dimension, "metric": self.embedder.embedder.metric}

    def new_copy(
        self, plan: CollectionPlan, meter: ProgressMeter, watermark: Watermark, point: Checkpoint
    ) -> CopyInFlight:
        return CopyInFlight(plan, meter, watermark, point, self.clock())

    def _on_control(self, state: RunState) -> None:
        if self._finished:
            return  # a late signal after the run ended changes nothing
        current = self.current
        if current and self.progress[current].phase is Phase.INDEXING:
            current = None  # the index phase is the database's work: a pause does not stop it
        if current and state in {RunState.PAUSED, RunState.RUNNING}:
            self.progress[current].phase = Phase(state.value)
        self.emit(PhaseChanged(run_id=self.run_id, collection=current, state=state))

    # -- the pipeline and its checkpoints -----------------------------------------------------
    async def copy(self, copy: CopyInFlight) -> None:
        """Stream one collection: a reader into a bounded queue, N writers, the watermark."""
        name, target_name = copy.name, copy.plan.target_name
        options = self.options
        queue: asyncio.Queue[tuple[int, Batch] | None] = asyncio.Queue(maxsize=options.workers)
        progress = self.progress[name]
        batch_size = options.paced_batch_size(self.target.max_batch_size())
        on_read_retry = self.on_retry(name, "read")
        on_write_retry = self.on_retry(name, "write")
        stages = [*self.stages, *([self.embedder] if self.embedder is not None else [])]

        async def read_into_queue() -> None:
            seq = 0
            cursor = copy.watermark.cursor
            stream: Any = None
            done = copy.committed
            known = done.bytes_written / done.records_written if done.records_written else 0.0
            sizing = BatchSizing(batch_size, options.batch_bytes, known)
            stream_size = sizing.size

            async def next_batch() -> Batch | None:
                # One retried unit per batch: a failed stream is reopened at the last cursor,
                # and every batch read starts a fresh series of attempts.
                nonlocal stream, stream_size
                if stream is not None and stream_size != sizing.size:
                    await stream.aclose()  # the byte bound changed the size: reopen here
                    stream = None
                if stream is None:
                    stream_size = sizing.size
                    stream = self.source.read(name, cursor, stream_size)
                try:
                    return await anext(stream)
                except StopAsyncIteration:
                    return None
                except TransientError:
                    await stream.aclose()
                    stream = None
                    raise

            async def topped_up(batch: Batch) -> Batch:
                # A probe of records that proved light is completed to a whole batch, so the
                # batches written are the ones a run without the byte bound writes.
                nonlocal cursor
                more = sizing.top_up(batch)
                if not more:
                    return batch
                cursor, whole = batch.cursor_after, sizing.size
                sizing.size = more
                rest = await self.retry.call(next_batch, on_read_retry)
                sizing.size = whole
                return batch if rest is None else batch.joined(rest)

            try:
                while True:
                    batch = await self.retry.call(next_batch, on_read_retry)
                    if batch is None:
                        return
                    sizing.saw(batch)
                    batch = await topped_up(batch)
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
                records = len(batch)  # read and handled (a record a stage leaves out counts)
                for stage in stages:  # each retries its own transient failures
                    batch = await stage(name, batch)
                if len(batch) or not records:  # a stage left out all: nothing to write
                    await self.retry.call(
                        lambda b=batch: self.target.write(target_name, b), on_write_retry
                    )
                faultpoints.reached("write")
                copy.watermark.ack(seq, batch.cursor_after, records, batch.nbytes)
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

    async def _advance(self, copy: CopyInFlight, final: bool = False) -> None:
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
                self.publish_progress(copy.name, meter)
            now = self.clock()
            interval = max(CHECKPOINT_INTERVAL, SYNC_SHARE * copy.sync_seconds)
            due = now - copy.committed_at >= interval
            if copy.committed.records_written == meter.written or not (due or final):
                return
            await self.retry.call(
                lambda: self.target.sync(copy.plan.target_name), self.on_retry(copy.name, "sync")
            )
            copy.sync_seconds = self.clock() - now
            checkpoint = Checkpoint(
                copy.watermark.cursor, meter.written, meter.bytes, copy.committed.target_owned
            )
            faultpoints.reached("checkpoint")
            await self.commit(copy, checkpoint)
            faultpoints.reached("committed")
            copy.committed_at = now

    async def commit(self, copy: CopyInFlight, checkpoint: Checkpoint) -> None:
        """The one persistence port: durable first, then announced."""
        await self.checkpoints.commit(copy.name, checkpoint)
        copy.committed = checkpoint
        self.emit(
            CheckpointCommitted(run_id=self.run_id, collection=copy.name, checkpoint=checkpoint)
        )

    async def _take_rate(self, records: int) -> None:
        assert self._limiter is not None
        chunk = max(int(self._limiter.max_rate), 1)
        while records > 0:
            amount = min(records, chunk)
            await self._limiter.acquire(amount)
            records -= amount


def run_status(results: list[CollectionResult]) -> RunState:
    """A run is failed if any collection failed, else cancelled if any was, else completed."""
    statuses = {r.status for r in results}
    if Phase.FAILED in statuses:
        return RunState.FAILED
    if Phase.CANCELLED in statuses:
        return RunState.CANCELLED
    return RunState.COMPLETED
