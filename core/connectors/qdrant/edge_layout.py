"""The one module that knows how a `qdrant+edge:///dir` directory is laid out.

    dir/
      <collection>/edge_config.json   one Edge shard per collection; its config holds the
      <collection>/…                  vector size and distance (so `describe` needs no worker)
      .ferry-aliases.json             Ferry's aliases (Edge has none): {"aliases": {a: c}}
      .ferry-snapshots/<c>-<time>/    verified backups taken before a cutover (backup_store.py)

Used by the Edge connector, its alias backend (cutover) and the router's `EdgeStore`.
Reading it never starts Edge; only the connector's worker process opens shards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ferry.core.errors import FerryError
from ferry.core.jsonfile import locked, read_json, write_json_atomic
from ferry.core.mapping import METRIC_FROM_QDRANT
from ferry.core.model import Metric

CONFIG_FILE = "edge_config.json"
ALIAS_FILE = ".ferry-aliases.json"
SNAPSHOT_DIR = ".ferry-snapshots"


class EdgeLayout:
    """Paths and small files under one Edge root."""

    def __init__(self, root: str | Path, where: str | None = None) -> None:
        self.root = Path(root)
        self.where = where or str(self.root)

    @property
    def alias_file(self) -> Path:
        return self.root / ALIAS_FILE

    # -- collections ------------------------------------------------------------------------
    def shard_dir(self, name: str) -> Path:
        """A collection's shard directory; a name that is not one directory is refused."""
        if "/" in name or name in {"", ".", ".."}:
            raise FerryError(
                f"invalid collection name {name!r}",
                where=self.where,
                fix="a Qdrant Edge collection name is one directory name",
            )
        return self.root / name

    def config(self, name: str) -> dict[str, Any] | None:
        """The shard's own config, or None when there is no such collection."""
        path = self.shard_dir(name) / CONFIG_FILE
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self.config(name) is not None

    def vector_params(self, name: str) -> tuple[int | None, Metric | None]:
        """(size, metric) of the unnamed vector; a missing collection is a FerryError."""
        config = self.config(name)
        if config is None:
            raise FerryError(f"no collection {name!r}", where=self.where)
        vector = (config.get("vectors") or {}).get("", {})
        return vector.get("size"), METRIC_FROM_QDRANT.get(vector.get("distance", ""))

    def dimension(self, name: str) -> int:
        return int(self.vector_params(name)[0] or 0)

    def segment_index_types(self, name: str) -> list[str]:
        """The vector index type of each segment on disk ("hnsw", "plain"): what a query
        over that segment uses. Read from each segment's own `segment.json`."""
        types: list[str] = []
        for config in sorted((self.shard_dir(name) / "segments").glob("*/segment.json")):
            try:
                data = json.loads(config.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            for vector in ((data.get("config") or {}).get("vector_data") or {}).values():
                types.append(str((vector.get("index") or {}).get("type", "?")))
        return types

    def collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).is_file())

    # -- Ferry's aliases --------------------------------------------------------------------
    def aliases(self) -> dict[str, str]:
        """alias → collection, from the alias file (none when there is no file)."""
        try:
            data = json.loads(self.alias_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return {str(k): str(v) for k, v in (data.get("aliases") or {}).items() if v}

    def resolve(self, name: str) -> str:
        """What `name` means here: the collection an alias points at, or itself."""
        return self.aliases().get(name, name)

    def switch_alias(self, alias: str, collection: str | None, expected: Any, check: bool) -> None:
        """Point `alias` at `collection` (None: remove it) in one atomic file replacement,
        under a lock.

        With `check`, the alias must still point at `expected` (checked under the lock, so
        a concurrent cutover cannot slip in between).
        """
        with locked(self.alias_file):
            data = read_json(self.alias_file) or {}
            aliases = dict(data.get("aliases") or {})
            if check and aliases.get(alias) != expected:
                raise FerryError(
                    f"alias {alias!r} moved meanwhile (now {aliases.get(alias)!r})",
                    where=self.where,
                    fix="look again and re-run",
                )
            if collection is None:
                aliases.pop(alias, None)
            else:
                aliases[alias] = collection
            data["aliases"] = aliases
            data["updated_at"] = time.time()
            write_json_atomic(self.alias_file, data)

    # -- backups ----------------------------------------------------------------------------
    @property
    def snapshot_root(self) -> Path:
        """Where a cutover's backups go (a `ferry.core.backup_store` directory)."""
        return self.root / SNAPSHOT_DIR

    @staticmethod
    def snapshot_words(collection: str) -> str:
        return (
            f"verified copy of the shard to {SNAPSHOT_DIR}/{collection}-<time>/ "
            "(an unchanged earlier one is reused)"
        )


def edge_alias_target(root: str | Path, name: str) -> str:
    """What `name` means under an Edge root: the collection an alias points at, or itself."""
    return EdgeLayout(root).resolve(name)
