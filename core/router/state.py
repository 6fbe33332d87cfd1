"""The router's state file: which mode the running apps use, changed by `ferry router set` or
`ferry cutover` without redeploying anything.

The file is tiny JSON, replaced atomically (temp file + ``os.replace``) so a reader never sees
half of it, and read-modify-writes take an ``flock`` on a sibling lock file so two writers
(a user's `ferry router set` and an app's automatic rollback) never lose each other's change.
Apps write their figures to *their own* stats file (one per process, in a sibling directory),
so the mode file has few writers and the stats of several app processes can be summed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ferry.core.errors import FerryError
from ferry.core.jsonfile import locked, read_json, write_json_atomic

STATE_ENV = "FERRY_ROUTER_STATE"


class Mode(StrEnum):
    """What the router does with each call. The "serving" store answers the app."""

    PRIMARY_ONLY = "primary-only"  # serve primary; secondary untouched
    DUAL_WRITE = "dual-write"  # serve primary; mirror writes to secondary (best effort)
    SHADOW = "shadow"  # dual-write + query both, serve primary, compare (overlap@k, latency)
    FLIPPED = "flipped"  # serve secondary; mirror writes to primary so rollback loses nothing
    TARGET_ONLY = "target-only"  # serve secondary; primary untouched
    # dual-write + a stated share of *keyed* reads served by the secondary (core.router.canary)
    CANARY = "canary"

    @property
    def serves_secondary(self) -> bool:
        """Whether the secondary serves every call (canary serves it per key, reads only)."""
        return self in {Mode.FLIPPED, Mode.TARGET_ONLY}

    @property
    def mirrors(self) -> bool:
        return self in {Mode.DUAL_WRITE, Mode.SHADOW, Mode.FLIPPED, Mode.CANARY}


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
    # Shadow reads: the secondary's overlap@k with the exact top-k of the candidates both
    # sides returned, judged as validation judges recall (core.router.overlap); None = off.
    min_overlap: float | None = None
    min_compared: int = 20  # shadow comparisons needed before overlap is judged

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
    canary_keys = ("target_reads", "primary_reads", "fallbacks", "unkeyed")
    canary = {
        key: sum(int((r.get("canary") or {}).get(key, 0)) for r in reports) for key in canary_keys
    }
    keyed = canary["target_reads"] + canary["primary_reads"]
    canary["target_share"] = canary["target_reads"] / keyed if keyed else None
    total["canary"] = canary
    total["journal_errors"] = sum(int(r.get("journal_errors", 0)) for r in reports)
    recommendations = [r["recommendation"] for r in reports if r.get("recommendation")]
    total["recommendation"] = recommendations[-1] if recommendations else None
    return total


def on_trial(mode: Mode, percent: float = 0.0, shadow: bool = False) -> bool:
    """Whether the secondary is being tried, so thresholds apply: shadow, flipped,
    target-only, and a canary with a share above 0 % or shadow reads on."""
    if mode is Mode.CANARY:
        return percent > 0 or shadow
    return mode in {Mode.SHADOW, Mode.FLIPPED, Mode.TARGET_ONLY}


def evaluate(
    mode: Mode,
    stores: dict[str, dict[str, Any]],
    thresholds: Thresholds,
    overlap: Any = None,
    percent: float = 0.0,
    shadow: bool = False,
) -> dict[str, Any] | None:
    """A rollback recommendation when the store being tried breaks a threshold, else None.

    `stores` are the figures of the current window (since the last mode or dial change), so
    latency left from a previous mode never judges this one. `overlap` is the window's
    `OverlapJudge` (or None). During shadow reads the secondary is on trial (going back =
    primary-only); a canary goes back to 0 % (still dual-writing); after a flip the secondary
    serves, and going back means serving the primary again (dual-write keeps the secondary
    fed so the next attempt starts from current data).
    """
    if not on_trial(mode, percent, shadow):
        return None
    figures = stores.get("secondary") or {}
    calls = int(figures.get("calls") or 0)
    reasons = []
    if calls >= thresholds.min_calls:
        rate = figures.get("error_rate")
        if rate is not None and rate > thresholds.max_error_rate:
            reasons.append(f"secondary error rate {rate:.1%} > {thresholds.max_error_rate:.1%}")
        p99 = figures.get("p99_ms")
        if thresholds.max_p99_ms is not None and p99 is not None and p99 > thresholds.max_p99_ms:
            reasons.append(f"secondary p99 {p99:.1f} ms > {thresholds.max_p99_ms:.1f} ms")
    if (
        thresholds.min_overlap is not None
        and overlap is not None
        and overlap.queries >= thresholds.min_compared
    ):
        failure = overlap.failure(thresholds.min_overlap)
        if failure:
            reasons.append(failure)
    if not reasons:
        return None
    if mode is Mode.CANARY:
        back_to = Mode.CANARY
    else:
        back_to = Mode.PRIMARY_ONLY if mode is Mode.SHADOW else Mode.DUAL_WRITE
    advice: dict[str, Any] = {
        "action": "rollback",
        "from": mode.value,
        "to": back_to.value,
        "reasons": reasons,
        # From target-only the primary missed writes: a person must decide.
        "automatic_allowed": mode is not Mode.TARGET_ONLY,
    }
    if mode is Mode.CANARY:
        advice["from_percent"] = percent
        advice["percent"] = 0.0
    return advice
