"""Qdrant: Qdrant Edge shards (served by a worker process), qdrant-client local mode (a
directory or memory) and Qdrant servers.

This package registers the ``qdrant+edge``, ``qdrant+file``, ``qdrant+memory``,
``qdrant+http`` and ``qdrant+https`` schemes; qdrant-client and qdrant-edge load only when a
URI of theirs is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferry.core.connectors.registry import Backend, Scheme, register

if TYPE_CHECKING:
    from ferry.core.connectors.base import SourceConnector
    from ferry.core.mapping import PayloadFields
    from ferry.core.uri import ConnectionSpec

_SERVER_OPTIONS = frozenset({"api_key_env", "grpc", "timeout"})


def open_qdrant(
    spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
) -> SourceConnector:
    """The Edge connector for qdrant+edge://, the qdrant-client one for everything else."""
    if spec.transport == "edge":
        from ferry.core.connectors.qdrant.edge import QdrantEdgeConnector

        return QdrantEdgeConnector(spec, fields, layout)
    from ferry.core.connectors.qdrant.api import QdrantApiConnector

    return QdrantApiConnector(spec, fields, layout)


BACKEND = register(
    Backend(
        "qdrant",
        {
            "qdrant+edge": Scheme("qdrant", "edge", example="qdrant+edge:///abs/dir"),
            "qdrant+file": Scheme("qdrant", "file", example="qdrant+file:///abs/dir"),
            "qdrant+memory": Scheme("qdrant", "memory", example="qdrant+memory:"),
            "qdrant+http": Scheme(
                "qdrant",
                "http",
                _SERVER_OPTIONS,
                example="qdrant+http://host:6333?api_key_env=VAR",
                default_port=6333,
            ),
            "qdrant+https": Scheme("qdrant", "https", _SERVER_OPTIONS, default_port=6333),
        },
        open_qdrant,
    )
)
