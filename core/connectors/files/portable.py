"""Portable files: a collection as a folder of data files plus a manifest, on either side.

`parquet+file:///dir` and `jsonl+file:///dir` share everything here; only how one batch
becomes one file differs (a `PartCodec`: core/connectors/files/parquet.py, jsonl.py). Made for
moving collections across an air gap (`chroma → parquet → qdrant`), and for backups a person
can open with pandas, DuckDB or `jq`.

Layout of one collection (folder name = collection name)::

    <dir>/<collection>/manifest.json          what it is; "complete" once the copy finished
    <dir>/<collection>/data/part-00000001.parquet   one file per written batch, in order

Why one file per batch: a Parquet file is unreadable until its footer is written, so a file
that grows cannot survive a crash; a batch file is written under a temporary name, fsync'ed
and renamed, so every file in `data/` is whole. Writes are upserts: a record written again
(a batch replayed after a crash, a repair) lands in a later part and the later part wins.
`finish` (called by the engine when the copy is complete) compacts superseded rows away,
records each part's row count and SHA-256, and marks the manifest complete; a reader of a
complete export verifies each part against its checksum before using it.

Metadata is stored as JSON text per record (null when the record has none). JSON, as Python
writes it, keeps Chroma's value types exactly: an int is written without a point, a float
always with one (``1.0``) or an exponent, booleans as ``true``/``false``, lists as lists, and
floats with the shortest repr that reads back to the same double. Typed columns could not:
one key may hold an int in one record and a string in the next.

Memory: a write holds one batch; a read one part. `fetch`, `delete` and reading an export
that is not complete keep an id → (part, row) map (~100 bytes a record) while they run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np

from ferry.core.connectors.base import Indexing, PingResult, QueryHits, TargetConnector
from ferry.core.connectors.traits import CHROMA, EngineTraits
from ferry.core.errors import FerryError, PermanentError
from ferry.core.model import Batch, CollectionInfo, Cursor, Metadata, Metric
from ferry.core.tuning import IndexTuning
from ferry.core.uri import ConnectionSpec

FORMAT = "ferry-portable"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA = "data"
_PART = re.compile(r"^part-(\d{8})\.(\w+)$")
_SECRETISH = {"api_key", "apikey", "key", "token", "password", "secret"}

# Files answer queries by exact search and report distances the way Chroma does.
PORTABLE = EngineTraits(engine="Files", scores=dict(CHROMA.scores))


def encode_metadata(metadata: Metadata | None) -> str | None:
    """JSON text that reads back with the same types (see the module docstring)."""
    if metadata is None:
        return None
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))


def decode_metadata(text: str | None) -> Metadata | None:
    if text is None:
        return None
    value = json.loads(text)
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"metadata is not a JSON object: {text[:60]!r}")
    return value


def public_uri(uri: str) -> str:
    """A URI safe to write into a manifest: no user:password, no secret-looking option."""
    base, _sep, query = uri.partition("?")
    base = re.sub(r"^([a-z0-9+]+://)[^/@]*@", r"\1", base)
    kept = [(k, v) for k, v in parse_qsl(query) if k.lower() not in _SECRETISH]
    return base + (f"?{urlencode(kept)}" if kept else "")


def ferry_version() -> str:
    from ferry.core import __version__

    return __version__


class PartCodec(ABC):
    """How one batch becomes the bytes of one data file, and back."""

    file_format: str  # "parquet" | "jsonl"
    suffix: str  # file extension without the dot

    @abstractmethod
    def encode(self, batch: Batch, dimension: int) -> bytes: ...

    @abstractmethod
    def decode(self, data: bytes, dimension: int) -> Batch:
        """Every row of a part, in file order (no cursor)."""

    def read_ids(self, path: Path, dimension: int) -> list[str]:
        """The ids of a part in file order (a format may read just that column)."""
        return self.decode(path.read_bytes(), dimension).ids

    @abstractmethod
    def layout(self, dimension: int) -> dict[str, Any]:
        """The manifest's description of the files, for a person or another tool."""


