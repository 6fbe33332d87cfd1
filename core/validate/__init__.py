"""After a migration, *know* the target holds what the source holds and searches the same.

Checks, each optional and each streaming (memory bounded by the batch size and the caps):
counts; a seeded sample compared record by record; a full diff (missing, extra, mismatched);
search quality (recall@k of the target against the source and of both against an exact
brute-force answer); and repair (re-copy missing and mismatched records; delete extras only
when the caller says the user confirmed).

`validate()` is a plain coroutine: cancel its task to stop it (every stream is closed on the
way out). Views pass `on_progress` to show where it is. Each collection's result is stored
in the journal, where the cutover gate reads it (`journal.validations.latest`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import Connector, SourceConnector
from ferry.core.embed import EmbedStage
from ferry.core.embed.run import open_stage
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.layouts import PayloadLayout, detect_written_layout, make_layout
from ferry.core.mapping import PayloadFields
from ferry.core.model import Metadata
from ferry.core.plan import app_switch, choose_collections
from ferry.core.uri import check_apart
from ferry.core.validate.checks import (
    CollectionCheck,
    ProgressCallback,
    ValidationOptions,
    ValidationProgress,
    delete_extras,
)
from ferry.core.validate.compare import compare_record, value_repr, vector_diff
from ferry.core.validate.recall import RecallResult
from ferry.core.validate.reembed import recorded_embed
from ferry.core.validate.report import (
    CollectionValidation,
    ValidationReport,
    report_markdown,
)

__all__ = [
    "CollectionValidation",
    "RecallResult",
    "RecordPair",
    "ValidationOptions",
    "ValidationProgress",
    "ValidationReport",
    "delete_extras",
    "delete_extras_for",
    "fetch_pair",
    "fetch_pair_connectors",
    "report_markdown",
    "validate",
    "validate_connectors",
    "value_repr",
]


async def validate_connectors(
    source: Connector,
    target: Connector,
    collections: Sequence[str] | None,
    options: ValidationOptions,
    journal: Journal | None = None,
    on_progress: ProgressCallback | None = None,
    target_names: dict[str, str] | None = None,
    layout: str | None = None,
) -> ValidationReport:
    """Validate with connectors the caller owns (and closes).

    Each target collection is read in its payload layout: `layout` when given, else the one
    the journal says Ferry wrote it in, else the shape its points have (`read_layout`)."""
    chosen = await choose_collections(source, collections)
    report = ValidationReport(source.uri, target.uri)
    stages: dict[str, EmbedStage] = {}  # one per model, opened when a collection needs it
    try:
        for name in chosen:
            target_name = (target_names or {}).get(name, name)
            embed = options.embed or recorded_embed(journal, target.uri, target_name)
            stage = None
            if embed is not None:
                stage = stages.get(embed.model)
                if stage is None:
                    stage = await open_stage(embed, journal.path if journal else None)
                    stages[embed.model] = stage
            report.collections.append(
                await _validate_one(
                    source, target, name, target_name, options, journal, on_progress, layout, stage
                )
            )
    finally:
        for stage in stages.values():
            await stage.aclose()
    return report


async def _validate_one(
    source: Connector,
    target: Connector,
    name: str,
    target_name: str,
    options: ValidationOptions,
    journal: Journal | None,
    on_progress: ProgressCallback | None,
    layout: str | None,
    stage: EmbedStage | None,
) -> CollectionValidation:
    """One collection's checks, recorded in the journal (where the cutover gate reads)."""
    search = journal.runs.search_settings(target.uri, target_name) if journal else None
    check = CollectionCheck(source, target, name, target_name, options, on_progress, search)
    check.stage = stage
    check.progress("counts", msg="counting both sides")  # finding the layout reads too
    used, reason = await read_layout(target, target_name, layout, journal)
    if used is not None:
        check.result.layout, check.result.layout_reason = used.name, reason
        with contextlib.suppress(FerryError):
            info = await source.describe(name)
            sample = await source.sample(name, 20)
            check.result.switch = app_switch(target, used, info, target_name, sample)
    result = await check.run()
    if journal is not None:
        data = result.to_json()
        data["options"] = options.to_json()
        journal.validations.record(source.uri, target.uri, name, target_name, result.ok, data)
    return result


async def read_layout(
    target: Connector, target_name: str, asked: str | None, journal: Journal | None
) -> tuple[PayloadLayout | None, str]:
    """Which payload layout to read `target_name` in, and why (None: native records)."""
    if not isinstance(target, SourceConnector):
        return None, ""
    fields = getattr(target, "fields", None) or PayloadFields()
    if target.payload_layout(target_name) is None:
        if asked not in (None, "flat"):
            target.use_payload_layout(target_name, make_layout(asked, fields))  # refuses
        return None, ""
    if asked is not None:
        chosen, reason = make_layout(asked, fields), f"--layout {asked}"
    else:
        recorded = journal.runs.target_layout(target.uri, target_name) if journal else None
        if recorded:
            chosen, reason = make_layout(recorded, fields), "as migrated (journal)"
        else:
            chosen, reason = await _layout_of_points(target, target_name, fields)
    target.use_payload_layout(target_name, chosen)
    return chosen, reason


