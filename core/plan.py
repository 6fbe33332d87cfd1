"""What to move where, checked before a single write: preflight errors, warnings, and a
complexity/risk note per collection for the inventory and the plan screen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.core.compat import check_shape, check_target
from ferry.core.connectors.base import (
    Capability,
    Connector,
    SourceConnector,
    TargetConnector,
    WriteMode,
)
from ferry.core.connectors.traits import DEFAULT_TARGET, EngineTraits
from ferry.core.embed.plan import EmbedPlan
from ferry.core.errors import FerryError, PreflightError
from ferry.core.layouts import Detection, PayloadLayout, detect_framework, make_layout, switch_lines
from ferry.core.layouts.apps import as_created
from ferry.core.mapping import PayloadFields
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.targets import TargetNames, clashes
from ferry.core.tuning import IndexTuning, TuningOptions, plan_tuning
from ferry.core.uri import parse_uri

WIDE_METADATA_KEYS = 50  # more keys than this: a metadata shape worth a look
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
    # Which framework wrote it (core.layouts.detect_framework), the payload layout that will
    # be written and why, and the lines the app changes to read the target.
    detection: Detection = field(default_factory=Detection)
    layout: str = "flat"
    layout_reason: str = "no framework detected"
    switch: list[str] = field(default_factory=list)
    # How the target collection is indexed and searched (from the source; see core.tuning),
    # and what its index phase does, in words.
    tuning: IndexTuning = field(default_factory=IndexTuning)
    index: str = ""
    # Re-embedding (`--embed`): the model, new shape, documents, tokens, time, cost.
    embed: EmbedPlan | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.source.name,
            "target_name": self.target_name,
            "framework": self.detection.framework,
            "framework_marks": self.detection.marks,
            "layout": self.layout,
            "layout_reason": self.layout_reason,
            "switch": self.switch,
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
        if self.embed is not None:
            data["embed"] = self.embed.to_json()
        return data


@dataclass
class MigrationPlan:
    source_uri: str
    target_uri: str
    collections: list[CollectionPlan]
    mode: WriteMode
    fields: PayloadFields
    warnings: list[str] = field(default_factory=list)
    layout: str | None = None  # as asked (--layout); None: each collection's detected one
    targets: TargetNames = field(default_factory=TargetNames)

    @property
    def pairs(self) -> dict[str, str]:
        """source name → target collection name, for every planned collection."""
        return {c.source.name: c.target_name for c in self.collections}

    @property
    def errors(self) -> list[str]:
        return [c.error for c in self.collections if c.error]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source_uri,
            "target": self.target_uri,
            "mode": self.mode.value,
            "fields": {"source_id": self.fields.source_id, "document": self.fields.document},
            "layout": self.layout,
            "target_name_template": self.targets.template,
            "collections": [c.to_json() for c in self.collections],
            "warnings": self.warnings,
            "errors": self.errors,
        }


def run_key(
    source_uri: str,
    target_uri: str,
    collections: list[str],
    fields: PayloadFields,
    mode: str,
    layout: str | None = None,
    targets: TargetNames | None = None,
    embed: str | None = None,
) -> str:
    """What identifies a run: the same command again means the same run, resumed.

    An explicit `--layout` is part of it (another layout is another run); a detected one is
    not (the journal keeps it, so a resumed run writes the layout it started with). The
    target names are part of it (`targets.identity`): the same pairs resume, another pair for
    a source is another run into another collection. When every collection keeps its name
    and no layout is asked for, the key is what it always was, so older journals resume.
    """
    material: dict[str, Any] = {
        "source": source_uri,
        "target": target_uri,
        "collections": sorted(collections) or ["*"],
        "fields": [fields.source_id, fields.document],
        "mode": mode,
    }
    if layout:
        material["layout"] = layout
    if embed:  # re-embedding with a model (and its settings) is a run of its own
        material["embed"] = embed
    identity = targets.identity(collections) if targets else None
    if identity:
        material["targets"] = identity
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def assess(
    info: CollectionInfo,
    sample_ids: list[str],
    source: EngineTraits,
    target: EngineTraits = DEFAULT_TARGET,
    layout: PayloadLayout | None = None,
) -> CollectionPlan:
    """Complexity and risk from what we know without moving anything.

    `target` is the target engine's traits (the default target when none is chosen yet);
    `layout` the payload layout a Qdrant target writes (it decides which ids are mapped).
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
        rule = layout.maps_id if layout is not None else target.needs_id_mapping
        mapped = sum(rule(i) for i in sample_ids)
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
        # Said as it happened: most old directories are read straight from their files
        # (only a reader that needs chromadb's API works on an upgraded private copy).
        if info.facts.get("reader") == "api-copy":
            score += 1
            plan.warnings.append("Chroma schema migrations pending: read via an upgraded copy")
        else:
            plan.notes.append(
                "Chroma schema migrations pending: read straight from the files (unchanged)"
            )
    if len(info.metadata_keys) > WIDE_METADATA_KEYS:  # metadata shape: many filterable keys
        score += 1
        plan.notes.append(f"{len(info.metadata_keys)} metadata keys")
    for note in info.facts.get("space_notes") or []:
        if "hnsw:space" in note:  # metadata and stored configuration disagree: say which
            plan.warnings.append(f"{note}; Ferry uses {info.metric.value if info.metric else '?'}")
    plan.warnings += list(info.facts.get("warnings") or [])  # the source's own (e.g. files)
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
    layout: str | None = None,
    targets: TargetNames | None = None,
    tuning: TuningOptions | None = None,
    index: bool = True,
    layout_origin: str | None = None,
    embed_shape: tuple[int, Metric] | None = None,
) -> MigrationPlan:
    """Describe every chosen collection on both sides and check it can be moved.

    `owned(target_name) -> bool` says whether the journal records Ferry creating it.
    `layout` is the payload layout asked for (`--layout`); without one, each collection gets
    the layout of the framework its data says wrote it (flat when none), and the target
    connector is told which (`use_payload_layout`). `targets` names each target collection
    (default: the source's name). Problems are collected per collection (so the inventory can
    show them all); `migrate` refuses to start while any remain. `tuning` overrides what is
    carried from the source (HNSW, payload indexes); `index` False is a staging copy.
    """
    targets = targets or TargetNames()
    unknown = sorted(set(targets.pairs) - set(names or targets.pairs))
    if unknown:  # pairs name their collections; a caller passing both must agree
        raise PreflightError(f"target names given for unselected {unknown}", fix="select them")
    chosen = await choose_collections(source, names or None)
    if not isinstance(target, TargetConnector) or not target.can(Capability.WRITE):
        raise PreflightError(
            f"{target.uri} cannot be a target ({target.kind} is read-only in Ferry)",
            fix="use qdrant+edge://, qdrant+file://, qdrant+http(s)://, chroma+http(s)://, "
            "parquet+file:// or jsonl+file://",
        )
    existing = set(await target.list_collections())
    if layout is not None:
        make_layout(layout)  # an unknown name is refused before anything is read
    plan = MigrationPlan(source.uri, target.uri, [], mode, fields, layout=layout, targets=targets)
    plan.warnings += target.plan_warnings()
    for side in (source.uri, target.uri):
        if "+http://" in side and "api_key_env=" in side:
            plan.warnings.append(f"an API key is sent over plain http to {side.split('?')[0]}")
    for name in chosen:
        info = await source.describe(name)
        info.facts["source_uri"] = source.uri  # a file export records where it came from
        sample = await sample_collection(source, info)
        detection = detect_framework(
            info,
            sample.ids if sample else [],
            sample.metadatas if sample else [],
            sample.documents if sample else [],
        )
        chosen, reason, conflict = choose_layout(detection, layout, target, fields, layout_origin)
        target_name = targets.resolve(name)
        item = assess(
            info,
            sample.ids if sample else [],
            source.traits,
            target.traits,
            chosen if target.payload_layout(target_name) is not None else None,
        )
        item.target_name = target_name
        item.detection, item.layout, item.layout_reason = detection, chosen.name, reason
        item.warnings += [conflict] if conflict else []
        item.warnings += target.sample_warnings(sample) if sample else []
        item.tuning = plan_tuning(
            info.facts,
            sample.metadatas if sample else [],
            tuning,
            reserved=(fields.source_id, fields.document) if target.traits.payload_fields else (),
        )
        item.index = target.indexing.words if index else "none: staging copy (--no-index)"
        item.notes.append(target.tuning_words(item.tuning))
        item.notes += list(item.tuning.notes)
        item.notes.append(f"index phase: {item.index}")
        plan.collections.append(item)
        try:
            problem = target.traits.name_problem(target_name)
            if problem:
                raise PreflightError(
                    f"target name {target_name!r} for {name!r} is refused: {problem}",
                    where=target.uri,
                    fix="choose another with --collection NAME=TARGET or --target-name",
                )
            target.use_payload_layout(target_name, chosen)
            read_as = name if target.can(Capability.ALIASES) else None  # the alias to come
            item.switch = app_switch(target, chosen, info, target_name, sample, read_as)
            if info.count and (info.dimension is None or info.metric is None):
                raise PreflightError(
                    f"collection {name!r} has records but no known dimension",
                    where=source.uri,
                )
            if info.dimension is None:
                item.skip_reason = (
                    "empty collection with unknown dimension: not created on the target (a "
                    "vector collection needs its size; run again once it holds a record)"
                )
                continue
            if target.payload_layout(target_name) is not None:
                chosen.check_metadata_keys(info.metadata_keys, where=f"{source.uri} {name}")
            if embed_shape is not None:  # the target holds the new model's vectors
                info = dataclasses.replace(info, dimension=embed_shape[0], metric=embed_shape[1])
            if target_name in existing:
                item.target_exists = True
                # Dimension and metric first, from what the target can tell without opening
                # the collection: a refused target is left exactly as it was.
                wanted = as_created(info, target.payload_layout(target_name))
                check_shape(target.uri, wanted, await target.shape(target_name), mode)
                item.target = await target.describe(target_name)
                is_owned = bool(owned and owned(target_name))
                item.warnings += check_target(target.uri, wanted, item.target, mode, is_owned)
        except FerryError as exc:
            item.error = exc.one_line()
    for target_name, sources in clashes(plan.pairs.items()).items():
        for item in plan.collections:
            if item.source.name in sources and not item.error:
                item.error = PreflightError(
                    f"{' and '.join(map(repr, sources))} would all be written into {target_name!r}",
                    where=target.uri,
                    fix="give each its own target: --collection NAME=TARGET",
                ).one_line()
    return plan


