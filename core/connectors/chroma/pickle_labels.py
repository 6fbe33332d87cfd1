"""The id → HNSW label map of a Chroma vector segment, streamed to disk in bounded memory.

Why not ``pickle.load``: ``index_metadata.pickle`` holds three maps of the whole collection
(``id_to_label``, ``label_to_id``, ``id_to_seq_id``); unpickled they are three dicts of small
Python objects, ~100 MB per million records, so the reader's memory grew with the collection.
Ferry needs only ``id_to_label``, looked up one batch at a time.

So this module interprets the pickle's opcodes itself (``pickletools.genops`` decodes them)
and never builds the maps: the items of ``id_to_label`` go to a temporary SQLite table in
chunks as they are read, the other two maps are skipped item by item, and reading stops once
``id_to_label`` is complete. Both writers' pickles are covered: chromadb 0.4–0.6 (Python's
pickler: a ``PersistentData`` object, memoised strings, items in batches of 1000) and 1.x
(Rust: a plain dict, no memo, one ``SETITEMS`` per map).

This interpreter reads every pickle's preamble and a plan's first items; the copy's map is
built at C speed by chroma_labels.py from where this hands over (`on_items`), and the
SQLite map here is the exact fallback for what that declines.

Safety: only a fixed set of opcodes is interpreted (scalars, strings, containers) and the one
global allowed is chromadb's ``PersistentData``, which becomes an attribute bag. Nothing the
file names is ever imported or called.
"""

from __future__ import annotations

import pickle
import pickletools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

BIG_MAPS = frozenset({"id_to_label", "label_to_id", "id_to_seq_id"})
INSERT_CHUNK = 10_000  # id → label pairs per executemany
_LOOKUP_CHUNK = 500  # stay far below SQLite's bound-parameter limit
_CACHE_KIB = 2_048  # SQLite page cache of the map (its default): a constant, whatever N

_PUSH_ARG = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "SHORT_BINBYTES",
        "BINBYTES",
        "BINBYTES8",
        "BININT",
        "BININT1",
        "BININT2",
        "INT",
        "LONG",
        "LONG1",
        "LONG4",
        "BINFLOAT",
        "FLOAT",
    }
)
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class PersistentData:
    """Stand-in for chromadb 0.4–0.6's pickled ``PersistentData`` (an attribute bag)."""


class _Allowed:
    """The one class a pickle may name: chromadb's PersistentData."""


class _Skipped:
    """A memo entry we did not keep (an item of a streamed map): unusable as a value."""


_SKIPPED = _Skipped()


class _StreamedMap:
    """One of the three big maps, consumed item by item instead of built."""

    __slots__ = ("name", "items")

    def __init__(self, name: str) -> None:
        self.name = name
        self.items = 0


class LabelsSummary:
    """What the stream saw of ``id_to_label``: how many items and the highest label."""

    def __init__(self) -> None:
        self.found = False
        self.complete = True  # False when a `limit` stopped the stream
        self.items = 0
        self.max_label = -1


def stream_id_to_label(
    source: IO[bytes],
    emit: Callable[[list[tuple[str, int]]], None],
    limit: int | None = None,
    on_items: Callable[[int], bool] | None = None,
) -> LabelsSummary:
    """Feed every (id, label) of the pickle's ``id_to_label`` to `emit`, in chunks.

    `limit`: stop after that many items (a plan's sample: the first items cost O(limit)).
    `on_items(offset)`: called where the items of ``id_to_label`` begin; True stops here
    (chroma_labels.py reads the items at C speed from that offset).
    Raises ``pickle.UnpicklingError`` for anything outside the allowed opcodes or globals,
    or an ``id_to_label`` item that is not (str, non-negative int).
    """
    summary = LabelsSummary()
    try:
        _stream(source, emit, summary, limit, on_items)
    except _Enough:
        pass
    return summary


class _Enough(Exception):
    """`limit` items were read."""


