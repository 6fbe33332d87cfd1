"""The "switch the app" lines for a collection already on the target (the Cutover screen).

`ferry migrate` and `ferry validate` print the lines the application changes
(core.plan.app_switch → core.layouts.switch_lines) from the source's description. At cutover
time the source may be gone or far away, and everything those lines need is on the target
and in the journal: the layout Ferry wrote (journal, else the shape of the points), the
payload fields of the run that wrote it, the dimension and metric (the target's, equal to
the source's by construction) and a few records read back through the layout (their source
ids say whether ids were mapped). So the same function gives the same text, from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.core.connectors import Connector, TargetConnector, open_connector
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.layouts import make_layout
from ferry.core.mapping import PayloadFields
from ferry.core.plan import app_switch
from ferry.core.validate import read_layout

SAMPLE = 20


@dataclass(frozen=True)
class SwitchText:
    """What the app changes to read `collection` on `target_uri`, and in which layout."""

    target_uri: str
    collection: str
    layout: str | None  # None: the target keeps records natively (no payload layout)
    layout_reason: str
    lines: list[str] = field(default_factory=list)
    read_as: str | None = None  # the alias the app reads `collection` through

    def text(self) -> str:
        """The lines as one block, the way they are copied to the clipboard."""
        return "\n".join(self.lines)


def written_fields(journal: Journal | None, target_uri: str, collection: str) -> PayloadFields:
    """The payload fields (`--id-field`, `--document-field`) of the latest run that wrote
    `collection` on this target; the defaults when no run in the journal did."""
    if journal is None:
        return PayloadFields()
    for row in journal.runs.migrated_collections(target_uri):
        if row.target_name != collection:
            continue
        run = journal.runs.get(row.run_id)
        mapping = run.mapping if run else {}
        defaults = PayloadFields()
        return PayloadFields(
            str(mapping.get("source_id") or defaults.source_id),
            str(mapping.get("document") or defaults.document),
        )
    return PayloadFields()


async def app_name(target: Connector, collection: str, journal: Journal | None) -> str | None:
    """The name the app should read `collection` through: an alias that points at it now,
    else the source collection a run copied into it (the alias its cutover will create)."""
    backend = target.aliases() if isinstance(target, TargetConnector) else None
    if backend is None:
        return None
    try:
        pointing = sorted(a for a, c in (await backend.aliases()).items() if c == collection)
    except FerryError:
        pointing = []
    if pointing:
        return pointing[0]
    for row in journal.runs.migrated_collections(target.uri) if journal is not None else []:
        if row.target_name == collection and row.name != collection:
            return row.name
    return None


async def switch_for(target_uri: str, collection: str, journal: Journal | None) -> SwitchText:
    """The lines for `collection` as it is on the target now (read-only: nothing written)."""
    fields = written_fields(journal, target_uri, collection)
    async with open_connector(target_uri, fields=fields) as target:
        used, reason = await read_layout(target, collection, None, journal)
        info = await target.describe(collection)
        if used is None:  # a Chroma / file target: app_switch says what applies there
            lines = app_switch(target, make_layout("flat", fields), info, collection, None)
            return SwitchText(target_uri, collection, None, "", lines)
        sample = await target.sample(collection, SAMPLE)
        read_as = await app_name(target, collection, journal)
        lines = app_switch(target, used, info, collection, sample, read_as)
        return SwitchText(target_uri, collection, used.name, reason, lines, read_as)
