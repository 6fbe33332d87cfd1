"""`ferry backup`: one collection copied into a verified backup, for the CLI, the Inventory
screen and the Cutover screen alike.

The connector knows how to copy its store (Connector.backup: chroma/backup.py for an
embedded Chroma directory, qdrant/backup.py for Edge, local mode and servers); the store
mechanics — temporary name, verification, manifest, atomic rename, reuse of a verified
backup of the same state — are core/backup_store.py's. This module checks the request
(a backup never goes inside what it copies: a Chroma source is never written) and gives
views one call and a default place.
"""

from __future__ import annotations

import os
from pathlib import Path

from ferry.core.backup_store import BackupResult, Progress
from ferry.core.connectors import open_connector
from ferry.core.errors import FerryError
from ferry.core.uri import parse_uri

BACKUPS_ENV = "FERRY_BACKUPS"

__all__ = ["BackupResult", "default_backup_root", "run_backup"]


def default_backup_root() -> Path:
    """Where the TUI puts backups: $FERRY_BACKUPS, else the XDG data dir's `backups/`."""
    chosen = os.environ.get(BACKUPS_ENV)
    if chosen:
        return Path(chosen)
    from platformdirs import user_data_dir

    return Path(user_data_dir("ferry")) / "backups"


def check_destination(uri: str, collection: str, to: Path) -> Path:
    """`to` as an absolute path, refused when it lies inside what is being copied."""
    if not str(to).strip():
        raise FerryError("--to is empty", fix="pass a directory for the backup")
    destination = Path(to).expanduser().resolve()
    spec = parse_uri(uri)
    if spec.path is not None:
        source = spec.path.resolve()
        copied = {
            "file": source if spec.engine == "chroma" else source / "collection" / collection,
            "edge": source / collection,
        }.get(spec.transport, source)
        if destination == copied or copied in destination.parents:
            raise FerryError(
                "the backup directory is inside what it would copy",
                where=str(destination),
                fix=f"choose a directory outside {copied}",
            )
    if destination.exists() and not destination.is_dir():
        raise FerryError(
            "the backup destination is a file", where=str(destination), fix="pass a directory"
        )
    return destination


async def run_backup(
    uri: str, collection: str, to: str | Path, progress: Progress | None = None
) -> BackupResult:
    """Back up `collection` of `uri` under `to` (or reuse a verified backup of that state)."""
    if not collection or not collection.strip():
        raise FerryError("--collection is empty", fix="name the collection to back up")
    destination = check_destination(uri, collection, Path(to))
    async with open_connector(uri) as connector:
        available = await connector.list_collections()
        if collection not in available:  # refused before a directory is made
            raise FerryError(
                f"no collection {collection!r}",
                where=connector.uri,
                fix=f"choose one of: {', '.join(available) or '(none)'}",
            )
        try:
            destination.mkdir(parents=True, exist_ok=True)
            probe = destination / ".ferry-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise FerryError(
                f"cannot write backups here: {exc.strerror or exc}",
                where=str(destination),
                fix="choose a writable directory with --to",
            ) from exc
        try:
            return await connector.backup(collection, destination, progress)
        except OSError as exc:
            raise FerryError(
                f"the backup failed: {exc.strerror or exc}",
                where=str(getattr(exc, "filename", None) or destination),
                fix="check free space and permissions, then back up again",
            ) from exc
