"""Where a run stands: the one enum the engine, the journal and every view share.

Why a module of its own: the engine and the journal need the state's name and rules (which
states are active, resumable, finished), while the read model (`ferry.core.runs`) needs the journal.
Keeping the enum here lets both import it without an import circle; colours live in the views.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """Where a run stands, as a viewer should show it."""

    PENDING = "pending"  # created, no process has started copying yet
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"  # asked to cancel; its collections are still stopping
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # derived, never stored: active, but its process is gone

    @property
    def active(self) -> bool:
        """A process is (or should be) driving it: viewers keep polling, quitting asks first."""
        return self in _ACTIVE

    @property
    def resumable(self) -> bool:
        """The same command again (TUI: r) relaunches it from its watermarks."""
        return self in _RESUMABLE

    @property
    def finished(self) -> bool:
        """Ended by its own process: the journal records when."""
        return self in _FINISHED

    @classmethod
    def derive(cls, status: str, alive: bool, cancel_requested: bool = False) -> RunState:
        """The state of a run whose row says `status`: `alive` is its engine process's
        liveness (see `process_alive`), `cancel_requested` a cancel not yet taken."""
        state = cls(status)
        if state.active and not alive:
            return cls.INTERRUPTED
        if cancel_requested and state in {cls.PENDING, cls.RUNNING, cls.PAUSED}:
            return cls.CANCELLING
        return state


_ACTIVE = frozenset({RunState.PENDING, RunState.RUNNING, RunState.PAUSED, RunState.CANCELLING})
_RESUMABLE = frozenset({RunState.INTERRUPTED, RunState.CANCELLED, RunState.FAILED})
_FINISHED = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED})
