"""Qdrant Edge in a child process of its own.

Why: the Edge Python binding holds the GIL while it upserts and flushes, so in-process the
reader and the writers take turns on one core (end to end ≈ 1 / (1/read + 1/write)). In a
child process the engine reads on one core while Edge writes on the other, and the engine's
own memory stays bounded whatever the collection size (the engine's growing data structures
are the database's, in the database's process — as with a Qdrant server).

The child owns every shard it opens; requests are served one at a time, in order, so a
`flush` answers only after every write sent before it. When the parent goes away (even by
`kill -9`) the child sees end-of-file, flushes, closes its shards and exits -- but only once
it has finished the request in hand, which for the optimizer can take a while. So the child
also holds an engine lock per shard (`engine_lock`) for as long as it has the shard open: the
next run's child waits for it instead of opening a shard whose segments a dying child is
still writing or swapping (Edge loads the segments before it takes its own lock).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from ferry.core import faultpoints
from ferry.core.errors import FerryError, PermanentError, ResourceError, TransientError, classify

LOCK_WAIT_SECONDS = 15.0  # a previous worker (a killed run's orphan) may still be finishing
LOCK_WAIT_ENV = "FERRY_EDGE_LOCK_WAIT"  # how a parent tells its worker another wait (router: 0)
# No request waits longer than this for its answer (a stuck worker is killed and restarted on
# the next try). Generous: a flush or the optimizer of a large shard takes minutes.
CALL_TIMEOUT_SECONDS = float(os.environ.get("FERRY_EDGE_TIMEOUT", "900"))
LOW_DISK_BYTES = 64 * 1024 * 1024  # below this free, a stopped worker most likely ran out
# HNSW defaults when the source has none (Qdrant's and Chroma's own: M 16, ef 100).
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCT = 100
# Qdrant's default: a search over fewer vectors than this (KB) may brute-force (exact).
FULL_SCAN_THRESHOLD_KB = 10_000
# Index every vector, as Chroma does: Edge's optimizer runs only when asked (`optimize`),
# so this costs nothing until the index phase, and a small collection is indexed too.
INDEXING_THRESHOLD_KB = 1
_SCHEMA = {"keyword": "Keyword", "integer": "Integer", "float": "Float", "bool": "Bool"}


def start_tracker_with_real_stderr() -> None:
    """Start multiprocessing's resource tracker (which shared memory registers with) with
    the process's real stderr. Inside a Textual app `sys.stderr` is a capture whose
    `fileno()` is -1, and the tracker passes that to its child: "bad value(s) in
    fds_to_keep" — every repair into an Edge target from the TUI failed on it."""
    try:
        fd = sys.stderr.fileno()
    except Exception:  # no file behind it: the tracker leaves it out itself
        return
    if fd >= 0 or sys.__stderr__ is None:
        return
    from multiprocessing import resource_tracker

    with _TRACKER_LOCK:
        captured = sys.stderr
        sys.stderr = sys.__stderr__
        try:
            resource_tracker.ensure_running()
        finally:
            sys.stderr = captured


_TRACKER_LOCK = threading.Lock()


class SharedVectors:
    """The engine's side of the vector hand-over: a float32 matrix in shared memory.

    Why: pickling 1,000 × 384 floats through the pipe and converting them to Python lists in
    the worker cost the worker more than building the points; with shared memory the worker
    reads the rows in place. One block per request in flight; the engine reuses a block only
    after the worker answered the request that used it. Where POSIX shared memory is missing,
    `put` returns the matrix itself and it travels in the pickle as before.
    """

    def __init__(self) -> None:
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def put(self, matrix: Any) -> tuple[Any, Any]:
        """(what to send, the block to `release` after the answer; None when pickled)."""
        import numpy as np

        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if not _SHM_DIR.is_dir() or matrix.size == 0:
            return matrix, None
        from multiprocessing import shared_memory

        need = matrix.nbytes
        with self._lock:
            block = next((b for b in self._free if b.size >= need), None)
            if block is not None:
                self._free.remove(block)
        if block is None:
            start_tracker_with_real_stderr()
            block = shared_memory.SharedMemory(create=True, size=max(need, 1 << 20))
            with self._lock:
                self._all.append(block)
        view = np.ndarray(matrix.shape, dtype=np.float32, buffer=block.buf)
        view[...] = matrix
        del view
        return ("shm", block.name, matrix.shape[0], matrix.shape[1]), block

    def release(self, block: Any) -> None:
        if block is not None:
            with self._lock:
                self._free.append(block)

    def close(self) -> None:
        with self._lock:
            blocks, self._all, self._free = self._all, [], []
        for block in blocks:
            try:
                block.close()
                block.unlink()
            except (FileNotFoundError, BufferError):
                pass