@dataclass
class _Part:
    """What is known about one data file: rows, checksum, metadata keys."""

    seq: int
    rows: int
    sha256: str
    keys: set[str] = field(default_factory=set)


@dataclass
class _Collection:
    """One collection's state in this process."""

    manifest: dict[str, Any]
    next_seq: int
    parts: dict[int, _Part] = field(default_factory=dict)  # written or measured here
    index: dict[str, tuple[int, int]] | None = None  # id → (part, row) of its live version
    stale: int = 0  # superseded rows known to be on disk (index built)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def complete(self) -> bool:
        return self.manifest.get("state") == "complete"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Temporary name, fsync, rename: the file is either absent or whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class PortableConnector(TargetConnector):
    """A folder of collections in one file format; any string id, exact types, exact floats."""

    traits = PORTABLE
    lists_metadata_keys = False  # an export being written has no key list yet: plans sample
    codec: PartCodec

    def __init__(self, spec: ConnectionSpec) -> None:
        assert spec.path is not None
        self.uri = spec.uri
        self.root = spec.path
        self.kind = self.codec.file_format
        self._collections: dict[str, _Collection] = {}

    # -- places -----------------------------------------------------------------------------
    def _folder(self, name: str) -> Path:
        if (
            not name
            or name in {".", ".."}
            or name.startswith(".")
            or any(c in name for c in "/\\\0")
        ):
            raise PermanentError(
                f"invalid collection name {name!r} for a file export",
                where=self.uri,
                fix="use a name without slashes that does not start with a dot",
            )
        return self.root / name

    def _part_path(self, name: str, seq: int) -> Path:
        return self._folder(name) / DATA / f"part-{seq:08d}.{self.codec.suffix}"

    def _parts_on_disk(self, name: str) -> list[int]:
        folder = self._folder(name) / DATA
        if not folder.is_dir():
            return []
        seqs = []
        for path in folder.iterdir():
            match = _PART.match(path.name)
            if match and match.group(2) == self.codec.suffix:
                seqs.append(int(match.group(1)))
        return sorted(seqs)

    def _state(self, name: str) -> _Collection:
        """The collection's manifest and bookkeeping, loaded once per process."""
        state = self._collections.get(name)
        if state is not None:
            return state
        path = self._folder(name) / MANIFEST
        if not path.is_file():
            raise FerryError(f"no collection {name!r}", where=self.uri)
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise FerryError(
                f"unreadable manifest ({exc})", where=str(path), fix="restore the export"
            ) from exc
        if not isinstance(manifest, dict):
            raise FerryError(
                "not a Ferry export: its manifest is not a JSON object",
                where=str(path),
                fix="restore the export, or export the collection again",
            )
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise FerryError(
                f"not a Ferry export of format version {FORMAT_VERSION}",
                where=str(path),
                fix="export it again with this Ferry",
            )
        check_manifest(manifest, path)
        if manifest.get("file_format") != self.codec.file_format:
            raise FerryError(
                f"collection {name!r} is a {manifest.get('file_format')} export",
                where=self.uri,
                fix=f"open it with {manifest.get('file_format')}+file://{self.root}",
            )
        seqs = self._parts_on_disk(name)
        state = _Collection(manifest, next_seq=(seqs[-1] + 1) if seqs else 1)
        self._collections[name] = state
        return state

    def _write_manifest(self, name: str, state: _Collection) -> None:
        folder = self._folder(name)
        data = json.dumps(state.manifest, indent=2, ensure_ascii=False).encode("utf-8")
        _write_atomic(folder / MANIFEST, data + b"\n")
        _fsync_dir(folder)

    def _mark_writing(self, name: str, state: _Collection) -> None:
        """A complete export that is written to again is not complete until `finish`."""
        if state.complete:
            state.manifest["state"] = "writing"
            state.manifest.pop("finished_at", None)
            self._write_manifest(name, state)

    def _clean(self, name: str, state: _Collection) -> bool:
        """A complete export whose files are exactly the manifest's: read without an index."""
        if not state.complete:
            return False
        listed = [p["seq"] for p in state.manifest.get("parts", [])]
        return listed == self._parts_on_disk(name)

    # -- index: id → live (part, row) -------------------------------------------------------
    def _build_index(self, name: str, state: _Collection) -> dict[str, tuple[int, int]]:
        if state.index is None:
            index: dict[str, tuple[int, int]] = {}
            stale = 0
            for seq in self._parts_on_disk(name):
                ids = self.codec.read_ids(self._part_path(name, seq), state.dimension)
                for row, sid in enumerate(ids):
                    if sid in index:
                        stale += 1
                    index[sid] = (seq, row)
            state.index, state.stale = index, stale
        return state.index

    def _read_part(self, name: str, state: _Collection, seq: int, verify: str | None) -> Batch:
        path = self._part_path(name, seq)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise FerryError(
                f"data file {path.name} is missing", where=str(path.parent), fix="copy it again"
            ) from exc
        if verify is not None and hashlib.sha256(data).hexdigest() != verify:
            raise FerryError(
                f"data file {path.name} does not match the manifest's SHA-256",
                where=str(path.parent),
                fix="the copy is damaged: copy the export again",
            )
        try:
            return self.codec.decode(data, state.dimension)
        except FerryError:
            raise
        except Exception as exc:
            raise FerryError(
                f"data file {path.name} cannot be read ({exc})", where=str(path.parent)
            ) from exc

    def _store_part(self, name: str, seq: int, batch: Batch, dimension: int) -> _Part:
        data = self.codec.encode(batch, dimension)
        _write_atomic(self._part_path(name, seq), data)
        keys = {k for m in batch.metadatas if m for k in m}
        return _Part(seq, len(batch), hashlib.sha256(data).hexdigest(), keys)

    # -- protocol: facts ----------------------------------------------------------------------
    async def ping(self) -> PingResult:
        start = time.perf_counter()
        ok = self.root.is_dir() or self.root.parent.is_dir()
        return PingResult(
            ok=ok,
            version=f"Ferry {self.codec.file_format} export, format {FORMAT_VERSION}",
            latency_ms=(time.perf_counter() - start) * 1000,
            detail="" if ok else f"{self.root.parent} does not exist",
        )

    async def list_collections(self) -> list[str]:
        """The export's collections. A folder that is not an export is refused, never read
        as "no collections" (that ended `completed` with nothing copied): a file in place of
        the folder, a collection folder given instead of its parent, a folder whose
        manifest.json is missing or not JSON."""
        if self.root.exists() and not self.root.is_dir():
            raise FerryError(
                f"{self.root} is a file, not a folder",
                where=self.uri,
                fix=f"name a folder: {self.kind}+file:///path/to/export-dir",
            )
        if not self.root.is_dir():
            return []
        if (self.root / MANIFEST).is_file():
            raise FerryError(
                "this is one collection's folder, not an export folder",
                where=self.uri,
                fix=f"name its parent: {self.kind}+file://{self.root.parent}",
            )
        names, strangers = [], []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith("."):
                continue
            manifest = folder / MANIFEST
            if not manifest.is_file():
                strangers.append(folder)
                continue
            try:
                loaded = json.loads(manifest.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise FerryError(
                    f"not an export: {MANIFEST} is not JSON ({str(exc)[:80]})",
                    where=str(manifest),
                    fix="restore the export, or move that folder out",
                ) from exc
            if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
                raise FerryError(
                    f"not an export: {MANIFEST} is not a Ferry manifest",
                    where=str(manifest),
                    fix="restore the export, or move that folder out",
                )
            if loaded.get("file_format") == self.codec.file_format:
                names.append(folder.name)
        if strangers and not names:
            raise FerryError(
                f"not a {self.kind} export: {strangers[0].name} has no {MANIFEST}",
                where=str(self.root),
                fix=f"name a folder `ferry migrate --to {self.kind}+file://…` wrote",
            )
        return names

    async def describe(self, name: str) -> CollectionInfo:
        state = self._state(name)
        manifest = state.manifest
        count = await self.count(name)
        facts: dict[str, Any] = {
            "engine": self.kind,
            "path": str(self._folder(name)),
            "state": manifest.get("state"),
            "exported_from": manifest.get("source"),
            "ferry_version": manifest.get("ferry_version"),
        }
        if manifest.get("hnsw"):
            facts["hnsw"] = manifest["hnsw"]
        if not state.complete:
            facts["warnings"] = [
                f"{name}: the {self.kind} export is not complete (its copy did not finish)"
            ]
        return CollectionInfo(
            name=name,
            count=count,
            dimension=state.dimension,
            metric=Metric(manifest["metric"]),
            metadata_keys=list(manifest.get("metadata_keys") or []),
            embedding_function=manifest.get("embedding_function"),
            facts=facts,
        )

    async def count(self, name: str) -> int:
        state = self._state(name)
        if self._clean(name, state):
            return int(state.manifest["count"])
        async with state.lock:
            return len(await asyncio.to_thread(self._build_index, name, state))

    # -- protocol: reading --------------------------------------------------------------------
    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        """Parts in order, `batch_size` rows at a time; cursor = [part, row after the batch]."""
        state = self._state(name)
        if batch_size < 1:
            raise FerryError("batch_size must be positive", where=self.uri)
        start_seq, start_row = self._parse_cursor(cursor)
        clean = self._clean(name, state)
        checksums = {p["seq"]: p["sha256"] for p in state.manifest.get("parts", [])}
        index = None if clean else await asyncio.to_thread(self._build_index, name, state)
        pending: list[Batch] = []  # full batches across part boundaries: one part + one batch
        held = 0
        for seq in self._parts_on_disk(name):
            if seq < start_seq:
                continue
            verify = checksums.get(seq) if clean else None
            part = await asyncio.to_thread(self._read_part, name, state, seq, verify)
            rows = list(range(start_row if seq == start_seq else 0, len(part)))
            if index is not None:
                rows = [r for r in rows if index.get(part.ids[r]) == (seq, r)]
            while rows:
                take, rows = rows[: batch_size - held], rows[batch_size - held :]
                piece = _take(part, take)
                piece.cursor_after = [seq, take[-1] + 1]
                pending.append(piece)
                held += len(piece)
                if held == batch_size:
                    yield _concat(pending, state.dimension)
                    pending, held = [], 0
            del part
        if pending:
            yield _concat(pending, state.dimension)

    def _parse_cursor(self, cursor: Cursor) -> tuple[int, int]:
        if cursor is None:
            return 0, 0
        if (
            isinstance(cursor, list | tuple)
            and len(cursor) == 2
            and all(isinstance(c, int) for c in cursor)
        ):
            return int(cursor[0]), int(cursor[1])
        raise FerryError(f"not a {self.kind} cursor: {cursor!r}", where=self.uri)

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        state = self._state(name)
        async with state.lock:
            index = await asyncio.to_thread(self._build_index, name, state)
        wanted: dict[int, list[tuple[int, str]]] = {}
        for sid in dict.fromkeys(ids):
            where = index.get(sid)
            if where is not None:
                wanted.setdefault(where[0], []).append((where[1], sid))
        found: list[Batch] = []
        for seq, rows in sorted(wanted.items()):
            part = await asyncio.to_thread(self._read_part, name, state, seq, None)
            found.append(_take(part, [row for row, _sid in rows]))
        return _concat(found, state.dimension)

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        """Exact search over the files (the best answer any index could give)."""
        from ferry.core.connectors.exact_search import exact_query

        metric = Metric(self._state(name).manifest["metric"])
        return await exact_query(self.read(name, None, 2000), vectors, metric, k)

    # -- protocol: writing --------------------------------------------------------------------
    async def _exists(self, name: str) -> bool:
        return (self._folder(name) / MANIFEST).is_file()

    indexing = Indexing.NONE

    def tuning_words(self, tuning: IndexTuning) -> str:
        return "files keep no index settings (the plan's tuning is recorded in the journal)"

    async def _create(self, info: CollectionInfo, tuning: IndexTuning) -> None:
        assert info.dimension is not None and info.metric is not None
        folder = self._folder(info.name)
        source_uri = info.facts.get("source_uri")
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "file_format": self.codec.file_format,
            "collection": info.name,
            "state": "writing",
            "dimension": info.dimension,
            "metric": info.metric.value,
            "hnsw": info.facts.get("hnsw"),
            "embedding_function": info.embedding_function,
            "layout": self.codec.layout(info.dimension),
            "count": 0,
            "metadata_keys": [],
            "parts": [],
            "source": {
                "uri": public_uri(source_uri) if source_uri else None,
                "collection": info.facts.get("source_collection", info.name),
                "count_when_planned": info.count,
                "exported_from": info.facts.get("exported_from"),
            },
            "ferry_version": ferry_version(),
            "created_at": _now(),
        }
        await asyncio.to_thread(self._make, folder, info.name, manifest)

    def _make(self, folder: Path, name: str, manifest: dict[str, Any]) -> None:
        (folder / DATA).mkdir(parents=True, exist_ok=True)
        state = _Collection(manifest, next_seq=1)
        self._write_manifest(name, state)
        _fsync_dir(self.root)
        self._collections[name] = state

    async def write(self, name: str, batch: Batch) -> None:
        state = self._state(name)
        if not len(batch):
            return
        if batch.vectors.ndim != 2 or batch.vectors.shape[1] != state.dimension:
            raise PermanentError(
                f"vectors of dimension {batch.vectors.shape[-1]}, collection has {state.dimension}",
                where=f"{self.uri} {name}",
            )
        if state.complete:
            await asyncio.to_thread(self._mark_writing, name, state)
        seq = state.next_seq  # taken on the loop: concurrent writers get distinct parts
        state.next_seq += 1
        part = await asyncio.to_thread(self._store_part, name, seq, batch, state.dimension)
        state.parts[seq] = part
        if state.index is not None:  # writers finish out of order: the later part wins
            for row, sid in enumerate(batch.ids):
                where = state.index.get(sid)
                if where is not None:
                    state.stale += 1
                if where is None or where[0] <= seq:
                    state.index[sid] = (seq, row)

    async def sync(self, name: str) -> None:
        """Parts are fsync'ed before they are renamed; make the renames durable."""
        folder = self._folder(name) / DATA
        if folder.is_dir():
            await asyncio.to_thread(_fsync_dir, folder)

    async def delete(self, name: str, ids: list[str]) -> None:
        state = self._state(name)
        async with state.lock:
            await asyncio.to_thread(self._delete, name, state, set(ids))

    def _delete(self, name: str, state: _Collection, doomed: set[str]) -> None:
        index = self._build_index(name, state)
        if not doomed & index.keys():
            return
        self._mark_writing(name, state)
        self._compact(name, state, doomed)

    async def present(self, name: str, native_ids: list[Any]) -> set[Any]:
        state = self._state(name)
        async with state.lock:
            index = await asyncio.to_thread(self._build_index, name, state)
        return {key for key in native_ids if key in index}

    async def delete_native(self, name: str, native_ids: list[Any]) -> None:
        await self.delete(name, [str(key) for key in native_ids])

    async def finish(self, name: str) -> None:
        """The copy is complete: drop superseded rows, checksum every part, seal the manifest."""
        state = self._state(name)
        async with state.lock:
            await asyncio.to_thread(self._finish, name, state)

    def _finish(self, name: str, state: _Collection) -> None:
        self._build_index(name, state)
        if state.stale:
            self._compact(name, state, set())
        data = self._folder(name) / DATA
        for leftover in data.glob(".*.tmp"):  # a write interrupted by a crash
            leftover.unlink(missing_ok=True)
        parts = []
        keys: set[str] = set()
        for seq in self._parts_on_disk(name):
            part = state.parts.get(seq) or self._measure(name, state, seq)
            parts.append(part)
            keys |= part.keys
        manifest = state.manifest
        manifest["parts"] = [
            {
                "seq": p.seq,
                "file": f"{DATA}/{self._part_path(name, p.seq).name}",
                "rows": p.rows,
                "sha256": p.sha256,
            }
            for p in parts
        ]
        manifest["count"] = sum(p.rows for p in parts)
        manifest["metadata_keys"] = sorted(keys)
        manifest["state"] = "complete"
        manifest["finished_at"] = _now()
        manifest["ferry_version"] = ferry_version()
        _fsync_dir(data)
        self._write_manifest(name, state)
        state.index = None  # a complete export is read without one: free the memory

    def _measure(self, name: str, state: _Collection, seq: int) -> _Part:
        """Rows, checksum and keys of a part written by another process (a resumed run)."""
        data = self._part_path(name, seq).read_bytes()
        batch = self.codec.decode(data, state.dimension)
        keys = {k for m in batch.metadatas if m for k in m}
        part = _Part(seq, len(batch), hashlib.sha256(data).hexdigest(), keys)
        state.parts[seq] = part
        return part

    def _compact(self, name: str, state: _Collection, doomed: set[str]) -> None:
        """Rewrite every part holding a superseded row or a doomed id; keep the order."""
        index = self._build_index(name, state)
        for seq in self._parts_on_disk(name):
            path = self._part_path(name, seq)
            ids = self.codec.read_ids(path, state.dimension)
            keep = [
                r for r, sid in enumerate(ids) if sid not in doomed and index.get(sid) == (seq, r)
            ]
            if len(keep) == len(ids):
                continue
            if not keep:
                path.unlink()
                state.parts.pop(seq, None)
                continue
            part = self._read_part(name, state, seq, None)
            state.parts[seq] = self._store_part(name, seq, _take(part, keep), state.dimension)
        _fsync_dir(self._folder(name) / DATA)
        state.index = None
        self._build_index(name, state)