def _stream(
    source: IO[bytes],
    emit: Callable[[list[tuple[str, int]]], None],
    summary: LabelsSummary,
    limit: int | None,
    on_items: Callable[[int], bool] | None,
) -> None:
    stack: list[Any] = []
    marks: list[int] = []  # stack length at each open MARK
    streams: list[_StreamedMap | None] = []  # the map a MARK's items go to, if streamed
    current: _StreamedMap | None = None  # streams[-1]: kept in a local, it is checked per op
    base = 0  # marks[-1] while `current` is set
    memo: dict[int, Any] = {}
    memo_next = 0
    pending: list[tuple[str, int]] = []

    def consume(target: _StreamedMap, key: Any, value: Any) -> None:
        target.items += 1
        if target.name != "id_to_label":
            return
        if not isinstance(key, str) or type(value) is not int or value < 0:
            raise pickle.UnpicklingError(
                f"id_to_label item of unexpected types ({type(key).__name__}, "
                f"{type(value).__name__})"
            )
        pending.append((key, value))
        summary.items += 1
        if value > summary.max_label:
            summary.max_label = value
        if len(pending) >= INSERT_CHUNK:
            emit(pending.copy())
            pending.clear()
        if limit is not None and summary.items >= limit:
            emit(pending.copy())
            pending.clear()
            summary.complete = False
            raise _Enough

    def pop_mark() -> list[Any]:
        nonlocal current, base
        if not marks:
            raise pickle.UnpicklingError("pickle closes a MARK it never opened")
        start = marks.pop()
        streams.pop()
        items = stack[start:]
        del stack[start:]
        current = streams[-1] if streams else None
        base = marks[-1] if marks else 0
        return items

    for opcode, arg, position in pickletools.genops(source):
        name = opcode.name
        if name in _PUSH_ARG:
            stack.append(arg)
        elif name == "MEMOIZE" or name in _PUTS:
            index = memo_next if name == "MEMOIZE" else int(arg)
            memo_next = max(memo_next, index + 1)
            if not stack:
                raise pickle.UnpicklingError("pickle memoises an empty stack")
            if current is None:  # items of the big maps are never kept
                memo[index] = stack[-1]
            continue  # pushes nothing
        elif name in _GETS:
            stack.append(memo.get(int(arg), _SKIPPED))
        elif name in ("PROTO", "FRAME"):
            continue
        elif name == "STOP":
            break
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name == "MARK":
            top = stack[-1] if stack else None
            marks.append(len(stack))
            current = top if isinstance(top, _StreamedMap) else None
            streams.append(current)
            base = len(stack)
            at_items = current is not None and current.name == "id_to_label"
            if at_items and on_items is not None and on_items(position + 1):
                return
            continue
        elif name == "EMPTY_DICT":
            key = stack[-1] if stack else None
            at_value = not marks or (len(stack) - marks[-1]) % 2 == 1
            if isinstance(key, str) and key in BIG_MAPS and at_value and current is None:
                if summary.found:
                    break  # id_to_label is complete: the rest is not needed
                summary.found = key == "id_to_label"
                stack.append(_StreamedMap(key))
            else:
                stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            size = int(name[-1])
            if len(stack) < size:
                raise pickle.UnpicklingError("pickle stack underflow")
            items = stack[-size:]
            del stack[-size:]
            stack.append(tuple(items))
        elif name in ("TUPLE", "LIST", "DICT"):
            items = pop_mark()
            if name == "DICT":
                stack.append(dict(zip(items[::2], items[1::2], strict=False)))
            else:
                stack.append(tuple(items) if name == "TUPLE" else items)
        elif name in ("SETITEM", "SETITEMS"):
            if name == "SETITEMS":
                items = pop_mark()
            else:
                items = stack[-2:]
                del stack[-2:]
            if len(items) % 2 or not stack:
                raise pickle.UnpicklingError("pickle sets an item without a value")
            into = stack[-1]
            for key, value in zip(items[::2], items[1::2], strict=True):
                if isinstance(into, _StreamedMap):
                    consume(into, key, value)
                elif isinstance(into, dict):
                    if isinstance(value, _StreamedMap):
                        value = {}  # a big map's place in the outer dict: left empty
                    into[key] = value
                else:
                    raise pickle.UnpicklingError("pickle sets an item on a non-dict")
        elif name in ("APPEND", "APPENDS"):
            items = pop_mark() if name == "APPENDS" else [stack.pop()]
            if not stack or not isinstance(stack[-1], list):
                raise pickle.UnpicklingError("pickle appends to a non-list")
            stack[-1].extend(items)
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
            else:
                attr, module = stack.pop(), stack.pop()
            if attr != "PersistentData" or not str(module).startswith("chromadb."):
                raise pickle.UnpicklingError(f"refusing to load {module}.{attr}")
            stack.append(_Allowed)
        elif name == "NEWOBJ":
            stack.pop()  # the constructor arguments: PersistentData takes none we need
            if stack.pop() is not _Allowed:
                raise pickle.UnpicklingError("pickle builds an object of a refused class")
            stack.append(PersistentData())
        elif name == "BUILD":
            state = stack.pop()
            if not stack or not isinstance(stack[-1], PersistentData):
                raise pickle.UnpicklingError("pickle sets the state of a refused object")
            if isinstance(state, dict):
                stack[-1].__dict__.update(state)
        elif name == "POP":
            stack.pop()
        else:
            raise pickle.UnpicklingError(f"unsupported pickle opcode {name}")
        # Items of a streamed map are consumed in pairs as soon as both are complete, so the
        # stack never holds more than one of them (a Rust-written map is one SETITEMS).
        if current is not None and len(stack) - base == 2:
            value = stack.pop()
            consume(current, stack.pop(), value)
        elif len(stack) > 10_000:
            raise pickle.UnpicklingError("pickle nests deeper than an index metadata file")
    if pending:
        emit(pending.copy())


