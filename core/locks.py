"""One owner per target collection: a lock file that names its holder.

Two `ferry migrate` processes writing one target collection (same journal or not) would
interleave upserts, fight over a Qdrant Edge shard and journal contradicting states. Before
the first write a run takes an exclusive `flock` on a file per target collection and writes
who holds it (run, pid, host, since) into the file; a second run is refused in one line that
names the holder. The kernel drops the lock when its process dies (even by `kill -9`), so a
stale lock of a dead process is simply taken over — no pid guessing.

Where: the user's state dir (`$FERRY_LOCK_DIR` overrides), keyed by the target's real path or
server address and the collection: another user's process on the same directory is not seen
(the Edge shard's own lock still refuses it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ferry.core.errors import FerryError
from ferry.core.uri import parse_uri


def lock_path(target_uri: str, collection: str) -> Path:
    """The lock file of one target collection, in the user's state dir (never in the target:
    a refused run must leave the target exactly as it was). A target on disk is keyed by its
    real path, so two spellings of one directory share a lock."""
    from platformdirs import user_state_dir

    spec = parse_uri(target_uri)
    where = str(Path(os.path.realpath(spec.path))) if spec.path else spec.uri.split("?")[0]
    digest = hashlib.sha256(f"{where}\n{collection}".encode()).hexdigest()[:32]
    base = Path(os.environ.get("FERRY_LOCK_DIR") or Path(user_state_dir("ferry")) / "locks")
    return base / f"{digest}.lock"


class TargetLocks:
    """Exclusive locks on target collections for one run; released on `release` or death."""

    def __init__(self, target_uri: str, run_id: str) -> None:
        self.target_uri = target_uri
        self.run_id = run_id
        self._held: dict[str, IO[str]] = {}

    def acquire(self, collections: Iterable[str]) -> TargetLocks:
        """Lock each collection not held yet; refused (nothing kept) if one is taken."""
        try:
            for name in sorted(set(collections) - set(self._held)):
                self._held[name] = self._take(name)
        except BaseException:
            self.release()
            raise
        return self

    def _take(self, collection: str) -> IO[str]:
        path = lock_path(self.target_uri, collection)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        except OSError as exc:
            raise FerryError(
                f"cannot create the lock file for {collection!r}: {exc.strerror or exc}",
                where=str(path),
                fix="make the target directory writable",
            ) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            handle.close()
            raise FerryError(
                f"target collection {collection!r} is being written by another Ferry process "
                f"({describe_holder(holder)})",
                where=self.target_uri.split("?")[0],
                fix="wait for it to finish (ferry status), or stop that process",
            ) from None
        _write_holder(handle, self.run_id, collection)
        return handle

    def name_run(self, run_id: str) -> None:
        """The run id is known once the journal has it: the holder says so from then on."""
        self.run_id = run_id
        for collection, handle in self._held.items():
            _write_holder(handle, run_id, collection)

    def release(self) -> None:
        while self._held:
            _, handle = self._held.popitem()
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> TargetLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_holder(handle: IO[str], run_id: str, collection: str) -> None:
    holder = {
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.time(),
        "collection": collection,
    }
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder))
    handle.flush()


def _read_holder(handle: IO[str]) -> dict[str, Any]:
    try:
        handle.seek(0)
        return dict(json.loads(handle.read() or "{}"))
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    since = holder.get("since")
    when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "?"
    return (
        f"run {holder.get('run_id', '?')}, pid {holder.get('pid', '?')} "
        f"on {holder.get('host', '?')}, since {when}"
    )
