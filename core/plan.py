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
from core.connectors.base import Connector, WriteMode
from core.connectors.edge_floats import edge_read_back, ulps_apart
from core.errors import FerryError, PreflightError
from core.mapping import PayloadFields, needs_id_mapping
from core.model import CollectionInfo

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


def assess(info: CollectionInfo, sample_ids: list[str], target_kind: str) -> CollectionPlan:
    """Complexity and risk from what we know without moving anything."""
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
    if target_kind.startswith("qdrant") and sample_ids:
        mapped = sum(needs_id_mapping(i) for i in sample_ids)
        plan.id_mapping = (
            "none" if mapped == 0 else ("all" if mapped == len(sample_ids) else "some")
        )
        if mapped:
            score += 1
            plan.notes.append(
                f"ids need mapping ({plan.id_mapping}): kept in payload, uuid5 point ids"
            )
    if info.metric and info.metric.value == "ip":
        plan.notes.append("ip: Qdrant Dot scores are dot products, Chroma's are 1 - dot")
    if info.metric and info.metric.value == "l2":
        plan.notes.append("l2: Chroma reports squared distance, Qdrant plain distance")
    if info.facts.get("schema_pending"):
        score += 2
        plan.warnings.append("Chroma schema migrations pending: read via an upgraded copy")
    if info.facts.get("metadata_keys_sampled"):
        plan.notes.append("metadata keys sampled from the first 1,000 records")
    plan.complexity = ["low", "medium", "high"][min(score, 2)]
    return plan


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
    source: Connector,
    target: Connector,
    names: list[str] | None,
    mode: WriteMode,
    fields: PayloadFields,
    owned: Any = None,
) -> MigrationPlan:
    """Describe every chosen collection on both sides and check it can be moved.

    `owned(target_name) -> bool` says whether the journal records Ferry creating it.
    Problems are collected per collection (so the inventory can show them all); `migrate`
    refuses to start while any remain.
    """
    chosen = await choose_collections(source, names)
    if "write" not in target.capabilities:
        raise PreflightError(
            f"{target.uri} cannot be a target ({target.kind} is read-only in Ferry)",
            fix="use qdrant+edge://, qdrant+file://, qdrant+http(s):// or chroma+http(s)://",
        )
    existing = set(await target.list_collections())
    plan = MigrationPlan(source.uri, target.uri, [], mode, fields)
    if target.kind == "qdrant-local" and target.uri.startswith("qdrant+file"):
        plan.warnings.append(
            "qdrant-client local mode stores each point as a pickle in SQLite: "
            "~0.7k records/s and large memory to reopen; prefer qdrant+edge:// for speed"
        )
    if target.uri.startswith("qdrant+memory"):
        plan.warnings.append("qdrant+memory: the copy lives only as long as this process")
    for side in (source.uri, target.uri):
        if "+http://" in side and "api_key_env=" in side:
            plan.warnings.append(f"an API key is sent over plain http to {side.split('?')[0]}")
    for name in chosen:
        info = await source.describe(name)
        sample_ids = await _sample_ids(source, name)
        item = assess(info, sample_ids, target.kind)
        plan.collections.append(item)
        if target.kind == "qdrant-edge":
            rounding = await _edge_rounding_warning(source, name)
            item.warnings += [rounding] if rounding else []
        try:
            if info.count and (info.dimension is None or info.metric is None):
                raise PreflightError(
                    f"collection {name!r} has records but no known dimension",
                    where=source.uri,
                )
            if info.dimension is None:
                item.skip_reason = "empty collection with unknown dimension"
                continue
            if target.kind.startswith("qdrant"):
                fields.check_against(info.metadata_keys, where=f"{source.uri} {name}")
            if name in existing:
                item.target_exists = True
                item.target = await target.describe(name)
                is_owned = bool(owned and owned(name))
                item.warnings += check_target(target.uri, info, item.target, mode, is_owned)
        except FerryError as exc:
            item.error = exc.one_line()
    return plan


EDGE_ROUNDS_FLOATS = "Qdrant Edge reads float metadata back rounded"


async def _edge_rounding_warning(source: Connector, name: str, limit: int = 200) -> str | None:
    """Whether the first records hold floats that Edge would give back changed (see
    core/connectors/edge_floats.py), as a warning; floats it keeps (0.5, 1.0) warn nothing."""
    floats: list[float] = []

    def collect(value: Any) -> None:
        if isinstance(value, float):
            floats.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    reader = source.read(name, None, limit)
    try:
        async for batch in reader:
            for metadata in batch.metadatas:
                collect(metadata)
            break
    except FerryError:
        return None
    finally:
        await reader.aclose()
    changed = [x for x in floats if edge_read_back(x) != x]
    if not changed:
        return None
    worst = max(ulps_apart(x, edge_read_back(x)) for x in changed)
    return (
        f"{EDGE_ROUNDS_FLOATS} ({len(changed)} of {len(floats)} sampled, ≤ {worst} ulp): "
        "validate notes it, not a mismatch; repair cannot change it"
    )


async def _sample_ids(source: Connector, name: str, limit: int = 200) -> list[str]:
    reader = source.read(name, None, limit)
    try:
        async for batch in reader:
            return list(batch.ids)
    except FerryError:
        return []
    finally:
        await reader.aclose()
    return []
