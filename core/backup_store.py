"""Where backups live, and the one way a backup comes into being: temp name → verify → rename.

    DIR/
      <collection>-<YYYYmmdd-HHMMSS>/   a complete, verified backup (the only names without a dot)
        ferry-backup.json               its manifest: what, when, from where, counts, sha256s
        data/…                          the copy; point a URI at it to read it (see `restore_uri`)
      .partial-<collection>-<pid>-<hex>/  a backup being written (or one a kill left behind)

Why this shape (issue 13 item 6): a killed cutover used to leave truncated shard copies
named like complete ones, and every attempt copied the whole shard again. Here a backup is
written under a dot-name, verified by reading it back, given its manifest, and only then
renamed: rename is atomic, so a name without a dot always holds a complete backup. A
partial whose process is gone is removed by the next backup into the same DIR.

A backup of a source state that an existing verified backup already holds is not taken
again: its manifest records the source's fingerprint (path, size and mtime of every source
file) and the sha256 of every source file as read, so a later backup can reuse it when
either matches (the content check covers stores whose flush touches mtimes but no bytes,
like Qdrant Edge). Reuse re-hashes the backup's files against its manifest first.

Files are copied sparse-aware (Qdrant Edge preallocates 32 MiB files that are mostly
holes: a naive copy of a 100-point shard writes 138 MB). Nothing here imports a database
client; the connectors and core.backup say what to copy and how to verify it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ferry.core import __version__
from ferry.core.errors import FerryError

FORMAT = "ferry-backup/1"
MANIFEST = "ferry-backup.json"
DATA = "data"
PARTIAL_PREFIX = ".partial-"
CHUNK = 1 << 20
# Test hook (tests/test_backup.py): stop this process with SIGSTOP once this many bytes are
# copied, so a test can `kill -9` it at an exact, seeded point instead of a timed one.
STOP_AT_ENV = "FERRY_FAULT_BACKUP_STOP_AT"


@dataclass
class BackupProgress:
    """What a view shows while a backup runs."""

    phase: str  # fingerprint | copy | verify | hash | reuse-check | done
    done_bytes: int = 0
    total_bytes: int = 0

    @property
    def fraction(self) -> float | None:
        return self.done_bytes / self.total_bytes if self.total_bytes else None


Progress = Callable[[BackupProgress], None]


@dataclass
class BackupResult:
    """A complete backup: where it is, its manifest, and whether an earlier one was reused."""

    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    reused: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "ok": True,
            "kind": manifest["kind"],
            "collection": manifest["collection"],
            "path": str(self.path),
            "manifest": str(self.path / MANIFEST),
            "manifest_sha256": self.manifest_sha256,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "created_at": manifest["created_at"],
            "source_uri": manifest["source_uri"],
            "counts": manifest["counts"],
            "bytes": sum(f["size"] for f in manifest["files"]),
            "files": len(manifest["files"]),
            "restore_uri": restore_uri(self.path, manifest),
            "notes": manifest.get("notes", []),
        }

    def as_snapshot(self) -> dict[str, Any]:
        """How a cutover names the backup it relied on (journaled with the cutover)."""
        return {
            "kind": f"{self.manifest['kind']}-backup",
            "path": str(self.path),
            "manifest_sha256": self.manifest_sha256,
            "reused": self.reused,
            "collection": self.manifest["collection"],
            "counts": self.manifest["counts"],
        }


def restore_uri(path: Path, manifest: dict[str, Any]) -> str | None:
    """A URI that reads the backup where it lies (copy `data/` elsewhere to restore)."""
    scheme = {
        "chroma-embedded": "chroma+file",
        "qdrant-edge": "qdrant+edge",
        "qdrant-local": "qdrant+file",
    }.get(manifest["kind"])
    return f"{scheme}://{path / DATA}" if scheme else None


def public_uri(uri: str) -> str:
    """The URI without anything secret: user:password@ dropped (Ferry URIs hold none, but a
    hand-written one might); query options only name variables, so they stay."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# -- reading files -----------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(root: Path, skip: Callable[[Path], bool] | None = None) -> list[Path]:
    """Every regular file under `root` (sorted, relative), except those `skip` names."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not path.is_symlink() and not (skip and skip(rel)):
            found.append(rel)
    return found


def fingerprint(root: Path, rels: Iterable[Path]) -> str:
    """A cheap identity of a source state: path, size and mtime of every file.

    Reading never changes it; any write does (a store that rewrites files with the same
    bytes changes it too, which the content check in `BackupStore.find_reusable` covers)."""
    digest = hashlib.sha256()
    for rel in sorted(rels):
        try:
            info = (root / rel).stat()
        except FileNotFoundError:
            digest.update(f"{rel}:gone\n".encode())
            continue
        digest.update(f"{rel}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def sqlite_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection (`mode=ro`): the source is never written, not even a journal."""
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)


def sqlite_is_wal(path: Path) -> bool:
    """Whether the file's header says WAL mode (bytes 18-19 = 2), read without SQLite:
    opening a WAL database read-only may create its -shm file next to it."""
    with path.open("rb") as handle:
        header = handle.read(20)
    return len(header) == 20 and header[18] == 2 and header[19] == 2


