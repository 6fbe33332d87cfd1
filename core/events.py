"""What happens in a run, as typed events, and the bus that carries them to whoever listens.

Why typed: the engine says *what happened* (a collection started, a batch range became
durable, a retry is scheduled) and each listener decides what that means for it. The
RunRecorder (core.journal.recorder) turns events into journal rows; `ferry migrate`'s live
display turns them into bars; tests assert on them. The engine itself no longer knows about
journal columns, and a new view is a new listener, not another call in the pipeline.

Every event names its run and (when it has one) its collection; `message` and `kind` are
the line a person reads in the event log, empty for events that are not logged (progress
samples, checkpoints, a collection starting).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ferry.core.model import Checkpoint, CollectionResult, LogEntry, Phase, Progress
from ferry.core.states import RunState


@dataclass(frozen=True, kw_only=True)
class RunEvent:
    """The common part: which run, which collection (None: the run as a whole), when."""

    run_id: str
    collection: str | None = None
    ts: float = field(default_factory=time.time)

    # The event log's kind: phase | progress | retry | error | checkpoint | warning | info.
    kind: ClassVar[str] = "info"

    @property
    def message(self) -> str:
        """The log line; empty when this event is not worth a line."""
        return ""

    @property
    def data(self) -> dict[str, Any]:
        return {}

    def log_entry(self) -> LogEntry | None:
        """The line of the journal's event log this event becomes, if any."""
        if not self.message:
            return None
        return LogEntry(self.kind, self.run_id, self.collection, self.message, self.data, self.ts)


@dataclass(frozen=True)
class PlannedCollection:
    """One collection of a run as planned: shown, with its total, before it starts."""

    name: str
    target_name: str
    total: int


@dataclass(frozen=True, kw_only=True)
class RunStarted(RunEvent):
    """This process now drives the run (a resumed run too: a new process claims it)."""

    collections: tuple[PlannedCollection, ...] = ()

    kind: ClassVar[str] = "phase"

    @property
    def message(self) -> str:
        return "run started"

    @property
    def data(self) -> dict[str, Any]:
        return {"phase": RunState.RUNNING.value}


@dataclass(frozen=True, kw_only=True)
class CollectionStarted(RunEvent):
    """A collection's copy begins (its target is prepared next): what the source says it is."""

    total: int
    dimension: int | None
    metric: str | None


@dataclass(frozen=True, kw_only=True)
class CopyStarted(RunEvent):
    """The target is ready and records start to flow, from the beginning or the watermark."""

    total: int
    resuming: bool = False

    kind: ClassVar[str] = "phase"

    @property
    def message(self) -> str:
        return f"copying {self.total:,} records" + (" (resuming)" if self.resuming else "")

    @property
    def data(self) -> dict[str, Any]:
        return {"phase": Phase.RUNNING.value}


@dataclass(frozen=True, kw_only=True)
class IndexingStarted(RunEvent):
    """Every record is on the target; it now builds its search index (`how`, in words).

    `tuning` is the collection's IndexTuning as JSON (HNSW settings, payload indexes and the
    `hnsw_ef` the application should search with): the journal keeps it for the views."""

    total: int
    how: str
    tuning: dict[str, Any] = field(default_factory=dict)
    resuming: bool = False

    kind: ClassVar[str] = "phase"

    @property
    def message(self) -> str:
        return f"indexing {self.total:,} vectors: {self.how}" + (
            " (resuming after the copy)" if self.resuming else ""
        )

    @property
    def data(self) -> dict[str, Any]:
        return {"phase": Phase.INDEXING.value, "tuning": self.tuning}


@dataclass(frozen=True, kw_only=True)
class _RunStateEvent(RunEvent):
    """An event whose whole content is the run's new state ("run paused", "run completed").

    A common base, not one event subclassing the other: the recorder tells a pause from a
    run's end by class."""

    state: RunState

    kind: ClassVar[str] = "phase"

    @property
    def message(self) -> str:
        return f"run {self.state.value}"

    @property
    def data(self) -> dict[str, Any]:
        return {"phase": self.state.value}


@dataclass(frozen=True, kw_only=True)
class PhaseChanged(_RunStateEvent):
    """The run was paused, resumed, or asked to cancel (PAUSED | RUNNING | CANCELLING);
    `collection` is the one it was on. "cancelling" when the cancel is taken; RunFinished
    says "run cancelled" once the collections have stopped: the log reads in the order the
    states happen."""


@dataclass(frozen=True, kw_only=True)
class ProgressSampled(RunEvent):
    """Latest-value progress of one collection (a copy: later samples replace it)."""

    progress: Progress

    kind: ClassVar[str] = "progress"