def _take(batch: Batch, rows: list[int]) -> Batch:
    return Batch(
        [batch.ids[r] for r in rows],
        np.ascontiguousarray(batch.vectors[rows]),
        [batch.metadatas[r] for r in rows],
        [batch.documents[r] for r in rows],
    )


def _concat(batches: list[Batch], dimension: int) -> Batch:
    """One batch of several, resuming where the last one does."""
    if not batches:
        return Batch.empty(dimension)
    if len(batches) == 1:
        return batches[0]
    return Batch(
        [sid for b in batches for sid in b.ids],
        np.concatenate([b.vectors for b in batches]).astype(np.float32, copy=False),
        [m for b in batches for m in b.metadatas],
        [d for b in batches for d in b.documents],
        cursor_after=batches[-1].cursor_after,
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


MAX_DIMENSION = 65_536  # Qdrant's limit


def check_manifest(manifest: dict[str, Any], path: Path) -> None:
    """A manifest's dimension and metric are what every read trusts: checked once, in one
    line naming the file (a crafted "four", 0 or "hamming" ended in a library's words)."""
    dimension = manifest.get("dimension")
    if (
        not isinstance(dimension, int)
        or isinstance(dimension, bool)
        or not 1 <= dimension <= MAX_DIMENSION
    ):
        raise FerryError(
            f"manifest dimension {dimension!r} is not a whole number from 1 to {MAX_DIMENSION}",
            where=str(path),
            fix="restore the export, or export the collection again",
        )
    if manifest.get("metric") not in {m.value for m in Metric}:
        raise FerryError(
            f"manifest metric {manifest.get('metric')!r} is not one of "
            + ", ".join(m.value for m in Metric),
            where=str(path),
            fix="restore the export, or export the collection again",
        )
