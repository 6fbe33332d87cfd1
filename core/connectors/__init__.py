"""One place that turns a URI into a connector, so views never import a database client.

    async with open_connector(uri) as source:   # closed on the way out
        info = await source.describe("docs")

A view may instead keep a connector open across many calls (the diff viewer fetches one
record per highlighted row) and close it when it is done; an open Qdrant Edge shard or
qdrant-client local directory is locked to this process, so close before a migration
process writes to the same embedded target.
"""

from __future__ import annotations

from ferry.core.connectors.base import (
    ANY,
    AliasBackend,
    Capability,
    Connector,
    Indexing,
    PingResult,
    PrepareResult,
    QueryHits,
    SourceConnector,
    TargetConnector,
    WriteMode,
)
from ferry.core.connectors.registry import Backend, Scheme, backend_for, backends, register
from ferry.core.connectors.traits import EngineTraits
from ferry.core.errors import FerryError
from ferry.core.mapping import PayloadFields
from ferry.core.uri import ConnectionSpec, parse_uri

# The built-in backends register themselves on import (core/connectors/registry.py), in this
# order (the order of the URI examples in an error); a new backend is its package plus its name
# here, as dlt's destinations/__init__.py imports each destination's factory.
from ferry.core.connectors import chroma, qdrant, files, memory  # noqa: F401  isort: skip

__all__ = [
    "ANY",
    "AliasBackend",
    "Backend",
    "Capability",
    "Connector",
    "Indexing",
    "EngineTraits",
    "PingResult",
    "PrepareResult",
    "QueryHits",
    "Scheme",
    "SourceConnector",
    "TargetConnector",
    "WriteMode",
    "backends",
    "open_connector",
    "register",
]


def open_connector(
    uri: str | ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
) -> SourceConnector:
    """A connector for the URI; nothing is contacted until the first call.

    `fields` and `layout` (core/layouts/) say how a Qdrant target lays records out in
    payloads: `layout` is the default for every collection, `use_payload_layout` sets one
    collection's. Other engines keep records natively and take only `flat`.

    Use it as ``async with open_connector(uri) as c`` (or call ``await c.close()``). A
    target URI gives a `TargetConnector`; `chroma+file://` gives a read-only source.
    """
    spec = parse_uri(uri) if isinstance(uri, str) else uri
    backend = backend_for(spec)
    if backend is None:  # pragma: no cover - parse_uri refuses a scheme nobody registered
        raise FerryError(f"no connector for {spec.uri}")
    return backend.open(spec, fields, layout)
