"""The typed read model of runs: what every view (CLI, TUI) shows about a run, from the journal.

Why one module: a run's state is not just the `status` column. A run whose process died
still says `running` (it is `interrupted`); a run asked to cancel is `cancelling` until its
collections stop. Which states are active, which can be resumed, what the totals are and
which colour each state wears were written in several views and drifted; here they are
derived once from the journal's typed records (`core/journal/runs.py`), views render `RunView` /
`CollectionView`, compare `RunState` members and keep the colours (`tui/theme.py`).

Reading only: the engine process writes the journal (through core.journal.recorder).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ferry.core.journal.events import EventRecord
from ferry.core.journal.runs import CollectionRecord, RunRecord
from ferry.core.model import Checkpoint, Phase, ResumePoint
from ferry.core.states import RunState

if TYPE_CHECKING:
    from ferry.core.journal import Journal


_IN_FLIGHT = frozenset({Phase.RUNNING, Phase.PAUSED, Phase.PREFLIGHT})
# A collection shows as throttled from a throttled retry until its wait ends, plus this much.
THROTTLED_GRACE_SECONDS = 5.0


def throttled_now(last_retries: dict[str, EventRecord], now: float | None = None) -> set[str]:
    """Collections whose latest retry was throttled and whose wait has not long ended."""
    now = time.time() if now is None else now
    return {
        name
        for name, retry in last_retries.items()
        if retry.data.get("throttled")
        and retry.ts + float(retry.data.get("delay") or 0) + THROTTLED_GRACE_SECONDS >= now
    }


def process_alive(pid: int | None, host: str | None) -> bool:
    """Is the engine process of a run still there? Zombies count as gone.

    A run whose status says running but whose process is gone was interrupted (killed, or its
    machine rebooted). On another host we cannot tell, so we trust the journal.
    """
    if not pid or (host and host != os.uname().nodename):
        return True
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # access denied and the like: it exists
        return True


@dataclass(frozen=True)
class CollectionView(CollectionRecord):
    """One collection of a run as views show it: its journal record (latest-value progress and
    the durable resume point, `core/journal/runs.py`) and what is derived around it."""

    # What the row's phase means given its run (e.g. "interrupted" when the run's process
    # died mid-copy); "" when the phase says it all.
    run_note: str = ""
    # A live source (core/live): the cut watermark, the lag and whether a follower runs.
    live: dict[str, Any] | None = None
    # Waiting on a server that answered 429/503 (its last retry was throttled, recently).
    throttled: bool = False

    @classmethod
    def from_record(
        cls, record: CollectionRecord, run_state: RunState | None = None
    ) -> CollectionView:
        """A collection's record; with its run's `run_state`, a phase the run's end left stale
        (a collection still "running" in the journal of a killed or cancelling run) is
        shown as what it is."""
        note = ""
        if record.phase in _IN_FLIGHT and run_state is not None:
            if run_state is RunState.INTERRUPTED or run_state.finished:
                note = RunState.INTERRUPTED.value
            elif run_state is RunState.CANCELLING:
                note = RunState.CANCELLING.value
        stored = {f.name: getattr(record, f.name) for f in dataclasses.fields(CollectionRecord)}
        return cls(**stored, run_note=note)

    @property
    def indexing(self) -> bool:
        return self.phase is Phase.INDEXING

    def index_elapsed(self, now: float | None = None) -> float:
        """Seconds the index phase has taken (so far, while it runs)."""
        if self.indexing and self.index_started_at:
            return max((now or time.time()) - self.index_started_at, self.index_seconds)
        return self.index_seconds

    @property
    def index_fraction(self) -> float | None:
        """Indexed / total while the engine says (Qdrant server); None when it does not."""
        if self.indexed is None or not self.index_total:
            return None
        return min(1.0, self.indexed / self.index_total)

    def index_words(self, now: float | None = None) -> str:
        """ "indexing 12.3s, 4,000/10,000 vectors" — for status lines and the Monitor."""
        words = f"indexing {self.index_elapsed(now):.1f}s"
        if self.indexed is not None and self.index_total:
            words += f", {self.indexed:,}/{self.index_total:,} vectors"
        return words

    @property
    def done(self) -> bool:
        """Completed or skipped: nothing left to copy."""
        return self.phase in {Phase.COMPLETED, Phase.SKIPPED}

    @property
    def state_word(self) -> str:
        """What a view shows as this collection's state."""
        if not self.run_note and self.throttled and self.phase is Phase.RUNNING:
            return "throttled"  # not "unreachable": the server answers, asking us to wait
        return self.run_note or self.phase.value

    @property
    def moving(self) -> bool:
        """Being copied right now: the only time a rate or an ETA means anything."""
        return self.phase is Phase.RUNNING and not self.run_note

    def resume_point(self, target_owned: bool) -> ResumePoint:
        """Where the engine starts this collection; `target_owned`: a Ferry run made the target."""
        return ResumePoint(
            phase=self.phase,
            checkpoint=Checkpoint(
                self.watermark, self.records_written, self.bytes_written, target_owned
            ),
            records_read=self.records_read,
            seconds=self.seconds,
            average_records_per_second=self.average_records_per_second,
            skipped_reason=self.skipped_reason,
        )

    def to_json(self) -> dict[str, Any]:
        """The `ferry status --json` shape of a collection (a contract: keep it stable)."""
        return {
            "name": self.name,
            "target_name": self.target_name,
            "status": self.phase.value,
            "total": self.total,
            "records_read": self.records_read,
            "records_written": self.records_written,
            "records_per_second": round(self.records_per_second, 1),
            "average_records_per_second": round(self.average_records_per_second, 1),
            "bytes_per_second": round(self.bytes_per_second, 1),
            "eta_seconds": self.eta_seconds,
            "retries": self.retries,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "skipped_reason": self.skipped_reason,
            "error": self.error,
            "indexing": {
                "seconds": round(self.index_elapsed(), 3),
                "indexed": self.indexed,
                "total": self.index_total,
            },
            "search_ready": self.search_ready,
            "hnsw_ef": self.hnsw_ef,
            "tuning": self.tuning,
            **({"live": self.live} if self.live is not None else {}),
            "throttled": self.throttled,
        }

    @property
    def live_words(self) -> str:
        """ "following · lag 120 changes, 3.2 s" — the Monitor row and `ferry status`."""
        if self.live is None:
            return ""
        changes, seconds = self.live["lag_changes"], self.live["lag_seconds"]
        if not changes and not self.live["following"]:
            return ""  # a run that does not follow a live source: "lag 0" would be noise
        lag = f"lag {changes:,} changes, {seconds:.1f} s" if changes else "lag 0"
        return ("following · " if self.live["following"] else "") + lag


