"""Cutover and rollback: point the name an application uses at the migrated collection, and
back, each in one atomic step that the journal remembers.

Ferry writes into a physical collection (``docs__<run>``); the app reads an *alias*
(``docs``). Cutover moves the alias in one atomic call; rollback moves it back to where it
pointed before the latest cutover. Ferry never deletes the previous collection: it is the
rollback.

Backends (what "alias" means per target):
- Qdrant server and qdrant-client local mode: real aliases, switched with one
  ``update_collection_aliases`` call (delete + create, applied atomically by Qdrant).
- Qdrant Edge has no aliases: Ferry keeps them in ``<root>/.ferry-aliases.json`` (replaced
  atomically under a lock) and the router library's `EdgeStore` resolves them.
- Chroma has none either: switch apps with the router (`ferry router set flipped`).

Before a cutover the target collection is backed up where the target can: a Qdrant server
snapshot, or a verified copy of the Edge shard / local-mode collection (core/backup_store.py:
written under a temporary name, verified, then renamed, so a killed cutover never leaves a
truncated copy named like a complete one; an unchanged collection reuses its verified backup
instead of copying again). The journal's cutover record names the backup it relied on
(`detail.backup`: path and the manifest's sha256).

Each backend is the target connector's own (`TargetConnector.aliases()`, capability
"aliases"), and so is the backup (`snapshot()`, capability "snapshots"): this module decides
*whether* and *when*, the connectors know *how*.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ferry.core import faultpoints
from ferry.core.backup_store import Progress
from ferry.core.connectors import ANY, AliasBackend, TargetConnector, open_connector
from ferry.core.errors import FerryError
from ferry.core.journal import Journal, ValidationRecord
from ferry.core.model import Phase
from ferry.core.router.state import (
    Mode,
    read_state,
    read_stats,
    set_mode,
    summarize_stats,
)

__all__ = ["ANY", "AliasBackend", "alias_backend", "open_alias_backend"]


def alias_backend(connector: TargetConnector | Any) -> AliasBackend:
    """The connector's alias backend; a target without aliases is refused with the fix."""
    backend = connector.aliases() if isinstance(connector, TargetConnector) else None
    if backend is None:
        raise FerryError(
            f"{connector.traits.engine.lower()} has no aliases",
            where=connector.uri,
            fix="switch the application with the router: `ferry router set flipped`",
        )
    return backend


@asynccontextmanager
async def open_alias_backend(target_uri: str) -> AsyncIterator[AliasBackend]:
    """Open the target and hand out its alias backend; the target is closed afterwards."""
    async with open_connector(target_uri) as connector:
        yield alias_backend(connector)


# -- plans and outcomes ----------------------------------------------------------------------
@dataclass
class CutoverPlan:
    """Exactly what a cutover or rollback will change; shown before anything changes."""

    action: str  # cutover | rollback | alias-delete
    target_uri: str
    alias: str
    from_collection: str | None
    to_collection: str | None  # None: the alias is removed (rollback of a first cutover)
    backend: str
    snapshot: str  # what backup will be taken
    validation: dict[str, Any] | None = None
    forced: bool = False
    reason: str | None = None
    router_state: str | None = None
    router_mode: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The alias already points at `to_collection` but the journal does not say so (a cutover
    # killed between its switch and its journal row): execute only records it.
    already_switched: bool = False
    # The search-time HNSW ef the app should pass (the source's ef_search; Qdrant otherwise
    # searches with ef_construct), as the migration recorded it. None: not recorded.
    hnsw_ef: int | None = None

    def changes(self) -> list[str]:
        """Human lines for the confirmation prompt and the modal."""
        before = self.from_collection or "(no alias yet)"
        lines = [
            f"{self.action}: alias {self.alias!r} on {self.target_uri}",
            f"  now points at: {before}",
            f"  will point at: {self.to_collection or '(nothing: the alias is removed)'}",
        ]
        if self.to_collection:
            lines.append(f"  validation:    {describe_validation(self.validation)}")
        if self.action == "cutover":
            lines.append(f"  backup first:  {self.snapshot}")
        if self.forced:
            lines.append(f"  FORCED:        {self.reason}")
        if self.router_state:
            lines.append(f"  router mode:   → {self.router_mode} ({self.router_state})")
        if self.hnsw_ef:
            lines.append(
                f"  switch the app to search with hnsw_ef={self.hnsw_ef} (the source's ef_search)"
            )
        if self.from_collection:
            lines.append(f"  {self.from_collection} is kept (Ferry never deletes it)")
        if self.to_collection is None:
            lines.append(f"  apps reading {self.alias!r} get 'not found' until it is set again")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return lines

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CutoverOutcome:
    plan: CutoverPlan
    journal_id: int
    snapshot: dict[str, Any] | None = None
    router_previous_mode: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.plan.action,
            "ok": True,
            "target": self.plan.target_uri,
            "alias": self.plan.alias,
            "from": self.plan.from_collection,
            "to": self.plan.to_collection,
            "forced": self.plan.forced,
            "reason": self.plan.reason,
            "validation": self.plan.validation,
            "snapshot": self.snapshot,
            "router": (
                {
                    "state": self.plan.router_state,
                    "from": self.router_previous_mode,
                    "to": self.plan.router_mode,
                }
                if self.plan.router_state
                else None
            ),
            "journal_id": self.journal_id,
            "warnings": self.plan.warnings,
        }


