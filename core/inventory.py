"""What is there: one inventory for `ferry inventory` and the TUI's Inventory screen.

Ping the source, describe every collection, sample its first records (ids; metadata keys
where the engine keeps no list of them) and assess it. With a target, the inventory *is*
the plan (`ferry.core.plan.build_plan`): the same checks `ferry migrate` runs before its first
write. Without one, each collection is assessed against the default target (Qdrant).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.core.connectors import (
    Capability,
    Connector,
    SourceConnector,
    WriteMode,
    open_connector,
)
from ferry.core.connectors.base import mark_plan_only
from ferry.core.errors import FerryError
from ferry.core.layouts import detect_framework, make_layout
from ferry.core.mapping import PayloadFields
from ferry.core.plan import CollectionPlan, assess, build_plan, sample_collection
from ferry.core.targets import TargetNames, copy_names


@dataclass
class Inventory:
    """What one look found: the source's facts and, per collection, its plan."""

    uri: str
    kind: str
    version: str | None
    plans: list[CollectionPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target_uri: str | None = None
    store_facts: dict[str, Any] = field(default_factory=dict)  # e.g. Chroma's schema state

    @property
    def has_target(self) -> bool:
        return self.target_uri is not None

    @property
    def source_summary(self) -> str:
        """ "chroma-embedded, on-disk schema: up to date": the source in a few words."""
        return f"{self.kind}, {brief(self.version or 'version unknown')}"

    def to_json(self) -> dict[str, Any]:
        """`ferry inventory --json`: every collection's facts with its assessment."""
        collections = []
        for plan in self.plans:
            entry = plan.source.to_json()
            entry.update(
                complexity=plan.complexity,
                notes=plan.notes,
                warnings=plan.warnings,
                framework=plan.detection.framework,
                framework_marks=plan.detection.marks,
                layout=plan.layout,
                layout_reason=plan.layout_reason,
                switch=plan.switch,
            )
            collections.append(entry)
        result: dict[str, Any] = {
            "uri": self.uri,
            "kind": self.kind,
            "version": self.version,
            "collections": collections,
        }
        result.update(self.store_facts)
        return result


async def take_inventory(
    source: SourceConnector,
    target: Connector | None = None,
    owned: Callable[[str], bool] | None = None,
    mode: WriteMode = WriteMode.CREATE,
    fields: PayloadFields | None = None,
    layout: str | None = None,
    earlier: Mapping[str, str] | None = None,
) -> Inventory:
    """Describe the source (and, with a target, plan every collection against it).

    Connectors are the caller's (a session may keep them open); nothing is written.
    Each collection is planned under the name a run with default options writes it to
    (`{name}_v1` on a target with aliases; `earlier`: this pair's runs, core.targets).
    """
    ping = await source.ping()
    if not ping.ok:
        # The database's own error first (it carries the right exit code), else the ping's.
        await source.list_collections()
        raise FerryError(ping.detail or "the source did not answer", where=source.uri)
    inventory = Inventory(source.uri, source.kind, ping.version)
    inventory.store_facts = await source.store_facts()
    if target is not None:
        every = await source.list_collections()
        names = copy_names(
            TargetNames(copy_default=True), target.can(Capability.ALIASES), every, earlier or {}
        )
        plan = await build_plan(
            source,
            target,
            every,
            mode,
            fields or PayloadFields(),
            owned=owned,
            layout=layout,
            targets=names,
        )
        inventory.plans, inventory.warnings = plan.collections, plan.warnings
        inventory.target_uri = target.uri
        return inventory
    for name in await source.list_collections():
        info = await source.describe(name)
        sample = await sample_collection(source, info)
        ids = sample.ids if sample else []
        detection = detect_framework(
            info, ids, sample.metadatas if sample else [], sample.documents if sample else []
        )
        chosen = make_layout(layout or detection.layout, fields)
        plan = assess(info, ids, source.traits, layout=chosen)
        plan.detection, plan.layout = detection, chosen.name
        plan.layout_reason = (
            f"--layout {chosen.name}"
            if layout
            else (
                f"detected {detection.framework}: {'; '.join(detection.marks)}"
                if detection.framework
                else "no framework detected"
            )
        )
        inventory.plans.append(plan)
    return inventory


async def load_inventory(
    source_uri: str,
    target_uri: str | None = None,
    owned: Callable[[str], bool] | None = None,
    earlier: Mapping[str, str] | None = None,
) -> Inventory:
    """`take_inventory` with URIs: opens both sides and closes them afterwards."""
    async with open_connector(source_uri) as source:
        mark_plan_only(source)
        if not target_uri:
            return await take_inventory(source)
        async with open_connector(target_uri) as target:
            return await take_inventory(source, target, owned, earlier=earlier)


def brief(text: str) -> str:
    """The first clause of a long version string, without its parenthesised detail."""
    return re.sub(r"\s*\([^)]*\)", "", text.split(";")[0]).strip()
