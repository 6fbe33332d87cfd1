"""Portable files: Parquet and JSONL exports that any other tool can read back (and Ferry can
migrate from). Registers ``parquet+file`` and ``jsonl+file``; pyarrow loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferry.core.connectors.registry import Backend, Scheme, register

if TYPE_CHECKING:
    from ferry.core.connectors.base import SourceConnector
    from ferry.core.mapping import PayloadFields
    from ferry.core.uri import ConnectionSpec


def open_parquet(
    spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
) -> SourceConnector:
    from ferry.core.connectors.files.parquet import ParquetConnector

    return ParquetConnector(spec)


def open_jsonl(
    spec: ConnectionSpec, fields: PayloadFields | None = None, layout: str | None = None
) -> SourceConnector:
    from ferry.core.connectors.files.jsonl import JsonlConnector

    return JsonlConnector(spec)


PARQUET = register(
    Backend(
        "parquet",
        {"parquet+file": Scheme("parquet", "file", example="parquet+file:///abs/dir")},
        open_parquet,
    )
)
JSONL = register(
    Backend(
        "jsonl",
        {"jsonl+file": Scheme("jsonl", "file", example="jsonl+file:///abs/dir")},
        open_jsonl,
    )
)
