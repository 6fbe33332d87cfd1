"""What a run would do, before it does anything: `ferry migrate --dry-run` and the TUI's run
dialog show the same preview.

A preview is the plan `ferry migrate` checks before its first write (core.plan.build_plan,
with the chosen write mode and options) plus what a person must know before saying yes:
per collection, where it goes (target name, payload layout), how many records, whether an
existing collection will be written into — because it exists, or because an alias the
applications read points at it — and every warning or error in words. Nothing is written:
the target is only described, and the journal is only read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import (
    Capability,
    SourceConnector,
    TargetConnector,
    mark_plan_only,
)
from ferry.core.engine import MigrationOptions
from ferry.core.errors import FerryError
from ferry.core.plan import CollectionPlan, choose_collections
from ferry.core.runner import plan_run
from ferry.core.targets import copy_names, parse_collection_args

DEFAULT_LAYOUT = "flat"


def layout_of(options: MigrationOptions) -> str:
    """The payload layout the options ask for (`flat` unless the options name another)."""
    return str(getattr(options, "layout", None) or DEFAULT_LAYOUT)


@dataclass
class PreviewRow:
    """One collection of the preview: source → target, and what writing there means."""

    name: str
    target_name: str
    layout: str
    records: int
    layout_reason: str = ""  # why this layout (detected, --layout, a profile)
    target_exists: bool = False
    target_records: int = 0
    aliases: list[str] = field(default_factory=list)  # aliases pointing at the target name
    skip_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    embed: list[str] = field(default_factory=list)  # the re-embedding plan, in words

    @property
    def writes_into_existing(self) -> bool:
        """The run would write into something that is already there and may be in use."""
        return self.skip_reason is None and (self.target_exists or bool(self.aliases))

    @property
    def existing_note(self) -> str:
        """Why it counts as existing, in words ("" when it does not)."""
        parts = []
        if self.target_exists:
            parts.append(f"exists with {self.target_records:,} record(s)")
        if self.aliases:
            parts.append(f"alias {', '.join(self.aliases)} points at it")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target_name": self.target_name,
            "layout": self.layout,
            "layout_reason": self.layout_reason,
            "records": self.records,
            "target_exists": self.target_exists,
            "target_records": self.target_records,
            "aliases": self.aliases,
            "writes_into_existing": self.writes_into_existing,
            "skip_reason": self.skip_reason,
            "notes": self.notes,
            "warnings": self.warnings,
            "error": self.error,
        } | ({"embed": self.embed} if self.embed else {})


@dataclass
class RunPreview:
    """The whole dry run: the options it would use and one row per collection."""

    source_uri: str
    target_uri: str
    options: dict[str, Any]
    rows: list[PreviewRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f"{r.name}: {r.error}" for r in self.rows if r.error]

    @property
    def existing(self) -> list[PreviewRow]:
        """Rows that write into an existing collection (or one an alias serves)."""
        return [r for r in self.rows if r.writes_into_existing and not r.error]

    @property
    def records(self) -> int:
        return sum(r.records for r in self.rows if r.skip_reason is None)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "source": self.source_uri,
            "target": self.target_uri,
            "options": self.options,
            "records": self.records,
            "collections": [r.to_json() for r in self.rows],
            "writes_into_existing": [r.target_name for r in self.existing],
            "warnings": self.warnings,
            "errors": self.errors,
        }

    def lines(self) -> list[str]:
        """The preview as text, the way `ferry migrate --dry-run` prints it."""
        options = self.options
        rate = options.get("rate")
        out = [
            f"plan: {self.source_uri} → {self.target_uri}",
            f"  options: batch size {options.get('batch_size')}, workers "
            f"{options.get('workers')}, rate {f'{rate:g}/s' if rate else 'no cap'}, "
            f"mode {options.get('mode')}",
        ]
        for row in self.rows:
            out.append(
                f"  {row.name} → {row.target_name}  [{row.layout}]  {row.records:,} records"
                + (
                    f"  — writes into existing: {row.existing_note}"
                    if row.writes_into_existing
                    else ""
                )
            )
            if row.skip_reason:
                out.append(f"    skip: {row.skip_reason}")
            out += [f"    embed: {line}" for line in row.embed]
            out += [f"    ! {w}" for w in row.warnings]
            if row.error:
                out.append(f"    ✗ {row.error}")
        out += [f"  warning: {w}" for w in self.warnings]
        out.append(
            f"  {len(self.rows)} collection(s), {self.records:,} records — dry run, nothing written"
        )
        return out


def preview_row(
    item: CollectionPlan, options: MigrationOptions, aliases: dict[str, str]
) -> PreviewRow:
    return PreviewRow(
        name=item.source.name,
        target_name=item.target_name,
        # The plan's own layout where it decides one per collection, else the options'.
        layout=str(getattr(item, "layout", None) or layout_of(options)),
        records=item.source.count,
        layout_reason=str(getattr(item, "layout_reason", "") or ""),
        target_exists=item.target_exists,
        target_records=item.target.count if item.target is not None else 0,
        aliases=sorted(a for a, c in aliases.items() if c == item.target_name),
        skip_reason=item.skip_reason,
        notes=list(item.notes),
        warnings=list(item.warnings),
        error=item.error,
        embed=item.embed.lines() if getattr(item, "embed", None) is not None else [],
    )


async def target_aliases(target: TargetConnector) -> dict[str, str]:
    """alias → collection on the target; {} where it keeps none or cannot say."""
    backend = target.aliases()
    if backend is None:
        return {}
    try:
        return await backend.aliases()
    except FerryError:
        return {}


async def preview_connectors(
    source: SourceConnector,
    target: TargetConnector,
    names: Sequence[str] | None,
    options: MigrationOptions,
    owned: Callable[[str], bool] | None = None,
    earlier: Mapping[str, str] | None = None,
) -> RunPreview:
    """The preview with connectors the caller owns; only reads. `earlier` (source name →
    target name as this pair's runs last wrote them) decides the default names as the run
    will (core.targets.copy_names)."""
    named, _pairs = parse_collection_args(list(names or []))
    chosen = await choose_collections(source, named or None)
    has_aliases = target.can(Capability.ALIASES)
    targets = copy_names(options.targets, has_aliases, chosen, earlier or {})
    options = dataclasses.replace(options, targets=targets)
    plan = await plan_run(source, target, list(names or []), options, owned)
    aliases = await target_aliases(target)
    preview = RunPreview(source.uri, target.uri, options.to_json(), warnings=list(plan.warnings))
    preview.rows = [preview_row(item, options, aliases) for item in plan.collections]
    return preview


async def preview_run(
    source_uri: str,
    target_uri: str,
    names: Sequence[str] | None,
    options: MigrationOptions,
    owned: Callable[[str], bool] | None = None,
    earlier: Mapping[str, str] | None = None,
) -> RunPreview:
    """Open both sides, preview, close: what `ferry migrate … --dry-run` prints."""
    async with (
        open_connector(source_uri) as source,
        open_connector(target_uri, options.fields) as target,
    ):
        mark_plan_only(source)
        if not isinstance(target, TargetConnector):
            raise FerryError(
                f"{target_uri} cannot be a target ({target.kind} is read-only in Ferry)",
                fix="use qdrant+edge://, qdrant+file://, qdrant+http(s):// or chroma+http(s)://",
            )
        return await preview_connectors(source, target, names, options, owned, earlier)
