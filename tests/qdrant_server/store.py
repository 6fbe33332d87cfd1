"""Collections on Qdrant Edge (one shard each), aliases, snapshots and the optimizer.

Every shard call runs under its collection's lock in a thread, so the server keeps answering.
Qdrant Edge's `optimize()` holds the GIL while it builds the HNSW graph, so it runs in a
process of its own (`optimize.py`) on the shard's files while the collection answers `yellow`
from the state recorded when it started; requests that need the shard wait for it, as writes
wait behind Qdrant's optimizer when its update queue is full.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import tarfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from tests.qdrant_server.shard_config import (
    DEFAULT_EF_CONSTRUCT,
    DEFAULT_FULL_SCAN_KB,
    DEFAULT_INDEXING_KB,
    DEFAULT_M,
    edge_config,
)

OPTIMIZER_START_SECONDS = 0.5  # after an update_collection, before the optimizer starts


class NotFound(LookupError):
    """Answered 404 in Qdrant's words."""


class Conflict(ValueError):
    """Answered 409 in Qdrant's words."""


@dataclass
class Collection:
    name: str
    root: Path  # holds settings.json and shard/
    settings: dict[str, Any]
    shard: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    optimizing: bool = False
    last_info: dict[str, Any] = field(default_factory=dict)
    payload_schema: dict[str, str] = field(default_factory=dict)
    optimizer_error: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def shard_dir(self) -> Path:
        return self.root / "shard"

    def save(self) -> None:
        (self.root / "settings.json").write_text(json.dumps(self.settings))

    @property
    def vector_bytes(self) -> int:
        vectors = self.settings["vectors"]
        sizes = [vectors["size"]] if "size" in vectors else [v["size"] for v in vectors.values()]
        return 4 * sum(sizes)

    def snapshot_info(self) -> dict[str, Any]:
        """The shard's counts now (call with the lock held)."""
        info = self.shard.info()
        self.last_info = {
            "points": int(info.points_count),
            "indexed": int(info.indexed_vectors_count),
            "segments": int(info.segments_count),
        }
        self.payload_schema = {
            key: str(value.data_type).rsplit(".", 1)[-1].lower()
            for key, value in info.payload_schema.items()
        }
        return self.last_info

    def needs_optimizing(self) -> bool:
        """Qdrant indexes once unindexed vectors pass the threshold, and never with m=0."""
        if not self.settings["m"]:
            return False
        info = self.last_info
        unindexed = max(0, info.get("points", 0) - info.get("indexed", 0))
        return unindexed * self.vector_bytes >= self.settings["indexing_kb"] * 1024