_SHM_DIR = Path("/dev/shm")


class vector_rows:  # noqa: N801 - a context manager used like a function
    """The worker's side: rows of a `SharedVectors` block (or of a pickled matrix) as 1-d
    float32 memoryviews, without copying; the mapping is closed on exit."""

    def __init__(self, vectors: Any) -> None:
        self.vectors = vectors
        self._map: Any = None
        self._view: Any = None
        self._rows: list[Any] = []

    def __enter__(self) -> list[Any]:
        import mmap

        vectors = self.vectors
        if not (isinstance(vectors, tuple) and vectors and vectors[0] == "shm"):
            return list(vectors.tolist())  # pickled matrix: the old path
        _tag, name, rows, dim = vectors
        fd = os.open(_SHM_DIR / name.lstrip("/"), os.O_RDONLY)
        try:
            self._map = mmap.mmap(fd, rows * dim * 4, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self._view = memoryview(self._map)
        width = dim * 4
        self._rows = [self._view[i * width : (i + 1) * width].cast("f") for i in range(rows)]
        return self._rows

    def __exit__(self, *exc: object) -> None:
        for row in self._rows:
            row.release()  # the binding has copied them; the mapping can close
        if self._view is not None:
            self._view.release()
        if self._map is not None:
            self._map.close()


# -- the child side -------------------------------------------------------------------------
def engine_lock(root: str, name: str) -> IO[str]:
    """Hold the shard `name` under `root` for this process (released on close or death).

    Beside the run's target lock (core.locks, same directory, never inside the target), but
    taken by the process that really touches the shard: a killed run's parent is gone at
    once, its child only when its current request ends."""
    from ferry.core.locks import lock_path

    path = lock_path(f"qdrant+edge://{root}", name).with_suffix(".engine.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the shard closes
    deadline = time.monotonic() + float(os.environ.get(LOCK_WAIT_ENV, LOCK_WAIT_SECONDS))
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise FerryError(
                    f"Qdrant Edge collection {name!r} is open in another process",
                    where=str(Path(root) / name),
                    fix="wait for the running migration (ferry status), or stop it",
                ) from None
            time.sleep(0.1)  # another process's lock: there is nothing to await


def _serve(conn: Any, root: str) -> None:
    import qdrant_edge as qe

    from ferry.core.connectors.qdrant.common import encode_offset, unwrap_vector
    from ferry.core.connectors.qdrant.edge_layout import EdgeLayout

    layout = EdgeLayout(root)
    shards: dict[str, Any] = {}
    held: dict[str, IO[str]] = {}

    def hold(name: str) -> None:
        if name not in held:
            held[name] = engine_lock(root, name)

    def release(name: str) -> None:
        handle = held.pop(name, None)
        if handle is not None:
            handle.close()

    def shard(name: str) -> Any:
        if name not in shards:
            hold(name)  # Ferry's own workers wait here, for each other
            try:
                shards[name] = qe.EdgeShard.load(str(layout.shard_dir(name)))
            except Exception as exc:
                if "WouldBlock" not in str(exc):
                    raise
                release(name)
                raise FerryError(  # not a Ferry worker: an application has the shard open
                    f"Qdrant Edge collection {name!r} is open in another process",
                    where=str(layout.shard_dir(name)),
                    fix="close the application that has it open, then run this again",
                ) from exc
        return shards[name]

    def create(
        name: str, size: int, distance: str, index_field: str, tuning: dict[str, Any]
    ) -> None:
        hold(name)
        layout.root.mkdir(parents=True, exist_ok=True)
        m, ef_construct = tuning.get("m"), tuning.get("ef_construct")
        hnsw = qe.HnswIndexConfig(
            m=int(m if m is not None else DEFAULT_M),
            ef_construct=int(ef_construct if ef_construct is not None else DEFAULT_EF_CONSTRUCT),
            full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
        )
        vectors = qe.EdgeVectorParams(
            size=size,
            distance=getattr(qe.Distance, distance),
            memory=qe.Memory.Cold if tuning.get("on_disk_vectors") else None,
        )
        config = qe.EdgeConfig(
            vectors=vectors,
            hnsw_config=hnsw,
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
        )
        created = qe.EdgeShard.create(str(layout.shard_dir(name)), config)
        created.update(
            qe.UpdateOperation.create_field_index(index_field, qe.PayloadSchemaType.Keyword)
        )
        for key, kind in sorted((tuning.get("payload_indexes") or {}).items()):
            # For filtering, without the extra per-value HNSW sub-graphs Qdrant would build
            # for each indexed field (they multiplied the index phase's time: Chroma has none).
            params = getattr(qe, f"{_SCHEMA[kind]}IndexParams")(enable_hnsw=False)
            created.update(qe.UpdateOperation.create_field_index(key, params))
        created.flush()
        shards[name] = created

    def index_state(name: str) -> dict[str, Any]:
        info = shard(name).info()
        vector_bytes = int(info.points_count) * layout.dimension(name) * 4
        return {
            # Under the indexing threshold Qdrant searches by brute force on purpose (exact).
            "small": vector_bytes < INDEXING_THRESHOLD_KB * 1024,
            "points": int(info.points_count),
            "indexed": int(info.indexed_vectors_count),
            "segments": layout.segment_index_types(name),
            "payload_indexes": {
                key: str(value.data_type).rsplit(".", 1)[-1].lower()
                for key, value in info.payload_schema.items()
            },
        }

    def optimize(name: str) -> dict[str, Any]:
        """Build the HNSW index (and merge segments): blocks until the optimizer is done."""
        opened = shard(name)
        opened.optimize()
        opened.flush()
        return index_state(name)

    def records(points: list[Any]) -> list[tuple[Any, Any, Any]]:
        return [(p.id, unwrap_vector(p.vector), p.payload) for p in points]

    def upsert(name: str, point_ids: list[Any], vectors: Any, payloads: list[Any]) -> None:
        """Only what must happen here: build `Point`s and upsert. Vectors arrive in shared
        memory (`SharedVectors`): each row is handed to the binding as a float32 memoryview,
        which it reads ~5× faster than it converts a Python list (and `tolist` is not
        needed at all); ids and payloads were mapped and assembled by the engine."""
        with vector_rows(vectors) as rows:
            points = [
                qe.Point(pid, row, payload)
                for pid, row, payload in zip(point_ids, rows, payloads, strict=True)
            ]
            shard(name).update(qe.UpdateOperation.upsert_points(points))

    def scroll(name: str, offset: Any, limit: int) -> tuple[list[Any], Any]:
        request = qe.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
        found, next_offset = shard(name).scroll(request)
        return records(found), encode_offset(next_offset)

    def query(
        name: str, vectors: Any, k: int, id_field: str, hnsw_ef: int | None = None
    ) -> list[list[tuple[str, float]]]:
        params = qe.SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef else None
        hits = []
        for vector in vectors:
            request = qe.QueryRequest(
                limit=k,
                query=qe.Query.Nearest(vector.tolist()),
                with_payload=[id_field],
                params=params,
            )
            hits.append(
                [
                    (str((p.payload or {}).get(id_field, p.id)), float(p.score))
                    for p in shard(name).query(request)
                ]
            )
        return hits

    def points(
        name: str, vectors: Any, k: int, hnsw_ef: int | None = None
    ) -> list[list[tuple[Any, float, Any]]]:
        """Whole hits (id, score, payload) for the router's EdgeStore (core/router/stores.py)."""
        params = qe.SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef else None
        return [
            [
                (p.id, float(p.score), p.payload)
                for p in shard(name).query(
                    qe.QueryRequest(
                        limit=k,
                        query=qe.Query.Nearest(list(map(float, vector))),
                        with_payload=True,
                        params=params,
                    )
                )
            ]
            for vector in vectors
        ]

    def close(name: str) -> None:
        opened = shards.pop(name, None)
        try:
            if opened is not None:
                opened.flush()
                opened.close()
        finally:
            release(name)

    handlers = {
        "create": create,
        "count": lambda name: shard(name).count(qe.CountRequest(exact=True)),
        "scroll": scroll,
        "retrieve": lambda name, ids: records(shard(name).retrieve(ids, True, True)),
        "query": query,
        "points": points,
        "upsert": upsert,
        "optimize": optimize,
        "index_state": index_state,
        "delete": lambda name, ids: shard(name).update(qe.UpdateOperation.delete_points(ids)),
        "flush": lambda name: shard(name).flush() if name in shards else None,
        "close": close,
    }
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            break
        try:
            conn.send((True, handlers[method](*args)))
        except BaseException as exc:  # every failure goes back to the caller, as data
            conn.send((False, _describe(exc, root)))
    for name in list(shards):
        try:
            close(name)
        except Exception:
            pass


def main() -> None:
    """`python -m ferry.core.connectors.qdrant.edge_worker ROOT`: serve requests on stdin/stdout.

    The request channel moves off fd 1 so that anything the engine prints cannot corrupt
    it; Ctrl-C and hang-up are the parent's business (it closes the pipe to stop us).
    """
    import os
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    channel_out = os.dup(1)
    os.dup2(2, 1)
    conn_in = Connection(0, writable=False)
    conn_out = Connection(channel_out, readable=False)
    _serve(_Duplex(conn_in, conn_out), sys.argv[1])


class _Duplex:
    """Two one-way pipes as one connection (what `_serve` expects)."""

    def __init__(self, incoming: Connection, outgoing: Connection) -> None:
        self.incoming = incoming
        self.outgoing = outgoing

    def recv(self) -> Any:
        return self.incoming.recv()

    def send(self, obj: Any) -> None:
        self.outgoing.send(obj)

    def close(self) -> None:
        self.incoming.close()
        self.outgoing.close()


def _describe(exc: BaseException, where: str = "") -> tuple[str, str, str, str]:
    """A failure as data for the pipe, sorted by `classify` here, where the exception is."""
    error = classify(exc, "a Qdrant Edge request", where, "Qdrant Edge")
    if error is not exc and not isinstance(error, ResourceError):
        return "PermanentError", f"{type(exc).__name__}: {exc}", where, ""
    return type(error).__name__, error.what, error.where, error.fix


def _rebuild(kind: str, what: str, where: str, fix: str) -> FerryError:
    classes = {
        cls.__name__: cls for cls in (FerryError, PermanentError, TransientError, ResourceError)
    }
    cls = classes.get(kind)
    if cls is None:
        return PermanentError(f"Qdrant Edge: {what}", where=where, fix=fix)
    return cls(what, where=where, fix=fix)


# -- the parent side ------------------------------------------------------------------------
class EdgeProcess:
    """A handle on the child: `call` is thread-safe and blocking (run it in a thread)."""

    def __init__(self, root: Path, lock_wait: float | None = None) -> None:
        """`lock_wait`: seconds the worker waits for a shard another Ferry process holds
        (default `LOCK_WAIT_SECONDS`; the router's EdgeStore passes 0, since an app's call
        must not stall behind a running migration)."""
        self.root = root
        self.lock_wait = lock_wait
        self._send_lock = threading.Lock()
        self._pending: deque[Future[Any]] = deque()
        self._alive = False
        self._receiver: threading.Thread | None = None
        self._process: Any = None
        self._conn: _Duplex | None = None
        self.instance = uuid.uuid4().hex[:8]
        self.vectors = SharedVectors()

    @property
    def running(self) -> bool:
        """Whether the child is up (it starts on the first call)."""
        return self._alive

    def _start(self) -> _Duplex:
        # A plain child process (not multiprocessing's spawn, which re-imports the caller's
        # __main__): it only needs the package on sys.path.
        package_root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        if self.lock_wait is not None:
            env[LOCK_WAIT_ENV] = str(self.lock_wait)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ferry.core.connectors.qdrant.edge_worker", str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._conn = _Duplex(
            Connection(os.dup(self._process.stdout.fileno()), writable=False),
            Connection(os.dup(self._process.stdin.fileno()), readable=False),
        )
        self._process.stdin.close()
        self._process.stdout.close()
        self._alive = True
        self._receiver = threading.Thread(
            target=self._receive, args=(self._conn,), daemon=True, name="ferry-edge-replies"
        )
        self._receiver.start()
        return self._conn

    def call(self, method: str, *args: Any) -> Any:
        """Send a request and wait for its answer. Requests from several threads are
        pipelined: the next one is already in the pipe while the child works on this one."""
        future: Future[Any] = Future()
        with self._send_lock:
            conn = self._conn if self._alive else None
            if conn is None:
                conn = self._start()
            self._pending.append(future)
            try:
                conn.send((method, args))
            except (OSError, ValueError) as exc:
                self._pending.remove(future)
                raise self._stopped(method) from exc
        if method == "optimize":
            faultpoints.reached("optimizing")  # the worker builds the index; we may die now
        try:
            ok, result = future.result(timeout=CALL_TIMEOUT_SECONDS)
        except FutureTimeout:
            self._kill()  # stuck: the next call starts a fresh worker
            raise TransientError(
                f"the Qdrant Edge worker did not answer {method} within "
                f"{CALL_TIMEOUT_SECONDS:.0f}s",
                where=str(self.root),
                fix="Ferry restarts it on the next try",
            ) from None
        if ok:
            return result
        raise _rebuild(*result)

    def upsert(self, name: str, point_ids: list[Any], matrix: Any, payloads: list[Any]) -> None:
        """`call("upsert", …)` with the vectors handed over in shared memory."""
        sent, block = self.vectors.put(matrix)
        try:
            self.call("upsert", name, point_ids, sent, payloads)
        finally:
            self.vectors.release(block)  # answered (or the worker is gone): reusable

    def _stopped(self, method: str) -> FerryError:
        if _free_bytes(self.root) < LOW_DISK_BYTES:
            return ResourceError(
                f"disk full: the Qdrant Edge worker stopped during {method}",
                where=str(self.root),
                fix="free space on that disk, then re-run to resume",
            )
        return TransientError(
            f"the Qdrant Edge worker process stopped during {method}",
            where=str(self.root),
            fix="Ferry restarts it on the next try",
        )

    def _receive(self, conn: _Duplex) -> None:
        """Answers come back in request order (the child serves one at a time)."""
        while True:
            try:
                reply = conn.recv()
            except (EOFError, OSError):
                break
            self._pending.popleft().set_result(reply)
        with self._send_lock:
            self._alive = False
            while self._pending:
                self._pending.popleft().set_exception(self._stopped("a request"))

    def _reap(self) -> None:
        if self._conn is not None:
            self._conn.outgoing.close()  # end-of-file: the child flushes and exits
        if self._receiver is not None:
            self._receiver.join(timeout=60)
            self._receiver = None
        if self._conn is not None:
            self._conn.incoming.close()
            self._conn = None
        if self._process is not None:
            try:
                self._process.wait(timeout=30)  # it flushes its shards before exiting
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _kill(self) -> None:
        process = self._process
        if process is not None:
            process.kill()  # the receiver sees end-of-file and fails what is pending

    def close(self) -> None:
        """Close the pipe: the child flushes, closes its shards and exits."""
        self._reap()
        self.vectors.close()


def _free_bytes(root: Path) -> int:
    for path in (root, *root.parents):
        try:
            return shutil.disk_usage(path).free
        except OSError:
            continue
    return LOW_DISK_BYTES  # unknown: do not claim a full disk


if __name__ == "__main__":
    main()
