"""`chroma+file:///dir` on a Chroma ≤ 0.3 directory (DuckDB + Parquet), read with pyarrow.

Chroma 0.3 kept the whole database in DuckDB in memory and `persist()` wrote it out with
``COPY (SELECT * FROM <table>) TO '<dir>/chroma-<table>.parquet' (FORMAT PARQUET)``
(``chromadb/db/duckdb.py`` @0.3.29). No chroma.sqlite3, no WAL: the two files are the state
at the last persist. Columns (``chromadb/db/clickhouse.py`` schemas, UUID → string,
embedding → ``DOUBLE[]``; the same in 0.3.0 – 0.3.29, all nullable as DuckDB writes them)::

    chroma-collections.parquet  uuid, name, metadata (JSON text, 'null' when none)
    chroma-embeddings.parquet   collection_uuid, uuid (row key), embedding list<double>,
                                document, id (the user's id), metadata (JSON text or null)

What this reader decides, and why:

* **Distance**: 0.3.15 – 0.3.29 build the index with ``HnswParams(collection metadata)``
  (``chromadb/db/index/hnswlib.py``): ``hnsw:space`` from the collection's metadata JSON,
  default l2; values are checked as text, so ``"100"`` is a valid ``hnsw:M``. 0.3.0 – 0.3.14
  always used l2, and the files do not say which release wrote them: Ferry follows 0.3.15+
  (and the official converter, chroma-migrate, which passes the metadata on) and says so.
* **Duplicate ids**: before 0.3.22 ``add`` did not check for existing ids, so a file may hold
  two rows with one id. Ferry keeps the first in file order — what chroma-migrate's replay
  into 0.4 keeps, because 0.4's ``add`` ignores an id that exists — and says how many.
* **Vectors** are float64 in the file (as given to 0.3); Ferry carries float32, which is what
  every later Chroma stores; the plan says how many vectors that rounds.
* Metadata ``'null'`` / null / ``{}`` is "no metadata" (chroma-migrate turns ``{}`` into
  None); a document that is not a string (null; NaN through pandas) is None.

Memory: describing a collection scans the id and metadata columns once (0.3 held the whole
database in memory, so these directories fit); reads stream record batches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ferry.core.connectors.files.arrow  # noqa: F401  (before pyarrow: the system allocator)
from ferry.core.connectors.base import PingResult, QueryHits, SourceConnector, batches_in_thread
from ferry.core.connectors.chroma.space import HnswSettings
from ferry.core.connectors.traits import CHROMA
from ferry.core.errors import FerryError
from ferry.core.model import Batch, CollectionInfo, Cursor, Metric
from ferry.core.uri import ConnectionSpec

COLLECTIONS_FILE = "chroma-collections.parquet"
EMBEDDINGS_FILE = "chroma-embeddings.parquet"
LAYOUT = "Chroma 0.3 (DuckDB+Parquet)"
SCAN_ROWS = 8192  # rows per record batch while scanning the embeddings file

# chromadb 0.3.29 HnswParams defaults (search_ef 10, as in every 0.x up to 0.6.2).
_DEFAULTS = {"space": "l2", "M": 16, "ef_construction": 100, "ef_search": 10}
_KEYS = {"hnsw:M": "M", "hnsw:construction_ef": "ef_construction", "hnsw:search_ef": "ef_search"}
_KNOWN = {"hnsw:space", "hnsw:num_threads", "hnsw:resize_factor", *_KEYS}


def is_legacy_directory(path: Path) -> bool:
    """A 0.3 directory: the two Parquet files and no chroma.sqlite3."""
    return not (path / "chroma.sqlite3").exists() and (path / COLLECTIONS_FILE).is_file()


@dataclass
class _Scan:
    """One pass over a collection's rows: what describe reports and reads skip."""

    uuid: str
    count: int = 0
    rows: int = 0
    dimension: int | None = None
    skip: set[int] = field(default_factory=set)  # file rows of later duplicates
    duplicates: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    rounded: int = 0  # vectors whose float64 values a float32 cannot hold exactly


