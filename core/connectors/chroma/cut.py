"""A consistent cut of a live embedded Chroma directory: every record as of one moment.

How chromadb changes its files while it writes (read in chroma-core/chroma, the Rust
``local_hnsw.rs`` / ``sqlite_log.rs`` / ``local_compaction_manager.rs`` of 1.x and
``local_persistent_hnsw.py`` of 0.5–0.6; checked on 1.5.9):

* ``chroma.sqlite3`` is in rollback-journal mode (``journal_mode=delete``; the Rust side
  waits up to 1000 s on a busy database). A write is several transactions: the log entry
  (``embeddings_queue``), then the metadata segment (``embeddings`` + metadata rows, and its
  ``max_seq_id``), then, every ``sync_threshold`` writes, the vector segment.
* The HNSW files are persisted only every ``sync_threshold`` (default 1000) log entries:
  ``header.bin``, ``data_level0.bin``, ``length.bin``, ``link_lists.bin`` rewritten in place,
  then ``index_metadata.pickle`` truncated and re-written, and only *then* the vector
  segment's ``max_seq_id`` row in SQLite. A reader in between sees a torn pickle, or files
  newer than SQLite says.
* The log is purged per collection below the smallest ``max_seq_id`` of its segments
  (``DELETE FROM embeddings_queue WHERE topic = ? AND seq_id < ?``), so the entries newer
  than the persisted HNSW stay until the next persist.

So a cut is a private copy taken in this order, and accepted only when nothing moved:

1. stat every file (sizes, mtimes) and read SQLite's *file change counter* (header bytes
   24–27, bumped by every committed write transaction); no ``-journal`` may exist (a
   write transaction is open while it does);
2. copy the HNSW folders, then ``chroma.sqlite3`` — plain reads, no lock at all;
3. stat again, read the counter again, look for a ``-journal`` again.

If anything changed a write raced the copy: it is taken again (a few tries). When the
application writes so often that a lock-free copy never lands between two transactions, the
last tries copy SQLite with SQLite's backup API instead, which holds a *read* lock for as
long as the copy of that one file takes (the application's writes wait that long; they
never fail: chroma waits on a busy database). Each cut says which way it was taken and how
many tries it took (``Cut.how``, shown in the plan and the log), and gives up after
``CUT_GIVE_UP_SECONDS`` with a message that says so.

The copy is then read by the ordinary file reader in *cut mode* (chroma/files.py): log
entries newer than the metadata segment's ``max_seq_id`` — writes chroma had logged but not
yet applied — are after the cut; the HNSW files replayed up to that seq id. That seq id is
the cut's watermark per collection: catch-up applies what changed after it.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ferry.core.errors import FerryError

DB_FILE = "chroma.sqlite3"
CUT_GIVE_UP_SECONDS = 60.0  # a cut that cannot be taken in this long is refused, saying why
LOCK_FREE_TRIES = 6  # lock-free copies before the backup API is used
RETRY_PAUSE_SECONDS = 0.02  # between two tries: writes come in bursts
_COUNTER = slice(24, 28)  # SQLite header: file change counter (big-endian u32)

Stamp = dict[str, tuple[int, int, int]]  # relative path -> (size, mtime_ns, inode)


@dataclass
class Cut:
    """A private, consistent copy of a Chroma directory (deleted by `remove`)."""

    source: Path
    path: Path
    tries: int
    seconds: float
    how: str  # "lock-free copy" or "SQLite backup (read lock held N ms)"
    taken_at: float = field(default_factory=time.time)  # wall clock, for lag ages

    def describe(self) -> str:
        again = f", taken {self.tries} times (writes raced it)" if self.tries > 1 else ""
        return f"consistent cut of {self.source}: {self.how} in {self.seconds:.2f}s{again}"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def cuts_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ferry")) / "cuts"


def _stamp(source: Path) -> Stamp:
    """Size, mtime and inode of every file chroma may change (SQLite and segment folders)."""
    out: Stamp = {}
    for entry in [source / DB_FILE, *sorted(p for p in source.iterdir() if p.is_dir())]:
        files = [entry] if entry.is_file() else sorted(f for f in entry.iterdir() if f.is_file())
        for file in files:
            try:
                info = file.stat()
            except FileNotFoundError:
                continue  # removed meanwhile: the second stamp will differ
            out[str(file.relative_to(source))] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return out


def _counter(file: Path) -> bytes:
    with file.open("rb") as handle:
        return handle.read(100)[_COUNTER]


def _writing(source: Path) -> bool:
    """A write transaction is open (rollback journal present) or the database is in WAL
    mode (then the file alone is not the database: the backup API is used)."""
    return any((source / f"{DB_FILE}{suffix}").exists() for suffix in ("-journal", "-wal"))


def copy_file(source: Path, into: Path) -> None:
    """Copy one file with `copy_file_range`: where the file system shares extents (XFS,
    btrfs, bcachefs; NFS 4.2 and SMB server-side) the kernel makes it a reflink — a
    copy-on-write clone, instant at any size, later writes to the source unsharing their
    blocks — and elsewhere an in-kernel copy at `sendfile`'s speed (shutil's way in 3.11).
    Where the call is missing or refused (another file system, an old kernel) shutil copies.
    Copies to the end of the file as it is while copied; the cut's stamps judge the race."""
    if not hasattr(os, "copy_file_range"):  # not Linux
        shutil.copyfile(source, into)
        return
    with source.open("rb") as src, into.open("wb") as dst:
        try:
            while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
                pass
            return
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise
    shutil.copyfile(source, into)  # truncates whatever the refused call may have written