async def _layout_of_points(
    target: SourceConnector, name: str, fields: PayloadFields
) -> tuple[PayloadLayout, str]:
    """The layout the target's first points are in (read raw, through the flat layout)."""
    flat = make_layout("flat", fields)
    target.use_payload_layout(name, flat)
    try:
        batch = await target.sample(name, 50)
    except FerryError:
        batch = None
    if batch is None:
        return flat, "empty target: flat"
    payloads = []
    for sid, meta, doc in zip(batch.ids, batch.metadatas, batch.documents, strict=True):
        payload = flat.to_payload(sid, _without_id(meta, fields), doc)
        payloads.append(payload)
    found = detect_written_layout(payloads, fields)
    return make_layout(found, fields), f"the target's points are laid out {found}"


def _without_id(meta: Metadata | None, fields: PayloadFields) -> Metadata | None:
    return {k: v for k, v in (meta or {}).items() if k not in (fields.source_id,)} or None


async def validate(
    source_uri: str,
    target_uri: str,
    collections: Sequence[str] | None,
    options: ValidationOptions | None = None,
    journal: Journal | None = None,
    on_progress: ProgressCallback | None = None,
    fields: PayloadFields | None = None,
    target_names: dict[str, str] | None = None,
    layout: str | None = None,
) -> ValidationReport:
    """Open both sides, run the checks for each collection, record results, close."""
    if options is not None and (options.repair or options.delete_extra):
        check_apart(source_uri, target_uri)  # a repair writes to the target
    async with open_connector(source_uri) as source, open_connector(target_uri, fields) as target:
        return await validate_connectors(
            source,
            target,
            collections,
            options or ValidationOptions(),
            journal,
            on_progress,
            target_names,
            layout,
        )


async def delete_extras_for(
    source_uri: str,
    target_uri: str,
    name: str,
    target_name: str | None = None,
    fields: PayloadFields | None = None,
    on_progress: ProgressCallback | None = None,
    layout: str | None = None,
    journal: Journal | None = None,
) -> int:
    """`delete_extras` with URIs: for a view that asked the user first."""
    async with open_connector(source_uri) as source, open_connector(target_uri, fields) as target:
        await read_layout(target, target_name or name, layout, journal)
        return await delete_extras(
            source, target, name, target_name or name, on_progress=on_progress
        )


@dataclass
class RecordPair:
    """One record as each side holds it, for the side-by-side detail pane."""

    id: str
    source: tuple[Any, Metadata | None, str | None] | None  # (vector, metadata, document)
    target: tuple[Any, Metadata | None, str | None] | None
    fields: list[str]
    max_abs_diff: float | None = None
    cosine: float | None = None
    rounded: list[str] = field(default_factory=list)  # only the target engine's float rounding


async def fetch_pair(
    source_uri: str,
    target_uri: str,
    name: str,
    record_id: str,
    target_name: str | None = None,
    fields: PayloadFields | None = None,
    layout: str | None = None,
    journal: Journal | None = None,
) -> RecordPair:
    """Both sides of one record and how they differ (None for a side that lacks it)."""
    async with open_connector(source_uri) as source, open_connector(target_uri, fields) as target:
        await read_layout(target, target_name or name, layout, journal)
        return await fetch_pair_connectors(source, target, name, record_id, target_name)


async def fetch_pair_connectors(
    source: SourceConnector,
    target: SourceConnector,
    name: str,
    record_id: str,
    target_name: str | None = None,
) -> RecordPair:
    """`fetch_pair` with connectors the caller owns (a view keeps them open across rows)."""
    info = await source.describe(name)
    sides = []
    for connector, collection in ((source, name), (target, target_name or name)):
        batch = await connector.fetch(collection, [record_id])
        sides.append(
            (batch.vectors[0], batch.metadatas[0], batch.documents[0]) if len(batch) else None
        )
    pair = RecordPair(record_id, sides[0], sides[1], [])
    if sides[0] is None or sides[1] is None:
        pair.fields = ["record"]
        return pair
    diff = compare_record(sides[0], sides[1], info.metric, read_back=target.float_read_back)
    pair.fields, pair.rounded = diff.fields, diff.rounded
    vdiff = vector_diff(sides[0][0], sides[1][0], info.metric)
    pair.max_abs_diff, pair.cosine = vdiff.max_abs_diff, vdiff.cosine
    return pair