class Store:
    def __init__(self, root: Path, indexing_kb: int = DEFAULT_INDEXING_KB) -> None:
        self.root = root
        self.indexing_kb = indexing_kb
        # A test knob: the optimizer takes at least this long (a big collection's index
        # phase on small test data, so yellow can be watched by a client polling each second).
        self.optimizer_min_seconds = 0.0
        (root / "collections").mkdir(parents=True, exist_ok=True)
        (root / "snapshots").mkdir(parents=True, exist_ok=True)
        self.collections: dict[str, Collection] = {}
        self.aliases: dict[str, str] = {}
        self._load()

    # -- persistence --------------------------------------------------------------------------
    def _load(self) -> None:
        aliases = self.root / "aliases.json"
        if aliases.exists():
            self.aliases = json.loads(aliases.read_text())
        for folder in sorted((self.root / "collections").iterdir()):
            settings_file = folder / "settings.json"
            if not settings_file.exists():
                continue
            settings = json.loads(settings_file.read_text())
            collection = Collection(settings["name"], folder, settings)
            collection.shard = qe.EdgeShard.load(str(collection.shard_dir))
            collection.snapshot_info()
            self.collections[collection.name] = collection

    def _save_aliases(self) -> None:
        (self.root / "aliases.json").write_text(json.dumps(self.aliases))

    def close(self) -> None:
        for collection in self.collections.values():
            if collection.shard is not None:
                collection.shard.flush()
                collection.shard.close()

    # -- collections --------------------------------------------------------------------------
    def resolve(self, name: str) -> Collection:
        real = self.aliases.get(name, name)
        found = self.collections.get(real)
        if found is None:
            raise NotFound(f"Not found: Collection `{name}` doesn't exist!")
        return found

    def create(self, name: str, vectors: dict[str, Any], hnsw: Any, optimizers: Any) -> None:
        if name in self.collections:
            raise Conflict(f"Wrong input: Collection `{name}` already exists!")
        if name in self.aliases:
            raise Conflict(f"Wrong input: Alias with name `{name}` already exists!")
        settings = {
            "name": name,
            "vectors": vectors,
            "m": DEFAULT_M if hnsw is None or hnsw.m is None else hnsw.m,
            "ef_construct": DEFAULT_EF_CONSTRUCT
            if hnsw is None or hnsw.ef_construct is None
            else hnsw.ef_construct,
            "full_scan_threshold": DEFAULT_FULL_SCAN_KB
            if hnsw is None or hnsw.full_scan_threshold is None
            else hnsw.full_scan_threshold,
            "indexing_kb": self.indexing_kb
            if optimizers is None or optimizers.indexing_threshold is None
            else optimizers.indexing_threshold,
            "created_at": datetime.now(UTC).isoformat(),
        }
        folder = self.root / "collections" / hashlib.sha256(name.encode()).hexdigest()[:16]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        collection = Collection(name, folder, settings)
        collection.shard = qe.EdgeShard.create(str(collection.shard_dir), edge_config(settings))
        collection.save()
        collection.snapshot_info()
        self.collections[name] = collection

    async def delete(self, name: str) -> bool:
        collection = self.collections.pop(name, None)
        if collection is None:
            return False
        self.aliases = {a: c for a, c in self.aliases.items() if c != name}
        self._save_aliases()
        async with collection.lock:
            if collection.shard is not None:
                collection.shard.close()
                collection.shard = None
            shutil.rmtree(collection.root, ignore_errors=True)
            shutil.rmtree(self.root / "snapshots" / collection.root.name, ignore_errors=True)
        return True

    async def run(self, collection: Collection, fn: Any, *args: Any) -> Any:
        """A shard call under the collection's lock, in a thread."""
        async with collection.lock:
            if collection.shard is None:
                raise NotFound(f"Not found: Collection `{collection.name}` doesn't exist!")
            return await asyncio.to_thread(fn, collection.shard, *args)

    async def after_update(self, collection: Collection) -> None:
        """Record the new counts, and start the optimizer when Qdrant's would start."""
        await self.run(collection, lambda shard: collection.snapshot_info())
        if collection.needs_optimizing():
            self.start_optimizer(collection)

    async def reconfigure(self, collection: Collection, changes: dict[str, Any]) -> None:
        """New HNSW/optimizer settings: written to the shard's config when the optimizer
        reopens it (Edge checks and overwrites its config on load), then rebuilt."""
        changed = {k: v for k, v in changes.items() if v is not None}
        if not changed:
            return
        async with collection.lock:
            collection.settings.update(changed)
            collection.save()
        # Not at once: a client must not take the green it may read right after an update
        # for "indexed" (Qdrant's optimizer, too, starts from its own worker).
        loop = asyncio.get_running_loop()
        loop.call_later(OPTIMIZER_START_SECONDS, self.start_optimizer, collection, True)

    def start_optimizer(self, collection: Collection, rebuild: bool = False) -> None:
        if collection.optimizing:
            collection.settings["rerun"] = True
            return
        collection.optimizing = True  # yellow from now: the answer to this request says so
        collection.task = asyncio.get_running_loop().create_task(
            self._optimize(collection, rebuild)
        )

    async def _optimize(self, collection: Collection, rebuild: bool) -> None:
        try:
            while True:
                collection.settings.pop("rerun", None)
                async with collection.lock:
                    if collection.shard is None:
                        return
                    await asyncio.to_thread(_close, collection.shard)
                    collection.shard = None
                    began = time.monotonic()
                    try:
                        child = await asyncio.create_subprocess_exec(
                            sys.executable,
                            "-m",
                            "tests.qdrant_server.optimize",
                            str(collection.shard_dir),
                            json.dumps(collection.settings),
                            stdout=asyncio.subprocess.DEVNULL,
                            stderr=asyncio.subprocess.PIPE,
                        )
                        _out, err = await child.communicate()
                        collection.optimizer_error = (
                            err.decode(errors="replace")[-300:] if child.returncode else None
                        )
                        rest = self.optimizer_min_seconds - (time.monotonic() - began)
                        if rest > 0:
                            await asyncio.sleep(rest)
                    finally:
                        collection.shard = await asyncio.to_thread(
                            qe.EdgeShard.load, str(collection.shard_dir)
                        )
                        collection.snapshot_info()
                if not collection.settings.get("rerun"):
                    return
        finally:
            collection.optimizing = False

    # -- aliases ------------------------------------------------------------------------------
    def change_aliases(self, actions: list[Any]) -> None:
        """All or nothing, as Qdrant applies one request's list."""
        from qdrant_client.http import models

        aliases = dict(self.aliases)
        for action in actions:
            if isinstance(action, models.CreateAliasOperation):
                target = action.create_alias.collection_name
                if target not in self.collections:
                    raise NotFound(f"Not found: Collection `{target}` doesn't exist!")
                if action.create_alias.alias_name in self.collections:
                    raise Conflict(
                        f"Wrong input: Collection `{action.create_alias.alias_name}` "
                        "already exists!"
                    )
                aliases[action.create_alias.alias_name] = target
            elif isinstance(action, models.DeleteAliasOperation):
                if aliases.pop(action.delete_alias.alias_name, None) is None:
                    raise NotFound(
                        f"Not found: Alias {action.delete_alias.alias_name} does not exists!"
                    )
            elif isinstance(action, models.RenameAliasOperation):
                old = action.rename_alias.old_alias_name
                if old not in aliases:
                    raise NotFound(f"Not found: Alias {old} does not exists!")
                aliases[action.rename_alias.new_alias_name] = aliases.pop(old)
        self.aliases = aliases
        self._save_aliases()

    # -- snapshots ----------------------------------------------------------------------------
    def snapshot_dir(self, collection: Collection) -> Path:
        folder = self.root / "snapshots" / collection.root.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def create_snapshot(self, collection: Collection) -> dict[str, Any]:
        """A tar of the flushed shard (and its settings), with a `.checksum` beside it."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S-%f")
        name = f"{collection.name}-{stamp}.snapshot"
        path = self.snapshot_dir(collection) / name

        def write(shard: Any) -> None:
            shard.flush()
            partial = path.with_suffix(".partial")
            with tarfile.open(partial, "w:gz", compresslevel=1) as tar:  # Edge files are sparse
                tar.add(collection.shard_dir, arcname="shard")
                tar.add(collection.root / "settings.json", arcname="settings.json")
            partial.rename(path)

        await self.run(collection, write)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        path.with_name(name + ".checksum").write_text(digest.hexdigest())
        return describe_snapshot(path)

    def snapshots(self, collection: Collection) -> list[dict[str, Any]]:
        folder = self.snapshot_dir(collection)
        return [describe_snapshot(p) for p in sorted(folder.glob("*.snapshot"))]

    def snapshot_path(self, collection: Collection, name: str) -> Path:
        path = self.snapshot_dir(collection) / name
        if "/" in name or not name.endswith(".snapshot") or not path.is_file():
            raise NotFound(f"Not found: Snapshot {name} not found")
        return path


def describe_snapshot(path: Path) -> dict[str, Any]:
    checksum_file = path.with_name(path.name + ".checksum")
    stat = path.stat()
    return {
        "name": path.name,
        "creation_time": datetime.fromtimestamp(stat.st_mtime, UTC)
        .replace(tzinfo=None)
        .isoformat(timespec="seconds"),
        "size": stat.st_size,
        "checksum": checksum_file.read_text() if checksum_file.exists() else None,
    }


def _close(shard: Any) -> None:
    shard.flush()
    shard.close()


def now() -> float:
    return time.perf_counter()
