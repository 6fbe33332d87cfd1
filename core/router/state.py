"""The router's state file: which mode the running apps use, changed by `ferry router set` or
`ferry cutover` without redeploying anything.

The file is tiny JSON, replaced atomically (temp file + ``os.replace``) so a reader never sees
half of it, and read-modify-writes take an ``flock`` on a sibling lock file so two writers
(a user's `ferry router set` and an app's automatic rollback) never lose each other's change.
Apps write their figures to *their own* stats file (one per process, in a sibling directory),
so the mode file has few writers and the stats of several app processes can be summed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import FerryError

STATE_ENV = "FERRY_ROUTER_STATE"


class Mode(StrEnum):
    """What the router does with each call. The "serving" store answers the app."""

    PRIMARY_ONLY = "primary-only"  # serve primary; secondary untouched
    DUAL_WRITE = "dual-write"  # serve primary; mirror writes to secondary (best effort)
    SHADOW = "shadow"  # dual-write + query both, serve primary, compare (overlap@k, latency)
    FLIPPED = "flipped"  # serve secondary; mirror writes to primary so rollback loses nothing
    TARGET_ONLY = "target-only"  # serve secondary; primary untouched

    @property
    def serves_secondary(self) -> bool:
        return self in {Mode.FLIPPED, Mode.TARGET_ONLY}

    @property
    def mirrors(self) -> bool:
        return self in {Mode.DUAL_WRITE, Mode.SHADOW, Mode.FLIPPED}


MODES = [m.value for m in Mode]


def parse_mode(text: str) -> Mode:
    try:
        return Mode(text.strip().lower().replace("_", "-"))
    except ValueError as exc:
        raise FerryError(
            f"unknown router mode {text!r}", fix=f"use one of: {', '.join(MODES)}"
        ) from exc


@dataclass
class Thresholds:
    """When the figures say "go back": error rate and p99 latency of the store being tried."""

    max_error_rate: float = 0.05
    max_p99_ms: float | None = None
    min_calls: int = 20  # do not judge on a handful of calls
    auto_rollback: bool = False

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> Thresholds:
        data = data or {}
        known = {k: data[k] for k in asdict(Thresholds()) if k in data}
        return Thresholds(**known)


class FileWatch:
    """Tells, with one ``os.stat``, whether a small file may have changed since it was read.

    (mtime, inode, size) catches ordinary changes. File times are coarse (a kernel tick) and
    an inode can be reused by the next atomic replace, so — like git's "racily clean" rule —
    a file modified within `RACY_NS` of our last read is read again until that window passes.
    """

    RACY_NS = 100_000_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._read_ns = 0
        self.exists = False

    def changed(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            changed = self._stamp is not None or self._read_ns == 0
            self._stamp, self.exists = None, False
            self._read_ns = self._read_ns or 1
            return changed
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        racy = st.st_mtime_ns >= self._read_ns - self.RACY_NS
        if stamp != self._stamp or racy:
            self._stamp, self.exists = stamp, True
            self._read_ns = time.time_ns()
            return True
        return False


def resolve_state_path(path: str | Path | None) -> Path:
    """The explicit path, else $FERRY_ROUTER_STATE; a clear error when neither is given."""
    chosen = path or os.environ.get(STATE_ENV)
    if not chosen:
        raise FerryError(
            "no router state file",
            fix=f"pass --state-file PATH or set {STATE_ENV}",
        )
    resolved = Path(chosen).expanduser()
    if resolved.exists() and not resolved.is_file():  # a directory, /dev/null, a pipe
        raise FerryError(
            "the router state path is not a regular file",
            where=str(resolved),
            fix="pass --state-file PATH/router.json (a file; created if missing)",
        )
    return resolved


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FerryError(
            f"{path.name} is not valid JSON: {exc}", where=str(path), fix="fix or remove the file"
        ) from exc
    return data if isinstance(data, dict) else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock for read-modify-write of `path` (a sibling ``.lock`` file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def who() -> str:
    return f"{os.environ.get('USER') or os.environ.get('LOGNAME') or '?'}@{socket.gethostname()}"


def read_state(path: Path) -> dict[str, Any]:
    """The state file, or the defaults (primary-only) when it does not exist yet."""
    data = read_json(path) or {}
    data.setdefault("mode", Mode.PRIMARY_ONLY.value)
    data.setdefault("history", [])
    return data


def set_mode(
    path: Path,
    mode: Mode,
    reason: str | None = None,
    by: str | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], str]:
    """Change the mode (and any extra keys); returns (new state, previous mode)."""
    with locked(path):
        state = read_state(path)
        previous = str(state["mode"])
        now = time.time()
        state.update({k: v for k, v in extra.items() if v is not None})
        state["mode"] = mode.value
        state["changed_at"] = now
        state["changed_by"] = by or who()
        state["reason"] = reason
        history = list(state.get("history") or [])
        history.append(
            {
                "ts": now,
                "from": previous,
                "to": mode.value,
                "by": state["changed_by"],
                "reason": reason,
            }
        )
        state["history"] = history[-50:]
        write_json_atomic(path, state)
    return state, previous


# -- stats: one file per app process, summed by readers --------------------------------------
def stats_dir(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".stats")


def default_stats_path(state_path: Path) -> Path:
    return stats_dir(state_path) / f"{socket.gethostname()}-{os.getpid()}.json"


def read_stats(state_path: Path) -> list[dict[str, Any]]:
    folder = stats_dir(state_path)
    if not folder.is_dir():
        return []
    found = []
    for file in sorted(folder.glob("*.json")):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a file being replaced, or garbage: skip, the next read sees it
        if isinstance(data, dict):
            found.append(data)
    return found


def summarize_stats(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One view over every app process: counters summed, p99 the worst, overlap weighted."""
    if not reports:
        return None
    total: dict[str, Any] = {"processes": len(reports), "updated_at": 0.0}
    counters = ("reads", "writes", "mirror_failures", "deferred", "serving_errors")
    for key in counters:
        total[key] = sum(int(r.get(key, 0)) for r in reports)
    total["updated_at"] = max(float(r.get("updated_at", 0)) for r in reports)
    total["replay_backlog"] = max(int(r.get("replay_backlog", 0)) for r in reports)
    shadow_queries = sum(int(r.get("shadow", {}).get("queries", 0)) for r in reports)
    shadow_errors = sum(int(r.get("shadow", {}).get("errors", 0)) for r in reports)

    def weighted(key: str) -> float | None:
        pairs = [
            (r["shadow"].get(key), int(r["shadow"].get("compared", 0)))
            for r in reports
            if r.get("shadow", {}).get(key) is not None
        ]
        weight = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / weight if weight else None

    total["shadow"] = {
        "queries": shadow_queries,
        "errors": shadow_errors,
        "compared": sum(int(r.get("shadow", {}).get("compared", 0)) for r in reports),
        "k": max((int(r.get("shadow", {}).get("k") or 0) for r in reports), default=0) or None,
        "overlap_at_k": weighted("overlap_at_k"),
        "latency_diff_ms": weighted("latency_diff_ms"),
    }
    stores: dict[str, dict[str, Any]] = {}
    for side in ("primary", "secondary"):
        calls = sum(int(r.get("stores", {}).get(side, {}).get("calls", 0)) for r in reports)
        errors = sum(int(r.get("stores", {}).get(side, {}).get("errors", 0)) for r in reports)
        p99s = [
            r["stores"][side]["p99_ms"]
            for r in reports
            if r.get("stores", {}).get(side, {}).get("p99_ms") is not None
        ]
        stores[side] = {
            "calls": calls,
            "errors": errors,
            "error_rate": errors / calls if calls else None,
            "p99_ms": max(p99s) if p99s else None,
        }
    total["stores"] = stores
    recommendations = [r["recommendation"] for r in reports if r.get("recommendation")]
    total["recommendation"] = recommendations[-1] if recommendations else None
    return total


