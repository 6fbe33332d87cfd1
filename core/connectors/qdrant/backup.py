"""Backups of Qdrant collections: an Edge shard, a qdrant-client local collection, a server
snapshot. Each goes through `ferry.core.backup_store` (temp name → verify → rename, manifest).

- Qdrant Edge: a shard is open in one process only, and Ferry's own worker may hold it. So
  the connector flushes through its worker (every acknowledged write reaches the files),
  fingerprints the shard, copies its files (holes kept: Edge preallocates 32 MiB files),
  fingerprints again (a difference means another writer: copy again, then refuse), and
  verifies by loading the copy in a worker of its own and counting it. Loading rewrites a
  few of the copy's files (Edge recovers its trackers), so the manifest hashes the copy
  after that load. A later backup reuses this one when the shard's files are unchanged,
  byte for byte (a flush or reopen touches mtimes, not bytes).
- qdrant-client local mode keeps each collection's points in `collection/<name>/storage.sqlite`
  (committed on every write): copied with SQLite's online backup API from a `mode=ro`
  connection, with a `meta.json` that lists only this collection. Verified by row count and
  by opening the copy with qdrant-client.
- A server: `create_snapshot`, then the snapshot file downloaded over the REST API and
  checked against the checksum the server gives. Never reused (a server has no cheap
  fingerprint of a collection).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ferry.core.backup_store import (
    DATA,
    BackupResult,
    BackupStore,
    Progress,
    files_under,
    fingerprint,
    partial_backup,
    public_uri,
    source_contents,
    sqlite_readonly,
    total_size,
)
from ferry.core.errors import FerryError, TransientError, classify, in_words
from ferry.core.retry import RetryPolicy

ATTEMPTS = 2


# -- Qdrant Edge -------------------------------------------------------------------------------
def edge_shard_backup(
    shard: Path,
    collection: str,
    uri: str,
    to: Path,
    expected_count: int,
    progress: Progress | None = None,
) -> BackupResult:
    """Copy a flushed shard (the caller flushed it and counted it: `expected_count`)."""
    identity = {"kind": "qdrant-edge", "location": str(shard.resolve()), "collection": collection}
    store = BackupStore(to)
    for _attempt in range(ATTEMPTS):
        rels = files_under(shard)
        before = fingerprint(shard, rels)
        reused = store.find_reusable(
            identity, before, lambda rels=rels: source_contents(shard, rels), progress
        )
        if reused is not None:
            return reused
        with partial_backup(store, collection, total_size(shard, rels), progress) as partial:
            for rel in rels:
                partial.copy_file(shard / rel, Path(collection) / rel)
            if fingerprint(shard, files_under(shard)) != before:
                partial.abort()
                continue
            copied = _edge_count(partial.data, collection)
            if copied != expected_count:
                raise FerryError(
                    f"the backup holds {copied} points, the collection {expected_count}",
                    where=str(partial.path),
                    fix="back up again while nothing writes to the collection",
                )
            # The manifest's source identity is the shard's bytes as read (keyed by the
            # shard's own relative paths, so a later `source_contents` compares equal).
            partial.source_files = {
                str(Path(k).relative_to(collection)): v for k, v in partial.source_files.items()
            }
            return partial.commit(
                {
                    "kind": "qdrant-edge",
                    "identity": identity,
                    "collection": collection,
                    "source_uri": public_uri(uri),
                    "source_fingerprint": before,
                    "counts": {"points": copied},
                    "notes": ["verified by loading the copy with Qdrant Edge"],
                }
            )
    raise FerryError(
        f"the shard of {collection!r} changed while it was being copied",
        where=str(shard),
        fix="another process is writing to it: wait for it (ferry status), then back up again",
    )


def _edge_count(root: Path, collection: str) -> int:
    """Load the copied shard in a worker process of its own and count its points."""
    from ferry.core.connectors.qdrant.edge_worker import EdgeProcess

    worker = EdgeProcess(root)
    try:
        return int(worker.call("count", collection))
    except FerryError as exc:
        raise FerryError(
            f"the backup of {collection!r} cannot be loaded: {exc.what}", where=str(root)
        ) from exc
    finally:
        worker.close()


# -- qdrant-client local mode ------------------------------------------------------------------
def local_collection_backup(
    root: Path, collection: str, uri: str, to: Path, progress: Progress | None = None
) -> BackupResult:
    storage_rel = Path("collection") / collection / "storage.sqlite"
    storage = root / storage_rel
    meta_file = root / "meta.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FerryError(
            "not a qdrant-client local directory (no readable meta.json)", where=str(root)
        ) from exc
    if collection not in (meta.get("collections") or {}) or not storage.is_file():
        raise FerryError(
            f"no collection {collection!r}",
            where=uri,
            fix=f"choose one of: {', '.join(sorted(meta.get('collections') or {})) or '(none)'}",
        )
    identity = {"kind": "qdrant-local", "location": str(root.resolve()), "collection": collection}
    rels = [Path("meta.json"), storage_rel]
    store = BackupStore(to)
    for _attempt in range(ATTEMPTS):
        before = fingerprint(root, rels)
        reused = store.find_reusable(identity, before, None, progress)
        if reused is not None:
            return reused
        with partial_backup(store, collection, total_size(root, rels), progress) as partial:
            partial.copy_sqlite(storage, storage_rel)
            expected = _points(storage)
            if fingerprint(root, rels) != before:
                partial.abort()
                continue
            partial.write_file("meta.json", json.dumps(_only(meta, collection)).encode())
            copied = _points(partial.data / storage_rel)
            loaded = _local_count(partial.data, collection)
            if not copied == loaded == expected:
                raise FerryError(
                    f"the backup holds {copied} points ({loaded} loaded), the collection "
                    f"{expected}",
                    where=str(partial.path),
                )
            return partial.commit(
                {
                    "kind": "qdrant-local",
                    "identity": identity,
                    "collection": collection,
                    "source_uri": public_uri(uri),
                    "source_fingerprint": before,
                    "counts": {"points": copied},
                    "notes": ["verified by row count and by opening the copy with qdrant-client"],
                }
            )
    raise FerryError(
        f"{collection!r} changed while it was being copied",
        where=str(root),
        fix="stop the application writing to it, then back up again",
    )


def _only(meta: dict[str, Any], collection: str) -> dict[str, Any]:
    """meta.json with this collection alone (and no aliases): a local dir of its own."""
    kept: dict[str, Any] = {}
    for key, value in meta.items():
        if key == "aliases":
            kept[key] = {}  # an alias in a backup would point the app at it
        elif isinstance(value, dict):  # collections, text_indexes, …: keyed by collection
            kept[key] = {collection: value[collection]} if collection in value else {}
        else:
            kept[key] = value
    return kept


def _points(storage: Path) -> int:
    conn = sqlite_readonly(storage)
    try:
        return int(conn.execute("SELECT count(*) FROM points").fetchone()[0])
    finally:
        conn.close()


def _local_count(root: Path, collection: str) -> int:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(root))
    try:
        return int(client.count(collection, exact=True).count)
    finally:
        client.close()
        (root / ".lock").unlink(missing_ok=True)  # the client's lock file is not data


# -- a Qdrant server ---------------------------------------------------------------------------
async def server_snapshot_backup(
    connector: Any, collection: str, to: Path, progress: Progress | None = None
) -> BackupResult:
    """Create a snapshot on the server and download it into a backup."""
    import httpx

    spec = connector.spec
    points = await connector.count(collection)
    description = await connector._call(
        f"snapshot {collection}",
        connector.client.create_snapshot(collection_name=collection, wait=True),
    )
    if description is None:
        raise FerryError("the server made no snapshot", where=connector.uri)
    name = description.name
    scheme = "https" if spec.transport == "https" else "http"
    url = f"{scheme}://{spec.host}:{spec.port}/collections/{collection}/snapshots/{name}"
    headers = {}
    key = spec.api_key()
    if key:
        headers["api-key"] = key
    store = BackupStore(to)
    size = int(description.size or 0)
    with partial_backup(store, collection, size, progress) as partial:
        target = partial.data / name
        timeout = float(spec.params.get("timeout", "60"))
        digest = hashlib.sha256()

        async def download() -> None:
            """One attempt, from the first byte (a retry rewrites the file)."""
            nonlocal digest
            digest = hashlib.sha256()
            written = 0
            try:
                async with (
                    httpx.AsyncClient(timeout=timeout) as http,
                    http.stream("GET", url, headers=headers) as answer,
                ):
                    if answer.status_code != 200:
                        await answer.aread()
                        raise classify(
                            httpx.HTTPStatusError(
                                "snapshot download", request=answer.request, response=answer
                            ),
                            "the snapshot download",
                            connector.uri,
                            "Qdrant",
                        )
                    with target.open("wb") as handle:
                        async for chunk in answer.aiter_bytes(1 << 20):
                            digest.update(chunk)
                            handle.write(chunk)
                            written += len(chunk)
                            partial.advance(len(chunk))
            except httpx.HTTPError as exc:
                partial.done_bytes -= written  # the next attempt starts from 0
                raise TransientError(
                    f"the snapshot download failed: {in_words(exc)}", where=connector.uri
                ) from exc

        await RetryPolicy(max_attempts=3, give_up_after=max(timeout, 30.0)).call(download)
        notes = [f"server snapshot {name}; restore with Qdrant's snapshot recovery"]
        checksum = getattr(description, "checksum", None)
        if checksum and checksum != digest.hexdigest():
            raise FerryError(
                "the downloaded snapshot does not match the server's checksum",
                where=connector.uri,
                fix="back up again",
            )
        if size and target.stat().st_size != size:
            raise FerryError("the downloaded snapshot is truncated", where=connector.uri)
        after = await connector.count(collection)
        if after != points:
            notes.append(f"the collection changed during the snapshot ({points} → {after})")
        return partial.commit(
            {
                "kind": "qdrant-server",
                "identity": {
                    "kind": "qdrant-server",
                    "location": public_uri(connector.uri),
                    "collection": collection,
                },
                "collection": collection,
                "source_uri": public_uri(connector.uri),
                "source_fingerprint": None,
                "counts": {"points": points},
                "server_snapshot": {"name": name, "size": size, "checksum": checksum},
                "notes": notes,
            },
            name_time=time.time(),
        )


__all__ = [
    "DATA",
    "edge_shard_backup",
    "local_collection_backup",
    "server_snapshot_backup",
]
