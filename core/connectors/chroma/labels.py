"""id → HNSW label at C speed, in a file-backed hash table: the copy's map, built in ~1 s/M.

Why not the SQLite map (chroma_pickle.IdLabelMap) alone: interpreting every opcode in Python
and inserting a million text keys into SQLite cost ~12 s per million records, and the plan
waited for it. Here:

* The pickle's preamble is still read by `chroma_pickle.stream_id_to_label` (the one place
  that decides what a pickle may contain); it hands over at the first item of
  ``id_to_label``. The items themselves have two shapes only (chromadb 1.x: ``X len id J
  label``; 0.4–0.6: ``X``/``SHORT_BINUNICODE`` id, a memo put, ``K``/``M``/``J`` label, in
  batches of 1000 and frames). A run of same-length ids (uuids, ``doc-000123``) is
  checked and cut with numpy in one go; anything else is walked item by item; anything
  unexpected hands the whole file back to the opcode interpreter (which refuses it or
  understands it).
* Keys are 64-bit hashes of the id's UTF-8 bytes (CPython's ``hash``: one process builds
  and reads the map), placed by open addressing in two memory-mapped arrays in the reader's
  temporary folder. Two ids with one hash cannot be told apart, so a repeated hash (a
  collision, or a crafted file repeating a key) is never guessed at: the caller falls back
  to the exact SQLite map. Memory is the arrays' pages in use, released after each chunk.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.connectors.chroma.pickle_labels import stream_id_to_label

CHUNK = 65_536  # items handed to the table at a time
_RUN_WINDOW = 1_024  # rows checked at once (the writers' SETITEMS hold 1000 items)
_MIN_RUN = 16  # a shorter run of same-length ids is walked item by item
_X, _SHORT, _MEMOIZE, _BINPUT, _LONG_BINPUT = 0x58, 0x8C, 0x94, 0x71, 0x72
_BININT, _BININT1, _BININT2, _SETITEMS, _MARK, _FRAME = 0x4A, 0x4B, 0x4D, 0x75, 0x28, 0x95


# Items handled between two releases of the table's pages, in slot order: a band of the
# table, not pages scattered over all of it, so memory stays flat however large the table.
INSERT_BAND = 4_096
LOOKUP_BAND = 256


def _bands(slots: np.ndarray, size: int) -> list[np.ndarray]:
    """Indexes of `slots` in slot order, `size` at a time."""
    if len(slots) <= size:
        return [np.arange(len(slots))]
    order = np.argsort(slots, kind="stable")
    return [order[i : i + size] for i in range(0, len(order), size)]


class NotFast(Exception):
    """The items do not have a shape the fast path knows (or hashes repeat): use the
    exact path."""


def id_hash(rid: str) -> int:
    return hash(rid.encode("utf-8", "surrogatepass"))


def _hashes(values: Sequence[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64).view(np.uint64)


class HashLabelMap:
    """id → label by 64-bit hash, open addressing in two memmaps (hash, label + 1)."""

    def __init__(self, folder: Path, stem: str, capacity_for: int) -> None:
        slots = 1 << max(10, int(2 * max(capacity_for, 1)).bit_length())
        self._mask = np.uint64(slots - 1)
        self._paths = (folder / f"{stem}.hash.u64", folder / f"{stem}.label.i64")
        self._maps = (
            np.memmap(self._paths[0], dtype=np.uint64, mode="w+", shape=(slots,)),
            np.memmap(self._paths[1], dtype=np.int64, mode="w+", shape=(slots,)),
        )
        # Plain views for indexing (a memmap's own __getitem__ costs more than the lookups).
        self._keys, self._labels = (np.asarray(m) for m in self._maps)
        self._limit = capacity_for
        self._count = 0
        self.max_label = -1

    # -- building ---------------------------------------------------------------------------
    def insert(self, hashes: np.ndarray, labels: np.ndarray) -> None:
        """Place a chunk; NotFast on a repeated hash or more ids than the index has rows."""
        if not len(hashes):
            return
        if len(np.unique(hashes)) != len(hashes):
            raise NotFast("repeated id hash")
        self._count += len(hashes)
        if self._count > self._limit:
            raise NotFast("more ids than rows")
        self.max_label = max(self.max_label, int(labels.max()))
        for group in _bands(hashes & self._mask, INSERT_BAND):
            self._release(*self._place(hashes[group], labels[group]))

    def _place(self, hashes: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
        """Linear probing, vectorised: each round places one item per free slot. Returns
        the lowest and highest slot touched."""
        keys, values = self._keys, self._labels
        slot = hashes & self._mask
        pending = np.arange(len(hashes))
        low, high = len(values), -1
        while pending.size:
            at = slot[pending].astype(np.int64)
            low, high = min(low, int(at.min())), max(high, int(at.max()))
            occupied = values[at] != 0
            if (keys[at][occupied] == hashes[pending][occupied]).any():
                raise NotFast("repeated id hash")
            free = np.flatnonzero(~occupied)
            won_slots, first = np.unique(at[free], return_index=True)
            winners = pending[free[first]]
            keys[won_slots] = hashes[winners]
            values[won_slots] = labels[winners] + 1
            placed = np.zeros(len(pending), dtype=bool)
            placed[free[first]] = True
            pending = pending[~placed]
            slot[pending] = (slot[pending] + np.uint64(1)) & self._mask
        return low, high

    # -- reading ----------------------------------------------------------------------------
    def _find(self, hashes: np.ndarray) -> np.ndarray:
        """label + 1 per hash, 0 where absent."""
        out = np.zeros(len(hashes), dtype=np.int64)
        for group in _bands(hashes & self._mask, LOOKUP_BAND):
            out[group], low, high = self._probe(hashes[group])
            self._release(low, high)
        return out

    def _probe(self, hashes: np.ndarray) -> tuple[np.ndarray, int, int]:
        out = np.zeros(len(hashes), dtype=np.int64)
        slot = hashes & self._mask
        pending = np.arange(len(hashes))
        keys, values = self._keys, self._labels
        low, high = len(values), -1
        while pending.size:
            at = slot[pending].astype(np.int64)
            low, high = min(low, int(at.min())), max(high, int(at.max()))
            found = values[at]
            hit = (found != 0) & (keys[at] == hashes[pending])
            out[pending[hit]] = found[hit]
            go_on = (found != 0) & ~hit
            pending = pending[go_on]
            slot[pending] = (slot[pending] + np.uint64(1)) & self._mask
        return out, low, high

    def labels(self, ids: Sequence[str]) -> np.ndarray:
        """The labels of `ids` in order; KeyError(first id that has none)."""
        try:
            hashes = np.fromiter(map(hash, map(str.encode, ids)), np.int64, len(ids))
        except UnicodeEncodeError:  # a lone surrogate: encoded as Python's pickler does
            hashes = np.array([id_hash(rid) for rid in ids], dtype=np.int64)
        found = self._find(hashes.view(np.uint64))
        missing = np.flatnonzero(found == 0)
        if len(missing):
            raise KeyError(ids[int(missing[0])])
        return found - 1

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str):
            return False
        return bool(self._find(_hashes([id_hash(rid)]))[0])

    def __len__(self) -> int:
        return self._count

    def _release(self, low: int, high: int) -> None:
        """Drop the pages of slots low..high from this process (they stay in the file)."""
        if high < low:
            return
        page = mmap.PAGESIZE
        start = (low * 8) // page * page
        length = high * 8 + 8 - start
        for array in self._maps:
            handle = getattr(array, "_mmap", None)
            if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
                handle.madvise(mmap.MADV_DONTNEED, start, length)

    def close(self) -> None:
        del self._keys, self._labels, self._maps
        for path in self._paths:
            path.unlink(missing_ok=True)


def build_hash_map(pickle_file: Path, folder: Path, stem: str, rows: int) -> HashLabelMap:
    """The pickle's id_to_label as a HashLabelMap. KeyError: no id_to_label; NotFast: use
    the exact map; pickle.UnpicklingError: refused (from the opcode interpreter)."""
    labels = HashLabelMap(folder, stem, rows)
    try:
        with pickle_file.open("rb") as fh:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if rows else b""
        try:
            start = _items_start(data)
            _walk(data, start, labels.insert)
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
    except BaseException:
        labels.close()
        raise
    return labels


def _items_start(data: Any) -> int:
    """Where the first item of id_to_label begins, read by the opcode interpreter (which
    refuses anything but the allowed opcodes and global before it)."""
    import io

    where: list[int] = []

    def hand_over(position: int) -> bool:
        where.append(position)
        return True

    summary = stream_id_to_label(io.BytesIO(data), lambda pairs: None, on_items=hand_over)
    if not summary.found:
        raise KeyError("id_to_label")
    if not where:
        raise NotFast("id_to_label has no item run")
    return where[0]


def ids_with_labels(pickle_file: Path, wanted: np.ndarray) -> dict[int, str]:
    """label → id for the `wanted` labels, from one pass over id_to_label that builds no map.

    Why: the plan's sample needs the ids of a handful of rows of data_level0.bin (read in
    place, so each vector is the one its row holds); hashing and placing every id, as the
    copy's map does, made the plan grow with the collection. Same refusals as
    `build_hash_map` (KeyError, NotFast, pickle.UnpicklingError)."""
    found: dict[int, str] = {}

    def keep(keys: Any, labels: np.ndarray) -> None:
        for key, label in zip(keys, labels.tolist(), strict=True):
            found[int(label)] = bytes(key).decode("utf-8", "surrogatepass")

    with pickle_file.open("rb") as fh:
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        _walk(data, _items_start(data), keep, wanted=np.unique(wanted.astype(np.int64)))
    finally:
        data.close()
    return found


def _walk(
    buf: Any, pos: int, emit: Callable[[Any, np.ndarray], None], wanted: np.ndarray | None = None
) -> None:
    """Every item from `pos` to the end of id_to_label, as (hashes, labels) chunks; with
    `wanted` (sorted labels), only those items, as (id bytes, labels)."""
    hashes: list[Any] = []  # with `wanted`: the ids' bytes
    labels: list[int] = []
    runs: list[tuple[Any, np.ndarray]] = []  # same-length runs not yet emitted
    held = 0
    whole = np.frombuffer(buf, dtype=np.uint8)
    wanted_set = None if wanted is None else set(wanted.tolist())

    def flush() -> None:
        nonlocal held
        if hashes:
            keys = hashes[:] if wanted_set is not None else _hashes(hashes)
            runs.append((keys, np.array(labels, dtype=np.int64)))
        if runs and wanted_set is not None:
            emit([k for r in runs for k in r[0]], np.concatenate([r[1] for r in runs]))
        elif runs:
            emit(np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs]))
        hashes.clear()
        labels.clear()
        runs.clear()
        held = 0

    try:
        while True:
            op = buf[pos]
            if op == _FRAME:
                pos += 9
                continue
            if op == _SETITEMS:
                pos += 1
                while buf[pos] == _FRAME:
                    pos += 9
                if buf[pos] == _MARK:  # Python's pickler: the next batch of 1000
                    pos += 1
                    continue
                break  # the end of id_to_label
            if op == _X:
                size = int.from_bytes(buf[pos + 1 : pos + 5], "little")
                run = _same_length_run(whole, pos, size, wanted)
                if run is not None:
                    run_hashes, run_labels, pos = run
                    if hashes:
                        keys = hashes[:] if wanted_set is not None else _hashes(hashes)
                        runs.append((keys, np.array(labels, dtype=np.int64)))
                        hashes.clear()
                        labels.clear()
                    runs.append((run_hashes, run_labels))
                    held += len(run_hashes)
                    if held >= CHUNK:
                        flush()
                    continue
                start = pos + 5
            elif op == _SHORT:
                size = buf[pos + 1]
                start = pos + 2
            else:
                raise NotFast(f"opcode {op:#x} where an id was expected")
            pos = start + size
            key = buf[start:pos]
            op = buf[pos]
            if op == _MEMOIZE:
                pos += 1
            elif op == _BINPUT:
                pos += 2
            elif op == _LONG_BINPUT:
                pos += 5
            while buf[pos] == _FRAME:
                pos += 9
            op = buf[pos]
            if op == _BININT:
                value = int.from_bytes(buf[pos + 1 : pos + 5], "little", signed=True)
                pos += 5
            elif op == _BININT1:
                value = buf[pos + 1]
                pos += 2
            elif op == _BININT2:
                value = int.from_bytes(buf[pos + 1 : pos + 3], "little")
                pos += 3
            else:
                raise NotFast(f"opcode {op:#x} where a label was expected")
            if value < 0:
                raise NotFast("negative label")
            if wanted_set is None:
                hashes.append(hash(key))
            elif value in wanted_set:
                hashes.append(bytes(key))
            else:
                continue
            labels.append(value)
            held += 1
            if held >= CHUNK:
                flush()
    except IndexError:
        raise NotFast("the pickle ends inside id_to_label") from None
    finally:
        del whole  # a view of the caller's memory map, which it closes
    flush()


def _same_length_run(
    whole: np.ndarray, pos: int, size: int, wanted: np.ndarray | None = None
) -> tuple[Any, Any, int] | None:
    """chromadb 1.x items ``X <u32 size> id J <i32>`` with ids of one length, cut with numpy:
    each row is checked to be exactly one such item, so the run is what an item-by-item
    walk would read. None when too short to be worth it. With `wanted` (sorted labels): the
    ids' bytes and labels of only those items, nothing hashed."""
    width = size + 10
    # Both writers close a SETITEMS every 1000 items: a window just above that.
    rows = min((len(whole) - pos) // width, _RUN_WINDOW) if 0 < size < 4096 else 0
    if rows < _MIN_RUN:
        return None
    block = whole[pos : pos + rows * width].reshape(rows, width)
    shape_ok = (
        (block[:, 0] == _X)
        & (block[:, 1:5] == np.frombuffer(size.to_bytes(4, "little"), np.uint8)).all(axis=1)
        & (block[:, 5 + size] == _BININT)
    )
    good = rows if shape_ok.all() else int(np.argmin(shape_ok))
    if good < _MIN_RUN:
        return None
    block = block[:good]
    if (block[:, 4 + size] == 0).any():
        return None  # numpy's fixed-width bytes would drop a trailing NUL: walk these
    labels = np.ascontiguousarray(block[:, 6 + size : 10 + size]).view("<i4").ravel()
    if (labels < 0).any():
        return None
    if wanted is not None:
        hit = np.isin(labels, wanted, assume_unique=False)
        labels = labels[hit]
        block = block[hit]
    keys = np.ascontiguousarray(block[:, 5 : 5 + size]).view(f"S{size}").ravel().tolist()
    if wanted is not None:
        return keys, labels.astype(np.int64), pos + good * width
    hashes = _hashes(list(map(hash, keys)))
    return hashes, labels.astype(np.int64), pos + good * width
