"""The runner's side of live sources: record each bulk copy's cut, catch up, follow.

* `record_cuts` — before the engine copies a collection from a cut, the journal gets the
  cut's watermark (the earliest one, if the copy is resumed) and the ids file the cut's ids.
* `catch_up_all` — one catch-up pass over the run's collections (the same `ferry migrate`
  after it completed).
* `follow` — catch-up whenever the source is ahead, polling every `interval` seconds, until
  stopped (Ctrl-C, SIGTERM, the TUI) or the collection is cut over; the lag (changes
  not yet applied, and the age of the oldest) is in the journal for `ferry status`, `--json`
  and the Monitor. The target is opened only for a pass and closed after it, so a cutover
  (another process) can open an embedded target (Qdrant Edge, qdrant+file://) in between.
* `wait_for_lag_zero` — what a cutover of a followed collection waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.live.catchup import CatchUpResult, catch_up, cut_facts, lag_of
from ferry.core.live.changes import ids_file_for, remember_ids
from ferry.core.live.store import LiveCut, LiveStore

FOLLOW_INTERVAL = 1.0  # seconds between two looks at the source
CUTOVER_LAG_WAIT_SECONDS = 60.0  # a cutover waits this long for a follower to reach lag 0


def is_live(source: Any) -> bool:
    """The source was read as a consistent cut and can say what changed since one."""
    return getattr(source, "cut", None) is not None and hasattr(source, "new_cut")


def record_cuts(
    journal: Journal, run_id: str, source: Any, items: list[Any], done: set[str]
) -> None:
    """The cut every not-yet-copied collection is read from: its watermark and its ids."""
    if not is_live(source):
        return
    store = LiveStore(journal)
    for item in items:
        name = item.source.name
        if name in done:
            continue
        _cid, segment, seq = cut_facts(item.source)
        ids_file = ids_file_for(journal.path, run_id, name)
        remember_ids(ids_file, source.cut.path, segment, replace=False)
        store.start(
            run_id,
            name,
            item.target_name,
            seq,
            source.cut.taken_at,
            str(ids_file),
            source.cut.describe(),
        )


@dataclass
class FollowOptions:
    interval: float = FOLLOW_INTERVAL


async def catch_up_all(
    journal: Journal,
    run_id: str,
    source: Any,
    open_target: Callable[[], Awaitable[Any]],
    items: list[Any],
    batch_size: int,
    retry: Any,
    index: bool | str,
    fresh_cut: bool = True,
    following: bool = False,
) -> list[CatchUpResult]:
    """One pass: a new cut, then each collection's changes since its watermark. The lag is
    reported once the target is closed again: a report of lag 0 means the target is free
    for a validation or a cutover."""
    store = LiveStore(journal)
    if fresh_cut:
        await source.new_cut()
    results = []
    target = await open_target()
    try:
        for item in items:
            live = store.get(run_id, item.source.name)
            if live is None:
                continue
            info = await source.describe(item.source.name)
            result = await catch_up(
                source, target, info, item.target_name, store, live, batch_size, retry
            )
            lag = await lag_of(source, info, store.get(run_id, item.source.name) or live)
            if result.changes and (index is True or (index == "at-lag-zero" and lag.zero)):
                # Written into an indexed collection: the target indexes it again (a
                # follower does so whenever it reaches lag 0: search-ready for a cutover).
                await retry.call(lambda i=item: target.build_index(i.target_name, i.tuning))
            result.lag = {"changes": lag.pending, "source_seq_id": lag.source_seq_id}
            results.append(result)
    finally:
        await target.close()
    if not following:  # a follower reports the lag itself (with its own first-seen times)
        for result in results:
            pending = result.lag["changes"]
            since = time.time() if pending else None
            store.set_lag(
                run_id, result.collection, result.lag["source_seq_id"], pending, since, False
            )
    return results


def _cut_over(journal: Journal, target_uri: str, target_name: str, since: float) -> bool:
    """A cutover pointed an alias at this collection after following began."""
    return any(
        row.action == "cutover" and row.ts >= since
        for row in journal.cutovers.history(target_uri)
        if row.to_collection == target_name
    )


async def follow(
    journal: Journal,
    run_id: str,
    source: Any,
    target_uri: str,
    open_target: Callable[[], Awaitable[Any]],
    items: list[Any],
    batch_size: int,
    retry: Any,
    stop: asyncio.Event,
    options: FollowOptions,
    on_pass: Callable[[list[CatchUpResult]], None] | None = None,
    index: bool = True,
) -> list[CatchUpResult]:
    """Catch up whenever the source is ahead, until `stop` is set or every collection is
    cut over. Returns every pass's results (the last pass leaves the target at lag 0 when
    the application has paused its writes)."""
    store = LiveStore(journal)
    began = time.time()
    following = {item.source.name: item for item in items}
    seen_since: dict[str, float] = {}
    applied: list[CatchUpResult] = []
    try:
        while following and not stop.is_set():
            if journal.mailbox.take(run_id) == "cancel":
                break
            behind = []
            for name, item in list(following.items()):
                if _cut_over(journal, target_uri, item.target_name, began):
                    del following[name]
                    store.set_lag(run_id, name, None, 0, None, False)
                    continue
                live = store.get(run_id, name)
                if live is None:
                    del following[name]
                    continue
                lag = await lag_of(source, item.source, live, seen_since.get(name))
                if lag.zero:
                    seen_since.pop(name, None)
                else:
                    seen_since.setdefault(name, lag.pending_since or time.time())
                    behind.append(item)
                store.set_lag(run_id, name, lag.source_seq_id, lag.pending, lag.pending_since, True)
            if behind:
                try:
                    results = await catch_up_all(
                        journal,
                        run_id,
                        source,
                        open_target,
                        behind,
                        batch_size,
                        retry,
                        index="at-lag-zero" if index else False,
                        following=True,
                    )
                except FerryError as exc:
                    # The target busy (a cutover holds it) or a cut refused: said in the
                    # row, and tried again after one interval.
                    for item in behind:
                        store.set_note(run_id, item.source.name, f"catch-up waits: {exc.what}")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), options.interval)
                    continue
                for result in results:
                    seen_since.pop(result.collection, None)
                    if result.lag.get("changes"):
                        seen_since[result.collection] = time.time()
                    store.set_lag(
                        run_id,
                        result.collection,
                        result.lag.get("source_seq_id"),
                        result.lag.get("changes", 0),
                        seen_since.get(result.collection),
                        True,
                    )
                applied += results
                if on_pass and results:
                    on_pass(results)
                continue  # look again at once: the source may be ahead again
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.interval)
    finally:
        for name in following:
            with contextlib.suppress(Exception):
                live = store.get(run_id, name)
                if live is not None:
                    store.set_lag(
                        run_id, name, live.source_seq_id, live.pending, live.pending_since, False
                    )
    return applied


def followed(journal: Journal, target_uri: str, target_name: str) -> LiveCut | None:
    """The live row of a collection a follower is applying changes to now, if any."""
    rows = journal._all(  # noqa: SLF001
        "SELECT l.* FROM live_cuts l JOIN runs r ON r.run_id = l.run_id "
        "WHERE r.target_uri = ? AND l.target_name = ? ORDER BY l.updated_at DESC",
        (target_uri, target_name),
    )
    for row in rows:
        live = LiveCut.from_row(row)
        if live.following:
            return live
    return None


async def wait_for_lag_zero(
    journal: Journal,
    target_uri: str,
    target_name: str,
    limit: float = CUTOVER_LAG_WAIT_SECONDS,
    poll: float = 0.2,
) -> LiveCut | None:
    """Before a cutover switches to a followed collection: wait (at most `limit` seconds)
    until its follower reports lag 0. Not followed: returns None at once. Refuses (nothing
    switched) when the lag does not reach 0 in time."""
    live = followed(journal, target_uri, target_name)
    if live is None:
        return None
    deadline = time.monotonic() + limit
    asked = time.time()
    while True:
        live = followed(journal, target_uri, target_name)
        if live is None:
            return None  # the follower stopped meanwhile: nothing more will arrive from it
        # A report made after we asked, at lag 0: every change seen by then is applied.
        if live.pending == 0 and live.updated_at >= asked:
            return live
        if time.monotonic() >= deadline:
            raise FerryError(
                f"{target_name} is followed and still {live.lag_words()} behind its source "
                f"after {limit:.0f}s; cutover refused (nothing switched)",
                where=target_uri,
                fix="pause the application's writes to the source (or let the follower catch "
                "up) and cut over again",
            )
        await asyncio.sleep(poll)
