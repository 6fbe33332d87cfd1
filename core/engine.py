"""The streaming pipeline: one reader per collection → bounded queue → N writers.

Why it is shaped this way:

* Reading and writing overlap, so throughput approaches min(read rate, write rate).
* The queue is bounded (``workers`` batches) and each writer holds one batch, so memory is
  bounded by ``batch_size × (2 × workers + 1)`` whatever the collection size.
* Writers finish out of order, so the checkpoint is a *watermark*: the cursor below which
  every batch is acknowledged by the target. It is committed to the journal only after the
  acknowledgement; resume replays from it and idempotent upserts make the replay harmless.
* Progress is latest-value: a slow viewer never slows the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from core.connectors.base import Connector, WriteMode
from core.errors import FerryError, PermanentError, TransientError
from core.journal import Journal
from core.mapping import PayloadFields
from core.model import Batch, Event, Phase, Progress
from core.plan import CollectionPlan

RATE_WINDOW_SECONDS = 5.0
JOURNAL_PROGRESS_INTERVAL = 0.25
CHECKPOINT_INTERVAL = 0.5  # seconds between durable checkpoints (each costs a target sync)


@dataclass
class MigrationOptions:
    batch_size: int = 1000
    workers: int = 2
    rate: float | None = None  # records per second, None for unlimited
    mode: WriteMode = WriteMode.CREATE
    fields: PayloadFields = field(default_factory=PayloadFields)
    max_attempts: int = 6
    retry_initial: float = 0.2
    retry_max: float = 10.0

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "workers": self.workers,
            "rate": self.rate,
            "mode": self.mode.value,
        }


@dataclass
class CollectionResult:
    name: str
    status: str
    records_read: int = 0
    records_written: int = 0
    seconds: float = 0.0
    records_per_second: float = 0.0
    skipped_reason: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "records_read": self.records_read,
            "records_written": self.records_written,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 1),
            "skipped_reason": self.skipped_reason,
            "error": self.error,
        }


class RunControl:
    """Pause, resume and cancel as engine operations: the pipeline waits on these."""

    def __init__(self) -> None:
        self._running = asyncio.Event()
        self._running.set()
        self.cancelled = False
        self.on_change: Callable[[str], None] | None = None

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        if not self.cancelled and not self.paused:
            self._running.clear()
            if self.on_change:
                self.on_change("paused")

    def resume(self) -> None:
        if self.paused:
            self._running.set()
            if self.on_change:
                self.on_change("running")

    def cancel(self) -> None:
        self.cancelled = True
        self._running.set()  # wake anything waiting so it can see the cancellation
        if self.on_change:
            self.on_change("cancelled")

    async def gate(self) -> bool:
        """Wait while paused; False once cancelled."""
        await self._running.wait()
        return not self.cancelled


class EventBus:
    """Fan-out to in-process subscribers. Progress is coalesced per collection."""

    def __init__(self) -> None:
        self._subscribers: list[_Subscription] = []

    def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber.offer(event)

    def subscribe(self) -> _Subscription:
        subscription = _Subscription(self)
        self._subscribers.append(subscription)
        return subscription

    def close(self) -> None:
        for subscriber in self._subscribers:
            subscriber.close()


class _Subscription:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._events: deque[Event] = deque(maxlen=2000)
        self._progress: dict[str | None, Event] = {}
        self._wake = asyncio.Event()
        self._closed = False

    def offer(self, event: Event) -> None:
        if event.kind == "progress":
            self._progress[event.collection] = event
        else:
            self._events.append(event)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def drain(self) -> list[Event]:
        events = list(self._events) + list(self._progress.values())
        self._events.clear()
        self._progress.clear()
        self._wake.clear()
        return events

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            await self._wake.wait()
            for event in self.drain():
                yield event
            if self._closed and not self._events and not self._progress:
                return


class ProgressMeter:
    """Sliding-window rate, average rate and ETA for one collection."""

    def __init__(self, total: int, already_written: int, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.total = total
        self.written = already_written
        self.bytes = 0
        self.started = clock()
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
        elapsed = max(now - self.started, 1e-6)
        return (
            (self.written - w0) / span,
            (self.written - self._start_written) / elapsed,
            (self.bytes - b0) / span,
        )

    def eta(self, rate: float) -> float | None:
        remaining = max(self.total - self.written, 0)
        if remaining == 0:
            return 0.0
        return remaining / rate if rate > 0 else None


class MigrationEngine:
    """Drives one run: its collections in order, each through the streaming pipeline."""

    def __init__(
        self,
        source: Connector,
        target: Connector,
        journal: Journal,
        run_id: str,
        plans: list[CollectionPlan],
        options: MigrationOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.target = target
        self.journal = journal
        self.run_id = run_id
        self.plans = plans
        self.options = options
        self.clock = clock
        self.control = RunControl()
        self.control.on_change = self._on_control
        self.bus = EventBus()
        self.progress: dict[str, Progress] = {p.source.name: Progress(p.source.name) for p in plans}
        self._last_journal_write: dict[str, float] = {}
        self._limiter = AsyncLimiter(max(options.rate, 1.0), 1.0) if options.rate else None
        self._current: str | None = None

    # -- public operations ------------------------------------------------------------------
    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def cancel(self) -> None:
        self.control.cancel()

    def subscribe(self) -> _Subscription:
        return self.bus.subscribe()

    async def run(self) -> list[CollectionResult]:
        self.journal.claim_run(self.run_id)
        for plan in self.plans:  # every collection visible, with its total, from the start
            row = self.journal.ensure_collection(self.run_id, plan.source.name, plan.target_name)
            if row["status"] == Phase.PENDING.value:
                self.journal.update_collection(
                    self.run_id, plan.source.name, total=plan.source.count
                )
        self._emit("phase", None, "run started", phase=Phase.RUNNING.value)
        results: list[CollectionResult] = []
        for plan in self.plans:
            if self.control.cancelled:
                results.append(self._cancelled_result(plan))
                continue
            results.append(await self._migrate_collection(plan))
        status = run_status(results)
        self.journal.set_run_status(
            self.run_id, status, error=next((r.error for r in results if r.error), None)
        )
        self._emit("phase", None, f"run {status}", phase=status)
        self.bus.close()
        return results

    # -- events -----------------------------------------------------------------------------
    def _emit(self, kind: str, collection: str | None, message: str, **data: Any) -> None:
        event = Event(kind, self.run_id, collection, message, data)
        if kind != "progress":
            self.journal.add_event(event)
        self.bus.publish(event)

    def _on_control(self, state: str) -> None:
        if state in {"paused", "running"}:
            self.journal.set_run_status(self.run_id, state)
            if self._current:
                progress = self.progress[self._current]
                progress.phase = Phase(state)
                self.journal.update_collection(self.run_id, self._current, status=state)
        self._emit("phase", self._current, f"run {state}", phase=state)

    def _publish_progress(self, name: str, meter: ProgressMeter, force: bool = False) -> None:
        progress = self.progress[name]
        rate, average, byte_rate = meter.rates()
        progress.records_per_second = rate
        progress.average_records_per_second = average
        progress.bytes_per_second = byte_rate
        progress.records_written = meter.written
        progress.bytes_written = meter.bytes
        progress.eta_seconds = meter.eta(rate)
        progress.seconds = self.clock() - meter.started
        self.bus.publish(Event("progress", self.run_id, name, "", progress.to_json()))
        now = self.clock()
        if force or now - self._last_journal_write.get(name, 0.0) >= JOURNAL_PROGRESS_INTERVAL:
            self._last_journal_write[name] = now
            self.journal.update_collection(
                self.run_id,
                name,
                records_read=progress.records_read,
                records_per_second=rate,
                average_records_per_second=average,
                bytes_per_second=byte_rate,
                eta_seconds=progress.eta_seconds,
                retries=progress.retries,
                errors=progress.errors,
                seconds=progress.seconds,
            )

    # -- one collection ---------------------------------------------------------------------
    def _cancelled_result(self, plan: CollectionPlan) -> CollectionResult:
        name = plan.source.name
        self.journal.ensure_collection(self.run_id, name, plan.target_name)
        self.journal.update_collection(self.run_id, name, status=Phase.CANCELLED.value)
        return CollectionResult(name, Phase.CANCELLED.value)

    async def _migrate_collection(self, plan: CollectionPlan) -> CollectionResult:
        name = plan.source.name
        info = plan.source
        row = self.journal.ensure_collection(self.run_id, name, plan.target_name)
        progress = self.progress[name]
        progress.total = info.count
        if row["status"] in {Phase.COMPLETED.value, Phase.SKIPPED.value}:
            progress.phase = Phase(row["status"])
            return CollectionResult(
                name,
                Phase.COMPLETED.value,  # a skipped collection is done: see skipped_reason
                records_read=row["records_read"],
                records_written=row["records_written"],
                seconds=row["seconds"],
                records_per_second=row["average_records_per_second"],
                skipped_reason=row["skipped_reason"],
            )
        if plan.skip_reason:
            progress.phase = Phase.SKIPPED
            progress.skipped_reason = plan.skip_reason
            self.journal.update_collection(
                self.run_id, name, status=Phase.SKIPPED.value, skipped_reason=plan.skip_reason
            )
            self._emit("phase", name, f"skipped: {plan.skip_reason}", phase="skipped")
            # Done, with nothing to do: the JSON contract says "completed" + skipped_reason.
            return CollectionResult(name, Phase.COMPLETED.value, skipped_reason=plan.skip_reason)

        self._current = name
        started = self.clock()
        watermark = json.loads(row["watermark"]) if row["watermark"] else None
        meter = ProgressMeter(info.count, row["records_written"], self.clock)
        meter.bytes = row["bytes_written"]
        progress.records_read = row["records_written"]
        self.journal.update_collection(
            self.run_id,
            name,
            status=Phase.RUNNING.value,
            total=info.count,
            dimension=info.dimension,
            metric=info.metric.value if info.metric else None,
            error=None,
        )
        progress.phase = Phase.RUNNING
        try:
            prepared = await self._with_retries(
                name,
                "prepare target",
                lambda: self.target.prepare(
                    info, self.options.mode, owned=self._owned(plan.target_name)
                ),
            )
            if prepared.created or (prepared.existed and self.options.mode is WriteMode.CREATE):
                # Created now, or accepted in create mode, which happens only for a collection
                # that is empty (e.g. created by a run killed before it could say so) or already
                # Ferry's: from here on it is Ferry's, so re-runs and resumes may write to it.
                self.journal.update_collection(self.run_id, name, target_created=1)
            for warning in prepared.warnings:
                self._emit("warning", name, warning)
            resumed = " (resuming)" if watermark is not None else ""
            self._emit("phase", name, f"copying {info.count:,} records{resumed}", phase="running")
            await self._pipeline(plan, watermark, meter)
            if self.control.cancelled:
                raise asyncio.CancelledError
            await self._reconcile(plan, meter, prepared.created or self._owned(plan.target_name))
        except asyncio.CancelledError:
            progress.phase = Phase.CANCELLED
            self.journal.update_collection(self.run_id, name, status=Phase.CANCELLED.value)
            self._publish_progress(name, meter, force=True)
            self._emit("phase", name, "cancelled; re-run to resume", phase="cancelled")
            return CollectionResult(
                name,
                Phase.CANCELLED.value,
                records_read=progress.records_read,
                records_written=self._durable(name),
                seconds=self.clock() - started,
            )
        except FerryError as exc:
            progress.phase = Phase.FAILED
            progress.error = exc.one_line()
            progress.errors += 1
            self.journal.update_collection(
                self.run_id,
                name,
                status=Phase.FAILED.value,
                error=progress.error,
                errors=progress.errors,
            )
            self._emit("error", name, progress.error)
            return CollectionResult(
                name,
                Phase.FAILED.value,
                records_read=progress.records_read,
                records_written=self._durable(name),
                seconds=self.clock() - started,
                error=progress.error,
            )
        finally:
            self._current = None
        seconds = self.clock() - started
        written_now = meter.written - row["records_written"]
        average = written_now / seconds if seconds > 0 else 0.0
        progress.phase = Phase.COMPLETED
        self._publish_progress(name, meter, force=True)
        self.journal.update_collection(
            self.run_id,
            name,
            status=Phase.COMPLETED.value,
            seconds=seconds,
            average_records_per_second=average,
            eta_seconds=0,
        )
        self._emit("phase", name, f"completed: {meter.written:,} records", phase="completed")
        return CollectionResult(
            name,
            Phase.COMPLETED.value,
            records_read=progress.records_read,
            records_written=meter.written,
            seconds=seconds,
            records_per_second=average,
        )

    def _owned(self, target_name: str) -> bool:
        return self.journal.target_owned(self.target.uri, target_name)

    def _durable(self, name: str) -> int:
        row = self.journal.ensure_collection(self.run_id, name, name)
        return int(row["records_written"])

    async def _reconcile(self, plan: CollectionPlan, meter: ProgressMeter, owned: bool) -> None:
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

    async def _with_retries(self, name: str, what: str, call: Callable[[], Any]) -> Any:
        def before_sleep(state: RetryCallState) -> None:
            progress = self.progress[name]
            progress.retries += 1
            error = state.outcome.exception() if state.outcome else None
            self._emit(
                "retry",
                name,
                f"{what} failed ({error}); retry {state.attempt_number}",
                attempt=state.attempt_number,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential_jitter(
                initial=self.options.retry_initial, max=self.options.retry_max
            ),
            stop=stop_after_attempt(self.options.max_attempts),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pipeline(self, plan: CollectionPlan, watermark: Any, meter: ProgressMeter) -> None:
        name = plan.source.name
        options = self.options
        queue: asyncio.Queue[tuple[int, Batch] | None] = asyncio.Queue(maxsize=options.workers)
        # Acknowledged but not yet below the watermark: (records, bytes, cursor) only, so an
        # out-of-order finish never pins a batch's vectors in memory.
        done: dict[int, tuple[int, int, Any]] = {}
        state = {
            "next_seq": 0,
            "watermark": watermark,
            "lock": asyncio.Lock(),
            "committed_at": self.clock(),
            "written_committed": meter.written,
        }
        progress = self.progress[name]
        batch_size = min(options.batch_size, self.target.max_batch_size() or options.batch_size)

        async def read_into_queue() -> None:
            seq = 0
            cursor = watermark
            attempts = 0
            while True:
                stream = self.source.read(name, cursor, batch_size)
                try:
                    async for batch in stream:
                        attempts = 0
                        if not await self.control.gate():
                            return
                        if self._limiter is not None:
                            await self._take_rate(len(batch))
                        progress.records_read += len(batch)
                        await queue.put((seq, batch))
                        seq += 1
                        cursor = batch.cursor_after
                    return
                except TransientError as exc:
                    attempts += 1
                    progress.retries += 1
                    if attempts >= options.max_attempts:
                        raise
                    self._emit("retry", name, f"read failed ({exc}); retry {attempts}")
                    await asyncio.sleep(min(options.retry_initial * 2**attempts, options.retry_max))
                finally:
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
                await self._with_retries(
                    name, "write", lambda b=batch: self.target.write(plan.target_name, b)
                )
                done[seq] = (len(batch), batch.nbytes, batch.cursor_after)
                del batch, item
                await self._advance(name, state, done, meter, plan.target_name)

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
                await self._advance(name, state, done, meter, plan.target_name, final=True)
            raise
        await self._advance(name, state, done, meter, plan.target_name, final=True)

    async def _advance(
        self,
        name: str,
        state: dict[str, Any],
        done: dict[int, tuple[int, int, Any]],
        meter: ProgressMeter,
        target_name: str,
        final: bool = False,
    ) -> None:
        """Move the watermark over every contiguous acknowledged batch; commit it when due.

        A commit first asks the target to `sync` (flush to disk), so the journal never holds
        a watermark above data the target could lose; commits are spaced by
        CHECKPOINT_INTERVAL so the flush cost is paid a few times a second, not per batch.
        """
        async with state["lock"]:
            moved = False
            while state["next_seq"] in done:
                records, nbytes, cursor_after = done.pop(state["next_seq"])
                state["next_seq"] += 1
                state["watermark"] = cursor_after
                meter.add(records, nbytes)
                moved = True
            if moved:
                self._publish_progress(name, meter)
            now = self.clock()
            due = now - state["committed_at"] >= CHECKPOINT_INTERVAL
            if state["written_committed"] == meter.written or not (due or final):
                return
            await self._with_retries(name, "sync", lambda: self.target.sync(target_name))
            await asyncio.to_thread(
                self.journal.checkpoint,
                self.run_id,
                name,
                state["watermark"],
                meter.written,
                meter.bytes,
            )
            state["committed_at"] = now
            state["written_committed"] = meter.written

    async def _take_rate(self, records: int) -> None:
        assert self._limiter is not None
        chunk = max(int(self._limiter.max_rate), 1)
        while records > 0:
            amount = min(records, chunk)
            await self._limiter.acquire(amount)
            records -= amount


def run_status(results: list[CollectionResult]) -> str:
    statuses = {r.status for r in results}
    if Phase.FAILED.value in statuses:
        return Phase.FAILED.value
    if Phase.CANCELLED.value in statuses:
        return Phase.CANCELLED.value
    return Phase.COMPLETED.value
