"""A plan read on a Chroma directory's live files, accepted only when nothing moved.

Why: a consistent cut (cut.py) copies the whole directory before the first collection is
described — 4.3 GB and 2–3 s at a million records — yet the inventory, the run dialog and
`ferry migrate --dry-run` only plan: SQLite, the HNSW header, the pickle's first items and a
few thousand rows of the index. So a connector that only plans (`plan_only`) reads the live
files in place, and accepts what it read only when the directory did not move meanwhile: the
evidence a lock-free cut is accepted on (`cut.snapshot`: every file's size, mtime and inode,
SQLite's change counter, no open write transaction), taken when the reader opens and again
after every read. Each accepted read is therefore of the moment the reader opened.

When the directory moved, or a read needs the whole index (`NeedsCut`: records rather than a
plan), the caller takes the consistent cut as before and reads everything after from it. A
run never reads in place: its watermark for live catch-up is its cut's.

Reading in place never writes and never maps a live file (files.py `in_place`): hnswlib
rewrites its files truncated, and a mapped page past the new end would kill the process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.core.connectors.chroma.cut import Snapshot, snapshot
from ferry.core.connectors.chroma.files import ChromaDirectory, NeedsCut
from ferry.core.errors import FerryError

MOVED = object()  # what `read` returns when the caller has to take the cut instead
IN_PLACE_NOTE = (
    "read in place for the plan (nothing changed while it read); the run reads a consistent cut"
)


class InPlace:
    """The live directory's plan reads, all of one moment, or MOVED from the first that is
    not (and from then on)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader: ChromaDirectory | None = None
        self.before: Snapshot | None = None
        self.moved = False

    def read(self, call: Callable[[ChromaDirectory], Any]) -> Any:
        """`call(reader)` on the live files, or MOVED."""
        if self.moved:
            return MOVED
        if self.reader is None:
            self.before = snapshot(self.path)
            if self.before is None:  # a write transaction is open right now
                return self._give_up()
            self.reader = ChromaDirectory(self.path, cut=True, in_place=True)
        try:
            result = call(self.reader)
        except NeedsCut:
            return self._give_up()
        except FerryError:
            if snapshot(self.path) == self.before:
                raise  # the directory's own fault: a cut of it would say the same
            return self._give_up()
        if snapshot(self.path) != self.before:
            return self._give_up()
        return result

    def _give_up(self) -> object:
        self.moved = True
        self.close()
        return MOVED

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
