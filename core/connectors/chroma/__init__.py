"""Chroma: embedded directories (any release, read-only) and the HTTP server (source and target).

This package registers the ``chroma+file``, ``chroma+http`` and ``chroma+https`` schemes; the
modules behind them load only when a URI of theirs is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferry.core.connectors.registry import Backend, Scheme, register

if TYPE_CHECKING:
    from ferry.core.connectors.base import SourceConnector
    from ferry.core.mapping import PayloadFields
    from ferry.core.uri import ConnectionSpec

_SERVER_OPTIONS = frozenset({"tenant", "database", "api_key_env", "timeout"})


def open_chroma(
    spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
) -> SourceConnector:
    """A directory reader (chroma+file://), or the API connector on a Chroma server."""
    if spec.transport == "file":
        from ferry.core.connectors.chroma.embedded import open_chroma_directory

        return open_chroma_directory(spec)
    from ferry.core.connectors.chroma.api import ChromaApiConnector

    def make_client() -> object:
        from ferry.core.connectors.chroma.http_client import DEFAULT_TIMEOUT_SECONDS, http_client

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


BACKEND = register(
    Backend(
        "chroma",
        {
            "chroma+file": Scheme(
                "chroma",
                "file",
                frozenset({"api", "upgrade_copy"}),
                example="chroma+file:///abs/dir",
            ),
            "chroma+http": Scheme(
                "chroma",
                "http",
                _SERVER_OPTIONS,
                example="chroma+http://host:8000",
                default_port=8000,
            ),
            "chroma+https": Scheme("chroma", "https", _SERVER_OPTIONS, default_port=443),
        },
        open_chroma,
    )
)
