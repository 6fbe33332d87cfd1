"""RunRecorder: a run's events become journal rows, on a thread of the recorder's own.

Why a listener and a thread:

* The engine publishes what happens (core.events); what the journal keeps of it is decided
  here, in one place, instead of in ~20 calls from the middle of the pipeline.
* SQLite calls block (a viewer's read, a WAL checkpoint, a busy disk). The engine's event
  loop never waits for them: `record` only hands the event over, and one writer thread
  applies them in the order they were published.
* Progress is latest-value: a collection's newest sample replaces the older ones, and a row
  is rewritten at most every PROGRESS_INTERVAL seconds. Before any other row of the same
  collection (or of the run) is written, its pending sample is written first, so a status
  never precedes the progress that led to it.
* Checkpoints are the engine's one persistence port (`commit`): the engine awaits them,
  because "the journal never holds a watermark above what the target synced" is the
  algorithm. They queue behind every event already published, so what came before a
  checkpoint (the target claimed as Ferry's, say) is durable once the checkpoint is.
* `RunFinished` and `close` flush whatever is pending: nothing is lost at a normal exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferry.core import faultpoints
from ferry.core.events import (
    CollectionFinished,
    CollectionStarted,
    EventBus,
    IndexingStarted,
    PhaseChanged,
    ProgressSampled,
    RetryScheduled,
    RunEvent,
    RunFinished,
    RunStarted,
)
from ferry.core.journal import Journal
from ferry.core.model import Checkpoint, Phase
from ferry.core.states import RunState

PROGRESS_INTERVAL = 0.25  # seconds between progress rows of one collection


@dataclass
class _Waiter:
    """Something a coroutine awaits until the writer thread has done it."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]

    def settle(self, error: BaseException | None) -> None:
        def resolve() -> None:
            if self.future.done():
                return
            if error is None:
                self.future.set_result(None)
            else:
                self.future.set_exception(error)

        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            self.loop.call_soon_threadsafe(resolve)


@dataclass
class _Commit:
    collection: str
    checkpoint: Checkpoint
    waiter: _Waiter


@dataclass
class _Flush:
    waiter: _Waiter


class _Stop:
    pass


class _Wake:
    """A progress sample is waiting in the latest-value slot."""


