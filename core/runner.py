"""One migration, start to finish: plan, preflight, find or create the run, drive the engine.

Shared by `ferry migrate` and anything else that runs a migration in-process, so that
"the same command again resumes the unfinished run" holds everywhere. The runner is where
the journal meets the engine: it reads each collection's resume point for the engine, and
attaches a RunRecorder to the engine's events, which writes everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import Capability, Connector
from ferry.core.embed import EmbedStage
from ferry.core.embed.run import add_embed_plans, open_stage, publish_retries, target_shape
from ferry.core.engine import MigrationEngine, MigrationOptions, run_status
from ferry.core.errors import FerryError, PreflightError, TransientError
from ferry.core.journal import Journal, RunRecord
from ferry.core.journal.recorder import RunRecorder
from ferry.core.layouts import make_layout
from ferry.core.live import run as live
from ferry.core.locks import TargetLocks
from ferry.core.model import CollectionResult, Phase, ResumePoint
from ferry.core.plan import MigrationPlan, app_switch, build_plan, choose_collections, run_key
from ferry.core.record_checks import FULL_SCAN_RECORDS, scan_collections
from ferry.core.runs import CollectionView, RunState
from ferry.core.targets import copy_names
from ferry.core.uri import check_apart

CONTROL_POLL_SECONDS = 0.2


@dataclass
class RunOutcome:
    run_id: str
    status: RunState
    collections: list[CollectionResult]
    plan: MigrationPlan
    resumed: bool = False
    warnings: list[str] = field(default_factory=list)
    # A live source (core/live): what catch-up passes applied since the cut.
    catch_ups: list[Any] = field(default_factory=list)
    embed: dict[str, Any] | None = None  # the embed stage's counters (`--embed`)

    def to_json(self) -> dict[str, Any]:
        plans = {c.source.name: c for c in self.plan.collections}
        collections = []
        for result in self.collections:
            entry = result.to_json()
            item = plans.get(result.name)
            if item is not None:
                entry.update(
                    target_name=item.target_name,
                    framework=item.detection.framework,
                    layout=item.layout,
                    layout_reason=item.layout_reason,
                    switch=item.switch,
                )
            collections.append(entry)
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "resumed": self.resumed,
            "retries": sum(c.retries for c in self.collections),
            "collections": collections,
            "warnings": self.warnings,
            **({"catch_up": [c.to_json() for c in self.catch_ups]} if self.catch_ups else {}),
        } | ({"embed": self.embed} if self.embed is not None else {})


async def plan_run(
    source: Connector,
    target: Connector,
    collections: list[str],
    options: MigrationOptions,
    owned: Callable[[str], bool] | None = None,
    stage: EmbedStage | None = None,
) -> MigrationPlan:
    """The plan the options ask for, errors kept in it (the one place options become a
    plan: `ferry migrate`, its `--dry-run` and the TUI's run dialog all come here).
    Re-embedding (`options.embed`) uses the run's `stage`, else opens the model for the plan."""
    if options.embed is not None and stage is None:
        stage = await open_stage(options.embed, None)
        try:
            return await plan_run(source, target, collections, options, owned, stage)
        finally:
            await stage.aclose()
    plan = await options.retry_policy.call(  # describing is read-only: safe to repeat
        lambda: build_plan(
            source,
            target,
            collections or None,
            options.mode,
            options.fields,
            owned=owned,
            layout=options.layout,
            layout_origin=options.layout_origin,
            targets=options.targets,
            tuning=options.tuning,
            index=options.index,
            embed_shape=target_shape(stage.embedder) if stage is not None else None,
        )
    )
    if stage is not None and options.embed is not None:
        await add_embed_plans(plan, source, options.embed, stage.embedder, stage.cache)
    return plan


async def preflight(
    source: Connector,
    target: Connector,
    journal: Journal,
    collections: list[str],
    options: MigrationOptions,
    stage: EmbedStage | None = None,
) -> MigrationPlan:
    plan = await plan_run(
        source,
        target,
        collections,
        options,
        lambda name: journal.runs.target_owned(target.uri, name),
        stage,
    )
    if plan.errors:
        first = plan.errors[0]
        more = f" (+{len(plan.errors) - 1} more)" if len(plan.errors) > 1 else ""
        raise PreflightError(first + more)
    # Records no target holds exactly (i64 overflow, NaN in metadata, a key "", a document
    # that is not text, an id twice): refused by id here, before a run or collection exists.
    # A remote source is scanned by its first batch only (the engine checks the rest where
    # it reads): a whole extra pass over a network would double what faults can hit.
    remote = getattr(source, "uri", "").split(":", 1)[0].endswith(("http", "https"))
    scanned = [
        (c.source.name, FULL_SCAN_RECORDS + 1 if remote else c.source.count)
        for c in plan.collections
        if not c.skip_reason
    ]
    try:
        await options.retry_policy.call(  # reading is read-only: safe to repeat on a blip
            lambda: scan_collections(source, scanned)
        )
    except TransientError as exc:  # the source stayed unreachable: nothing is written yet
        raise TransientError(
            f"{exc.what} (gave up after {options.retry_policy.describe(exc)})",
            where=exc.where,
            fix="nothing was written; the run is resumable: re-run the same command",
        ) from exc
    return plan


async def migrate(
    source_uri: str,
    target_uri: str,
    collections: list[str],
    options: MigrationOptions,
    journal: Journal,
    restart: bool = False,
    on_engine: Callable[[MigrationEngine], None] | None = None,
    follow: Any = None,
    stop: asyncio.Event | None = None,
) -> RunOutcome:
    """Run (or resume) the migration the arguments identify; returns when it ends."""
    check_apart(source_uri, target_uri)  # the source directory is never written to
    if follow is not None and options.embed is not None:
        raise FerryError(
            "--follow does not re-embed the changes it applies yet",
            where="--follow with --embed",
            fix="migrate with --embed, then re-run it with --restart to pick up changes "
            "(the embedding cache makes unchanged documents free)",
        )
    source = open_connector(source_uri)
    target = open_connector(target_uri, options.fields)
    stack = contextlib.ExitStack()
    stage: EmbedStage | None = None
    try:
        # One owner per target collection, taken before anything opens the target (a second
        # process would otherwise open a Qdrant Edge shard in use): refused in one line.
        locks = stack.enter_context(TargetLocks(target.uri, "starting"))
        chosen = await choose_collections(source, collections or None)
        options = dataclasses.replace(  # `{name}_v1` where the target keeps aliases
            options,
            targets=copy_names(
                options.targets,
                target.can(Capability.ALIASES),
                chosen,
                journal.runs.latest_pairs(source_uri, target_uri),
            ),
        )
        locks.acquire(options.targets.resolve(name) for name in chosen)
        if options.embed is not None:  # the model, opened once; its cache beside the journal
            stage = await open_stage(options.embed, journal.path)
        plan = await preflight(source, target, journal, collections, options, stage)
        key = run_key(
            source_uri,
            target_uri,
            collections,
            options.fields,
            options.mode.value,
            layout=options.layout,
            targets=options.targets,
            embed=f"{stage.model}:{stage.fingerprint}" if stage is not None else None,
        )
        previous = journal.runs.latest(key)
        resumed = bool(previous and previous.status is not RunState.COMPLETED and not restart)
        if (
            previous
            and not resumed
            and not restart
            and live.caught_up_before(journal, previous, plan)
            and stage is None  # catch-up copies the source's vectors: a re-embedded run
        ):  # re-runs as a resume of nothing to do (--restart re-embeds from the cache)
            # The same command after it completed, on a live source: apply what changed since
            # its cut (core/live) instead of copying everything again.
            keep_started_layouts(plan, target, previous)
            await target.close()
            catch_ups = await live.catch_up_run(
                journal, previous.run_id, source, target_uri, plan, options, follow, stop
            )
            results = [
                CollectionResult(c.collection, Phase.COMPLETED, 0, c.changes, c.seconds)
                for c in live.totals(catch_ups)
            ]
            return RunOutcome(
                previous.run_id,
                RunState.COMPLETED,
                results,
                plan,
                warnings=plan.warnings,
                catch_ups=catch_ups,
            )
        if resumed:
            assert previous is not None
            run_id = previous.run_id
            keep_started_layouts(plan, target, previous)
        else:
            run_id = journal.runs.create(
                key,
                source_uri,
                target_uri,
                collections,
                {
                    "source_id": options.fields.source_id,
                    "document": options.fields.document,
                    "layouts": {c.source.name: c.layout for c in plan.collections},
                },
                options.to_json(),
            )
        locks.acquire(c.target_name for c in plan.collections)  # any renamed by the plan
        locks.name_run(run_id)
        journal.mailbox.take(run_id)  # a stale pause/cancel from a dead process means nothing
        recorder = RunRecorder(journal, run_id)
        engine = MigrationEngine(
            source,
            target,
            run_id,
            plan.collections,
            options,
            checkpoints=recorder,
            resume=resume_points(journal, run_id, target.uri, plan),
        )
        recorder.attach(engine.bus)
        if stage is not None:
            engine.embedder = stage
            publish_retries(stage, run_id, engine.bus.publish)
        if on_engine:
            on_engine(engine)
        live.record_cuts(
            journal,
            run_id,
            source,
            plan.collections,
            {n for n, p in engine.resume_points.items() if p.done or p.copied},
        )
        poller = asyncio.create_task(_poll_controls(journal, engine))
        try:
            results = await engine.run()
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await recorder.aclose()  # every row written before we say the run ended
        retries = {row.name: row.retries for row in journal.runs.collections(run_id)}
        for result in results:
            result.retries = retries.get(result.name, result.retries)
        warnings = plan.warnings + other_pairs(journal, source_uri, target_uri, run_id, plan)
        warnings += live.changed_during_read(source)
        outcome = RunOutcome(run_id, run_status(results), results, plan, resumed, warnings)
        if stage is not None:
            outcome.embed = {"model": stage.model, **stage.counters.to_json()}
        if follow is not None and outcome.status is RunState.COMPLETED:
            await target.close()  # the follower opens it per pass (a cutover may need it)
            outcome.catch_ups = await live.follow_run(
                journal, run_id, source, target_uri, plan, options, follow, stop
            )
        return outcome
    finally:
        if stage is not None:
            await stage.aclose()
        await source.close()
        await target.close()
        stack.close()  # the locks go last: the target is closed (an Edge shard flushed)


def keep_started_layouts(plan: MigrationPlan, target: Connector, previous: RunRecord) -> None:
    """A resumed run writes each collection in the layout it started with (the journal's),
    whatever detection says now: one collection never ends up in two layouts."""
    started = previous.mapping.get("layouts") or {}
    for item in plan.collections:
        was = started.get(item.source.name)
        if was and was != item.layout:
            item.warnings.append(
                f"resuming {item.source.name} in layout {was}, as the run started "
                f"(now: {item.layout}, {item.layout_reason})"
            )
            plan.warnings.append(item.warnings[-1])
            item.layout, item.layout_reason = was, "the run started in it (journal)"
            layout = make_layout(was, plan.fields)
            target.use_payload_layout(item.target_name, layout)  # type: ignore[attr-defined]
            item.switch = app_switch(target, layout, item.source, item.target_name, None)


def other_pairs(
    journal: Journal, source_uri: str, target_uri: str, run_id: str, plan: MigrationPlan
) -> list[str]:
    """Unfinished runs that write one of these sources under another target name.

    Another pair is another run (`run_key`), never a silent resume into a different
    collection; this says that the other one is still there to resume or leave.
    """
    notes = []
    for item in plan.collections:
        for row in journal.runs.unfinished_pairs(source_uri, target_uri, item.source.name):
            if row.run_id != run_id and row.target_name != item.target_name:
                notes.append(
                    f"run {row.run_id} (unfinished) writes {item.source.name} → "
                    f"{row.target_name}; this run wrote {item.target_name}. Resume that one "
                    f"with --collection {item.source.name}={row.target_name}"
                )
    return notes


def resume_points(
    journal: Journal, run_id: str, target_uri: str, plan: MigrationPlan
) -> dict[str, ResumePoint]:
    """Where each collection of the run starts: its journal row (made now if new), and
    whether a Ferry run owns its target collection."""
    points = {}
    for item in plan.collections:
        row = journal.runs.ensure_collection(run_id, item.source.name, item.target_name)
        owned = journal.runs.target_owned(target_uri, item.target_name)
        points[item.source.name] = CollectionView.from_record(row).resume_point(owned)
    return points


async def _poll_controls(journal: Journal, engine: MigrationEngine) -> None:
    """Pause/resume/cancel asked by another process (the TUI) through the journal."""
    while True:
        command = await asyncio.to_thread(journal.mailbox.take, engine.run_id)
        if command == "pause":
            engine.pause()
        elif command == "resume":
            engine.resume()
        elif command == "cancel":
            engine.cancel()
        await asyncio.sleep(CONTROL_POLL_SECONDS)
