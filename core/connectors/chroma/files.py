"""A read-only reader of an embedded Chroma directory (the chroma 1.x on-disk layout).

Why not just use ``chromadb.PersistentClient``? Opening a directory with it writes to
``chroma.sqlite3`` even when the caller only reads (migrations, locks, log purges), and
Ferry must never change the user's source. So this module reads the files themselves:

* ``chroma.sqlite3`` through SQLite with ``mode=ro`` (no journal, -wal or -shm is created
  for a rollback-journal database, which is what chroma uses: ``journal_mode=delete``);
* the HNSW segment folder ``<dir>/<vector segment id>/`` with numpy memory maps.

Layout, as verified against chromadb 1.5.9:

* ``collections(id, name, dimension, database_id, config_json_str, schema_str)``; which of
  the places that hold a distance space chroma really searches with differs by release:
  ``chroma/space.py`` resolves it the way each release does.
* Every collection has a METADATA segment (``urn:chroma:segment/metadata/sqlite``) and a
  VECTOR segment (``urn:chroma:segment/vector/hnsw-local-persisted``).
* The metadata segment is the record set: ``embeddings`` (one row per live record, rowid
  ``id``), ``embedding_metadata`` (scalar values, one typed column set per key; the document
  is key ``chroma:document``) and ``embedding_metadata_array`` (list values, one row per
  element, element order = rowid order). Chroma applies every write to it synchronously,
  so its ``max_seq_id`` equals the last log entry of the collection.
* The vector segment persists to disk only every ``sync_threshold`` (default 1000) writes.
  ``max_seq_id`` of the vector segment says up to which log entry the files are current;
  later writes are only in ``embeddings_queue`` (the write-ahead log, shared by all
  collections, ``topic`` ends with the collection id; operation 0 ADD, 1 UPDATE, 2 UPSERT,
  3 DELETE; ``vector`` is little-endian float32 when ``encoding`` is FLOAT32). Chroma
  purges the log only up to the smallest ``max_seq_id`` of the collection's segments, so
  the entries we need are still there. A collection below the threshold may have HNSW
  files with zero elements and no ``index_metadata.pickle`` at all.
* HNSW files (chroma's hnswlib fork, persistence version 1): ``header.bin`` (100 bytes),
  ``data_level0.bin`` (``cur_element_count`` fixed-size rows: level-0 links, the vector,
  the u64 label), ``length.bin`` (one float32 per row: the norm of the vector as it was
  added), ``index_metadata.pickle`` (plain dicts: ``id_to_label``, ``label_to_id``...).
  A plan (describe, sample) reads only the header, SQLite and the pickle's first items, so
  it costs the same at any size; before the first record is read, ``chroma/labels.py``
  turns ``id_to_label`` into a file-backed hash map (``chroma/pickle_labels.py``'s SQLite map where
  it declines) and label → row is a file-backed array next to it, so the reader's memory
  does not grow with the index.
  For cosine collections hnswlib stores the *normalised* vector; ``row × length`` gives
  back exactly what ``collection.get`` returns. For l2 and ip the vector is stored as is.
  Deleted records stay in the files (mark-deleted) but leave ``id_to_label``.
"""

from __future__ import annotations

import json
import mmap
import pickle
import sqlite3
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import quote

import numpy as np

from ferry.core.connectors.chroma.cut import copy_file
from ferry.core.connectors.chroma.file_rows import FileRows
from ferry.core.connectors.chroma.labels import NotFast, build_hash_map, ids_with_labels
from ferry.core.connectors.chroma.pickle_labels import IdLabelMap, stream_id_to_label
from ferry.core.connectors.chroma.shared_sqlite import SharedConnection
from ferry.core.connectors.chroma.space import embedding_function_name, read_settings
from ferry.core.errors import FerryError
from ferry.core.model import Batch, CollectionInfo, Cursor, Metadata, Metric

DB_FILE = "chroma.sqlite3"
VECTOR_SEGMENT = "urn:chroma:segment/vector/hnsw-local-persisted"
METADATA_SEGMENT = "urn:chroma:segment/metadata/sqlite"
DOCUMENT_KEY = "chroma:document"
# Highest migration of each kind whose layout this reader was checked against. A directory
# written by a newer chromadb may store things differently: we refuse rather than guess.
KNOWN_MIGRATIONS = {"sysdb": 10, "metadb": 6, "embeddings_queue": 2}
OP_ADD, OP_UPDATE, OP_UPSERT, OP_DELETE = 0, 1, 2, 3
HNSW_PERSISTENCE_VERSION = 1
# version i32, then offset_level0, max_elements, cur_element_count, size_data_per_element,
# label_offset, offset_data (u64 each), max_level i32, enter_point u32, max_m, max_m0, m
# (u64), mult f64, ef_construction u64.
_HEADER = struct.Struct("<iQQQQQQiIQQQdQ")
_REQUIRED_COLUMNS = {
    "collections": {"id", "name", "dimension", "database_id"},
    "segments": {"id", "type", "scope", "collection"},
    "embeddings": {"id", "segment_id", "embedding_id"},
    "embedding_metadata": {
        "id",
        "key",
        "string_value",
        "int_value",
        "float_value",
        "bool_value",
    },
    "max_seq_id": {"segment_id", "seq_id"},
    "embeddings_queue": {"seq_id", "operation", "topic", "id", "vector", "encoding"},
}
_SQL_CHUNK = 500  # stay far below SQLite's bound-parameter limit


class NeedsCut(Exception):
    """A reader of the live files (`in_place`) was asked for more than a plan: records need
    the whole index, which only a consistent cut holds still."""


def _fallback_fix() -> str:
    return "Ferry can read a copy of the folder through the chromadb API instead"


LABEL_PASS_ROWS = 4_096  # rows per chunk of the label pass over data_level0.bin (~7 MB)
SAMPLE_ROWS_READ = 4  # rows read per sampled record: spares for deleted or newer-logged rows
PLAN_SAMPLE_ITEMS = 1_000  # id_to_label items a plan reads: its sample (and the safety check)