def evaluate(
    mode: Mode, stores: dict[str, dict[str, Any]], thresholds: Thresholds
) -> dict[str, Any] | None:
    """A rollback recommendation when the store being tried breaks a threshold, else None.

    During shadow reads the secondary is on trial (going back = primary-only); after a flip
    the secondary serves, and going back means serving the primary again (dual-write keeps
    the secondary fed so the next attempt starts from current data).
    """
    if mode not in {Mode.SHADOW, Mode.FLIPPED, Mode.TARGET_ONLY}:
        return None
    figures = stores.get("secondary") or {}
    calls = int(figures.get("calls") or 0)
    if calls < thresholds.min_calls:
        return None
    reasons = []
    rate = figures.get("error_rate")
    if rate is not None and rate > thresholds.max_error_rate:
        reasons.append(f"secondary error rate {rate:.1%} > {thresholds.max_error_rate:.1%}")
    p99 = figures.get("p99_ms")
    if thresholds.max_p99_ms is not None and p99 is not None and p99 > thresholds.max_p99_ms:
        reasons.append(f"secondary p99 {p99:.1f} ms > {thresholds.max_p99_ms:.1f} ms")
    if not reasons:
        return None
    back_to = Mode.PRIMARY_ONLY if mode is Mode.SHADOW else Mode.DUAL_WRITE
    return {
        "action": "rollback",
        "from": mode.value,
        "to": back_to.value,
        "reasons": reasons,
        # From target-only the primary missed writes: a person must decide.
        "automatic_allowed": mode is not Mode.TARGET_ONLY,
    }
