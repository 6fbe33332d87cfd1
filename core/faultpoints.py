"""Named points where the fault suite kills Ferry with SIGKILL, deterministically.

`FERRY_KILL_AT=write:7` makes the process `kill -9` itself the 7th time it reaches the
point `write` (a batch acknowledged by the target, not yet by the watermark). A seeded
schedule of such kills (tests/faults) replaces random sleeps: the moment is exact and
reproducible, the kill is the real thing (no cleanup, no flush, no atexit). Unset — always,
outside the suite — a point costs one dictionary look-up.

Points: `read` (a batch read, not yet queued), `write` (written, not acknowledged),
`checkpoint` (target synced, checkpoint not yet committed), `committed` (after the commit),
`index` (the copy is complete and the journal says the collection is indexing; the target's
index build is starting: reached in the run recorder right after that row is written, so a
kill there always leaves a journal a resumed run must take back into the index phase),
`repair` (validate re-wrote records, not yet read back), `cutover-snapshot` (backup taken,
alias not switched), `cutover-switch` (alias switched, journal not yet written).
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("FERRY_KILL_AT", "")
_point, _, _count = _spec.partition(":")
_remaining = int(_count) if _count.isdigit() else 1
_seen: dict[str, int] = {}


def reached(point: str) -> None:
    """Count a pass through `point`; SIGKILL this process on the scheduled one."""
    global _remaining
    if not _point or point != _point:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