def validation_view(record: ValidationRecord | None) -> dict[str, Any] | None:
    """The journal's latest validation, trimmed to what a cutover record needs."""
    if record is None:
        return None
    return {
        "id": record.id,
        "ok": record.ok,
        "ts": record.ts,
        "age_seconds": max(0.0, time.time() - record.ts),
        "source_uri": record.source_uri,
        "collection": record.collection,
        "result": record.result,
    }


def validation_summary(view: dict[str, Any] | None) -> dict[str, Any] | None:
    """A validation_view without the full result: what a list of candidates shows."""
    if view is None:
        return None
    result = view.get("result") or {}
    return {
        "id": view["id"],
        "ok": view["ok"],
        "ts": view["ts"],
        "age_seconds": round(view["age_seconds"], 1),
        "recall_at_k": result.get("recall_at_k"),
        "k": result.get("k"),
        "reasons": result.get("reasons") or [],
    }


def describe_validation(view: dict[str, Any] | None) -> str:
    if view is None:
        return "none recorded"
    verdict = "passed" if view["ok"] else "FAILED"
    return f"{verdict} {format_age(view['age_seconds'])} ago (#{view['id']})"


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


async def plan_cutover(
    backend: AliasBackend,
    journal: Journal,
    collection: str,
    alias: str,
    force: bool = False,
    reason: str | None = None,
    router_state: str | Path | None = None,
) -> CutoverPlan:
    """Check everything that can be checked before the switch; refuse with the fix."""
    target = backend.target_uri
    if force and not (reason and reason.strip()):
        raise FerryError("--force needs a reason", fix='add --reason "why this is safe"')
    collections = await backend.collections()
    if collection not in collections:
        raise FerryError(
            f"no collection {collection!r}",
            where=target,
            fix="pass the physical collection Ferry migrated into",
        )
    if alias in collections:
        raise FerryError(
            f"{alias!r} is a collection, not an alias: an alias needs a free name",
            where=target,
            fix=f"blue-green: copy into another name (`ferry migrate --target-name "
            f"'{{name}}_v2'` or `--collection {alias}={alias}_v2`) and cut alias {alias} over "
            f"to it; the name is free for an alias once no collection has it",
        )
    current = await backend.current(alias)
    already_switched = False
    if current == collection:
        records = journal.cutovers.history(target, alias)
        journaled = records[0].to_collection if records else None
        if journaled == collection:
            raise FerryError(
                f"alias {alias!r} already points at {collection!r}",
                where=target,
                fix="nothing to do",
            )
        # Switched, never journaled (killed in between): finish by recording it.
        already_switched, current = True, journaled
    validation = validation_view(journal.validations.latest(target, collection))
    if validation is None or not validation["ok"]:
        what = (
            f"no validation of {collection!r} recorded"
            if validation is None
            else f"the latest validation of {collection!r} failed"
        )
        if not force:
            raise FerryError(
                what + "; cutover refused",
                where=target,
                fix=f"run `ferry validate` on {collection} (or --force --reason TEXT)",
            )
    search = journal.runs.search_settings(target, collection)
    plan = CutoverPlan(
        action="cutover",
        target_uri=target,
        alias=alias,
        from_collection=current,
        to_collection=collection,
        backend=backend.kind,
        snapshot=backend.snapshot_words(collection),
        validation=validation,
        forced=bool(force),
        reason=reason.strip() if reason else None,
        already_switched=already_switched,
        hnsw_ef=search.hnsw_ef if search else None,
    )
    if already_switched:
        plan.warnings.append(
            "the alias already points there (an earlier cutover stopped before its journal "
            "row): only the journal is written"
        )
    if validation is not None and not validation["ok"]:
        plan.warnings.append("the latest validation FAILED")
    from ferry.core.live.follow import CUTOVER_LAG_WAIT_SECONDS, followed

    if (live := followed(journal, target, collection)) is not None:
        plan.warnings.append(
            f"{collection} is followed (ferry migrate --follow, {live.lag_words()}): the "
            f"switch waits for lag 0, at most {CUTOVER_LAG_WAIT_SECONDS:.0f}s"
        )
    if router_state:
        plan.router_state = str(router_state)
        plan.router_mode = Mode.FLIPPED.value
    return plan