def hnsw_settings(metadata: dict[str, Any] | None, where: str) -> HnswSettings:
    """What 0.3.15+ builds the index with, from the collection's metadata JSON."""
    metadata = metadata or {}
    values = dict(_DEFAULTS)
    notes: list[str] = []
    unknown = sorted(k for k in metadata if k.startswith("hnsw:") and k not in _KNOWN)
    if unknown:
        notes.append(f"ignored unknown HNSW key(s): {', '.join(unknown)}")
    space = str(metadata.get("hnsw:space", "l2"))
    if space not in {m.value for m in Metric}:
        raise FerryError(
            f"hnsw:space {space!r} is not l2, cosine or ip",
            where=where,
            fix="fix the collection's metadata in chroma-collections.parquet",
        )
    for key, name in _KEYS.items():
        if key in metadata:
            try:
                values[name] = int(str(metadata[key]))  # 0.3 validated str(value) by regex
            except ValueError as exc:
                raise FerryError(
                    f"{key} = {metadata[key]!r} is not an integer", where=where
                ) from exc
    if space != "l2":
        notes.append(
            f"hnsw:space {space} taken from the collection metadata, as chromadb 0.3.15+ "
            "and chroma-migrate do (0.3.0-0.3.14 searched every collection with l2)"
        )
    return HnswSettings(
        metric=Metric(space),
        m=int(values["M"]),
        ef_construction=int(values["ef_construction"]),
        ef_search=int(values["ef_search"]),
        source="0.3 collection metadata" if "hnsw:space" in metadata else "0.3 defaults",
        notes=notes,
    )


