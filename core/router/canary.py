"""The canary dial: which keyed reads the secondary serves, sticky per key.

A key (a user id, a tenant, a session — whatever the app passes) is hashed to one of
`BUCKETS` buckets with BLAKE2b: stable across processes, hosts and restarts (Python's own
`hash` is salted per process, so the same user would flip sides between two app workers).
The secondary serves a key when its bucket is below ``percent × BUCKETS / 100``, so turning
the dial up only *adds* keys to the target: a user who saw the target at 5 % still sees it at
25 %, and turning it down sends the most recently added keys back first.
"""

from __future__ import annotations

import hashlib

from ferry.core.errors import FerryError

BUCKETS = 10_000  # 0.01 % resolution
STEPS = (0.0, 1.0, 5.0, 25.0, 50.0, 100.0)  # the dial's stops (TUI), any 0-100 is allowed


def bucket(key: str | bytes | int) -> int:
    """The key's bucket, 0 ≤ b < BUCKETS, the same in every process."""
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") % BUCKETS


def serves_target(key: str | bytes | int | None, percent: float) -> bool:
    """Whether this key's reads go to the secondary at `percent` (no key: never)."""
    if key is None or percent <= 0:
        return False
    if percent >= 100:
        return True
    return bucket(key) < round(percent * BUCKETS / 100)


def check_percent(value: float | None, where: str = "--percent") -> float:
    """A share of reads in percent, 0-100 (bad input: one line, exit 2)."""
    if value is None:
        raise FerryError(f"{where} is required for canary", fix="e.g. --percent 5")
    try:
        percent = float(value)
    except (TypeError, ValueError):
        raise FerryError(f"{where} must be a number", fix="e.g. --percent 5") from None
    if not 0 <= percent <= 100:
        raise FerryError(
            f"{where} {value} is outside 0-100",
            fix="a share of reads in percent, e.g. 1, 5, 25, 50 or 100",
        )
    return percent


def next_step(percent: float, up: bool) -> float:
    """The dial's next stop above (or below) `percent`."""
    if up:
        return next((s for s in STEPS if s > percent), STEPS[-1])
    return next((s for s in reversed(STEPS) if s < percent), STEPS[0])
