"""`Router`: the store an app talks to during a cutover, in front of a primary and a secondary.

Synchronous on purpose: most apps that embed a vector store call it from plain functions or a
thread pool. The mode comes from the state file that `ferry router set` and `ferry cutover`
change; each call costs one ``os.stat`` to notice a change, so apps switch without a redeploy.

Rules the app can rely on:
- the *serving* store (primary, or secondary once flipped) answers; its errors reach the app;
- the *mirror* store's failures never do: they are counted and kept in the replay log, and
  `replay()` re-sends them in order once that store is back;
- shadow reads run the secondary's query on a worker thread beside the primary's and never
  delay or change the app's answer; overlap@k and the latency difference are recorded.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import FerryError
from core.model import Metadata
from core.router.replay import ReplayLog
from core.router.state import (
    STATE_ENV,
    FileWatch,
    Mode,
    Thresholds,
    default_stats_path,
    evaluate,
    parse_mode,
    read_state,
    set_mode,
    write_json_atomic,
)
from core.router.stores import QueryResult, Records, VectorStore

SIDES = ("primary", "secondary")
LATENCY_SAMPLES = 2048
MAX_PENDING_SHADOWS = 64
FLUSH_SECONDS = 5.0
P99_EVERY = 50
TRIAL_MODES = {Mode.SHADOW, Mode.FLIPPED, Mode.TARGET_ONLY}  # where thresholds are checked


@dataclass
class ReplayResult:
    replayed: int
    remaining: int
    error: str | None = None


class _SideStats:
    """Calls, errors and recent latencies of one store (a bounded window for p50/p99)."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._p99: float | None = None
        self._p99_at = -1

    def quick(self) -> dict[str, Any]:
        """Figures for the per-call threshold check: counters now, p99 recomputed only
        every `P99_EVERY` calls (a percentile over the window per call would cost more than
        the routing itself)."""
        if self.latencies_ms and (self._p99_at < 0 or self.calls - self._p99_at >= P99_EVERY):
            self._p99 = float(np.percentile(np.asarray(self.latencies_ms), 99))
            self._p99_at = self.calls
        return {
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.errors / self.calls if self.calls else None,
            "p99_ms": self._p99,
        }

    def view(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        return {
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.errors / self.calls if self.calls else None,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        }


class Router:
    """A VectorStore over two stores whose behaviour follows the router state file."""

    def __init__(
        self,
        primary: VectorStore,
        secondary: VectorStore,
        state_path: str | Path | None = None,
        *,
        mode: Mode | str | None = None,
        thresholds: Thresholds | None = None,
        journal: Any = None,
        replay_path: str | Path | None = None,
        stats_path: str | Path | None = None,
        flush_every: int = 100,
        replay_every: int = 50,
    ) -> None:
        """`state_path` (or $FERRY_ROUTER_STATE) makes the mode switchable from outside;
        without one the router keeps `mode` (default primary-only) for its lifetime."""
        self.stores: dict[str, VectorStore] = {"primary": primary, "secondary": secondary}
        chosen = state_path or os.environ.get(STATE_ENV)
        self.state_path = Path(chosen) if chosen else None
        self._default_mode = (
            parse_mode(mode.value if isinstance(mode, Mode) else mode)
            if mode
            else Mode.PRIMARY_ONLY
        )
        self._mode = self._default_mode
        self._base_thresholds = thresholds or Thresholds()
        self.thresholds = self._base_thresholds
        self.journal = journal
        if replay_path is None and self.state_path is not None:
            replay_path = self.state_path.with_name(self.state_path.name + ".replay.jsonl")
        self.replay_log = ReplayLog(Path(replay_path) if replay_path else None)
        if stats_path is None and self.state_path is not None:
            stats_path = default_stats_path(self.state_path)
        self.stats_path = Path(stats_path) if stats_path else None
        self.flush_every = flush_every
        self.replay_every = replay_every

        self._lock = threading.RLock()
        self._watch = FileWatch(self.state_path) if self.state_path is not None else None
        self._side_stats = {side: _SideStats() for side in SIDES}
        self.reads = 0
        self.writes = 0
        self.serving_errors = 0
        self.mirror_failures = 0
        self.deferred = 0
        self.state_errors = 0
        self._deferred_since_replay = 0
        self._shadow = {
            "queries": 0,
            "errors": 0,
            "compared": 0,
            "skipped": 0,
            "overlap_sum": 0.0,
            "latency_diff_sum": 0.0,
            "k": None,
        }
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferry-shadow")
        self._pending: set[Future[Any]] = set()
        self._calls_since_flush = 0
        self._last_flush = time.monotonic()
        self.recommendation: dict[str, Any] | None = None
        self._auto_done = False
        self.last_mode_change: dict[str, Any] | None = None

    # -- mode -------------------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        """The current mode, re-read when the state file changed (one stat per call)."""
        if self._watch is None or not self._watch.changed():
            return self._mode
        with self._lock:
            if not self._watch.exists:
                self._mode = self._default_mode
                return self._mode
            try:
                state = read_state(self._watch.path)
                new_mode = parse_mode(str(state.get("mode")))
            except FerryError:
                self.state_errors += 1  # a broken file must not break the app
                return self._mode
            if new_mode is not self._mode:
                self.last_mode_change = {
                    "from": self._mode.value,
                    "to": new_mode.value,
                    "ts": time.time(),
                }
                self._auto_done = False
            self._mode = new_mode
            merged = {**asdict(self._base_thresholds), **(state.get("thresholds") or {})}
            self.thresholds = Thresholds.from_json(merged)
        return self._mode

    def _sides(self, mode: Mode) -> tuple[str, str | None]:
        serving = "secondary" if mode.serves_secondary else "primary"
        mirror = ("primary" if serving == "secondary" else "secondary") if mode.mirrors else None
        return serving, mirror

    # -- timing -----------------------------------------------------------------------------
    def _timed(self, side: str, call: Callable[[], Any]) -> tuple[Any, float]:
        start = time.perf_counter()
        try:
            result = call()
        except Exception:
            with self._lock:
                stats = self._side_stats[side]
                stats.calls += 1
                stats.errors += 1
                stats.latencies_ms.append((time.perf_counter() - start) * 1000)
            raise
        elapsed = (time.perf_counter() - start) * 1000
        with self._lock:
            stats = self._side_stats[side]
            stats.calls += 1
            stats.latencies_ms.append(elapsed)
        return result, elapsed

    def _serve(self, side: str, call: Callable[[], Any]) -> tuple[Any, float]:
        try:
            return self._timed(side, call)
        except Exception:
            with self._lock:
                self.serving_errors += 1
            self._after_call()
            raise

    # -- writes -----------------------------------------------------------------------------
    def upsert(
        self,
        ids: list[str],
        embeddings: Any,
        metadatas: list[Metadata | None] | None = None,
        documents: list[str | None] | None = None,
    ) -> None:
        """Insert or replace records (Chroma `upsert` semantics) on the stores the mode names."""
        matrix = np.asarray(embeddings, dtype=np.float32)
        matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix
        args = {
            "ids": list(ids),
            "embeddings": matrix,
            "metadatas": metadatas,
            "documents": documents,
        }
        self._write("upsert", args)

    add = upsert  # apps that `add` get idempotent upserts: a retried add duplicates nothing

    def delete(self, ids: list[str]) -> None:
        self._write("delete", {"ids": list(ids)})

    def _write(self, op: str, args: dict[str, Any]) -> None:
        serving, mirror = self._sides(self.mode)
        self._serve(serving, lambda: _apply(self.stores[serving], op, args))
        with self._lock:
            self.writes += 1
        if mirror is not None:
            self._mirror(op, mirror, args)
        self._after_call()

    def _mirror(self, op: str, side: str, args: dict[str, Any]) -> None:
        if self.replay_log.pending():
            # Earlier writes still wait: queue behind them so order is kept.
            self.replay_log.append(_entry(op, side, args, error=None))
            with self._lock:
                self.deferred += 1
                self._deferred_since_replay += 1
                due = self.replay_every and self._deferred_since_replay >= self.replay_every
            if due:
                self.replay()
            return
        try:
            self._timed(side, lambda: _apply(self.stores[side], op, args))
        except Exception as exc:
            with self._lock:
                self.mirror_failures += 1
            self.replay_log.append(_entry(op, side, args, error=_describe(exc)))

    def replay(self) -> ReplayResult:
        """Re-send what the mirror missed, in order; stops at the first failure and keeps
        the rest for the next try."""
        with self.replay_log.exclusive():
            entries = self.replay_log.entries()
            done = 0
            error = None
            for entry in entries:
                side = entry["side"]
                try:
                    self._timed(
                        side, lambda e=entry, s=side: _apply(self.stores[s], e["op"], _args(e))
                    )
                except Exception as exc:
                    error = _describe(exc)
                    break
                done += 1
            self.replay_log.rewrite(entries[done:])
        with self._lock:
            self._deferred_since_replay = 0
        return ReplayResult(replayed=done, remaining=len(entries) - done, error=error)

    # -- reads ------------------------------------------------------------------------------
    def query(self, embeddings: Any, k: int = 10) -> QueryResult:
        """Nearest neighbours from the serving store; in shadow mode also from the secondary,
        on a worker thread, for comparison only."""
        matrix = np.asarray(embeddings, dtype=np.float32)
        matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix
        mode = self.mode
        serving, _mirror = self._sides(mode)
        shadow: Future[Any] | None = None
        served = _Served()
        if mode is Mode.SHADOW:
            with self._lock:
                self._shadow["queries"] += 1
                self._pending = {f for f in self._pending if not f.done()}
                if len(self._pending) < MAX_PENDING_SHADOWS:
                    shadow = self._pool.submit(self._shadow_run, matrix, k, served)
                    self._pending.add(shadow)
                else:
                    self._shadow["skipped"] += 1  # never queue without bound
        try:
            result, elapsed = self._serve(serving, lambda: self.stores[serving].query(matrix, k))
        except BaseException:
            served.give(None, 0.0)
            raise
        served.give(result, elapsed)
        with self._lock:
            self.reads += 1
        self._after_call()
        return result

    def _shadow_run(self, matrix: np.ndarray, k: int, served: _Served) -> None:
        """Query the secondary, then compare with what the app was served (once it was)."""
        try:
            answer, elapsed = self._timed(
                "secondary", lambda: self.stores["secondary"].query(matrix, k)
            )
        except Exception:
            answer, elapsed = None, 0.0
        served.ready.wait()
        if served.result is None:
            return  # the serving store failed: nothing to compare with
        with self._lock:
            if answer is None:
                self._shadow["errors"] += 1
                return
            self._shadow["compared"] += 1
            self._shadow["k"] = k
            self._shadow["overlap_sum"] += overlap_at_k(served.result.ids, answer.ids, k)
            self._shadow["latency_diff_sum"] += elapsed - served.ms

    def get(self, ids: list[str]) -> Records:
        serving, _ = self._sides(self.mode)
        result, _ms = self._serve(serving, lambda: self.stores[serving].get(list(ids)))
        with self._lock:
            self.reads += 1
        self._after_call()
        return result

    def count(self) -> int:
        serving, _ = self._sides(self.mode)
        result, _ms = self._serve(serving, lambda: self.stores[serving].count())
        return int(result)

    # -- figures ----------------------------------------------------------------------------
    def wait_for_shadows(self) -> None:
        """Block until every shadow query in flight has been compared (tests, shutdown)."""
        with self._lock:
            pending = list(self._pending)
        wait_futures(pending)  # a shadow future is done only after its comparison
        with self._lock:
            self._pending.difference_update(pending)

    def stats(self) -> dict[str, Any]:
        """This process's figures, as `ferry router status` and the Cutover screen show them."""
        with self._lock:
            compared = self._shadow["compared"]
            stores = {side: self._side_stats[side].view() for side in SIDES}
            return {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "mode": self._mode.value,
                "updated_at": time.time(),
                "reads": self.reads,
                "writes": self.writes,
                "serving_errors": self.serving_errors,
                "mirror_failures": self.mirror_failures,
                "deferred": self.deferred,
                "replay_backlog": len(self.replay_log) if self.replay_log.pending() else 0,
                "state_errors": self.state_errors,
                "shadow": {
                    "queries": self._shadow["queries"],
                    "errors": self._shadow["errors"],
                    "skipped": self._shadow["skipped"],
                    "compared": compared,
                    "k": self._shadow["k"],
                    "overlap_at_k": self._shadow["overlap_sum"] / compared if compared else None,
                    "latency_diff_ms": (
                        self._shadow["latency_diff_sum"] / compared if compared else None
                    ),
                },
                "stores": stores,
                "recommendation": self.recommendation,
            }

    def flush_stats(self) -> dict[str, Any]:
        """Wait for shadow comparisons, then write this process's figures beside the state."""
        self.wait_for_shadows()
        figures = self.stats()
        if self.stats_path is not None:
            write_json_atomic(self.stats_path, figures)
        with self._lock:
            self._calls_since_flush = 0
            self._last_flush = time.monotonic()
        return figures

    def _after_call(self) -> None:
        with self._lock:
            self._calls_since_flush += 1
            due = (
                self._calls_since_flush >= self.flush_every
                or time.monotonic() - self._last_flush >= FLUSH_SECONDS
            )
            mode = self._mode
            on_trial = mode in TRIAL_MODES
            stores = {side: self._side_stats[side].quick() for side in SIDES} if on_trial else {}
        if on_trial or self.recommendation is not None:
            self._check_thresholds(mode, stores)
        if due and self.stats_path is not None:
            figures = self.stats()
            write_json_atomic(self.stats_path, figures)
            with self._lock:
                self._calls_since_flush = 0
                self._last_flush = time.monotonic()

    def _check_thresholds(self, mode: Mode, stores: dict[str, dict[str, Any]]) -> None:
        advice = evaluate(mode, stores, self.thresholds)
        with self._lock:
            self.recommendation = advice
            act = (
                advice is not None
                and self.thresholds.auto_rollback
                and advice["automatic_allowed"]
                and not self._auto_done
                and self.state_path is not None
            )
            if act:
                self._auto_done = True
        if not act or advice is None or self.state_path is None:
            return
        reason = "automatic rollback: " + "; ".join(advice["reasons"])
        by = f"router pid {os.getpid()}@{socket.gethostname()}"
        state, previous = set_mode(self.state_path, Mode(advice["to"]), reason=reason, by=by)
        if self.journal is not None:
            self.journal.record_cutover(
                action="router",
                target_uri=str(state.get("target_uri") or f"router:{self.state_path}"),
                alias=str(state.get("alias") or self.state_path.stem),
                from_collection=previous,
                to_collection=advice["to"],
                reason=reason,
                detail={"automatic": True, "stores": stores},
            )

    def close(self) -> None:
        """Finish shadow comparisons and write the last figures; the stores stay the app's."""
        self.flush_stats()
        self._pool.shutdown(wait=True)


class _Served:
    """What the serving store answered, handed to the shadow worker when it is known."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.result: QueryResult | None = None
        self.ms = 0.0

    def give(self, result: QueryResult | None, ms: float) -> None:
        self.result, self.ms = result, ms
        self.ready.set()


def overlap_at_k(served: list[list[str]], shadow: list[list[str]], k: int) -> float:
    """Mean share of the served top-k that the shadow store also returned in its top-k."""
    if not served:
        return 1.0
    shares = []
    for mine, theirs in zip(served, shadow, strict=False):
        top = mine[:k]
        if not top:
            shares.append(1.0 if not theirs[:k] else 0.0)
            continue
        shares.append(len(set(top) & set(theirs[:k])) / len(top))
    shares.extend(0.0 for _ in range(len(served) - len(shares)))
    return float(sum(shares) / len(shares))


def _apply(store: VectorStore, op: str, args: dict[str, Any]) -> None:
    if op == "upsert":
        store.upsert(args["ids"], args["embeddings"], args.get("metadatas"), args.get("documents"))
    elif op == "delete":
        store.delete(args["ids"])
    else:  # pragma: no cover - entries are written by this module only
        raise ValueError(f"unknown operation {op!r}")


def _entry(op: str, side: str, args: dict[str, Any], error: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ts": time.time(),
        "op": op,
        "side": side,
        "ids": args["ids"],
        "error": error,
    }
    if op == "upsert":
        entry["embeddings"] = np.asarray(args["embeddings"], dtype=np.float32).tolist()
        entry["metadatas"] = args.get("metadatas")
        entry["documents"] = args.get("documents")
    return entry


def _args(entry: dict[str, Any]) -> dict[str, Any]:
    args = {"ids": entry["ids"]}
    if entry["op"] == "upsert":
        args["embeddings"] = np.asarray(entry["embeddings"], dtype=np.float32)
        args["metadatas"] = entry.get("metadatas")
        args["documents"] = entry.get("documents")
    return args


def _describe(exc: BaseException) -> str:
    """Type and first line of a failure; never a payload, never a key."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