class IdLabelMap:
    """id → HNSW label, in a private SQLite file: memory is its page cache, not the size.

    Filled once from the pickle, then read per batch (`labels`), per write-ahead-log row
    (`in`) and counted (`len`). The file lives in the reader's temporary directory, never in
    the source folder.
    """

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)  # a plan that failed earlier may have left one
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{_CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE id_to_label (id TEXT PRIMARY KEY NOT NULL, label INTEGER NOT NULL) "
            "WITHOUT ROWID"
        )
        self._count = 0
        self.max_label = -1

    @classmethod
    def from_pickle(cls, pickle_file: Path, path: Path) -> IdLabelMap:
        """Stream `pickle_file`'s id_to_label into a new map at `path`."""
        labels = cls(path)
        try:
            with pickle_file.open("rb") as fh:
                summary = stream_id_to_label(fh, labels.add)
        except BaseException:
            labels.close()
            raise
        if not summary.found:
            labels.close()
            raise KeyError("id_to_label")
        labels.finish(summary.max_label)
        return labels

    def add(self, pairs: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            # A dict cannot repeat a key; a crafted file could: the last one wins, as in a dict.
            self._db.executemany("INSERT OR REPLACE INTO id_to_label VALUES (?, ?)", pairs)
            self._db.execute("COMMIT")

    def finish(self, max_label: int) -> None:
        with self._lock:
            self._count = self._db.execute("SELECT count(*) FROM id_to_label").fetchone()[0]
        self.max_label = max_label

    def __len__(self) -> int:
        return self._count

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str):
            return False
        with self._lock:
            row = self._db.execute("SELECT 1 FROM id_to_label WHERE id = ?", (rid,)).fetchone()
        return row is not None

    def labels(self, ids: Sequence[str]) -> np.ndarray:
        """The labels of `ids` in order; KeyError(first id that has none)."""
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(ids))
        with self._lock:
            for start in range(0, len(unique), _LOOKUP_CHUNK):
                chunk = unique[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT id, label FROM id_to_label WHERE id IN ({marks})"
                found.update(self._db.execute(sql, chunk))
        out = np.empty(len(ids), dtype=np.int64)
        for k, rid in enumerate(ids):
            label = found.get(rid)
            if label is None:
                raise KeyError(rid)
            out[k] = label
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