def choose_layout(
    detection: Detection,
    asked: str | None,
    target: Connector,
    fields: PayloadFields,
    origin: str | None = None,
) -> tuple[PayloadLayout, str, str | None]:
    """(layout, why, a warning when the data says another framework wrote it).

    `origin` says who asked for `asked` when it was not `--layout` ("profile NAME")."""
    keeps_layouts = isinstance(target, SourceConnector) and target.payload_layout("") is not None
    if asked is not None:
        chosen = make_layout(asked, fields)
        why = f"{origin}: layout {chosen.name}" if origin else f"--layout {chosen.name}"
        conflict = None
        if detection.framework and detection.layout != chosen.name:
            conflict = (
                f"the data looks written by {detection.framework} ({'; '.join(detection.marks)}),"
                f" but {why} writes what {chosen.framework or 'no framework'} reads"
            )
        return chosen, why, conflict
    if detection.framework is None:
        return make_layout("flat", fields), "no framework detected", None
    if not keeps_layouts:
        return (
            make_layout("flat", fields),
            f"detected {detection.framework}; a {target.kind} target keeps records as "
            f"{detection.framework} wrote them",
            None,
        )
    return (
        make_layout(detection.layout, fields),
        f"detected {detection.framework}: {'; '.join(detection.marks)}",
        None,
    )