async def plan_rollback(
    backend: AliasBackend,
    journal: Journal,
    alias: str,
    router_state: str | Path | None = None,
) -> CutoverPlan:
    """Back to where the alias pointed before the latest cutover, if that is still possible."""
    target = backend.target_uri
    history = [r for r in journal.cutovers.history(target, alias) if r.action == "cutover"]
    if not history:
        raise FerryError(
            f"no cutover of alias {alias!r} in the journal",
            where=target,
            fix="nothing to roll back (check --to and --alias)",
        )
    latest = history[0]
    back_to = latest.from_collection  # None: the alias did not exist; rollback removes it
    current = await backend.current(alias)
    if current == back_to:
        raise FerryError(
            f"alias {alias!r} already points at {back_to!r}"
            if back_to
            else f"alias {alias!r} is already removed (it did not exist before its cutover)",
            where=target,
            fix="nothing to roll back",
        )
    if back_to and back_to not in await backend.collections():
        raise FerryError(
            f"the previous collection {back_to!r} is gone",
            where=target,
            fix="restore it from a snapshot first",
        )
    plan = CutoverPlan(
        action="rollback",
        target_uri=target,
        alias=alias,
        from_collection=current,
        to_collection=back_to,
        backend=backend.kind,
        snapshot="none (rolling back to a kept collection)"
        if back_to
        else "none (removing an alias deletes no data)",
        validation=validation_view(journal.validations.latest(target, back_to))
        if back_to
        else None,
    )
    if current != latest.to_collection:
        plan.warnings.append(
            f"the alias points at {current!r}, not at {latest.to_collection!r} "
            "where the latest cutover put it: it was moved outside Ferry"
        )
    if router_state:
        plan.router_state = str(router_state)
        plan.router_mode = Mode.DUAL_WRITE.value
    return plan


async def plan_alias_delete(backend: AliasBackend, alias: str) -> CutoverPlan:
    """Remove an alias (the collection it points at stays): `ferry alias delete`."""
    target = backend.target_uri
    current = await backend.current(alias)
    if current is None:
        known = ", ".join(sorted(await backend.aliases())) or "none"
        raise FerryError(
            f"no alias {alias!r}", where=target, fix=f"aliases on this target: {known}"
        )
    return CutoverPlan(
        action="alias-delete",
        target_uri=target,
        alias=alias,
        from_collection=current,
        to_collection=None,
        backend=backend.kind,
        snapshot="none (removing an alias deletes no data)",
    )


async def execute(
    backend: AliasBackend,
    journal: Journal,
    plan: CutoverPlan,
    progress: Progress | None = None,
) -> CutoverOutcome:
    """Do what the plan says — only if the alias still points where the plan saw it."""
    current = await backend.current(plan.alias)
    expected = plan.to_collection if plan.already_switched else plan.from_collection
    if current != expected:
        raise FerryError(
            f"alias {plan.alias!r} moved since the plan was shown "
            f"(now {current!r}, was {plan.from_collection!r})",
            where=plan.target_uri,
            fix="look again and re-run",
        )
    snapshot = None
    if plan.action == "cutover" and plan.to_collection:
        # A collection `ferry migrate --follow` keeps catching up: switch at lag 0 only
        # (waits up to CUTOVER_LAG_WAIT_SECONDS, else refuses with nothing switched).
        from ferry.core.live.follow import wait_for_lag_zero

        await wait_for_lag_zero(journal, plan.target_uri, plan.to_collection)
    if not plan.already_switched:
        if plan.action == "cutover" and plan.to_collection:
            snapshot = await backend.snapshot(plan.to_collection, progress)
        faultpoints.reached("cutover-snapshot")
        if plan.to_collection is None:
            await backend.remove(plan.alias, expected=plan.from_collection)
        else:
            await backend.switch(plan.alias, plan.to_collection, expected=plan.from_collection)
        faultpoints.reached("cutover-switch")
    previous_mode = None
    if plan.router_state and plan.router_mode:
        _state, previous_mode = set_mode(
            Path(plan.router_state),
            Mode(plan.router_mode),
            reason=f"{plan.action} of alias {plan.alias} to {plan.to_collection or '(removed)'}",
            target_uri=plan.target_uri,
            alias=plan.alias,
        )
    journal_id = journal.cutovers.record(
        action=plan.action,
        target_uri=plan.target_uri,
        alias=plan.alias,
        from_collection=plan.from_collection,
        to_collection=plan.to_collection,
        forced=int(plan.forced),
        reason=plan.reason,
        validation=plan.validation,
        detail={
            "backend": plan.backend,
            "snapshot": snapshot,
            "backup": backup_reference(snapshot),
            "warnings": plan.warnings,
            "router": {"state": plan.router_state, "from": previous_mode, "to": plan.router_mode}
            if plan.router_state
            else None,
        },
    )
    return CutoverOutcome(plan, journal_id, snapshot, previous_mode)