@dataclass(frozen=True, kw_only=True)
class RetryScheduled(RunEvent):
    """A transient failure; the same call runs again after `delay` seconds."""

    what: str  # "write", "sync", "read", "prepare target"
    attempt: int  # the attempt that failed, from 1
    error: str
    delay: float = 0.0

    kind: ClassVar[str] = "retry"

    @property
    def message(self) -> str:
        if self.throttled:  # the server asked us to wait: not a failure
            return f"{self.what} {self.error}; waiting {self.delay:.1f}s (retry {self.attempt})"
        return f"{self.what} failed ({self.error}); retry {self.attempt}"

    @property
    def throttled(self) -> bool:
        """The server asked us to wait (429/503): views say *throttled* while we do."""
        return self.error.startswith("throttled:")

    @property
    def data(self) -> dict[str, Any]:
        if self.throttled:
            return {"attempt": self.attempt, "throttled": True, "delay": self.delay}
        return {"attempt": self.attempt}


@dataclass(frozen=True, kw_only=True)
class CheckpointCommitted(RunEvent):
    """The resume point moved and is durable (after the target's sync). Not logged: the
    checkpoint is its own row."""

    checkpoint: Checkpoint

    kind: ClassVar[str] = "checkpoint"


@dataclass(frozen=True, kw_only=True)
class WarningRaised(RunEvent):
    """Something a person should know that does not stop the copy."""

    warning: str

    kind: ClassVar[str] = "warning"

    @property
    def message(self) -> str:
        return self.warning


@dataclass(frozen=True, kw_only=True)
class CollectionFinished(RunEvent):
    """A collection ended: completed, skipped (completed with a reason), failed or cancelled.

    `started` is False for a collection a cancel reached before it began: it is marked
    cancelled without a log line.
    """

    result: CollectionResult
    started: bool = True
    errors: int = 0  # failures counted for this collection (the failed row shows them)

    @property
    def phase(self) -> Phase:
        if self.result.status is Phase.COMPLETED and self.result.skipped_reason:
            return Phase.SKIPPED
        return self.result.status

    @property
    def kind(self) -> str:  # type: ignore[override]  # the one kind that depends on the event
        return "error" if self.phase is Phase.FAILED else "phase"

    @property
    def message(self) -> str:
        phase = self.phase
        if phase is Phase.SKIPPED:
            return f"skipped: {self.result.skipped_reason}"
        if phase is Phase.COMPLETED:
            result = self.result
            done = f"completed: {result.records_written:,} records"
            if result.search_ready and result.index_seconds:
                return f"{done}, search-ready after {result.index_seconds:.1f}s of indexing"
            if result.search_ready is False:
                return f"{done} (not indexed: staging copy)"
            return done
        if phase is Phase.FAILED:
            return self.result.error or "failed"
        return "cancelled; re-run to resume" if self.started else ""

    @property
    def data(self) -> dict[str, Any]:
        return {} if self.phase is Phase.FAILED else {"phase": self.phase.value}


@dataclass(frozen=True, kw_only=True)
class RunFinished(_RunStateEvent):
    """Every collection ended; `state` is completed, failed or cancelled."""

    error: str | None = None


Listener = Callable[[RunEvent], None]


class EventBus:
    """Fan-out to in-process listeners.

    Two ways to listen: `listen(callback)` is called inline, in order, for every event (the
    recorder: it only hands the event to its own thread, so it never slows the pipeline);
    `subscribe()` is an async iterator for views, where progress is coalesced per collection
    (latest value) so a slow view never makes the engine wait or the queue grow.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._subscriptions: list[Subscription] = []

    def publish(self, event: RunEvent) -> None:
        for listener in self._listeners:
            listener(event)
        for subscription in self._subscriptions:
            subscription.offer(event)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscriptions.append(subscription)
        return subscription

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()


class Subscription:
    """One view's queue of events: the others bounded, progress kept as the latest value."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._events: deque[RunEvent] = deque(maxlen=maxlen)
        self._progress: dict[str | None, ProgressSampled] = {}
        self._wake = asyncio.Event()
        self._closed = False

    def offer(self, event: RunEvent) -> None:
        if isinstance(event, ProgressSampled):
            self._progress[event.collection] = event
        else:
            self._events.append(event)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def drain(self) -> list[RunEvent]:
        events: list[RunEvent] = [*self._events, *self._progress.values()]
        self._events.clear()
        self._progress.clear()
        self._wake.clear()
        return events

    async def __aiter__(self) -> AsyncIterator[RunEvent]:
        while True:
            await self._wake.wait()
            for event in self.drain():
                yield event
            if self._closed and not self._events and not self._progress:
                return


@dataclass(frozen=True, kw_only=True)
class EmbedRetried(RetryScheduled):
    """The embedding endpoint throttled us (429: `throttled`) or failed (5xx, timeout); the
    request is sent again after `delay` seconds. A RetryScheduled, so it is counted with the
    collection's retries; its own line says "throttled" for the Monitor and `status`."""

    throttled: bool = False

    @property
    def message(self) -> str:
        if self.throttled:
            return f"embed throttled by the endpoint ({self.error}): waiting {self.delay:.1f}s"
        return f"embed request failed ({self.error}); retry {self.attempt} in {self.delay:.1f}s"

    @property
    def data(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "throttled": self.throttled, "delay": self.delay}