def client_expression(target_uri: str) -> tuple[str, list[str]]:
    """How an app builds a qdrant-client for this target, and what it must know first."""
    spec = parse_uri(target_uri)
    if spec.transport == "file":
        return f'QdrantClient(path="{spec.path}")', []
    if spec.transport in {"http", "https"}:
        url = f"{spec.transport}://{spec.host}:{spec.port}"
        return f'QdrantClient(url="{url}")', []
    if spec.transport == "memory":
        return 'QdrantClient(":memory:")', []
    return (
        'QdrantClient(url="<your Qdrant>")',
        [
            "Qdrant Edge is not a client the frameworks open: serve this collection from a "
            "Qdrant server, or migrate to qdrant+file:// or qdrant+http(s)://"
        ],
    )


def app_switch(
    target: Connector,
    layout: PayloadLayout,
    info: CollectionInfo,
    target_name: str,
    sample: Batch | None,
    read_as: str | None = None,
) -> list[str]:
    """The lines the app changes (core.layouts.switch_lines), for this target. `read_as`
    is the name the app reads through — the alias the cutover points at `target_name` —
    so a later cutover or rollback reaches the app; the physical name when there is none."""
    if not isinstance(target, SourceConnector) or target.payload_layout(target_name) is None:
        if target.traits.apps_read_natively:
            return [
                f"the app keeps its {target.traits.engine} store: "
                f"point it at {target.uri}, {target_name!r}"
            ]
        return [f"{target.kind} keeps records as read: no app switch applies"]
    client, before = client_expression(target.uri)
    ids = sample.ids if sample else []
    return before + switch_lines(layout, info, read_as or target_name, client, ids)
