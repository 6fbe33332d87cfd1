"""Fixed-size rows of a file the application may be rewriting, read with `pread`.

Why not a memory map, as the reader of a cut uses: hnswlib persists an index by opening each
file with truncation and writing it again (`std::ofstream`), so a live ``data_level0.bin`` can
shrink under the reader. Touching a mapped page past the new end raises SIGBUS, which kills
the process — the TUI included. A read past the end just comes back short, which this turns
into a FerryError; the caller (a plan reading in place, chroma/peek.py) then checks whether the
directory moved and takes a consistent cut instead.

Only what a plan needs: `len`, and ``rows[row_indexes]`` / ``rows[row_indexes, columns]``
(the indexing `files.gather` does), a few thousand rows at most.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.errors import FerryError


class FileRows:
    """`count` rows of `width` items of `dtype` at the start of `path` (width 0: one item per
    row, indexed as a 1-d array)."""

    def __init__(self, path: Path, count: int, dtype: str, width: int = 0) -> None:
        self.path = path
        self.count = count
        self.dtype = np.dtype(dtype)
        self.width = width
        self.row_bytes = self.dtype.itemsize * max(width, 1)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> np.ndarray:
        rows, *columns = index if isinstance(index, tuple) else (index,)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        raw = np.empty((len(rows), self.row_bytes), dtype=np.uint8)
        if len(rows):
            if int(rows.min()) < 0 or int(rows.max()) >= self.count:
                raise IndexError(f"row out of range 0..{self.count - 1}")
            self._read_into(raw, rows)
        out = raw.view(self.dtype)
        out = out.reshape(len(rows), self.width) if self.width else out.reshape(len(rows))
        return out[(slice(None), *columns)] if columns else out

    def _read_into(self, raw: np.ndarray, rows: np.ndarray) -> None:
        """One `pread` per run of consecutive rows (a plan's first rows are one read)."""
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        fd = os.open(self.path, os.O_RDONLY)
        try:
            start = 0
            for stop in [*breaks.tolist(), len(rows)]:
                first, n = int(rows[start]), stop - start
                want = n * self.row_bytes
                data = os.pread(fd, want, first * self.row_bytes)
                if len(data) != want:
                    raise FerryError(
                        "HNSW file is shorter than its header says (rewritten while read?)",
                        where=str(self.path),
                        fix="retry; a consistent cut of the directory is taken when it moves",
                    )
                raw[start:stop] = np.frombuffer(data, dtype=np.uint8).reshape(n, self.row_bytes)
                start = stop
        finally:
            os.close(fd)
