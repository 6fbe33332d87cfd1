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
    PingResult,
    PrepareResult,
    QueryHits,
    SourceConnector,
    TargetConnector,
    WriteMode,
)
from ferry.core.connectors.traits import EngineTraits
from ferry.core.errors import FerryError
from ferry.core.mapping import PayloadFields
from ferry.core.uri import ConnectionSpec, parse_uri

__all__ = [
    "ANY",
    "AliasBackend",
    "Capability",
    "Connector",
    "EngineTraits",
    "PingResult",
    "PrepareResult",
    "QueryHits",
    "SourceConnector",
    "TargetConnector",
    "WriteMode",
    "open_connector",
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
    if spec.engine == "chroma":
        if spec.transport == "file":
            from ferry.core.connectors.chroma.embedded import open_chroma_directory

            return open_chroma_directory(spec)
        from ferry.core.connectors.chroma.api import ChromaApiConnector

        def make_client() -> object:
            from ferry.core.connectors.chroma.http_client import (
                DEFAULT_TIMEOUT_SECONDS,
                http_client,
            )

            headers = {}
            key = spec.api_key()
            if key:
                headers["x-chroma-token"] = key
            return http_client(
                host=spec.host or "localhost",
                port=spec.port or 8000,
                ssl=spec.transport == "https",
                headers=headers or None,
                tenant=spec.params.get("tenant", "default_tenant"),
                database=spec.params.get("database", "default_database"),
                timeout=float(spec.params.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
            )

        return ChromaApiConnector(spec.uri, make_client, kind="chroma-server")
    if spec.engine == "qdrant":
        if spec.transport == "edge":
            from ferry.core.connectors.qdrant.edge import QdrantEdgeConnector

            return QdrantEdgeConnector(spec, fields, layout)
        from ferry.core.connectors.qdrant.api import QdrantApiConnector

        return QdrantApiConnector(spec, fields, layout)
    if spec.engine == "parquet":
        from ferry.core.connectors.files.parquet import ParquetConnector

        return ParquetConnector(spec)
    if spec.engine == "jsonl":
        from ferry.core.connectors.files.jsonl import JsonlConnector

        return JsonlConnector(spec)
    if spec.engine == "memory":
        from ferry.core.connectors.memory import MemoryConnector

        return MemoryConnector(spec)
    raise FerryError(f"no connector for {spec.uri}")  # pragma: no cover - parse_uri guards
