"""`parquet+file:///dir` — collections as Parquet files (one per written batch) + a manifest.

Schema of every part (one row group each)::

    id         string   not null     the source id, any string
    embedding  fixed_size_list<element: float>[dimension]   not null   float32, bit-exact
    document   string   null         the document, null when the record has none
    metadata   string   null         JSON object text, types kept (see portable.py)

`pandas.read_parquet("<dir>/<collection>/data")` or DuckDB's
``read_parquet('<dir>/<collection>/data/*.parquet')`` read a complete export as one table.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

import ferry.core.connectors.files.arrow  # noqa: F401  (before pyarrow: the system allocator)
from ferry.core.connectors.files.portable import (
    FORMAT_VERSION,
    PartCodec,
    PortableConnector,
    decode_metadata,
    encode_metadata,
)
from ferry.core.errors import FerryError
from ferry.core.model import Batch


def _schema(dimension: int) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dimension), nullable=False),
            pa.field("document", pa.string()),
            pa.field("metadata", pa.string()),
        ],
        metadata={
            b"ferry": json.dumps(
                {"format_version": FORMAT_VERSION, "metadata": "json-object-text"}
            ).encode()
        },
    )


class ParquetCodec(PartCodec):
    file_format = "parquet"
    suffix = "parquet"

    def encode(self, batch: Batch, dimension: int) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dimension)
        table = pa.Table.from_arrays(
            [
                pa.array(batch.ids, pa.string()),
                embedding,
                pa.array(batch.documents, pa.string()),
                pa.array([encode_metadata(m) for m in batch.metadatas], pa.string()),
            ],
            schema=_schema(dimension),
        )
        sink = io.BytesIO()
        pq.write_table(
            table,
            sink,
            row_group_size=max(len(batch), 1),
            compression="zstd",
            use_dictionary=False,  # ids are unique, vectors random: dictionaries only cost
            write_statistics=["id"],
        )
        return sink.getvalue()

    def decode(self, data: bytes, dimension: int) -> Batch:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        return _to_batch(table, dimension)

    def read_ids(self, path: Path, dimension: int) -> list[str]:
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=["id"]).column("id").to_pylist()

    def layout(self, dimension: int) -> dict[str, Any]:
        return {
            "files": "data/part-NNNNNNNN.parquet, one row group each, read in name order",
            "columns": {
                "id": "string, not null",
                "embedding": f"fixed_size_list<element: float>[{dimension}], not null",
                "document": "string, null when none",
                "metadata": "string, null when none: a JSON object; ints without a point, "
                "floats with one or an exponent",
            },
            "compression": "zstd",
        }


def _to_batch(table: Any, dimension: int) -> Batch:
    import pyarrow as pa

    embedding = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(embedding.type) or embedding.type.list_size != dimension:
        raise FerryError(
            f"embedding column is {embedding.type}, expected {dimension} float32 values",
        )
    if embedding.null_count:
        raise FerryError("embedding column has null vectors")
    values = embedding.flatten().to_numpy(zero_copy_only=False)
    vectors = np.asarray(values, dtype=np.float32).reshape(len(table), dimension)
    return Batch(
        table.column("id").to_pylist(),
        vectors,
        [decode_metadata(t) for t in table.column("metadata").to_pylist()],
        table.column("document").to_pylist(),
    )


class ParquetConnector(PortableConnector):
    codec = ParquetCodec()