def backup_reference(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """The backup a cutover relied on, as its journal record names it (None: no backup)."""
    if not snapshot or snapshot.get("kind") == "none":
        return None
    return {
        "path": snapshot.get("path"),
        "name": snapshot.get("name"),  # a server-side snapshot
        "manifest_sha256": snapshot.get("manifest_sha256"),
        "reused": snapshot.get("reused"),
    }


async def cutover(
    target_uri: str,
    collection: str,
    alias: str,
    journal: Journal,
    force: bool = False,
    reason: str | None = None,
    router_state: str | Path | None = None,
) -> CutoverOutcome:
    """Plan and execute in one go (for scripts and tests; views show the plan first)."""
    async with open_alias_backend(target_uri) as backend:
        plan = await plan_cutover(backend, journal, collection, alias, force, reason, router_state)
        return await execute(backend, journal, plan)


async def rollback(
    target_uri: str, alias: str, journal: Journal, router_state: str | Path | None = None
) -> CutoverOutcome:
    async with open_alias_backend(target_uri) as backend:
        plan = await plan_rollback(backend, journal, alias, router_state)
        return await execute(backend, journal, plan)


async def delete_alias(target_uri: str, alias: str, journal: Journal) -> CutoverOutcome:
    async with open_alias_backend(target_uri) as backend:
        return await execute(backend, journal, await plan_alias_delete(backend, alias))


# -- candidates: what the journal says was migrated here ---------------------------------------
@dataclass
class Candidate:
    """A collection a run copied into this target: what an alias could point at next.

    `alias` is the source's name: the name the application used on the source, so the one
    it will look for on the target. It is free unless a collection already has that name
    (then blue-green: the copy needs another name; see `plan_cutover`'s refusal).
    """

    alias: str  # the source collection's name
    collection: str  # the target collection the run wrote
    source_uri: str
    run_id: str
    migrated_at: float
    records: int
    validation: dict[str, Any] | None  # validation_view of the latest validation
    pointed_by: list[str] = field(default_factory=list)  # aliases pointing at it now
    alias_is_collection: bool = False

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.migrated_at)

    @property
    def state(self) -> str:
        """In words, for `--list` and the screen: migrated / validated / failed / live."""
        if self.pointed_by:
            return "live"
        if self.validation is None:
            return "migrated"
        return "validated" if self.validation["ok"] else "validation failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "collection": self.collection,
            "source": self.source_uri,
            "run_id": self.run_id,
            "migrated_at": self.migrated_at,
            "age_seconds": round(self.age_seconds, 1),
            "records": self.records,
            "state": self.state,
            "validation": validation_summary(self.validation),
            "pointed_by": self.pointed_by,
            "alias_is_collection": self.alias_is_collection,
        }


def candidates_from(
    journal: Journal, target_uri: str, aliases: dict[str, str], collections: list[str]
) -> list[Candidate]:
    """Completed copies into `target_uri` still on the target, the newest run per target
    collection, newest first."""
    seen: set[str] = set()
    found: list[Candidate] = []
    for row in journal.runs.migrated_collections(target_uri):
        name = row.target_name
        if name in seen or row.phase is not Phase.COMPLETED or row.skipped_reason:
            continue
        if name not in collections:
            continue  # dropped since: nothing to point at
        seen.add(name)
        found.append(
            Candidate(
                alias=row.name,
                collection=name,
                source_uri=row.source_uri,
                run_id=row.run_id,
                migrated_at=float(row.finished_at or row.updated_at),
                records=row.records_written,
                validation=validation_view(journal.validations.latest(target_uri, name)),
                pointed_by=sorted(a for a, c in aliases.items() if c == name),
                alias_is_collection=row.name in collections,
            )
        )
    return found


async def cutover_candidates(target_uri: str, journal: Journal) -> list[Candidate]:
    """`ferry cutover --list`: what the journal says was migrated here, validated or not."""
    async with open_alias_backend(target_uri) as backend:
        aliases = await backend.aliases()
        collections = await backend.collections()
    return candidates_from(journal, target_uri, aliases, collections)