_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


def _copy_segments(source: Path, into: Path) -> None:
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (into / folder.name).mkdir()
        for file in sorted(f for f in folder.iterdir() if f.is_file()):
            copy_file(file, into / folder.name / file.name)


def _backup_sqlite(source: Path, into: Path) -> float:
    """SQLite's online backup in one step: a read lock for the copy's duration (seconds)."""
    uri = f"file:{quote(str((source / DB_FILE).resolve()))}?mode=ro"
    started = time.perf_counter()
    src = sqlite3.connect(uri, uri=True, timeout=CUT_GIVE_UP_SECONDS)
    dst = sqlite3.connect(into / DB_FILE)
    try:
        src.backup(dst)  # pages=-1: everything in one step, one consistent read
        # A WAL-mode source gives a WAL-mode copy: ours alone, made a plain file again.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    return time.perf_counter() - started


def take_cut(
    source: Path,
    check: Callable[[Path], None] | None = None,
    give_up_after: float = CUT_GIVE_UP_SECONDS,
    root: Path | None = None,
) -> Cut:
    """A consistent private copy of `source`, taken again while writes race it.

    `check(copy)` reads the copy (the file reader's plan of every collection): it raises
    FerryError when the copy is not usable. If the source changed meanwhile that is one more
    race, and the cut is taken again; if it did not, the error is the directory's own and is
    raised as it is. The source is only ever read.
    """
    if not (source / DB_FILE).is_file():
        raise FerryError(
            "not a Chroma directory (no chroma.sqlite3)",
            where=str(source),
            fix="point chroma+file:// at the folder that holds chroma.sqlite3",
        )
    base = root or cuts_root()
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tries = 0
    last_race = "the directory kept changing"
    while True:
        tries += 1
        into = Path(tempfile.mkdtemp(prefix="cut-", dir=base))
        os.chmod(into, 0o700)
        try:
            how, raced = _try_once(source, into, lock_free=tries <= LOCK_FREE_TRIES)
            if raced is None and check is not None:
                try:
                    check(into)
                except FerryError as exc:
                    if not _changed_since(source, into):
                        raise
                    raced = f"the copy did not read back ({exc.what})"
            if raced is None:
                return Cut(source, into, tries, time.perf_counter() - started, how)
            last_race = raced
        except BaseException:
            shutil.rmtree(into, ignore_errors=True)
            raise
        shutil.rmtree(into, ignore_errors=True)
        if time.perf_counter() - started > give_up_after:
            raise FerryError(
                f"could not take a consistent cut in {give_up_after:.0f}s ({tries} tries; "
                f"last: {last_race})",
                where=str(source),
                fix="retry when the application writes less, or pause its writes for a moment",
            )
        time.sleep(RETRY_PAUSE_SECONDS * min(tries, 10))


def _try_once(source: Path, into: Path, lock_free: bool) -> tuple[str, str | None]:
    """Copy once: (how it was copied, None) when consistent, else (how, what raced it)."""
    db = source / DB_FILE
    if (source / f"{DB_FILE}-wal").exists():
        lock_free = False  # WAL mode: the file alone is not the database
    if lock_free and _writing(source):
        return "lock-free copy", "a write transaction was open"
    before = _stamp(source)
    counter = _counter(db) if lock_free else b""
    _copy_segments(source, into)
    if lock_free:
        copy_file(db, into / DB_FILE)
        how = "lock-free copy"
        if _writing(source) or _counter(db) != counter or _counter(into / DB_FILE) != counter:
            return how, "a write committed during the copy of chroma.sqlite3"
    else:
        held = _backup_sqlite(source, into)
        how = f"SQLite backup (read lock held {held * 1000:.0f} ms)"
    after = _stamp(source)
    moved = sorted(
        name
        for name in before.keys() | after.keys()
        if name != DB_FILE and before.get(name) != after.get(name)
    )
    if moved:
        return how, f"chroma persisted its index during the copy ({moved[0]})"
    return how, None


@dataclass(frozen=True)
class Snapshot:
    """What says a directory has not moved: every file's size, mtime and inode, and SQLite's
    file change counter (the same evidence a lock-free cut is accepted on)."""

    stamp: Stamp
    counter: bytes


def snapshot(source: Path) -> Snapshot | None:
    """The directory's snapshot now; None while a write transaction is open or the database
    is in WAL mode (then only a cut, or the backup API, reads it consistently)."""
    if _writing(source):
        return None
    try:
        return Snapshot(_stamp(source), _counter(source / DB_FILE))
    except OSError:
        return None


def _changed_since(source: Path, copy: Path) -> bool:
    """Whether the source moved on since `copy` was taken (then a failed read-back of the
    copy may be a race rather than the directory's own fault)."""
    try:
        if _counter(source / DB_FILE) != _counter(copy / DB_FILE):
            return True
    except OSError:
        return True
    for name, (size, _mtime, _ino) in _stamp(source).items():
        if name == DB_FILE:
            continue
        mine = copy / name
        if not mine.exists() or mine.stat().st_size != size:
            return True
    return False