# -- the store -----------------------------------------------------------------------------------
class BackupStore:
    """Complete backups and partials under one directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def complete(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """(path, manifest) of every complete backup, newest first."""
        if not self.root.is_dir():
            return
        found = []
        for path in self.root.iterdir():
            if path.name.startswith(".") or not path.is_dir():
                continue
            manifest = read_manifest(path)
            if manifest is not None:
                found.append((manifest.get("created_ts", 0.0), path, manifest))
        for _ts, path, manifest in sorted(found, key=lambda t: t[0], reverse=True):
            yield path, manifest

    def clean_stale_partials(self) -> list[Path]:
        """Remove partials whose writer is gone (a killed backup); return what went."""
        removed = []
        if not self.root.is_dir():
            return removed
        for path in self.root.iterdir():
            if not path.name.startswith(PARTIAL_PREFIX):
                continue
            pid = _partial_pid(path.name)
            if pid is not None and pid != os.getpid() and _alive(pid):
                continue  # another backup is writing it right now
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed

    def find_reusable(
        self,
        identity: dict[str, Any],
        source_fingerprint: str | None,
        source_contents: Callable[[], dict[str, str]] | None = None,
        progress: Progress | None = None,
    ) -> BackupResult | None:
        """A verified backup of this very source state, or None.

        `identity` (kind, source location, collection) must match; then the fingerprint,
        or else the sha256 of every source file (`source_contents`, computed only if some
        backup of this identity exists). The backup is re-hashed against its manifest."""
        self.clean_stale_partials()
        if source_fingerprint is None:
            return None
        candidates = [
            (path, m)
            for path, m in self.complete()
            if all(m.get("identity", {}).get(k) == v for k, v in identity.items())
        ]
        if not candidates:
            return None
        started = time.monotonic()
        ordered = [c for c in candidates if c[1].get("source_fingerprint") == source_fingerprint]
        if not ordered and source_contents is not None:
            if progress:
                progress(BackupProgress("reuse-check"))
            contents = source_contents()
            ordered = [c for c in candidates if c[1].get("source_files") == contents]
        for path, manifest in ordered:
            if verify_files(path, manifest, progress):
                return BackupResult(
                    path=path,
                    manifest=manifest,
                    manifest_sha256=file_sha256(path / MANIFEST),
                    reused=True,
                    seconds=time.monotonic() - started,
                )
        return None

    def begin(self, collection: str, total_bytes: int, progress: Progress | None) -> Partial:
        self.root.mkdir(parents=True, exist_ok=True)
        self.clean_stale_partials()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in collection)[:80]
        path = self.root / f"{PARTIAL_PREFIX}{safe}-{os.getpid()}-{secrets.token_hex(4)}"
        (path / DATA).mkdir(parents=True)
        return Partial(self, path, safe, total_bytes, progress)


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    return manifest


def verify_files(path: Path, manifest: dict[str, Any], progress: Progress | None = None) -> bool:
    """Every file the manifest lists is there with its sha256, and nothing else is in data/."""
    data = path / DATA
    listed = {f["path"]: f for f in manifest.get("files", [])}
    present = {str(rel) for rel in files_under(data)}
    if present != set(listed):
        return False
    total = sum(f["size"] for f in listed.values())
    done = 0
    for rel, entry in listed.items():
        file = data / rel
        if file.stat().st_size != entry["size"] or file_sha256(file) != entry["sha256"]:
            return False
        done += entry["size"]
        if progress:
            progress(BackupProgress("reuse-check", done, total))
    return True


@dataclass
class Partial:
    """A backup being written under a dot-name; `commit` makes it complete, atomically."""

    store: BackupStore
    path: Path
    collection: str
    total_bytes: int
    progress: Progress | None
    done_bytes: int = 0
    source_files: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def data(self) -> Path:
        return self.path / DATA

    def advance(self, nbytes: int, phase: str = "copy") -> None:
        before = self.done_bytes
        self.done_bytes += nbytes
        stop_at = os.environ.get(STOP_AT_ENV)
        if stop_at and before < int(stop_at) <= self.done_bytes:
            os.kill(os.getpid(), signal.SIGSTOP)  # the test kills us here (see STOP_AT_ENV)
        if self.progress:
            self.progress(BackupProgress(phase, self.done_bytes, self.total_bytes))

    def copy_file(self, source: Path, rel: str | Path) -> None:
        """Copy one file, hashing the source bytes as they are read; holes stay holes."""
        destination = self.data / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with source.open("rb") as src, destination.open("wb") as dst:
            for offset, length, is_data in _extents(src.fileno()):
                if is_data:
                    src.seek(offset)
                    remaining = length
                    dst.seek(offset)
                    while remaining:
                        chunk = src.read(min(CHUNK, remaining))
                        if not chunk:
                            break  # the file shrank while we read it: the fingerprint says so
                        digest.update(chunk)
                        dst.write(chunk)
                        remaining -= len(chunk)
                        self.advance(len(chunk))
                else:
                    _hash_zeros(digest, length)
                    self.advance(length)
                size = offset + length
            dst.truncate(size)
            dst.flush()
            os.fsync(dst.fileno())
        self.source_files[str(rel)] = digest.hexdigest()

    def copy_sqlite(self, source: Path, rel: str | Path) -> None:
        """A consistent copy of a live SQLite database with its online backup API, read from
        a `mode=ro` connection (the source gets no lock file, journal or -shm from us)."""
        destination = self.data / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        page_size = 4096

        def step(_status: int, remaining: int, total: int) -> None:
            copied = (total - remaining) * page_size
            self.advance(max(0, copied - step.reported))  # type: ignore[attr-defined]
            step.reported = copied  # type: ignore[attr-defined]

        step.reported = 0  # type: ignore[attr-defined]
        src = sqlite_readonly(source)
        try:
            page_size = src.execute("PRAGMA page_size").fetchone()[0]
            dst = sqlite3.connect(destination)
            try:
                src.backup(dst, pages=256, progress=step)
                # A copy in rollback-journal mode is one self-contained file.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        except sqlite3.Error as exc:
            raise FerryError(
                f"cannot back up {source.name}: {exc}",
                where=str(source),
                fix="check that the file is a readable SQLite database",
            ) from exc
        finally:
            src.close()
        with destination.open("rb+") as handle:
            os.fsync(handle.fileno())

    def write_file(self, rel: str | Path, content: bytes) -> None:
        destination = self.data / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(content)

    def commit(self, manifest: dict[str, Any], name_time: float | None = None) -> BackupResult:
        """Hash the copy into the manifest, write it, and rename the partial into place."""
        if self.progress:
            self.progress(BackupProgress("hash", self.done_bytes, self.total_bytes))
        files = []
        for rel in files_under(self.data):
            file = self.data / rel
            files.append(
                {"path": str(rel), "size": file.stat().st_size, "sha256": file_sha256(file)}
            )
        now = name_time or time.time()
        manifest = {
            "format": FORMAT,
            "ferry_version": __version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "created_ts": now,
            **manifest,
            "seconds": round(time.monotonic() - self.started, 3),
            "source_files": self.source_files or None,
            "files": files,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
        temp = self.path / (MANIFEST + ".tmp")
        with temp.open("wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temp.rename(self.path / MANIFEST)
        if read_manifest(self.path) != json.loads(text):
            raise FerryError("the backup did not verify after it was written", where=str(self.path))
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        final = self.store.root / f"{self.collection}-{stamp}"
        suffix = 1
        while True:
            try:
                os.rename(self.path, final)  # atomic; refuses a non-empty existing directory
                break
            except OSError:
                if not final.exists():
                    raise
                suffix += 1
                final = self.store.root / f"{self.collection}-{stamp}-{suffix}"
        _fsync_dir(self.store.root)
        if self.progress:
            self.progress(BackupProgress("done", self.done_bytes, self.total_bytes))
        return BackupResult(
            path=final,
            manifest=manifest,
            manifest_sha256=hashlib.sha256(text).hexdigest(),
            reused=False,
            seconds=time.monotonic() - self.started,
        )

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def partial_backup(
    store: BackupStore, collection: str, total_bytes: int, progress: Progress | None
) -> Iterator[Partial]:
    """A partial that is removed if anything fails before it is committed."""
    partial = store.begin(collection, total_bytes, progress)
    try:
        yield partial
    except BaseException:
        partial.abort()
        raise


def source_contents(root: Path, rels: Iterable[Path]) -> dict[str, str]:
    """sha256 of every source file (the content identity `find_reusable` compares)."""
    return {str(rel): file_sha256(root / rel) for rel in sorted(rels)}


def total_size(root: Path, rels: Iterable[Path]) -> int:
    return sum((root / rel).stat().st_size for rel in rels if (root / rel).exists())


# -- helpers -----------------------------------------------------------------------------------
_ZEROS = bytes(CHUNK)


def _hash_zeros(digest: Any, length: int) -> None:
    while length > 0:
        step = min(length, CHUNK)
        digest.update(_ZEROS[:step] if step < CHUNK else _ZEROS)
        length -= step


def _extents(fd: int) -> Iterator[tuple[int, int, bool]]:
    """(offset, length, is_data) covering the whole file, holes found with SEEK_DATA."""
    size = os.fstat(fd).st_size
    seek_data = getattr(os, "SEEK_DATA", None)
    if seek_data is None:
        yield (0, size, True)
        return
    offset = 0
    while offset < size:
        try:
            data = os.lseek(fd, offset, seek_data)
        except OSError:  # ENXIO: only a hole remains
            yield (offset, size - offset, False)
            return
        if data > offset:
            yield (offset, data - offset, False)
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        yield (data, hole - data, True)
        offset = hole


def _partial_pid(name: str) -> int | None:
    parts = name[len(PARTIAL_PREFIX) :].rsplit("-", 2)
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
