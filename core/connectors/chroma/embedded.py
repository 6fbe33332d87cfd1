"""`chroma+file:///dir` — a user's embedded Chroma directory, strictly read-only.

Opening a directory with `chromadb.PersistentClient` writes to it (and would apply any
pending schema migrations in place), so Ferry never does that to the user's data:

* the schema is inspected first through a read-only SQLite connection (chroma/schema.py);
* records are read straight from the files (chroma/files.py, ~4× faster than the API);
* anything the file reader does not handle — an unrecognised layout, or ANN queries for
  validation — goes through the API on a *working copy* of the directory. Pending schema
  migrations are applied only to such a copy (automatically, and said so: `copy_note`).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.backup_store import BackupResult, Progress
from ferry.core.connectors.base import (
    SAMPLE_RECORDS,
    PingResult,
    QueryHits,
    SourceConnector,
    batches_in_thread,
)
from ferry.core.connectors.chroma.api import ChromaApiConnector
from ferry.core.connectors.traits import CHROMA
from ferry.core.errors import FerryError
from ferry.core.model import Batch, CollectionInfo, Cursor
from ferry.core.uri import ConnectionSpec


def open_chroma_directory(spec: ConnectionSpec) -> SourceConnector:
    """The reader for this directory's layout: Chroma ≥ 0.4 (chroma.sqlite3 + segment
    folders) here, Chroma ≤ 0.3 (DuckDB's two Parquet files) in chroma/legacy.py."""
    from ferry.core.connectors.chroma.legacy import ChromaLegacyConnector, is_legacy_directory

    if spec.path is not None and is_legacy_directory(spec.path):
        return ChromaLegacyConnector(spec)
    return ChromaEmbeddedConnector(spec)


def work_copy_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ferry")) / "chroma-copies"


class ChromaEmbeddedConnector(SourceConnector):
    """Never a target (a SourceConnector only): Ferry does not write into a user's directory."""

    kind = "chroma-embedded"
    traits = CHROMA

    def __init__(self, spec: ConnectionSpec) -> None:
        assert spec.path is not None
        self.spec = spec
        self.uri = spec.uri
        self.path = spec.path
        self._directory: Any = None
        self._schema: Any = None
        self._copy: ChromaApiConnector | None = None
        self.copy_note: str | None = None
        self.query_note: str | None = None
        # Whether the fast file reader reads this layout: None until checked on the live
        # files; ?api=1 forces the API reader (on a copy).
        self._fast: bool | None = False if spec.flag("api") else None
        self._in_place: Any = None  # chroma/peek.py InPlace, while only planning
        self.cut: Any = (
            None  # core.connectors.chroma.cut.Cut: what every read of this connector sees
        )

    # -- the two readers --------------------------------------------------------------------
    def _check_exists(self) -> None:
        if not (self.path / "chroma.sqlite3").exists():
            raise FerryError(
                "not a Chroma directory (no chroma.sqlite3)",
                where=str(self.path),
                fix="point chroma+file:// at the folder that holds chroma.sqlite3 (or, for "
                "Chroma 0.3, chroma-collections.parquet)",
            )

    def schema(self) -> Any:
        if self._schema is None:
            from ferry.core.connectors.chroma.schema import inspect_schema

            self._check_exists()
            self._schema = inspect_schema(self.path)
        return self._schema

    def _recognised(self) -> bool:
        """Whether the fast file reader reads this layout (checked once, on the live files)."""
        if self._fast is None:
            from ferry.core.connectors.chroma.files import ChromaDirectory

            self._check_exists()
            try:
                with ChromaDirectory(self.path) as live:
                    self._fast = live.recognised()
            except FerryError:
                self._fast = False
        return bool(self._fast)

    def directory(self) -> Any:
        """The fast file reader (of a consistent cut), or None when this layout needs the API
        reader."""
        if not self._recognised():
            return None
        if self._directory is None:
            self._directory = self._read_cut()
        return self._directory

    def _planned(self, call: Callable[[Any], Any]) -> tuple[str, Any]:
        """(how it was read, `call(reader)`) for a plan's read: "in place" when this connector
        only plans and the live files held still (chroma/peek.py), else "cut"; ("api", None)
        when the layout needs the API reader."""
        if self.plan_only and self._directory is None and self._recognised():
            from ferry.core.connectors.chroma.peek import MOVED, InPlace

            if self._in_place is None:
                self._in_place = InPlace(self.path)
            result = self._in_place.read(call)
            if result is not MOVED:
                return "in place", result
        directory = self.directory()
        if directory is None:
            return "api", None
        return "cut", call(directory)

    async def new_cut(self) -> None:
        """Forget the current cut: the next read takes a newer one (catch-up, follow)."""
        await asyncio.to_thread(self._close_in_place)
        if self._directory is not None:
            await asyncio.to_thread(self._directory.close)
            self._directory = None
        if self.cut is not None:
            await asyncio.to_thread(self.cut.remove)
            self.cut = None

    def _read_cut(self) -> Any:
        """A consistent cut of the directory (core/connectors/chroma/cut.py), checked by planning every
        collection on it: an application may be writing to the source meanwhile."""
        from ferry.core.connectors.chroma.cut import take_cut
        from ferry.core.connectors.chroma.files import ChromaDirectory

        readers: list[Any] = []

        def check(copy: Path) -> None:
            for reader in readers:
                reader.close()
            readers.clear()
            readers.append(ChromaDirectory(copy, cut=True))
            readers[0].check_collections()

        try:
            self.cut = take_cut(self.path, check)
        except FerryError as exc:
            for reader in readers:
                reader.close()
            raise self._as_source(exc) from None
        return _ShownAs(readers[0], self.cut.path, self.path)

    def _as_source(self, exc: FerryError) -> FerryError:
        """An error read from the cut names the user's directory, not Ferry's private copy."""
        if self.cut is None or str(self.cut.path) not in exc.where:
            return exc
        where = exc.where.replace(str(self.cut.path), str(self.path))
        return type(exc)(exc.what, where=where, fix=exc.fix)

    async def working_copy(self) -> ChromaApiConnector:
        """The API on a private copy of the directory, made once per source state."""
        if self._copy is None:
            schema = self.schema()
            if schema.newer:
                raise FerryError(
                    f"this Chroma directory was written by a newer chromadb ({schema.summary})",
                    where=str(self.path),
                    fix=f"upgrade chromadb (installed: {schema.chromadb_version}) and retry",
                )
            # One policy: the copy is private, so the installed chromadb may upgrade it (the
            # source never is); the plan says so.
            self.copy_note = (
                f"read through chromadb {schema.chromadb_version} on a private copy"
                + (", upgraded from an older schema" if schema.pending else "")
                + "; the source is untouched"
            )
            target = await asyncio.to_thread(self._make_copy)

            def open_copy() -> Any:
                import chromadb
                from chromadb.config import Settings

                return chromadb.PersistentClient(
                    str(target), settings=Settings(anonymized_telemetry=False)
                )

            self._copy = ChromaApiConnector(self.uri, open_copy, kind="chroma-embedded-copy")
        return self._copy

    def _make_copy(self) -> Path:
        from ferry.core.connectors.chroma.cut import copy_file, take_cut

        stamp = hashlib.sha256()
        for file in sorted(self.path.rglob("*")):
            if file.is_file():
                info = file.stat()
                stamp.update(
                    f"{file.relative_to(self.path)}:{info.st_size}:{info.st_mtime_ns}".encode()
                )
        key = hashlib.sha256(str(self.path).encode()).hexdigest()[:16]
        target = work_copy_root() / f"{key}-{stamp.hexdigest()[:12]}"
        if not target.exists():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            cut = take_cut(self.path)  # never a copy torn by a write of the application
            try:
                shutil.copytree(
                    cut.path, partial, copy_function=lambda a, b: copy_file(Path(a), Path(b))
                )
            finally:
                cut.remove()
            partial.rename(target)
        return target

    # -- protocol ---------------------------------------------------------------------------
    async def ping(self) -> PingResult:
        start = time.perf_counter()
        try:
            schema = await asyncio.to_thread(self.schema)
            names = await self.list_collections()
        except FerryError as exc:
            return PingResult(ok=False, detail=exc.one_line())
        import chromadb

        return PingResult(
            ok=True,
            version=f"on-disk schema: {schema.summary}; chromadb {chromadb.__version__} installed",
            latency_ms=(time.perf_counter() - start) * 1000,
            auth="n/a",
            detail=f"{len(names)} collection(s), read-only",
        )

    async def store_facts(self) -> dict[str, Any]:
        """The on-disk schema state (which chromadb migrations are applied, pending, newer)."""
        state = await asyncio.to_thread(self.schema)
        return {
            "schema": {
                "summary": state.summary,
                "pending": [list(m) for m in state.pending],
                "newer": [list(m) for m in state.newer],
                "applied": [list(m) for m in state.applied],
            }
        }

    async def list_collections(self) -> list[str]:
        how, names = await asyncio.to_thread(self._planned, lambda r: r.list_collections())
        if how != "api":
            return list(names)
        return await (await self.working_copy()).list_collections()

    async def describe(self, name: str) -> CollectionInfo:
        how, info = await asyncio.to_thread(self._planned, lambda r: r.describe(name))
        if how != "api":
            info.facts["reader"] = "files"
            if how == "in place":
                from ferry.core.connectors.chroma.peek import IN_PLACE_NOTE

                info.facts["cut"] = IN_PLACE_NOTE
            elif self.cut is not None:
                info.facts["cut"] = self.cut.describe()
                info.facts["cut_seq_id"] = info.facts.get("metadata_max_seq_id")
                if self.cut.tries > 1:
                    info.facts.setdefault("warnings", []).append(self.cut.describe())
                if info.facts.get("log_after_cut"):
                    info.facts.setdefault("warnings", []).append(
                        f"{info.facts['log_after_cut']} write(s) chroma logged but had not "
                        "applied yet are after the cut: the next catch-up (the same command "
                        "again, or --follow) copies them once chroma has applied them"
                    )
        else:
            info = await (await self.working_copy()).describe(name)
            info.facts["reader"] = "api-copy"
            info.facts["copy_note"] = self.copy_note
            # chromadb's API reports the raw configuration, not the space it searches with
            from ferry.core.connectors.chroma.space import settings_for_directory

            settings = await asyncio.to_thread(settings_for_directory, self.path, name)
            info.metric = settings.metric
            info.facts["hnsw"] = settings.to_json()
            info.facts["space_notes"] = list(settings.notes)
        schema = await asyncio.to_thread(self.schema)
        info.facts["schema"] = schema.summary
        info.facts["schema_pending"] = len(schema.pending)
        return info

    async def count(self, name: str) -> int:
        return (await self.describe(name)).count

    async def read(self, name: str, cursor: Cursor, batch_size: int) -> AsyncIterator[Batch]:
        directory = await asyncio.to_thread(self.directory)
        if directory is None:
            async for batch in (await self.working_copy()).read(name, cursor, batch_size):
                yield batch
            return
        async for batch in batches_in_thread(directory.read(name, cursor, batch_size)):
            yield batch

    async def warm(self, name: str) -> None:
        """The file reader's id → label map, built while the target prepares."""
        directory = await asyncio.to_thread(self.directory)
        if directory is not None:
            await asyncio.to_thread(directory.warm, name)

    async def sample(self, name: str, limit: int = SAMPLE_RECORDS) -> Batch | None:
        """The file reader's sample costs O(limit), not a pass over the collection."""
        how, batch = await asyncio.to_thread(self._planned, lambda r: r.sample(name, limit))
        if how == "api":
            return await super().sample(name, limit)
        return batch  # type: ignore[no-any-return]

    async def fetch(self, name: str, ids: list[str]) -> Batch:
        directory = await asyncio.to_thread(self.directory)
        if directory is not None:
            return await asyncio.to_thread(directory.fetch, name, ids)
        return await (await self.working_copy()).fetch(name, ids)

    async def query(self, name: str, vectors: np.ndarray, k: int) -> QueryHits:
        """Chroma's own answer (API on a private copy); exact search where chromadb cannot."""
        try:
            return await (await self.working_copy()).query(name, vectors, k)
        except FerryError as exc:
            if await asyncio.to_thread(self.directory) is None:
                raise
            self.query_note = (
                f"source queries answered by exact search: chromadb could not query a copy "
                f"({exc.what[:120]})"
            )
        from ferry.core.connectors.exact_search import exact_query

        metric = (await self.describe(name)).metric
        return await exact_query(self.read(name, None, 1000), vectors, metric, k)

    async def backup(self, name: str, to: Path, progress: Progress | None = None) -> BackupResult:
        """A verified copy of the collection (chroma/backup.py); the source is never written."""
        from ferry.core.connectors.chroma.backup import backup_chroma_directory

        return await asyncio.to_thread(
            backup_chroma_directory, self.path, self.uri, name, Path(to), progress
        )

    def _close_in_place(self) -> None:
        if self._in_place is not None:
            self._in_place.close()
            self._in_place = None

    async def close(self) -> None:
        await self.new_cut()  # drops the in-place reader, the cut's reader and the cut
        if self._copy is not None:
            await self._copy.close()


class _ShownAs:
    """The file reader of a cut, whose errors name the source directory (not the copy)."""

    def __init__(self, reader: Any, copy: Path, source: Path) -> None:
        self.reader = reader
        self.copy, self.source = str(copy), str(source)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.reader, name)
        if not callable(attr):
            return attr
        if name == "read":
            return lambda *a, **k: self._rows(attr(*a, **k))

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except FerryError as exc:
                raise self._renamed(exc) from None

        return call

    def _rows(self, batches: Any) -> Any:
        try:
            yield from batches
        except FerryError as exc:
            raise self._renamed(exc) from None

    def _renamed(self, exc: FerryError) -> FerryError:
        if self.copy not in exc.where:
            return exc
        return type(exc)(exc.what, exc.where.replace(self.copy, self.source), exc.fix)
