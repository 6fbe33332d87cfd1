"""One place that turns a URI into a connector, so views never import a database client.

    async with open_connector(uri) as source:   # closed on the way out
        info = await source.describe("docs")

`ConnectorSession` keeps connectors open across calls (a TUI screen that fetches one record
per highlighted row) instead of reopening a database for each.
"""

from __future__ import annotations

from core.connectors.base import (
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
from core.connectors.traits import EngineTraits
from core.errors import FerryError
from core.mapping import PayloadFields
from core.uri import ConnectionSpec, parse_uri

__all__ = [
    "ANY",
    "AliasBackend",
    "Capability",
    "Connector",
    "ConnectorSession",
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
    uri: str | ConnectionSpec, fields: PayloadFields | None = None
) -> SourceConnector:
    """A connector for the URI; nothing is contacted until the first call.

    Use it as ``async with open_connector(uri) as c`` (or call ``await c.close()``). A
    target URI gives a `TargetConnector`; `chroma+file://` gives a read-only source.
    """
    spec = parse_uri(uri) if isinstance(uri, str) else uri
    if spec.engine == "chroma":
        if spec.transport == "file":
            from core.connectors.chroma_embedded import ChromaEmbeddedConnector

            return ChromaEmbeddedConnector(spec)
        from core.connectors.chroma_api import ChromaApiConnector

        def make_client() -> object:
            import chromadb
            from chromadb.config import Settings

            headers = {}
            key = spec.api_key()
            if key:
                headers["x-chroma-token"] = key
            return chromadb.HttpClient(
                host=spec.host or "localhost",
                port=spec.port or 8000,
                ssl=spec.transport == "https",
                headers=headers or None,
                tenant=spec.params.get("tenant", "default_tenant"),
                database=spec.params.get("database", "default_database"),
                settings=Settings(anonymized_telemetry=False),
            )

        return ChromaApiConnector(spec.uri, make_client, kind="chroma-server")
    if spec.engine == "qdrant":
        if spec.transport == "edge":
            from core.connectors.qdrant_edge import QdrantEdgeConnector

            return QdrantEdgeConnector(spec, fields)
        from core.connectors.qdrant_api import QdrantApiConnector

        return QdrantApiConnector(spec, fields)
    if spec.engine == "memory":
        from core.connectors.memory import MemoryConnector

        return MemoryConnector(spec)
    raise FerryError(f"no connector for {spec.uri}")  # pragma: no cover - parse_uri guards


class ConnectorSession:
    """Connectors kept open for a while, one per (URI, payload fields), closed together.

    For a view that talks to the same source and target many times (the diff viewer fetches
    both sides of each highlighted record): opening costs a client, an id map or a worker
    process each time. Use it from one event loop (async clients belong to their loop).

    Release it before a migration process is started against the same embedded target: an
    open Qdrant Edge shard or qdrant-client local directory is locked to this process.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, PayloadFields | None], SourceConnector] = {}

    def get(self, uri: str, fields: PayloadFields | None = None) -> SourceConnector:
        """The open connector for `uri` (opened now if this session has none yet)."""
        key = (uri, fields)
        if key not in self._open:
            self._open[key] = open_connector(uri, fields)
        return self._open[key]

    async def release(self, uri: str | None = None) -> None:
        """Close the connectors for `uri` (every one when None); later `get`s reopen."""
        keys = [key for key in self._open if uri is None or key[0] == uri]
        for key in keys:
            connector = self._open.pop(key)
            await connector.close()

    async def close(self) -> None:
        await self.release()

    async def __aenter__(self) -> ConnectorSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