# -- the overview the Cutover screen shows ---------------------------------------------------
@dataclass
class AliasView:
    alias: str
    current: str | None
    candidate: str | None
    validation: dict[str, Any] | None  # of the candidate
    rollback_to: str | None
    shadow: dict[str, Any] | None = None  # router figures, when an app reported any
    recommendation: dict[str, Any] | None = None
    migrated_at: float | None = None  # of the candidate, when a run in the journal made it
    is_collection: bool = False  # a collection has this name: no alias can take it
    can_remove: bool = False  # rollback removes the alias (its first cutover created it)

    @property
    def figures(self) -> dict[str, Any]:
        """Overlap@k, Δ latency and error rate, from the router when apps reported figures,
        else from the candidate's latest validation (its recall@k and query timings)."""
        if self.shadow:
            return {**self.shadow, "from": "router"}
        result = (self.validation or {}).get("result") or {}
        recall = result.get("recall") or {}
        if not recall:
            return {}
        timings = recall.get("query_ms") or {}
        latency = None
        if "source" in timings and "target" in timings:
            latency = float(timings["target"]) - float(timings["source"])
        return {
            "overlap_at_k": recall.get("recall_at_k"),
            "k": recall.get("k"),
            "latency_diff_ms": latency,
            "error_rate": 0.0 if not result.get("error") else None,  # every query answered
            "queries": recall.get("queries"),
            "from": "validation",
        }


async def alias_overview(
    target_uri: str, journal: Journal, router_state: str | Path | None = None
) -> list[AliasView]:
    """Every alias worth showing: existing ones, ones Ferry cut over, the source names of
    collections runs migrated here (journal candidates), and ``base__x`` names.

    The candidate for an alias is, among the journal's copies of the source of that name
    and the ``<alias>__*`` collections it does not point at yet, the most recently validated
    (else the most recently migrated, else the newest by name).
    """
    async with open_alias_backend(target_uri) as backend:
        aliases = await backend.aliases()
        collections = await backend.collections()
    candidates = candidates_from(journal, target_uri, aliases, collections)
    names = set(aliases)
    names.update(r.alias for r in journal.cutovers.history(target_uri) if r.action != "router")
    names.update(c.split("__", 1)[0] for c in collections if "__" in c)
    # A source name a collection already has cannot be an alias here: `--list` says so.
    names.update(c.alias for c in candidates if not c.alias_is_collection)
    shadow = recommendation = None
    router_alias = None
    if router_state and Path(router_state).exists():
        state = read_state(Path(router_state))
        router_alias = state.get("alias")
        summary = summarize_stats(read_stats(Path(router_state)))
        if summary:
            stores = summary["stores"]
            shadow = {
                "mode": state.get("mode"),
                "overlap_at_k": summary["shadow"]["overlap_at_k"],
                "k": summary["shadow"]["k"],
                "latency_diff_ms": summary["shadow"]["latency_diff_ms"],
                "error_rate": stores["secondary"]["error_rate"],
                "p99_ms": stores["secondary"]["p99_ms"],
            }
            recommendation = summary["recommendation"]
    migrated = {c.collection: c for c in candidates}
    views = []
    for alias in sorted(names):
        current = aliases.get(alias)
        family = {c for c in collections if c.startswith(alias + "__")}
        family.update(c.collection for c in candidates if c.alias == alias)
        family -= {current, alias}
        scored = []
        for name in family:
            row = journal.validations.latest(target_uri, name)
            made = migrated.get(name)
            scored.append((row.ts if row else 0.0, made.migrated_at if made else 0.0, name))
        chosen = max(scored) if scored else None
        candidate = chosen[2] if chosen else None
        history = [r for r in journal.cutovers.history(target_uri, alias) if r.action == "cutover"]
        rollback_to = None
        can_remove = False
        if history and history[0].from_collection and history[0].from_collection != current:
            rollback_to = history[0].from_collection
        elif history and not history[0].from_collection and current:
            can_remove = True
        mine = router_alias in (None, alias)
        views.append(
            AliasView(
                alias=alias,
                current=current,
                candidate=candidate,
                validation=validation_view(journal.validations.latest(target_uri, candidate))
                if candidate
                else None,
                rollback_to=rollback_to,
                shadow=shadow if mine else None,
                recommendation=recommendation if mine else None,
                migrated_at=chosen[1] or None if chosen else None,
                is_collection=alias in collections,
                can_remove=can_remove,
            )
        )
    return views
