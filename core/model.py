"""Plain data that flows between connectors, the engine, the journal and the views.

Batches are columnar (one numpy matrix of vectors, parallel lists of the rest) so that a
batch of 1,000 × 384 costs one allocation for its vectors, and so that memory is bounded by
``batch_size × in-flight batches`` whatever the collection size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

# A cursor is opaque to the engine: JSON-serialisable, produced by a connector's reader and
# handed back to it on resume. ``None`` means "from the beginning".
Cursor = Any
Metadata = dict[str, Any]


class Metric(StrEnum):
    """Distance metrics, named as Chroma names them (the source side of the main road)."""

    L2 = "l2"
    COSINE = "cosine"
    IP = "ip"


@dataclass
class CollectionInfo:
    """What a connector knows about one collection, before anything is moved."""

    name: str
    count: int
    dimension: int | None
    metric: Metric | None
    metadata_keys: list[str] = field(default_factory=list)
    embedding_function: str | None = None
    # Connector-specific facts worth showing (schema state, segment ids, storage notes).
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metric"] = self.metric.value if self.metric else None
        return data


@dataclass
class Batch:
    """A run of records in source order, and the cursor that resumes just after it."""

    ids: list[str]
    vectors: np.ndarray  # float32, shape (n, d)
    metadatas: list[Metadata | None]
    documents: list[str | None]
    cursor_after: Cursor = None
    # The target's own key for each record (a Qdrant point id) when a reader knows it: what
    # a delete of records found in the target must use. None means "the ids themselves".
    native_ids: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Approximate payload size, for MB/s: vectors plus the text we carry."""
        text = sum(len(i) for i in self.ids) + sum(len(d) for d in self.documents if d)
        return int(self.vectors.nbytes) + text

    def joined(self, after: Batch) -> Batch:
        """This batch followed by `after` (read right after it): one batch, `after`'s cursor."""
        native = (
            self.native_ids + after.native_ids
            if self.native_ids is not None and after.native_ids is not None
            else None
        )
        return Batch(
            self.ids + after.ids,
            np.concatenate([self.vectors, after.vectors]) if len(after) else self.vectors,
            self.metadatas + after.metadatas,
            self.documents + after.documents,
            after.cursor_after,
            native,
        )

    @staticmethod
    def empty(dimension: int) -> Batch:
        return Batch([], np.zeros((0, dimension), dtype=np.float32), [], [])


class Phase(StrEnum):
    """Where one collection of a run stands (a whole run's state is `ferry.core.runs.RunState`)."""

    PENDING = "pending"
    PREFLIGHT = "preflight"
    RUNNING = "running"
    PAUSED = "paused"
    # Copied; the target builds its search index (a collection is `completed` only when
    # its target is search-ready). A resumed run starts here again, not at the copy.
    INDEXING = "indexing"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class LogEntry:
    """One line of a run's event log in the journal (what the Monitor's log and `status` show).

    Typed events (core.events) are what the engine publishes; the RunRecorder turns the ones
    a person reads into these. ``kind`` is one of phase | retry | error | warning | info.
    """

    kind: str
    run_id: str
    collection: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkpoint:
    """A collection's durable resume point: every record before `watermark` is on the target.

    Committed only after the target's `sync`, so the journal never claims more than the
    target could lose. `target_owned` records that this Ferry run created (or adopted) the
    target collection, so a re-run may write into it; it is committed before the first write.
    """

    watermark: Cursor = None
    records_written: int = 0
    bytes_written: int = 0
    target_owned: bool = False


@dataclass(frozen=True)
class ResumePoint:
    """Where a collection stands when a run (re)starts: the runner reads it from the journal,
    the engine starts from it (and never reads the journal itself)."""

    phase: Phase = Phase.PENDING
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    records_read: int = 0
    seconds: float = 0.0
    average_records_per_second: float = 0.0
    skipped_reason: str | None = None

    @property
    def done(self) -> bool:
        """Completed, or skipped with a reason: a resumed run leaves it alone."""
        return self.phase in {Phase.COMPLETED, Phase.SKIPPED}

    @property
    def copied(self) -> bool:
        """Every record is on the target; only the index phase is left."""
        return self.phase is Phase.INDEXING


@dataclass
class CollectionResult:
    """How one collection of a run ended: `ferry migrate --json` prints these."""

    name: str
    status: Phase  # completed (a skipped one too: see skipped_reason) | failed | cancelled
    records_read: int = 0
    records_written: int = 0
    seconds: float = 0.0
    records_per_second: float = 0.0
    skipped_reason: str | None = None
    error: str | None = None
    retries: int = 0  # transient failures retried, over every process that drove this run
    index_seconds: float = 0.0  # the index phase's share of `seconds`
    # The target answers from its index (False with --no-index; None: not reported).
    search_ready: bool | None = None
    hnsw_ef: int | None = None  # what the application should search the target with

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "retries": self.retries,
            "status": self.status.value,
            "records_read": self.records_read,
            "records_written": self.records_written,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 1),
            "skipped_reason": self.skipped_reason,
            "error": self.error,
            "index_seconds": round(self.index_seconds, 3),
            "search_ready": self.search_ready,
            "hnsw_ef": self.hnsw_ef,
        }


@dataclass
class Progress:
    """Latest-value progress of one collection: what the monitor and `status` show."""

    collection: str
    phase: Phase = Phase.PENDING
    total: int = 0
    records_read: int = 0
    records_written: int = 0
    bytes_written: int = 0
    records_per_second: float = 0.0  # over the recent sliding window
    average_records_per_second: float = 0.0  # since this process started the collection
    bytes_per_second: float = 0.0
    eta_seconds: float | None = None
    retries: int = 0
    errors: int = 0
    seconds: float = 0.0
    skipped_reason: str | None = None
    error: str | None = None
    # The index phase: vectors indexed so far and of how many (None: the engine does not
    # say while it works, e.g. Qdrant Edge's optimizer), and the seconds it has taken.
    indexed: int | None = None
    index_total: int | None = None
    index_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        return data


class WriteMode(StrEnum):
    """How `prepare` treats a target collection that already exists."""

    CREATE = "create"  # create it; an existing one is used only if Ferry made it, same settings
    APPEND = "append"  # upsert into an existing collection whose dimension matches
