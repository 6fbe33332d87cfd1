"""Write a Chroma 0.3 (DuckDB + Parquet) directory with pyarrow, as DuckDB's COPY writes it.

chromadb 0.3 cannot be installed next to chromadb 1.x (and needs its own DuckDB and
ClickHouse client), so the tests build the layout themselves, column for column as
`PersistentDuckDB.persist()` leaves it (``COPY (SELECT * FROM embeddings) TO
'chroma-embeddings.parquet' (FORMAT PARQUET)``; inspected on chroma-migrate's test files):
every column nullable, UUIDs as strings, ``embedding`` a ``list<element: double>``, metadata
as ``json.dumps`` text (``'null'`` when a collection has none), one row group.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One row of the embeddings table (metadata: a dict, None for NULL, or raw text)."""

    collection: str
    id: str | None
    embedding: list[float] | None
    document: str | None = None
    metadata: Any = None
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


def _text(metadata: Any) -> str | None:
    if metadata is None or isinstance(metadata, str):
        return metadata  # NULL, or text exactly as given ('null', '{}')
    return json.dumps(metadata)


def write_chroma03(path: Path, collections: dict[str, Any], rows: list[Row]) -> dict[str, str]:
    """`collections`: name → metadata (dict, None → 'null', or raw text). Returns name → uuid."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    ids = {name: str(uuid.uuid5(uuid.NAMESPACE_DNS, name)) for name in collections}
    pq.write_table(
        pa.table(
            {
                "uuid": pa.array(list(ids.values()), pa.string()),
                "name": pa.array(list(ids), pa.string()),
                "metadata": pa.array(
                    [json.dumps(m) if not isinstance(m, str) else m for m in collections.values()],
                    pa.string(),
                ),
            }
        ),
        path / "chroma-collections.parquet",
    )
    embedding_type = pa.list_(pa.field("element", pa.float64()))
    table = pa.table(
        {
            "collection_uuid": pa.array([ids[r.collection] for r in rows], pa.string()),
            "uuid": pa.array([r.uuid for r in rows], pa.string()),
            "embedding": pa.array([r.embedding for r in rows], embedding_type),
            "document": pa.array([r.document for r in rows], pa.string()),
            "id": pa.array([r.id for r in rows], pa.string()),
            "metadata": pa.array([_text(r.metadata) for r in rows], pa.string()),
        }
    )
    pq.write_table(table, path / "chroma-embeddings.parquet", row_group_size=max(len(rows), 1))
    return ids