def _metadata(text: str | None, where: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise FerryError(f"metadata is not JSON: {text[:60]!r}", where=where) from exc
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise FerryError(f"metadata is not a JSON object: {text[:60]!r}", where=where)
    return value


class ChromaLegacyConnector(SourceConnector):
    """A read-only source over the two Parquet files; queries by exact search."""

    kind = "chroma-legacy"
    traits = CHROMA

    def __init__(self, spec: ConnectionSpec) -> None:
        assert spec.path is not None
        self.uri = spec.uri
        self.path = spec.path
        for option in ("api", "upgrade_copy"):
            if spec.flag(option):
                raise FerryError(
                    f"?{option}=1 does not apply to a {LAYOUT} directory",
                    where=spec.uri.split("?", 1)[0],
                    fix="drop the option: Ferry reads the Parquet files directly, read-only",
                )
        self._collections: dict[str, tuple[str, dict[str, Any] | None]] | None = None
        self._scans: dict[str, _Scan] = {}

    # -- the files ----------------------------------------------------------------------------
    def _file(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            raise FerryError(
                f"{name} is missing", where=str(self.path), fix=f"a {LAYOUT} directory holds it"
            )
        return path

    def _load_collections(self) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """name → (uuid, collection metadata)."""
        if self._collections is None:
            import pyarrow.parquet as pq

            table = pq.read_table(
                self._file(COLLECTIONS_FILE), columns=["uuid", "name", "metadata"]
            )
            found: dict[str, tuple[str, dict[str, Any] | None]] = {}
            for row in table.to_pylist():
                name, where = row["name"], f"{self.path / COLLECTIONS_FILE}"
                if not row["uuid"] or not name:
                    raise FerryError("a collection without a uuid or name", where=where)
                if name in found:
                    raise FerryError(f"two collections named {name!r}", where=where)
                found[name] = (row["uuid"], _metadata(row["metadata"], f"{where} {name}"))
            self._collections = found
        return self._collections

    def _collection(self, name: str) -> tuple[str, dict[str, Any] | None]:
        collections = self._load_collections()
        if name not in collections:
            raise FerryError(f"no collection {name!r}", where=self.uri)
        return collections[name]

    def _batches(self, columns: list[str], start: int = 0) -> Iterator[tuple[int, Any]]:
        """(file row of the first row, record batch) from `start` on, one row group at a time."""
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self._file(EMBEDDINGS_FILE))
        offset = 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if offset + rows <= start:
                offset += rows
                continue
            for record_batch in parquet.iter_batches(
                batch_size=SCAN_ROWS, row_groups=[group], columns=columns
            ):
                yield offset, record_batch
                offset += record_batch.num_rows

    def _scan(self, name: str) -> _Scan:
        """Count, dimension, duplicates and metadata keys of one collection, in one pass."""
        if name in self._scans:
            return self._scans[name]
        import pyarrow.compute as pc

        uuid, _meta = self._collection(name)
        scan = _Scan(uuid)
        seen: set[str] = set()
        where = f"{self.path / EMBEDDINGS_FILE} {name}"
        for offset, batch in self._batches(["collection_uuid", "id", "embedding", "metadata"]):
            mask = pc.fill_null(pc.equal(batch.column(0), uuid), False)
            rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
            if not len(rows):
                continue
            picked = batch.take(rows)
            lengths = pc.list_value_length(picked.column(2)).to_numpy(zero_copy_only=False)
            if picked.column(2).null_count:
                raise FerryError("a record without an embedding", where=where)
            dims = set(np.unique(lengths).tolist())
            if scan.dimension is not None:
                dims.add(scan.dimension)
            if len(dims) > 1:
                raise FerryError(f"embeddings of dimensions {sorted(dims)}", where=where)
            scan.dimension = dims.pop()
            values = picked.column(2).flatten().to_numpy(zero_copy_only=False)
            exact = values.astype(np.float32).astype(np.float64) == values
            scan.rounded += int((~exact.reshape(len(rows), -1).all(axis=1)).sum())
            for row, sid, text in zip(
                rows.tolist(),
                picked.column(1).to_pylist(),
                picked.column(3).to_pylist(),
                strict=True,
            ):
                if sid is None:
                    raise FerryError(f"a record without an id (file row {offset + row})", where)
                scan.rows += 1
                if sid in seen:
                    scan.skip.add(offset + row)
                    scan.duplicates.append(sid)
                    continue
                seen.add(sid)
                meta = _metadata(text, f"{where} id {sid!r}")
                if meta:
                    scan.keys.update(meta)
        scan.count = len(seen)
        self._scans[name] = scan
        return scan

    def _read(self, name: str, cursor: Cursor, batch_size: int) -> Iterator[Batch]:
        """Batches of the collection's first-kept rows; cursor = the next file row."""
        import pyarrow.compute as pc

        if cursor is not None and not isinstance(cursor, int):
            raise FerryError(f"not a {LAYOUT} cursor: {cursor!r}", where=self.uri)
        scan = self._scan(name)
        start = cursor or 0
        where = f"{self.path / EMBEDDINGS_FILE} {name}"
        pending: list[Batch] = []
        held = 0
        columns = ["collection_uuid", "id", "embedding", "document", "metadata"]
        for offset, batch in self._batches(columns, start):
            mask = pc.fill_null(pc.equal(batch.column(0), scan.uuid), False)
            rows = [
                r
                for r in np.flatnonzero(mask.to_numpy(zero_copy_only=False)).tolist()
                if offset + r >= start and offset + r not in scan.skip
            ]
            while rows:
                take, rows = rows[: batch_size - held], rows[batch_size - held :]
                part = _to_batch(batch.take(take), scan.dimension or 0, where)
                part.cursor_after = offset + take[-1] + 1
                pending.append(part)
                held += len(part)
                if held == batch_size:
                    yield _join(pending)
                    pending, held = [], 0
        if pending:
            yield _join(pending)

    # -- protocol -----------------------------------------------------------------------------
    async def ping(self) -> PingResult:
        start = time.perf_counter()
        try:
            names = await self.list_collections()
        except FerryError as exc:
            return PingResult(ok=False, detail=exc.one_line())
        return PingResult(
            ok=True,
            version=LAYOUT,
            latency_ms=(time.perf_counter() - start) * 1000,
            auth="n/a",
            detail=f"{len(names)} collection(s), read-only (pyarrow)",
        )

    async def store_facts(self) -> dict[str, Any]:
        return {"schema": {"summary": LAYOUT, "pending": [], "newer": [], "applied": []}}

    async def list_collections(self) -> list[str]:
        return sorted(await asyncio.to_thread(self._load_collections))

    async def describe(self, name: str) -> CollectionInfo:
        uuid, metadata = await asyncio.to_thread(self._collection, name)
        scan = await asyncio.to_thread(self._scan, name)
        settings = hnsw_settings(metadata, f"{self.path / COLLECTIONS_FILE} {name}")
        warnings = [f"{name}: {note}" for note in settings.notes]
        if scan.duplicates:
            shown = ", ".join(repr(d) for d in scan.duplicates[:3])
            warnings.append(
                f"{name}: {len(scan.duplicates)} duplicate row(s) of one id ({shown}"
                f"{', …' if len(scan.duplicates) > 3 else ''}): the first row in the file is "
                "kept, as chroma-migrate does"
            )
        if scan.rounded:
            warnings.append(
                f"{name}: {scan.rounded} vector(s) hold float64 values; they move as float32 "
                "(what every Chroma since 0.4 stores)"
            )
        return CollectionInfo(
            name=name,
            count=scan.count,
            dimension=scan.dimension,
            metric=settings.metric,
            metadata_keys=sorted(scan.keys),
            facts={
                "reader": "chroma-legacy",
                "layout": LAYOUT,
                "schema": LAYOUT,
                "collection_id": uuid,
                "collection_metadata": metadata,
                "hnsw": settings.to_json(),
                "space_notes": list(settings.notes),
                "rows": scan.rows,
                "duplicate_ids": len(scan.duplicates),
                "duplicates_kept": "first",
                "embeddings_stored_as": "float64",
                "vectors_rounded_to_float32": scan.rounded,
                "warnings": warnings,
            },
        )

    async def count(self, name: str) -> int:
        return (await asyncio.to_thread(self._scan, name)).count

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        if batch_size < 1:
            raise FerryError("batch_size must be positive", where=self.uri)
        iterator = await asyncio.to_thread(self._read, name, cursor, batch_size)
        async for batch in batches_in_thread(iterator):
            yield batch

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        wanted = set(ids)
        scan = await asyncio.to_thread(self._scan, name)
        found: list[Batch] = []
        async for batch in self.read(name, None, 2000):
            rows = [i for i, sid in enumerate(batch.ids) if sid in wanted]
            if rows:
                found.append(_take(batch, rows))
        return _join(found) if found else Batch.empty(scan.dimension or 0)

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        """Exact search: the 0.3 hnswlib index files are not read (no chromadb reads them)."""
        from ferry.core.connectors.exact_search import exact_query

        metric = (await self.describe(name)).metric
        return await exact_query(self.read(name, None, 2000), vectors, metric, k)


def _to_batch(table: Any, dimension: int, where: str) -> Batch:
    embedding = table.column("embedding")
    values = embedding.flatten().to_numpy(zero_copy_only=False)
    vectors = np.asarray(values, dtype=np.float64).reshape(len(table), dimension)
    documents = [d if isinstance(d, str) else None for d in table.column("document").to_pylist()]
    ids = table.column("id").to_pylist()
    return Batch(
        ids,
        vectors.astype(np.float32),
        [
            _metadata(t, f"{where} id {sid!r}")
            for sid, t in zip(ids, table.column("metadata").to_pylist(), strict=True)
        ],
        documents,
    )


def _take(batch: Batch, rows: list[int]) -> Batch:
    return Batch(
        [batch.ids[r] for r in rows],
        batch.vectors[rows],
        [batch.metadatas[r] for r in rows],
        [batch.documents[r] for r in rows],
    )


def _join(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    joined = Batch(
        [sid for b in batches for sid in b.ids],
        np.concatenate([b.vectors for b in batches]),
        [m for b in batches for m in b.metadatas],
        [d for b in batches for d in b.documents],
    )
    joined.cursor_after = batches[-1].cursor_after
    return joined
