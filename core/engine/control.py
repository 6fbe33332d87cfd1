"""The run's moving parts that are not the pipeline itself: control, watermark, progress.

* `RunControl`: pause, resume and cancel as engine operations the pipeline waits on.
* `Watermark`: writers finish out of order, so the resume point is the cursor below which
  every batch is acknowledged; only it is ever committed.
* `ProgressMeter`: latest-value rates and ETA, so a slow viewer never slows the pipeline.
* `CheckpointStore`: the engine's one persistence port.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ferry.core.model import Checkpoint, Cursor
from ferry.core.states import RunState

if TYPE_CHECKING:
    from ferry.core.plan import CollectionPlan

RATE_WINDOW_SECONDS = 5.0


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
class CopyInFlight:
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