class RunRecorder:
    """Writes one run's events to the journal; implements the engine's checkpoint port."""

    def __init__(
        self,
        journal: Journal,
        run_id: str,
        progress_interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.run_id = run_id
        self.progress_interval = progress_interval
        self.clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._latest: dict[str, ProgressSampled] = {}  # shared with the thread, under _lock
        self._lock = threading.Lock()
        self._woken = False
        self._thread = threading.Thread(target=self._work, name=f"recorder:{run_id}", daemon=True)
        self._started = False
        self._closed = False
        self.error: BaseException | None = None  # the first failed write, raised at close

    # -- the loop's side ----------------------------------------------------------------
    def attach(self, bus: EventBus) -> RunRecorder:
        """Listen to `bus` and start writing."""
        bus.listen(self.record)
        self.start()
        return self

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def record(self, event: RunEvent) -> None:
        """Take an event (called inline by the bus: never blocks on SQLite)."""
        if self._closed:
            return
        if isinstance(event, ProgressSampled) and event.collection is not None:
            with self._lock:
                self._latest[event.collection] = event
                if self._woken:
                    return
                self._woken = True
            self._queue.put(_Wake())
            return
        self._queue.put(event)

    async def commit(self, collection: str, checkpoint: Checkpoint) -> None:
        """The engine's checkpoint port: returns once the checkpoint is in the journal."""
        waiter = self._waiter()
        self._queue.put(_Commit(collection, checkpoint, waiter))
        await waiter.future

    async def flush(self) -> None:
        """Returns once everything recorded so far (progress included) is in the journal."""
        waiter = self._waiter()
        self._queue.put(_Flush(waiter))
        await waiter.future

    async def aclose(self) -> None:
        """Flush, stop the thread; raise the first write error, if any, so none is silent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Stop())
        if self._started:
            await asyncio.to_thread(self._thread.join)
        if self.error is not None:
            raise self.error

    def _waiter(self) -> _Waiter:
        if self._closed or not self._started:
            raise RuntimeError("the recorder is not running")
        loop = asyncio.get_running_loop()
        return _Waiter(loop, loop.create_future())

    # -- the writer thread --------------------------------------------------------------
    def _work(self) -> None:
        pending: dict[str, ProgressSampled] = {}
        written_at: dict[str, float] = {}
        interval = self.progress_interval
        while True:
            timeout = None
            if pending:  # wake when the earliest pending sample falls due
                earliest = min(written_at.get(n, float("-inf")) for n in pending)
                timeout = max(earliest + interval - self.clock(), 0.0)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            with self._lock:
                pending.update(self._latest)
                self._latest.clear()
                self._woken = False
            # Progress rows that are due go first: whatever this item is, it comes after them.
            now = self.clock()
            due = {n for n in pending if now - written_at.get(n, float("-inf")) >= interval}
            if due:
                self._write_progress(pending, written_at, due)
            if isinstance(item, _Stop):
                self._write_progress(pending, written_at, None)
                return
            if isinstance(item, _Flush):
                item.waiter.settle(self._write_progress(pending, written_at, None))
            elif isinstance(item, _Commit):
                error = self._attempt(
                    lambda c=item: self.journal.runs.checkpoint(
                        self.run_id,
                        c.collection,
                        c.checkpoint.watermark,
                        c.checkpoint.records_written,
                        c.checkpoint.bytes_written,
                        c.checkpoint.target_owned,
                    )
                )
                item.waiter.settle(error)
            elif isinstance(item, RunEvent):
                # Whatever this event writes, the progress that came before it goes first.
                run_wide = item.collection is None or isinstance(item, RunStarted | RunFinished)
                self._write_progress(pending, written_at, None if run_wide else {item.collection})
                self._attempt(lambda e=item: self._apply(e))

    def _write_progress(
        self,
        pending: dict[str, ProgressSampled],
        written_at: dict[str, float],
        names: set[str] | None,
    ) -> BaseException | None:
        """Write the pending samples of `names` (all when None); the first error, if any."""
        first: BaseException | None = None
        for name in list(pending) if names is None else [n for n in names if n in pending]:
            sample = pending.pop(name)
            written_at[name] = self.clock()
            error = self._attempt(
                lambda n=name, s=sample: self.journal.runs.record_progress(
                    self.run_id, n, s.progress
                )
            )
            first = first or error
        return first

    def _attempt(self, write: Callable[[], None]) -> BaseException | None:
        try:
            write()
        except Exception as exc:  # kept, raised at close: the thread must go on
            if self.error is None:
                self.error = exc
            return exc
        return None

    def _apply(self, event: RunEvent) -> None:
        """The rows one event means. Every row the engine used to write is written here."""
        journal, run_id, name = self.journal, self.run_id, event.collection
        if isinstance(event, RunStarted):
            journal.runs.claim(run_id)
            for planned in event.collections:
                journal.runs.requeue_collection(run_id, planned.name)
                journal.runs.plan_collection(run_id, planned.name, planned.total)
        elif isinstance(event, CollectionStarted) and name:
            journal.runs.start_collection(run_id, name, event.total, event.dimension, event.metric)
        elif isinstance(event, IndexingStarted) and name:
            journal.runs.start_indexing(run_id, name, event.total, event.tuning, event.ts)
            faultpoints.reached("index")  # the copy is durable, the index not yet built
        elif isinstance(event, PhaseChanged):
            if event.state in {RunState.PAUSED, RunState.RUNNING}:
                journal.runs.set_status(run_id, event.state)
                if name:
                    journal.runs.set_collection_phase(run_id, name, Phase(event.state.value))
            elif event.state is RunState.CANCELLING:
                journal.runs.set_status(run_id, RunState.CANCELLING)
        elif isinstance(event, CollectionFinished) and name:
            self._finish_collection(event)
        elif isinstance(event, RetryScheduled) and name:
            journal.runs.add_retry(run_id, name)
        elif isinstance(event, RunFinished):
            journal.runs.set_status(run_id, event.state, event.error)
        entry = event.log_entry()
        if entry is not None:
            journal.events.add(entry)

    def _finish_collection(self, event: CollectionFinished) -> None:
        journal, run_id, result = self.journal, self.run_id, event.result
        phase = event.phase
        if phase is Phase.COMPLETED:
            journal.runs.complete_collection(
                run_id,
                result.name,
                result.seconds,
                result.records_per_second,
                result.index_seconds,
                bool(result.search_ready),
                result.hnsw_ef,
            )
        elif phase is Phase.SKIPPED:
            journal.runs.skip_collection(run_id, result.name, result.skipped_reason or "")
        elif phase is Phase.FAILED:
            journal.runs.fail_collection(
                run_id, result.name, result.error or "failed", event.errors
            )
        else:
            journal.runs.set_collection_phase(run_id, result.name, phase)