class LabelMap(Protocol):
    """id → label, on disk: chroma_labels.HashLabelMap, or the exact IdLabelMap."""

    max_label: int

    def labels(self, ids: Sequence[str]) -> np.ndarray: ...
    def __contains__(self, rid: object) -> bool: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...


@dataclass
class _Hnsw:
    """The persisted HNSW vectors of one collection, memory-mapped.

    The id → label map and label → row are built only when records are read (`_ready`):
    a plan needs neither, and they cost O(collection) to build.
    """

    rows: np.ndarray  # uint8 (count, size_per_element), a read-only memmap
    offset_level0: int
    offset_data: int
    dimension: int
    lengths: np.ndarray  # float32 norms per row (memmap)
    label_offset: int = 0
    pickle_file: Path | None = None
    # The first id_to_label items (a plan's sample: read without the whole map).
    first_labels: list[tuple[str, int]] = field(default_factory=list)
    id_to_label: LabelMap | None = None  # on disk: memory does not grow with the collection
    label_to_row: np.ndarray | None = None  # int64 memmap, scratch folder: row + 1, 0: none
    m: int = 16  # from header.bin: what the index was really built with
    ef_construction: int = 100

    def vectors(self, ids: Sequence[str], normalised: bool) -> np.ndarray:
        assert self.id_to_label is not None and self.label_to_row is not None
        labels = self.id_to_label.labels(ids)
        if len(labels) and int(labels.max()) >= len(self.label_to_row):
            raise FerryError(
                "HNSW label without a vector row", where="data_level0.bin", fix=_fallback_fix()
            )
        rows = np.asarray(self.label_to_row[labels]) - 1
        release_pages(self.label_to_row)
        if (rows < 0).any():
            raise FerryError(
                "HNSW label without a vector row",
                where="data_level0.bin",
                fix=_fallback_fix(),
            )
        return self.rows_vectors(rows, normalised)

    def rows_vectors(self, rows: np.ndarray, normalised: bool) -> np.ndarray:
        """The vectors of these rows of data_level0.bin (times their norms for cosine)."""
        start, stop = self.offset_data, self.offset_data + 4 * self.dimension
        raw = gather(self.rows, rows, slice(start, stop))
        out = raw.view("<f4").astype(np.float32, copy=False).reshape(len(rows), self.dimension)
        if normalised:
            out = out * gather(self.lengths, rows)[:, None]
        return out

    def row_labels(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the label each of these rows holds, whether the row is live): read in place, so
        a sample pairs each vector with its own label (deleted rows: byte 2 of the level-0
        link header)."""
        labels = gather(self.rows, rows, slice(self.label_offset, self.label_offset + 8))
        flags = gather(self.rows, rows, self.offset_level0 + 2).ravel()
        return labels.view("<u8").ravel().astype(np.int64), (flags & 1) == 0


NORM_SAMPLE_ROWS = 512


def check_space_against_data(hnsw: _Hnsw, metric: Metric, where: str) -> None:
    """Refuse when the stored vectors contradict the resolved space.

    hnswlib normalises vectors only for cosine and then keeps each original norm in
    ``length.bin`` (for l2 and ip that file is left unwritten: zeros or stale bytes). So a
    cosine index has unit rows; an l2/ip index whose rows are all unit length *and* whose
    length.bin holds plausible norms other than 1 was built as cosine.
    """
    count = len(hnsw.rows)
    if not count:
        return
    # Evenly spread rows of data_level0.bin not flagged deleted: O(sample), not O(n).
    rows = np.unique(np.linspace(0, count - 1, min(count, 4 * NORM_SAMPLE_ROWS)).astype(np.int64))
    live = (gather(hnsw.rows, rows, hnsw.offset_level0 + 2) & 1) == 0
    rows = rows[live][:: max(1, int(live.sum()) // NORM_SAMPLE_ROWS)][:NORM_SAMPLE_ROWS]
    if not len(rows):
        return
    start, stop = hnsw.offset_data, hnsw.offset_data + 4 * hnsw.dimension
    vectors = gather(hnsw.rows, rows, slice(start, stop)).view("<f4")
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    lengths = gather(hnsw.lengths, rows).astype(np.float64)
    unit = np.abs(norms - 1.0) < 1e-3
    nonzero = norms > 0
    if metric is Metric.COSINE:
        if not unit[nonzero].all():
            raise FerryError(
                "the collection resolves to cosine but its index holds vectors that are not "
                "unit length (cosine indexes store them normalised)",
                where=where,
                fix="check the collection's hnsw:space with the chromadb that wrote it",
            )
        return
    plausible = np.isfinite(lengths) & (lengths > 1e-3) & (lengths < 1e6)
    if unit.all() and plausible.all() and (np.abs(lengths - 1.0) > 1e-3).mean() > 0.5:
        raise FerryError(
            f"the collection resolves to {metric.value} but its index was built as cosine "
            "(normalised vectors with their norms in length.bin)",
            where=where,
            fix="check the collection's hnsw:space with the chromadb that wrote it",
        )


GATHER_GROUP = 128  # rows read between two releases of a memory map's pages


def gather(array: np.ndarray, rows: np.ndarray, columns: slice | int | None = None) -> np.ndarray:
    """``array[rows, columns]`` from a memory map, releasing its pages every few rows.

    Each page fault maps up to 64 KiB around it ("fault-around"), so rows scattered over a
    big file would map most of it in one gather: a sample of 2,000 rows of a 100k index put
    170 MB in RSS. Groups of rows bound that to GATHER_GROUP × 64 KiB.
    """
    index = (rows,) if columns is None else (rows, columns)
    if len(rows) <= GATHER_GROUP:
        out = np.ascontiguousarray(array[index])
        release_pages(array)
        return out
    first = np.ascontiguousarray(array[(rows[:1],) + index[1:]])
    out = np.empty((len(rows),) + first.shape[1:], dtype=array.dtype)
    for lo in range(0, len(rows), GATHER_GROUP):
        out[lo : lo + GATHER_GROUP] = array[(rows[lo : lo + GATHER_GROUP],) + index[1:]]
        release_pages(array)
    return out


def release_pages(array: np.ndarray) -> None:
    """Drop a read-only memmap's pages from this process (they stay in the page cache).

    Without it, every page read stays in RSS until close, so RSS would grow with the
    collection even though the reader holds one batch at a time.
    """
    handle = getattr(array, "_mmap", None)
    if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
        handle.madvise(mmap.MADV_DONTNEED)


@dataclass
class _Plan:
    """Everything computed once per collection before records can be streamed."""

    name: str
    collection_id: str
    dimension: int | None
    metric: Metric
    embedding_function: str | None
    metadata_segment: str
    vector_segment: str | None
    metadata_max_seq: int
    vector_max_seq: int
    count: int
    last_rowid: int  # the segment's highest embeddings.id: where a read scan stops
    hnsw: _Hnsw | None
    hnsw_files: bool
    # Log entries newer than the persisted HNSW, replayed: id -> vector, or None if deleted.
    # O(unflushed writes × dimension): bounded by the collection's sync_threshold.
    overlay: dict[str, np.ndarray | None] = field(default_factory=dict)
    unflushed: int = 0
    facts: dict[str, Any] = field(default_factory=dict)
    schema_str: str | None = None  # chroma 1.x's collection schema (it names metadata keys)
    ready: bool = False  # the label map built and the log replayed (`_ready`): reads can start
    topic_like: str = ""


def _schema_bool_keys(schema_str: str | None) -> set[str] | None:
    """Keys chroma's collection schema (1.x) records with a boolean value type; None when
    the release keeps no per-key schema (the caller then scans)."""
    try:
        keys = (json.loads(schema_str) if schema_str else {}).get("keys")
    except (ValueError, AttributeError):
        return None
    if not isinstance(keys, dict) or "#embedding" not in keys:
        return None
    return {k for k, types in keys.items() if isinstance(types, dict) and "bool" in types}


def _seq(value: Any) -> int:
    """``max_seq_id.seq_id`` is an int since metadb migration 5, big-endian bytes before."""
    if value is None:
        return 0
    if isinstance(value, bytes):
        return int.from_bytes(value, "big")
    return int(value)


def _value(s: Any, i: Any, f: Any, b: Any) -> Any:
    """One stored metadata value with the Python type chroma gives back."""
    if s is not None:
        return s
    if i is not None:
        return int(i)
    if f is not None:
        return float(f)
    if b is not None:
        return bool(b)
    return None


class ChromaDirectory:
    """Reads collections from an embedded Chroma folder without ever writing to it."""

    def __init__(
        self,
        path: str | Path,
        tenant: str = "default_tenant",
        database: str = "default_database",
        cut: bool = False,
        in_place: bool = False,
    ) -> None:
        self.path = Path(path)
        # A private cut of a live directory (core/connectors/chroma/cut.py): log entries newer than the
        # metadata segment are writes after the cut, not a fault.
        self.cut = cut
        # The live files, for a plan only (chroma/peek.py): no memory maps (hnswlib rewrites
        # its files truncated: SIGBUS), the pickle scanned on a private copy, and anything
        # that needs the whole index raises NeedsCut.
        self.in_place = in_place
        self.tenant = tenant
        self.database = database
        self._db: SharedConnection | None = None  # a close waits for a step in progress
        self._checked = False
        self._database_id: str | None = None
        self._arrays = False
        self._plans: dict[str, _Plan] = {}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._label_maps: list[LabelMap] = []  # closed by close(), even a failed plan's

    # Connection and layout check ------------------------------------------------------
    def _conn(self) -> SharedConnection:
        if self._db is None:
            file = self.path / DB_FILE
            if not file.is_file():
                raise FerryError(
                    "not a Chroma directory",
                    where=str(self.path),
                    fix="point chroma+file:// at the folder that holds chroma.sqlite3",
                )
            uri = f"file:{quote(str(file.resolve()))}?mode=ro"
            try:
                self._db = SharedConnection(sqlite3.connect(uri, uri=True, check_same_thread=False))
                self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise FerryError(
                    f"cannot open chroma.sqlite3 read-only: {exc}", where=str(file)
                ) from exc
        return self._db

    def check(self) -> None:
        """Raise FerryError unless this folder has a layout this reader understands."""
        if self._checked:
            return
        db = self._conn()
        where = str(self.path / DB_FILE)
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            for table, needed in _REQUIRED_COLUMNS.items():
                if table not in tables:
                    raise FerryError(
                        f"unrecognised Chroma layout: table {table} is missing",
                        where=where,
                        fix=_fallback_fix(),
                    )
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if not needed <= have:
                    raise FerryError(
                        f"unrecognised Chroma layout: {table} lacks {sorted(needed - have)}",
                        where=where,
                        fix=_fallback_fix(),
                    )
            applied: dict[str, int] = {}
            if "migrations" in tables:
                for kind, version in db.execute(
                    "SELECT dir, max(version) FROM migrations GROUP BY dir"
                ):
                    applied[kind] = version
            # A kind we do not know, or a version above the one we checked, is "newer".
            too_new = {k: v for k, v in applied.items() if v > KNOWN_MIGRATIONS.get(k, -1)}
            if too_new:
                levels = ", ".join(f"{k} {v}" for k, v in sorted(too_new.items()))
                raise FerryError(
                    f"Chroma folder written by a newer chromadb than this reader knows ({levels})",
                    where=where,
                    fix=_fallback_fix(),
                )
            row = db.execute(
                "SELECT id FROM databases WHERE name = ? AND tenant_id = ?",
                (self.database, self.tenant),
            ).fetchone()
        except sqlite3.Error as exc:
            raise FerryError(
                f"cannot read chroma.sqlite3: {exc}",
                where=where,
                fix="check that it is a Chroma directory and readable; restore a damaged file "
                "from a backup (Ferry never writes to a source)",
            ) from exc
        if str(mode).lower() == "wal":
            # Reading a WAL-mode database read-only needs its -shm file (or creates one).
            raise FerryError(
                "chroma.sqlite3 is in WAL journal mode, which this reader does not open",
                where=where,
                fix=_fallback_fix(),
            )
        if row is None:
            raise FerryError(
                f"no database {self.database!r} for tenant {self.tenant!r}", where=where
            )
        self._database_id = row[0]
        self._arrays = "embedding_metadata_array" in tables
        self._checked = True

    def check_collections(self) -> None:
        """Plan every collection now: raises FerryError when one cannot be read consistently
        (a cut is checked this way before it is used)."""
        for name in self.list_collections():
            self._plan(name)

    def recognised(self) -> bool:
        """True when `check` passes: the fast reader can be used on this folder."""
        try:
            self.check()
        except FerryError:
            return False
        return True

    # Collections ----------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        self.check()
        rows = self._conn().execute(
            "SELECT name FROM collections WHERE database_id = ? ORDER BY name",
            (self._database_id,),
        )
        return [r[0] for r in rows]

    def describe(self, name: str) -> CollectionInfo:
        plan = self._plan(name)
        return CollectionInfo(
            name=name,
            count=plan.count,
            dimension=plan.dimension,
            metric=plan.metric,
            metadata_keys=self._metadata_keys(plan),
            embedding_function=plan.embedding_function,
            facts=dict(plan.facts),
        )

    def _metadata_keys(self, plan: _Plan) -> list[str]:
        """Every metadata key of the collection's records (chroma's own keys left out).

        Where the collection is the folder's only one, its keys come from chroma's partial
        indexes on (key, value) by a skip scan: one index probe per key, whatever the size.
        Keys holding only booleans have no index: the schema (chromadb ≥ 1.x) names the
        candidates and one probe each confirms them; without a schema, a scan of the rows.
        """
        db = self._conn()
        tables = ["embedding_metadata"]
        if self._has_arrays():
            tables.append("embedding_metadata_array")
        keys: set[str] = set()
        (segments,) = db.execute(
            "SELECT count(*) FROM segments WHERE type = ?", (METADATA_SEGMENT,)
        ).fetchone()
        if segments != 1:
            for table in tables:
                # Rows of several collections share the table: one pass over this one's.
                sql = (
                    f"SELECT DISTINCT m.key FROM {table} m JOIN embeddings e ON e.id = m.id "
                    "WHERE e.segment_id = ?"
                )
                keys.update(r[0] for r in db.execute(sql, (plan.metadata_segment,)))
            return sorted(k for k in keys if not k.startswith("chroma:"))
        bool_candidates = _schema_bool_keys(plan.schema_str)
        for table in tables:
            for column in ("string_value", "int_value", "float_value"):
                key = ""
                while True:
                    (key,) = db.execute(
                        f"SELECT min(key) FROM {table} WHERE {column} IS NOT NULL AND key > ?",
                        (key,),
                    ).fetchone()
                    if key is None:
                        break
                    keys.add(key)
            if bool_candidates is None:
                sql = f"SELECT DISTINCT key FROM {table} WHERE bool_value IS NOT NULL"
                keys.update(r[0] for r in db.execute(sql))
                continue
            for key in bool_candidates - keys:
                sql = f"SELECT 1 FROM {table} WHERE key = ? AND bool_value IS NOT NULL LIMIT 1"
                if db.execute(sql, (key,)).fetchone():
                    keys.add(key)
        return sorted(k for k in keys if not k.startswith("chroma:"))

    def _has_arrays(self) -> bool:
        """Directories older than metadb migration 6 have no list-valued metadata."""
        self.check()
        return self._arrays

    def _plan(self, name: str) -> _Plan:
        if name in self._plans:
            return self._plans[name]
        self.check()
        db = self._conn()
        where = f"{self.path}:{name}"
        cols = {r[1] for r in db.execute("PRAGMA table_info(collections)")}
        extra = ", ".join(c if c in cols else "NULL" for c in ("config_json_str", "schema_str"))
        row = db.execute(
            f"SELECT id, dimension, {extra} FROM collections WHERE name = ? AND database_id = ?",
            (name, self._database_id),
        ).fetchone()
        if row is None:
            raise FerryError(
                f"no collection named {name!r}",
                where=str(self.path),
                fix="run `ferry ls` to see the collections in this folder",
            )
        collection_id, dimension, config_str, schema_str = row
        segments = {
            t: s
            for s, t in db.execute(
                "SELECT id, type FROM segments WHERE collection = ?", (collection_id,)
            )
        }
        metadata_segment = segments.get(METADATA_SEGMENT)
        vector_segment = segments.get(VECTOR_SEGMENT)
        if metadata_segment is None or (vector_segment is None and len(segments) > 1):
            raise FerryError(
                f"unrecognised segment types {sorted(segments)}",
                where=where,
                fix=_fallback_fix(),
            )
        seqs = dict(
            db.execute(
                "SELECT segment_id, seq_id FROM max_seq_id WHERE segment_id IN (?, ?)",
                (metadata_segment, vector_segment or ""),
            )
        )
        metadata_max_seq = _seq(seqs.get(metadata_segment))
        vector_max_seq = _seq(seqs.get(vector_segment))
        settings = read_settings(db, collection_id, vector_segment, where)
        metric = settings.metric
        ef = self._embedding_function(config_str, schema_str)
        count, last_rowid = db.execute(
            "SELECT count(*), max(id) FROM embeddings WHERE segment_id = ?",
            (metadata_segment,),
        ).fetchone()

        # The log: anything newer than the metadata segment means chroma has not applied a
        # write yet (a crash mid-write); replaying metadata updates is not implemented.
        topic_like = "%/" + collection_id
        last_logged = db.execute(
            "SELECT max(seq_id) FROM embeddings_queue WHERE seq_id > ? AND topic LIKE ?",
            (metadata_max_seq, topic_like),
        ).fetchone()[0]
        after_cut = 0
        if last_logged is not None and self.cut:
            after_cut = db.execute(
                "SELECT count(*) FROM embeddings_queue WHERE seq_id > ? AND topic LIKE ?",
                (metadata_max_seq, topic_like),
            ).fetchone()[0]
        if last_logged is not None and not self.cut:
            raise FerryError(
                "the metadata segment is behind the write-ahead log (chroma did not finish "
                "applying a write)",
                where=where,
                fix=_fallback_fix(),
            )

        hnsw, hnsw_files = None, False
        if vector_segment is not None:
            hnsw, hnsw_files = self._load_hnsw(vector_segment, where)
        if hnsw is not None:
            check_space_against_data(hnsw, metric, where)
            if (hnsw.m, hnsw.ef_construction) != (settings.m, settings.ef_construction):
                # hnswlib reads M and ef_construction back from header.bin: the index's truth
                settings.notes.append(
                    f"index built with M={hnsw.m}, ef_construction={hnsw.ef_construction} "
                    f"(settings say {settings.m}, {settings.ef_construction})"
                )
                settings.m, settings.ef_construction = hnsw.m, hnsw.ef_construction
        if hnsw is not None and dimension is not None and hnsw.dimension != dimension:
            raise FerryError(
                f"HNSW dimension {hnsw.dimension} differs from the collection's {dimension}",
                where=where,
                fix=_fallback_fix(),
            )
        plan = _Plan(
            name=name,
            collection_id=collection_id,
            dimension=dimension,
            metric=metric,
            embedding_function=ef,
            metadata_segment=metadata_segment,
            vector_segment=vector_segment,
            metadata_max_seq=metadata_max_seq,
            vector_max_seq=vector_max_seq,
            count=count,
            last_rowid=last_rowid or 0,
            hnsw=hnsw,
            hnsw_files=hnsw_files,
        )
        plan.topic_like = topic_like
        plan.schema_str = schema_str
        # The exact check (every record has a vector) needs the whole id → label map: it is
        # made before the first record is read (`_ready`). Here, in O(1): the log's entries
        # and the index's rows must at least be enough for the metadata's records.
        plan.unflushed, logged_vectors = db.execute(
            "SELECT count(*), count(vector) FROM embeddings_queue WHERE seq_id > ? "
            "AND topic LIKE ?",
            (vector_max_seq, topic_like),
        ).fetchone()
        rows = len(hnsw.rows) if hnsw else 0
        if rows + logged_vectors < count:
            raise FerryError(
                f"vector index ({rows + logged_vectors} records at most) and metadata "
                f"({count}) disagree",
                where=where,
                fix=_fallback_fix(),
            )
        plan.facts = {
            "collection_id": collection_id,
            "metadata_segment": metadata_segment,
            "vector_segment": vector_segment,
            "hnsw_files": hnsw_files,
            "hnsw_persisted_records": len(hnsw.rows) if hnsw else 0,  # deleted rows too
            "unflushed_wal_rows": plan.unflushed,
            "metadata_max_seq_id": metadata_max_seq,
            "vector_max_seq_id": vector_max_seq,
            "reader": "chroma-files",
            "log_after_cut": after_cut,
            "hnsw": settings.to_json(),
            "space_notes": list(settings.notes),
        }
        self._plans[name] = plan
        return plan

    def _embedding_function(self, config_str: str | None, schema_str: str | None) -> str | None:
        """The embedding function's name, where the release recorded one (1.x only)."""
        try:
            schema = json.loads(schema_str) if schema_str else {}
            vi = schema.get("keys", {}).get("#embedding", {}).get("float_list", {})
            vi = (vi.get("vector_index") or {}).get("config") or {}
            name = embedding_function_name(vi)
            if name:
                return name
        except (ValueError, AttributeError):
            pass
        try:
            config = json.loads(config_str) if config_str else {}
            return embedding_function_name(config)
        except (ValueError, AttributeError):
            return None

    def _load_hnsw(self, segment_id: str, where: str) -> tuple[_Hnsw | None, bool]:
        folder = self.path / segment_id
        header_file = folder / "header.bin"
        if not header_file.is_file():
            return None, False
        raw = header_file.read_bytes()
        if len(raw) < _HEADER.size:
            raise FerryError("HNSW header too short", where=str(header_file), fix=_fallback_fix())
        (version, offset_level0, _, count, size, label_offset, offset_data, *rest) = (
            _HEADER.unpack_from(raw)
        )
        _max_level, _enter, _max_m, _max_m0, m, _mult, ef_construction = rest
        if version != HNSW_PERSISTENCE_VERSION:
            raise FerryError(
                f"HNSW persistence version {version} is not supported",
                where=str(header_file),
                fix=_fallback_fix(),
            )
        pickle_file = folder / "index_metadata.pickle"
        if not pickle_file.is_file():
            if count:
                raise FerryError(
                    "HNSW files without index_metadata.pickle",
                    where=str(folder),
                    fix=_fallback_fix(),
                )
            return None, True  # created but never persisted: every vector is in the log
        # The plan reads only the first items of id_to_label (its sample); the interpreter
        # refuses a pickle with anything but the allowed opcodes before those.
        first: list[tuple[str, int]] = []
        try:
            with pickle_file.open("rb") as fh:
                summary = stream_id_to_label(fh, first.extend, limit=PLAN_SAMPLE_ITEMS)
        except Exception as exc:
            raise FerryError(
                f"cannot read index_metadata.pickle: {exc}",
                where=str(pickle_file),
                fix=_fallback_fix(),
            ) from exc
        if not summary.found:
            raise FerryError(
                "index_metadata.pickle has no id_to_label map",
                where=str(pickle_file),
                fix=_fallback_fix(),
            )
        hnsw = self._map_rows(folder, header=(offset_level0, count, size))
        hnsw.offset_data, hnsw.label_offset = offset_data, label_offset
        hnsw.dimension = (label_offset - offset_data) // 4
        hnsw.pickle_file, hnsw.first_labels = pickle_file, first
        hnsw.m, hnsw.ef_construction = int(m), int(ef_construction)
        return hnsw, True

    def _scannable(self, pickle_file: Path) -> Path:
        """The pickle to memory-map: in place, a private copy (chroma truncates and rewrites
        it when it persists; a mapped page past the new end would be SIGBUS)."""
        if not self.in_place:
            return pickle_file
        copy = self._workdir() / f"{pickle_file.parent.name}.pickle"
        if not copy.exists():
            copy_file(pickle_file, copy)
        return copy

    def _workdir(self) -> Path:
        """This reader's private temporary folder (the label maps): removed by close()."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="ferry-chroma-")
        return Path(self._scratch.name)

    def _map_rows(self, folder: Path, header: tuple[int, int, int]) -> _Hnsw:
        """Memory-map the vector rows and their norms (nothing is read yet)."""
        offset_level0, count, size = header
        data_file = folder / "data_level0.bin"
        if count == 0:
            rows = np.zeros((0, size), dtype=np.uint8)
            lengths = np.zeros(0, dtype=np.float32)
        else:
            if (
                data_file.stat().st_size < count * size
                or (folder / "length.bin").stat().st_size < 4 * count
            ):
                raise FerryError(
                    "HNSW files are shorter than their header says",
                    where=str(folder),
                    fix=_fallback_fix(),
                )
            if self.in_place:
                rows = FileRows(data_file, count, "u1", width=size)
                lengths = FileRows(folder / "length.bin", count, "<f4")
            else:
                rows = np.memmap(data_file, dtype=np.uint8, mode="r", shape=(count, size))
                lengths = np.memmap(folder / "length.bin", dtype="<f4", mode="r", shape=(count,))
        return _Hnsw(
            rows=rows, offset_level0=offset_level0, offset_data=0, dimension=0, lengths=lengths
        )

    def _ready(self, plan: _Plan) -> None:
        """Before records are read: the id → label map, label → row, the log replayed and
        the vector count checked against the metadata (once per collection)."""
        if plan.ready:
            return
        if self.in_place and plan.hnsw is not None:
            raise NeedsCut(plan.name)  # records of a persisted index: its whole label map
        where = f"{self.path}:{plan.name}"
        if plan.hnsw is not None and plan.hnsw.id_to_label is None:
            assert plan.vector_segment is not None
            self._build_labels(plan.hnsw, plan.vector_segment)
        plan.overlay.clear()
        plan.unflushed = 0
        self._replay(plan, plan.topic_like, where)
        plan.ready = True

    def _label_map(self, hnsw: _Hnsw, segment_id: str) -> LabelMap:
        """id → label from the pickle: the hash map (chroma/labels.py, ~1 s per million),
        or the exact SQLite map where the fast path declines."""
        assert hnsw.pickle_file is not None
        work = self._workdir()
        try:
            try:
                return build_hash_map(hnsw.pickle_file, work, segment_id, len(hnsw.rows))
            except NotFast:
                return IdLabelMap.from_pickle(
                    hnsw.pickle_file, work / f"{segment_id}.labels.sqlite3"
                )
        except KeyError:
            raise FerryError(
                "index_metadata.pickle has no id_to_label map",
                where=str(hnsw.pickle_file),
                fix=_fallback_fix(),
            ) from None
        except Exception as exc:
            raise FerryError(
                f"cannot read index_metadata.pickle: {exc}",
                where=str(hnsw.pickle_file),
                fix=_fallback_fix(),
            ) from exc

    def _build_labels(self, hnsw: _Hnsw, segment_id: str) -> None:
        """The id → label map, and label → row as a file-backed array."""
        id_to_label = self._label_map(hnsw, segment_id)
        self._label_maps.append(id_to_label)
        rows, count = hnsw.rows, len(hnsw.rows)
        offset_level0, label_offset = hnsw.offset_level0, hnsw.label_offset
        # Only labels some id points at are ever looked up: the array stops at the highest.
        top = max(id_to_label.max_label, 0)
        if top > 4 * (count + len(id_to_label)) + 1_000_000:
            raise FerryError(
                f"implausible HNSW label {top}",
                where=str(hnsw.pickle_file),
                fix=_fallback_fix(),
            )
        # A new file reads as zeros, so it holds row + 1 and 0 means "no row": nothing to fill.
        label_to_row = np.memmap(
            self._workdir() / f"{segment_id}.label_to_row.i64",
            dtype=np.int64,
            mode="w+",
            shape=(top + 1,),
        )
        # One pass over the label column (touches every page of data_level0.bin once), in
        # chunks that release their pages as they go. Rows flagged deleted (byte 2 of the
        # level-0 link header) are left unmapped, so an id that still pointed at one would
        # fail loudly instead of reading a stale vector.
        for start in range(0, count, LABEL_PASS_ROWS):
            chunk = rows[start : start + LABEL_PASS_ROWS]
            labels = (
                np.ascontiguousarray(chunk[:, label_offset : label_offset + 8]).view("<u8").ravel()
            )
            live = ((np.asarray(chunk[:, offset_level0 + 2]) & 1) == 0) & (labels <= top)
            label_to_row[labels[live].astype(np.int64)] = start + 1 + np.nonzero(live)[0]
            release_pages(rows)
            release_pages(label_to_row)
        hnsw.id_to_label, hnsw.label_to_row = id_to_label, label_to_row

    def _replay(self, plan: _Plan, topic_like: str, where: str) -> None:
        """Apply log entries newer than the persisted HNSW, as chroma would on load.

        ADD of an existing id and UPDATE of a missing id are ignored (chroma does the same);
        UPSERT adds or replaces; DELETE removes.
        """
        hnsw_ids = plan.hnsw.id_to_label if plan.hnsw else {}
        overlay = plan.overlay
        rows = self._conn().execute(
            "SELECT seq_id, operation, id, vector, encoding FROM embeddings_queue "
            "WHERE seq_id > ? AND seq_id <= ? AND topic LIKE ? ORDER BY seq_id",
            (plan.vector_max_seq, plan.metadata_max_seq, topic_like),
        )
        for _seq_id, op, rid, blob, encoding in rows:
            plan.unflushed += 1
            vec = None
            if blob is not None:
                if encoding not in (None, "FLOAT32"):
                    raise FerryError(
                        f"unsupported vector encoding {encoding!r}",
                        where=where,
                        fix=_fallback_fix(),
                    )
                vec = np.frombuffer(blob, dtype="<f4").astype(np.float32)
            exists = overlay[rid] is not None if rid in overlay else rid in hnsw_ids
            if op == OP_ADD:
                if not exists:
                    if vec is None:
                        raise FerryError(
                            f"log ADD without a vector for {rid!r}",
                            where=where,
                            fix=_fallback_fix(),
                        )
                    overlay[rid] = vec
            elif op == OP_UPDATE:
                if exists and vec is not None:
                    overlay[rid] = vec
            elif op == OP_UPSERT:
                if vec is not None:
                    overlay[rid] = vec
                elif not exists:
                    raise FerryError(
                        f"log UPSERT without a vector for {rid!r}",
                        where=where,
                        fix=_fallback_fix(),
                    )
            elif op == OP_DELETE:
                if exists:
                    overlay[rid] = None
            else:
                raise FerryError(f"unknown log operation {op}", where=where, fix=_fallback_fix())
        # The vectors we can produce must describe exactly the metadata segment's records.
        touched_in_hnsw = sum(1 for rid in overlay if rid in hnsw_ids)
        live_overlay = sum(1 for v in overlay.values() if v is not None)
        vector_count = len(hnsw_ids) - touched_in_hnsw + live_overlay
        if vector_count != plan.count:
            raise FerryError(
                f"vector index ({vector_count} records) and metadata ({plan.count}) disagree",
                where=where,
                fix=_fallback_fix(),
            )
        if plan.dimension is None and (vector_count or live_overlay):
            raise FerryError(
                "collection has records but no dimension",
                where=where,
                fix=_fallback_fix(),
            )

    # Records --------------------------------------------------------------------------
    def read(self, name: str, cursor: Cursor, batch_size: int) -> Iterator[Batch]:
        """Every live record once, in metadata-segment rowid order (stable across runs).

        The cursor is ``{"after_rowid": n}``: resuming skips every rowid up to n. Each batch
        costs O(batch_size) memory: one rowid-range query per table and a gather from the
        memory-mapped vector file.
        """
        plan = self._plan(name)
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._ready(plan)
        after = 0
        if cursor is not None:
            try:
                after = int(cursor["after_rowid"])
            except (TypeError, KeyError, ValueError) as exc:
                raise FerryError(
                    "this resume point was not written by the Chroma file reader",
                    where=str(cursor),
                    fix="restart the collection from the beginning",
                ) from exc
        db = self._conn()
        while True:
            # `+segment_id` keeps SQLite off the (segment_id, embedding_id) index, which
            # would sort the whole segment for every batch; a rowid range scan is O(batch),
            # bounded above by the segment's last rowid.
            rows = db.execute(
                "SELECT id, embedding_id FROM embeddings WHERE +segment_id = ? "
                "AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                (plan.metadata_segment, after, plan.last_rowid, batch_size),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            batch = self._assemble(plan, rows, rowid_range=(rows[0][0], after))
            batch.cursor_after = {"after_rowid": after}
            yield batch
            if len(rows) < batch_size:
                return

    def fetch(self, name: str, ids: list[str]) -> Batch:
        """The records with these ids that exist, in the order of `ids` (duplicates once)."""
        plan = self._plan(name)
        self._ready(plan)
        return self._assemble(plan, self._rows_of(plan, ids), rowid_range=None)

    def warm(self, name: str) -> None:
        """Build what reading needs and a plan did not (the id → label map), ahead of time."""
        self._ready(self._plan(name))

    def _rows_of(self, plan: _Plan, ids: Sequence[str]) -> list[tuple[int, str]]:
        """(rowid, id) of the ids the metadata segment holds, in the order of `ids`."""
        db = self._conn()
        wanted = list(dict.fromkeys(ids))
        found: dict[str, int] = {}
        for i in range(0, len(wanted), _SQL_CHUNK):
            chunk = wanted[i : i + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT id, embedding_id FROM embeddings "
                f"WHERE segment_id = ? AND embedding_id IN ({marks})"
            )
            for rowid, eid in db.execute(sql, (plan.metadata_segment, *chunk)):
                found[eid] = rowid
        return [(found[e], e) for e in wanted if e in found]

    def sample(self, name: str, limit: int) -> Batch | None:
        """Records for a plan to judge (ids, metadata, target warnings), in O(limit).

        The first `limit` items of the pickle's id_to_label (read with the plan) whose rows
        are where a fresh index puts them (row = label - 1, checked against the label stored
        in the row and its deleted flag) and that no newer log entry touches: no id → label
        map is built. Where that does not hold (deletes, replaced rows, an index not yet
        persisted) the first records by rowid, through the whole map, as `read` gives them.
        """
        plan = self._plan(name)
        hnsw = plan.hnsw
        if not plan.ready and hnsw is not None and hnsw.first_labels and len(hnsw.rows):
            touched = {
                rid
                for (rid,) in self._conn().execute(
                    "SELECT id FROM embeddings_queue WHERE seq_id > ? AND topic LIKE ?",
                    (plan.vector_max_seq, plan.topic_like),
                )
            }
            chosen = [(rid, label) for rid, label in hnsw.first_labels if rid not in touched]
            chosen = chosen[:limit]
            labels = np.array([label for _rid, label in chosen], dtype=np.int64)
            rows = labels - 1
            if len(chosen) and rows.min() >= 0 and rows.max() < len(hnsw.rows):
                stored, live = hnsw.row_labels(rows)
                if (stored == labels).all() and live.all():
                    row_of = dict(zip((rid for rid, _ in chosen), rows.tolist(), strict=True))
                    batch = self._sample_rows(plan, row_of)
                    if batch is not None:
                        return batch
            batch = self._sample_by_rows(plan, touched, limit)
            if batch is not None:
                return batch
        return next(self.read(name, None, limit), None)

    def _sample_rows(self, plan: _Plan, row_of: dict[str, int]) -> Batch | None:
        """The records of `row_of` (id → its row in data_level0.bin) the metadata holds."""
        assert plan.hnsw is not None
        found = sorted(self._rows_of(plan, list(row_of)))
        if not found:
            return None
        vectors = plan.hnsw.rows_vectors(
            np.array([row_of[rid] for _, rid in found], dtype=np.int64),
            normalised=plan.metric is Metric.COSINE,
        )
        return self._assemble(plan, found, rowid_range=None, vectors=vectors)

    def _sample_by_rows(self, plan: _Plan, touched: set[str], limit: int) -> Batch | None:
        """The records in the first rows of data_level0.bin, their ids found by label in one
        pass over the pickle that builds no map (`ids_with_labels`): where parallel inserts
        put rows out of label order, the plan still costs O(limit) in memory and a scan of
        the pickle at C speed instead of the whole id → label and label → row maps."""
        hnsw = plan.hnsw
        if hnsw is None or hnsw.pickle_file is None:
            return None
        rows = np.arange(min(len(hnsw.rows), SAMPLE_ROWS_READ * max(limit, 1)), dtype=np.int64)
        if not len(rows):
            return None
        stored, live = hnsw.row_labels(rows)
        try:
            ids = ids_with_labels(self._scannable(hnsw.pickle_file), stored[live])
        except (KeyError, NotFast, ValueError, OSError, pickle.UnpicklingError):
            return None  # a pickle the fast walk does not know: the exact path decides
        row_of: dict[str, int] = {}
        for row, label in zip(rows[live].tolist(), stored[live].tolist(), strict=True):
            rid = ids.get(label)
            if rid is not None and rid not in touched and rid not in row_of:
                row_of[rid] = row
                if len(row_of) >= limit:
                    break
        return self._sample_rows(plan, row_of) if row_of else None

    def _assemble(
        self,
        plan: _Plan,
        rows: list[tuple[int, str]],
        rowid_range: tuple[int, int] | None,
        vectors: np.ndarray | None = None,
    ) -> Batch:
        """Metadata and documents of `rows` from SQLite; vectors from the index and the log
        (or `vectors`, already read for these rows)."""
        dimension = plan.dimension or 0
        if not rows:
            return Batch.empty(dimension)
        ids = [r[1] for r in rows]
        position = {rowid: k for k, (rowid, _) in enumerate(rows)}
        metadatas: list[Metadata | None] = [None] * len(rows)
        documents: list[str | None] = [None] * len(rows)

        def selected(table: str, order: str) -> list[tuple[Any, ...]]:
            columns = "id, key, string_value, int_value, float_value, bool_value"
            db = self._conn()
            if rowid_range is not None:
                # Rowids are contiguous per batch; rows of other segments in the range are
                # dropped below by `position`.
                sql = f"SELECT {columns} FROM {table} WHERE id BETWEEN ? AND ? ORDER BY {order}"
                return db.execute(sql, rowid_range).fetchall()
            out: list[tuple[Any, ...]] = []
            rowids = sorted(position)
            for i in range(0, len(rowids), _SQL_CHUNK):
                chunk = rowids[i : i + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {columns} FROM {table} WHERE id IN ({marks}) ORDER BY {order}"
                out.extend(db.execute(sql, chunk).fetchall())
            return out

        for rowid, key, s, i, f, b in selected("embedding_metadata", "id"):
            k = position.get(rowid)
            if k is None:
                continue
            if key == DOCUMENT_KEY:
                documents[k] = s
                continue
            if key.startswith("chroma:"):
                continue  # chroma's own keys (uri...), never part of the user's metadata
            if s is None and i is None and f is None and b is None:
                continue  # all typed columns NULL: chromadb's own reader omits the key
            md = metadatas[k]
            if md is None:
                md = metadatas[k] = {}
            md[key] = _value(s, i, f, b)
        if self._has_arrays():
            # Element order is insertion order, i.e. rowid order within (id, key).
            for rowid, key, s, i, f, b in selected("embedding_metadata_array", "id, key, rowid"):
                k = position.get(rowid)
                if k is None:
                    continue
                md = metadatas[k]
                if md is None:
                    md = metadatas[k] = {}
                values = md.get(key)
                if not isinstance(values, list):
                    values = md[key] = []
                values.append(_value(s, i, f, b))

        if vectors is not None:
            return Batch(ids=ids, vectors=vectors, metadatas=metadatas, documents=documents)
        vectors = np.empty((len(ids), dimension), dtype=np.float32)
        from_hnsw = [k for k, rid in enumerate(ids) if rid not in plan.overlay]
        if from_hnsw:
            if plan.hnsw is None:
                raise FerryError(
                    f"no vector for {ids[from_hnsw[0]]!r}",
                    where=f"{self.path}:{plan.name}",
                    fix=_fallback_fix(),
                )
            try:
                vectors[from_hnsw] = plan.hnsw.vectors(
                    [ids[k] for k in from_hnsw], normalised=plan.metric is Metric.COSINE
                )
            except KeyError as exc:
                raise FerryError(
                    f"no vector for {exc.args[0]!r}",
                    where=f"{self.path}:{plan.name}",
                    fix=_fallback_fix(),
                ) from exc
        for k, rid in enumerate(ids):
            if rid in plan.overlay:
                vec = plan.overlay[rid]
                if vec is None or vec.shape[0] != dimension:
                    raise FerryError(
                        f"log and metadata disagree about {rid!r}",
                        where=f"{self.path}:{plan.name}",
                        fix=_fallback_fix(),
                    )
                vectors[k] = vec
        return Batch(ids=ids, vectors=vectors, metadatas=metadatas, documents=documents)

    def close(self) -> None:
        """Drop the memory maps, the SQLite handles and the temporary label maps."""
        for labels in self._label_maps:
            labels.close()
        self._label_maps.clear()
        self._plans.clear()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        if self._db is not None:
            self._db.close()
            self._db = None
        self._checked = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
