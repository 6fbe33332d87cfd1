"""`Router`: the store an app talks to during a cutover, in front of a primary and a secondary.

Synchronous on purpose: most apps that embed a vector store call it from plain functions or a
thread pool. The mode comes from the state file that `ferry router set` and `ferry cutover`
change; each call costs one ``os.stat`` to notice a change, so apps switch without a redeploy.

Rules the app can rely on:
- the *serving* store (primary, or secondary once flipped) answers; its errors reach the app;
- the *mirror* store's failures never do: they are counted and kept in the replay log, and
  `replay()` re-sends them in order once that store is back;
- shadow reads run the secondary's query on a worker thread beside the primary's and never
  delay or change the app's answer; overlap@k and the latency difference are recorded;
- in canary mode a stated share of *keyed* reads is served by the secondary (sticky per key,
  core/router/canary.py); a canary read the secondary fails is served by the primary;
- thresholds judge the figures of the current *window*, which starts afresh at every mode or
  dial change; a mirror write queued behind an earlier failure counts as a failed call.
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

from ferry.core.errors import FerryError
from ferry.core.model import Metadata
from ferry.core.router.canary import serves_target
from ferry.core.router.overlap import OverlapJudge
from ferry.core.router.replay import ReplayLog
from ferry.core.router.state import (
    STATE_ENV,
    FileWatch,
    Mode,
    Thresholds,
    default_stats_path,
    evaluate,
    on_trial,
    parse_mode,
    read_state,
    set_mode,
    write_json_atomic,
)
from ferry.core.router.stores import QueryResult, Records, VectorStore

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


class _Window:
    """The figures thresholds judge: since the last mode or canary-dial change only, so a
    p99 left from mirror writes in dual-write never rolls back a shadow that has not run."""

    def __init__(self, mode: Mode, percent: float) -> None:
        self.started = time.time()
        self.mode = mode
        self.percent = percent
        self.sides = {side: _SideStats() for side in SIDES}
        self.overlap = OverlapJudge()

    def view(self) -> dict[str, Any]:
        return {
            "since": self.started,
            "mode": self.mode.value,
            "percent": self.percent,
            "stores": {side: self.sides[side].view() for side in SIDES},
            "overlap": self.overlap.to_json(),
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
        self.journal = _open_journal(journal)
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
        self.percent = 0.0  # canary: share of keyed reads the secondary serves
        self.canary_shadow = False  # canary: shadow-compare every read with the other side
        self._window = _Window(self._mode, self.percent)
        self.canary = {"target_reads": 0, "primary_reads": 0, "fallbacks": 0, "unkeyed": 0}
        self.journal_errors = 0
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
        self._overlap_all = OverlapJudge()  # the shadow overlap judged against exact, lifetime
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
            percent = _percent(state.get("percent")) if new_mode is Mode.CANARY else 0.0
            if new_mode is not self._mode or percent != self.percent:
                self.last_mode_change = {
                    "from": self._mode.value,
                    "to": new_mode.value,
                    "percent": percent,
                    "ts": time.time(),
                }
                self._auto_done = False
                self._window = _Window(new_mode, percent)  # judge the new mode on its own
            self._mode = new_mode
            self.percent = percent
            self.canary_shadow = bool(state.get("shadow")) and new_mode is Mode.CANARY
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
            self._count(side, (time.perf_counter() - start) * 1000, failed=True)
            raise
        elapsed = (time.perf_counter() - start) * 1000
        self._count(side, elapsed, failed=False)
        return result, elapsed

    def _count(self, side: str, elapsed_ms: float | None, failed: bool) -> None:
        """One call of `side`, in the lifetime figures and the current window's."""
        with self._lock:
            for stats in (self._side_stats[side], self._window.sides[side]):
                stats.calls += 1
                stats.errors += int(failed)
                if elapsed_ms is not None:
                    stats.latencies_ms.append(elapsed_ms)

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
            # A queued write is a write the store did not take: it counts toward the error
            # rate, so an outage (a deleted shard, a dead target) rolls back instead of
            # hiding behind the one failure that started the queue.
            self._count(side, None, failed=True)
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
    def query(self, embeddings: Any, k: int = 10, key: Any = None) -> QueryResult:
        """Nearest neighbours from the serving store; in shadow mode also from the secondary,
        on a worker thread, for comparison only. `key` (a user, tenant or session id) picks
        the side in canary mode, the same side for the same key every time; without a key
        a canary read is served by the primary."""
        matrix = np.asarray(embeddings, dtype=np.float32)
        matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix
        mode = self.mode
        serving = self._read_side(mode, key)
        shadow: Future[Any] | None = None
        served = _Served()
        if mode is Mode.SHADOW or (mode is Mode.CANARY and self.canary_shadow):
            other = "primary" if serving == "secondary" else "secondary"
            with self._lock:
                self._shadow["queries"] += 1
                self._pending = {f for f in self._pending if not f.done()}
                if len(self._pending) < MAX_PENDING_SHADOWS:
                    shadow = self._pool.submit(self._shadow_run, matrix, k, served, other)
                    self._pending.add(shadow)
                else:
                    self._shadow["skipped"] += 1  # never queue without bound
        try:
            result, elapsed = self._read(mode, serving, lambda s: self.stores[s].query(matrix, k))
        except BaseException:
            served.give(None, 0.0)
            raise
        served.give(result, elapsed)
        with self._lock:
            self.reads += 1
        self._after_call()
        return result

    def _read_side(self, mode: Mode, key: Any) -> str:
        if mode is not Mode.CANARY:
            return self._sides(mode)[0]
        with self._lock:
            if key is None:
                self.canary["unkeyed"] += 1
                return "primary"
            side = "secondary" if serves_target(key, self.percent) else "primary"
            self.canary["target_reads" if side == "secondary" else "primary_reads"] += 1
        return side

    def _read(self, mode: Mode, side: str, call: Callable[[str], Any]) -> tuple[Any, float]:
        """Serve a read from `side`; a canary read the secondary fails is served by the
        primary instead (the failure counts toward the secondary's error rate)."""
        if mode is Mode.CANARY and side == "secondary":
            try:
                return self._timed(side, lambda: call(side))
            except Exception:
                with self._lock:
                    self.canary["fallbacks"] += 1
                side = "primary"
        return self._serve(side, lambda: call(side))

    def _shadow_run(self, matrix: np.ndarray, k: int, served: _Served, side: str) -> None:
        """Query `side` (the store not serving this read), then compare with what the app
        was served (once it was)."""
        try:
            answer, elapsed = self._timed(side, lambda: self.stores[side].query(matrix, k))
        except Exception:
            answer, elapsed = None, 0.0
        served.ready.wait()
        if served.result is None:
            return  # the serving store failed: nothing to compare with
        with self._lock:
            if answer is None:
                self._shadow["errors"] += 1
                return
            primary, secondary = (
                (served.result, answer) if side == "secondary" else (answer, served.result)
            )
            self._shadow["compared"] += 1
            self._shadow["k"] = k
            overlaps = [
                self._window.overlap.add((p_ids, p_d), (s_ids, s_d), k)
                for p_ids, p_d, s_ids, s_d in zip(
                    primary.ids,
                    primary.distances,
                    secondary.ids,
                    secondary.distances,
                    strict=False,
                )
            ]
            self._judge_lifetime(primary, secondary, k)
            self._shadow["overlap_sum"] += (
                sum(overlaps) / len(overlaps) if overlaps else overlap_at_k(primary.ids, [], k)
            )
            latency = elapsed - served.ms
            self._shadow["latency_diff_sum"] += latency if side == "secondary" else -latency

    def _judge_lifetime(self, primary: QueryResult, secondary: QueryResult, k: int) -> None:
        for p_ids, p_d, s_ids, s_d in zip(
            primary.ids, primary.distances, secondary.ids, secondary.distances, strict=False
        ):
            self._overlap_all.add((p_ids, p_d), (s_ids, s_d), k)

    def get(self, ids: list[str], key: Any = None) -> Records:
        mode = self.mode
        serving = self._read_side(mode, key)
        result, _ms = self._read(mode, serving, lambda s: self.stores[s].get(list(ids)))
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
                    "judged": self._overlap_all.to_json(),
                },
                "stores": stores,
                "canary": {
                    "percent": self.percent,
                    "shadow": self.canary_shadow,
                    **self.canary,
                },
                "window": self._window.view(),
                "journal_errors": self.journal_errors,
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
            trial = on_trial(mode, self.percent, self.canary_shadow)
            window = self._window
            stores = {side: window.sides[side].quick() for side in SIDES} if trial else {}
        if trial or self.recommendation is not None:
            self._check_thresholds(mode, stores, window)
        if due and self.stats_path is not None:
            figures = self.stats()
            write_json_atomic(self.stats_path, figures)
            with self._lock:
                self._calls_since_flush = 0
                self._last_flush = time.monotonic()

    def _check_thresholds(
        self, mode: Mode, stores: dict[str, dict[str, Any]], window: _Window
    ) -> None:
        with self._lock:
            advice = evaluate(
                mode, stores, self.thresholds, window.overlap, window.percent, self.canary_shadow
            )
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
        extra: dict[str, Any] = {
            "rolled_back": {
                "ts": time.time(),
                "by": by,
                "from": advice["from"],
                "from_percent": advice.get("from_percent"),
                "to": advice["to"],
                "reasons": advice["reasons"],
            }
        }
        if "percent" in advice:
            extra["percent"] = advice["percent"]
        state, previous = set_mode(
            self.state_path, Mode(advice["to"]), reason=reason, by=by, **extra
        )
        if mode is Mode.CANARY:
            with self._lock:  # this process stops sending keys to the target at once
                self.percent = 0.0
                self._window = _Window(Mode.CANARY, 0.0)  # the 0 % dial is judged afresh
        if self.journal is not None:
            try:
                self.journal.cutovers.record(
                    action="router",
                    target_uri=str(state.get("target_uri") or f"router:{self.state_path}"),
                    alias=str(state.get("alias") or self.state_path.stem),
                    from_collection=_dial(previous, advice.get("from_percent")),
                    to_collection=_dial(advice["to"], advice.get("percent")),
                    reason=reason,
                    detail={"automatic": True, "stores": stores, "window": window.view()},
                )
            except Exception:
                with self._lock:  # the journal must never break the app
                    self.journal_errors += 1

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


def _dial(mode: str, percent: float | None) -> str:
    """A mode as the journal shows it: `canary 25%` for the dial, else the mode."""
    return f"{mode} {percent:g}%" if percent is not None else mode


def _percent(value: Any) -> float:
    """The state file's canary share; anything unreadable is 0 % (the safe side)."""
    try:
        percent = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(percent, 0.0), 100.0) if percent == percent else 0.0


def _open_journal(journal: Any) -> Any:
    """A `ferry.core.journal.Journal`, a path to one (opened here), True for Ferry's default
    journal (the one `ferry` itself writes: $FERRY_STATE or the user state dir), or None."""
    if journal is None or journal is False or hasattr(journal, "cutovers"):
        return journal
    from ferry.core.journal import Journal

    return Journal() if journal is True else Journal(Path(journal).expanduser())


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
