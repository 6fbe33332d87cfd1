"""What to move where, checked before a single write: preflight errors, warnings, and a
complexity/risk note per collection for the inventory and the plan screen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.compat import check_target
from core.connectors.base import (
    Capability,
    Connector,
    SourceConnector,
    TargetConnector,
    WriteMode,
)
from core.connectors.traits import DEFAULT_TARGET, EngineTraits
from core.errors import FerryError, PreflightError
from core.mapping import PayloadFields
from core.model import Batch, CollectionInfo
from core.tuning import IndexTuning, TuningOptions, plan_tuning

LARGE_RECORDS = 1_000_000


@dataclass
class CollectionPlan:
    """One collection's move: its source facts, the target's state, and what to watch."""

    source: CollectionInfo
    target_name: str
    target_exists: bool = False
    target: CollectionInfo | None = None
    skip_reason: str | None = None
    id_mapping: str = "none"  # none | some | all (of a sample)
    complexity: str = "low"  # low | medium | high
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    # How the target collection is indexed and searched (from the source; see core.tuning),
    # and what its index phase does, in words.
    tuning: IndexTuning = field(default_factory=IndexTuning)
    index: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.source.name,
            "target_name": self.target_name,
            "source": self.source.to_json(),
            "target_exists": self.target_exists,
            "target": self.target.to_json() if self.target else None,
            "skip_reason": self.skip_reason,
            "id_mapping": self.id_mapping,
            "complexity": self.complexity,
            "notes": self.notes,
            "warnings": self.warnings,
            "error": self.error,
            "tuning": self.tuning.to_json(),
            "index": self.index,
        }


@dataclass
class MigrationPlan:
    source_uri: str
    target_uri: str
    collections: list[CollectionPlan]
    mode: WriteMode
    fields: PayloadFields
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [c.error for c in self.collections if c.error]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source_uri,
            "target": self.target_uri,
            "mode": self.mode.value,
            "fields": {"source_id": self.fields.source_id, "document": self.fields.document},
            "collections": [c.to_json() for c in self.collections],
            "warnings": self.warnings,
            "errors": self.errors,
        }


def run_key(
    source_uri: str, target_uri: str, collections: list[str], fields: PayloadFields, mode: str
) -> str:
    """What identifies a run: the same command again means the same run, resumed."""
    material = json.dumps(
        {
            "source": source_uri,
            "target": target_uri,
            "collections": sorted(collections) or ["*"],
            "fields": [fields.source_id, fields.document],
            "mode": mode,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def assess(
    info: CollectionInfo,
    sample_ids: list[str],
    source: EngineTraits,
    target: EngineTraits = DEFAULT_TARGET,
) -> CollectionPlan:
    """Complexity and risk from what we know without moving anything.

    `target` is the target engine's traits (the default target when none is chosen yet).
    """
    plan = CollectionPlan(source=info, target_name=info.name)
    score = 0
    if info.count == 0:
        plan.notes.append("empty")
    if info.count >= LARGE_RECORDS:
        score += 2
        plan.notes.append(f"large: {info.count:,} records")
    elif info.count >= 100_000:
        score += 1
        plan.notes.append(f"{info.count:,} records")
    if info.dimension and info.count:
        size_mb = info.count * info.dimension * 4 / 1e6
        plan.notes.append(f"~{size_mb:,.0f} MB of vectors")
    if target.maps_ids and sample_ids:
        mapped = sum(target.needs_id_mapping(i) for i in sample_ids)
        plan.id_mapping = (
            "none" if mapped == 0 else ("all" if mapped == len(sample_ids) else "some")
        )
        if mapped:
            score += 1
            plan.notes.append(
                f"ids need mapping ({plan.id_mapping}): kept in payload, uuid5 point ids"
            )
    plan.notes += target.plan_notes(info.metric, source)
    if info.facts.get("schema_pending"):
        score += 2
        plan.warnings.append("Chroma schema migrations pending: read via an upgraded copy")
    if info.facts.get("metadata_keys_sampled"):
        sampled = int(info.facts.get("metadata_keys_sample_size") or 1000)
        plan.notes.append(f"metadata keys sampled from the first {sampled:,} records")
    plan.complexity = ["low", "medium", "high"][min(score, 2)]
    return plan


async def sample_collection(source: SourceConnector, info: CollectionInfo) -> Batch | None:
    """The first records (what the plan judges id mapping and target warnings by); where
    the source keeps no list of its metadata keys (Qdrant), they are sampled into `info`.

    A source that cannot be read yet gives no sample: the plan says nothing about ids.
    """
    try:
        batch = await source.sample(info.name)
    except FerryError:
        return None
    if batch is not None and not source.lists_metadata_keys:
        info.metadata_keys = sorted({k for m in batch.metadatas if m for k in m})
        info.facts["metadata_keys_sampled"] = True
        info.facts["metadata_keys_sample_size"] = len(batch)
    return batch


async def choose_collections(source: Connector, names: Sequence[str] | None) -> list[str]:
    """The named source collections (all when none is named); an unknown name is refused."""
    available = await source.list_collections()
    chosen = list(names) if names else available
    missing = [n for n in chosen if n not in available]
    if missing:
        raise PreflightError(
            f"no collection {', '.join(map(repr, missing))} in the source",
            where=source.uri,
            fix=f"choose from: {', '.join(available) or '(none)'}",
        )
    return chosen


async def build_plan(
    source: SourceConnector,
    target: Connector,
    names: list[str] | None,
    mode: WriteMode,
    fields: PayloadFields,
    owned: Any = None,
    tuning: TuningOptions | None = None,
    index: bool = True,
) -> MigrationPlan:
    """Describe every chosen collection on both sides and check it can be moved.

    `owned(target_name) -> bool` says whether the journal records Ferry creating it.
    `tuning` overrides what is carried from the source (HNSW, payload indexes); `index`
    False is a staging copy (no index phase).
    Problems are collected per collection (so the inventory can show them all); `migrate`
    refuses to start while any remain.
    """
    chosen = await choose_collections(source, names)
    if not isinstance(target, TargetConnector) or not target.can(Capability.WRITE):
        raise PreflightError(
            f"{target.uri} cannot be a target ({target.kind} is read-only in Ferry)",
            fix="use qdrant+edge://, qdrant+file://, qdrant+http(s):// or chroma+http(s)://",
        )
    existing = set(await target.list_collections())
    plan = MigrationPlan(source.uri, target.uri, [], mode, fields)
    plan.warnings += target.plan_warnings()
    for side in (source.uri, target.uri):
        if "+http://" in side and "api_key_env=" in side:
            plan.warnings.append(f"an API key is sent over plain http to {side.split('?')[0]}")
    for name in chosen:
        info = await source.describe(name)
        sample = await sample_collection(source, info)
        item = assess(info, sample.ids if sample else [], source.traits, target.traits)
        item.warnings += target.sample_warnings(sample) if sample else []
        item.tuning = plan_tuning(
            info.facts,
            sample.metadatas if sample else [],
            tuning,
            reserved=(fields.source_id, fields.document) if target.traits.payload_fields else (),
        )
        item.index = target.index_words() if index else "none: staging copy (--no-index)"
        item.notes.append(target.tuning_words(item.tuning))
        item.notes += list(item.tuning.notes)
        item.notes.append(f"index phase: {item.index}")
        plan.collections.append(item)
        try:
            if info.count and (info.dimension is None or info.metric is None):
                raise PreflightError(
                    f"collection {name!r} has records but no known dimension",
                    where=source.uri,
                )
            if info.dimension is None:
                item.skip_reason = "empty collection with unknown dimension"
                continue
            if target.traits.payload_fields:
                fields.check_against(info.metadata_keys, where=f"{source.uri} {name}")
            if name in existing:
                item.target_exists = True
                item.target = await target.describe(name)
                is_owned = bool(owned and owned(name))
                item.warnings += check_target(target.uri, info, item.target, mode, is_owned)
        except FerryError as exc:
            item.error = exc.one_line()
    return plan