@dataclass(frozen=True)
class RunView:
    """One run as every view shows it: its derived state, its collections, their sums."""

    run_id: str
    run_key: str
    state: RunState
    source_uri: str
    target_uri: str
    requested: tuple[str, ...]  # the collections asked for; () means all
    mapping: dict[str, Any]
    options: dict[str, Any]
    pid: int | None
    host: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    error: str | None
    collections: tuple[CollectionView, ...] = ()

    @classmethod
    def from_records(
        cls,
        run: RunRecord,
        collections: list[CollectionRecord],
        cancel_requested: bool = False,
    ) -> RunView:
        """Build from journal records; checks the run's process (that is how `interrupted` is
        known), so call it off the event loop in a UI."""
        state = RunState.derive(run.status, process_alive(run.pid, run.host), cancel_requested)
        return cls(
            run_id=run.run_id,
            run_key=run.run_key,
            state=state,
            source_uri=run.source_uri,
            target_uri=run.target_uri,
            requested=run.collections,
            mapping=run.mapping,
            options=run.options,
            pid=run.pid,
            host=run.host,
            created_at=run.created_at,
            updated_at=run.updated_at,
            finished_at=run.finished_at,
            error=run.error,
            collections=tuple(CollectionView.from_record(c, state) for c in collections),
        )

    @classmethod
    def of(cls, journal: Journal, run: RunRecord) -> RunView:
        """The view of a run record just read from `journal`."""
        run_id = run.run_id
        view = cls.from_records(
            run, journal.runs.collections(run_id), journal.mailbox.pending(run_id) == "cancel"
        )
        from ferry.core.live.store import LiveStore  # at call time: core.live needs the journal

        live = LiveStore(journal).of_run(run_id)
        if live:
            view = dataclasses.replace(
                view,
                collections=tuple(
                    dataclasses.replace(c, live=live[c.name].to_json()) if c.name in live else c
                    for c in view.collections
                ),
            )
        if view.state is not RunState.RUNNING:
            return view
        waiting = throttled_now(journal.events.last_retries(run_id))
        if not waiting:
            return view
        marked = tuple(
            dataclasses.replace(c, throttled=True) if c.name in waiting else c
            for c in view.collections
        )
        return dataclasses.replace(view, collections=marked)

    @classmethod
    def load(cls, journal: Journal, run_id: str) -> RunView | None:
        """A run by id or unique id prefix, or None."""
        run = journal.runs.get(run_id)
        return cls.of(journal, run) if run else None

    # -- state ------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def resumable(self) -> bool:
        return self.state.resumable

    def collection(self, name: str) -> CollectionView | None:
        return next((c for c in self.collections if c.name == name), None)

    # -- sums over collections --------------------------------------------------------------
    @property
    def total(self) -> int:
        return sum(c.total for c in self.collections)

    @property
    def written(self) -> int:
        return sum(c.records_written for c in self.collections)

    @property
    def retries(self) -> int:
        return sum(c.retries for c in self.collections)

    @property
    def errors(self) -> int:
        return sum(c.errors for c in self.collections)

    @property
    def running(self) -> tuple[CollectionView, ...]:
        """The collections being copied now (none while paused or once ended)."""
        return tuple(c for c in self.collections if c.moving)

    @property
    def indexing(self) -> tuple[CollectionView, ...]:
        """The collections whose target is building its search index now."""
        return tuple(c for c in self.collections if c.phase is Phase.INDEXING)

    @property
    def records_per_second(self) -> float:
        """Now: the sum of the running collections' recent rates (0 unless `running`: a
        paused, cancelling or ended run moves nothing, whatever its last sample said)."""
        if self.state is not RunState.RUNNING:
            return 0.0
        return sum(c.records_per_second for c in self.running)

    @property
    def bytes_per_second(self) -> float:
        if self.state is not RunState.RUNNING:
            return 0.0
        return sum(c.bytes_per_second for c in self.running)

    @property
    def average_records_per_second(self) -> float:
        """While running, the running collections' averages; otherwise written over the
        time spent copying (the engine leaves paused time out of both)."""
        running = self.running
        if running and self.state is RunState.RUNNING:
            return sum(c.average_records_per_second for c in running)
        seconds = sum(c.seconds for c in self.collections)
        return self.written / seconds if seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """At today's rate; None unless `running` (no ETA for a run that is not moving),
        0 when nothing is left."""
        if self.state is not RunState.RUNNING:
            return None
        remaining = max(self.total - self.written, 0)
        if remaining == 0:
            return 0.0
        rate = self.records_per_second
        return remaining / rate if rate > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The `ferry status --json` shape of a run (a contract: keep it stable)."""
        return {
            "run_id": self.run_id,
            "status": self.state.value,
            "source": self.source_uri,
            "target": self.target_uri,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "options": self.options,
            "collections": [c.to_json() for c in self.collections],
        }


# How run ids read ("20261205-093117-28412c"): what an error that names a run is searched for.
RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")


def named_run(view: RunView) -> str | None:
    """Another run this run's errors name (the holder of a target it could not lock), if any:
    where a person wants to go next."""
    texts = [view.error or "", *(c.error or "" for c in view.collections)]
    for text in texts:
        for found in RUN_ID.findall(text):
            if found != view.run_id:
                return str(found)
    return None


def recent_runs(journal: Journal, limit: int = 50) -> list[RunView]:
    """The most recent runs, newest first."""
    return [RunView.of(journal, run) for run in journal.runs.recent(limit)]


def unfinished_runs(journal: Journal, limit: int = 20) -> list[RunView]:
    """Recent runs that are still going or could be resumed, newest first."""
    return [view for view in recent_runs(journal, limit) if view.state is not RunState.COMPLETED]
