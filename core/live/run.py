"""What `ferry.core.runner.migrate` asks of live sources, in one place (the runner stays small).

* `record_cuts` — the bulk copy's cut per collection, into the journal;
* `caught_up_before` — the same command ran to completion on a live source before: a
  catch-up is due instead of a second full copy;
* `catch_up_run` / `follow_run` — one catch-up pass (then following, with `--follow`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from ferry.core.connectors import open_connector
from ferry.core.journal import Journal, RunRecord
from ferry.core.layouts import make_layout
from ferry.core.live.catchup import CatchUpResult
from ferry.core.live.follow import FollowOptions, catch_up_all, follow, is_live, record_cuts
from ferry.core.live.store import LiveStore
from ferry.core.states import RunState

__all__ = [
    "catch_up_run",
    "caught_up_before",
    "changed_during_read",
    "follow_run",
    "record_cuts",
    "totals",
]


def caught_up_before(journal: Journal, previous: RunRecord, plan: Any) -> bool:
    """The previous run of this command completed from a live source's cut, for every
    collection the plan names: what is left is the changes since (not a new copy)."""
    if previous.status is not RunState.COMPLETED:
        return False
    rows = LiveStore(journal).of_run(previous.run_id)
    return bool(plan.collections) and all(
        item.source.name in rows and item.source.facts.get("cut_seq_id") is not None
        for item in plan.collections
    )


def _target_opener(target_uri: str, plan: Any) -> Any:
    """A fresh target connector per pass, told each collection's payload layout."""

    async def open_target() -> Any:
        target = open_connector(target_uri, plan.fields)
        for item in plan.collections:
            if target.payload_layout(item.target_name) is not None:
                target.use_payload_layout(item.target_name, make_layout(item.layout, plan.fields))
        return target

    return open_target


async def catch_up_run(
    journal: Journal,
    run_id: str,
    source: Any,
    target_uri: str,
    plan: Any,
    options: Any,
    follow_options: FollowOptions | None,
    stop: asyncio.Event | None,
) -> list[CatchUpResult]:
    """One catch-up pass over the run's collections; then follow, when asked. The run is
    `running` (this process's pid) meanwhile, so views attach to it, and `completed` after."""
    opener = _target_opener(target_uri, plan)
    with _driving(journal, run_id):
        results = await catch_up_all(
            journal,
            run_id,
            source,
            opener,
            plan.collections,
            options.batch_size,
            options.retry_policy,
            index=options.index,
            fresh_cut=False,  # the plan was just read from a fresh cut
        )
        if follow_options is not None:
            results += await follow_run(
                journal, run_id, source, target_uri, plan, options, follow_options, stop
            )
    return results


@contextlib.contextmanager
def _driving(journal: Journal, run_id: str) -> Iterator[None]:
    """This process drives the (completed) run while it catches up or follows: the TUI's
    launcher finds it by pid and the Monitor shows it running; completed again after (the
    copy stays complete even when a catch-up failed: its error is the command's)."""
    journal.runs.claim(run_id)
    try:
        yield
    finally:
        journal.runs.set_status(run_id, RunState.COMPLETED)


async def follow_run(
    journal: Journal,
    run_id: str,
    source: Any,
    target_uri: str,
    plan: Any,
    options: Any,
    follow_options: FollowOptions,
    stop: asyncio.Event | None,
) -> list[CatchUpResult]:
    """Follow the source until stopped or cut over; the target indexed once at the end."""
    if not is_live(source):
        return []
    opener = _target_opener(target_uri, plan)
    with _driving(journal, run_id):
        return await _follow_and_index(
            journal, run_id, source, target_uri, plan, options, follow_options, stop, opener
        )


async def _follow_and_index(
    journal: Journal,
    run_id: str,
    source: Any,
    target_uri: str,
    plan: Any,
    options: Any,
    follow_options: FollowOptions,
    stop: asyncio.Event | None,
    opener: Any,
) -> list[CatchUpResult]:
    results = await follow(
        journal,
        run_id,
        source,
        target_uri,
        opener,
        plan.collections,
        options.batch_size,
        options.retry_policy,
        stop or asyncio.Event(),
        follow_options,
        index=options.index,
    )
    changed = {r.target_name for r in results if r.changes}
    if changed and options.index:
        target = await opener()
        try:
            for item in plan.collections:
                if item.target_name in changed:
                    await options.retry_policy.call(
                        lambda i=item: target.build_index(i.target_name, i.tuning)
                    )
        finally:
            await target.close()
    return results


def changed_during_read(source: Any) -> list[str]:
    """A source with no consistent cut (a Chroma server) that changed while it was read:
    said plainly, with what to do (the copy is not a point-in-time image)."""
    return [
        f"{name}: the source changed while it was copied (count {before:,} → {after:,}, "
        f"{read:,} read): a Chroma server gives no consistent cut, so records written or "
        "deleted meanwhile may be missing, stale or extra on the target — pause the "
        "application's writes and run `ferry validate --full --repair --delete-extra` (docs/live-migration.md)"
        for name, (before, after, read) in getattr(source, "changed_during_read", {}).items()
    ]


def totals(results: list[CatchUpResult]) -> list[CatchUpResult]:
    """One result per collection, summing its passes (for the run's report)."""
    by_name: dict[str, list[CatchUpResult]] = defaultdict(list)
    for result in results:
        by_name[result.collection].append(result)
    out = []
    for name, passes in by_name.items():
        first, last = passes[0], passes[-1]
        out.append(
            CatchUpResult(
                name,
                first.target_name,
                first.from_seq_id,
                last.to_seq_id,
                sum(p.upserted for p in passes),
                sum(p.deleted for p in passes),
                sum(p.seconds for p in passes),
                last.cut,
                last.lag,
            )
        )
    return out
