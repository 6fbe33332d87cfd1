"""`jsonl+file:///dir` — collections as JSON Lines (one file per written batch) + a manifest.

One record per line, keys in this order::

    {"id": "doc-1", "embedding": [0.10000000149011612, …], "document": "…" | null,
     "metadata": {…} | null}

Each vector component is written as the double equal to the float32 (Python's shortest
repr of it), so reading it as a double and rounding to float32 gives back the same bits.
Metadata keeps its types the way JSON can (see portable.py). `cat data/*.jsonl` in name
order is the collection.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ferry.core.connectors.files.portable import PartCodec, PortableConnector
from ferry.core.errors import FerryError
from ferry.core.model import Batch


class JsonlCodec(PartCodec):
    file_format = "jsonl"
    suffix = "jsonl"

    def encode(self, batch: Batch, dimension: int) -> bytes:
        vectors = np.asarray(batch.vectors, dtype=np.float32).astype(np.float64)
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        lines = [  # one row's floats at a time: a batch-sized list of floats is ~30 MB
            dumps({"id": sid, "embedding": vector.tolist(), "document": doc, "metadata": meta})
            for sid, vector, doc, meta in zip(
                batch.ids, vectors, batch.documents, batch.metadatas, strict=True
            )
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def decode(self, data: bytes, dimension: int) -> Batch:
        ids: list[str] = []
        vectors: list[list[float]] = []
        metadatas: list[Any] = []
        documents: list[str | None] = []
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            record = json.loads(line)
            vector = record.get("embedding")
            if not isinstance(record.get("id"), str) or not isinstance(vector, list):
                raise FerryError(f"line {number}: a record needs a string id and an embedding")
            if len(vector) != dimension:
                raise FerryError(
                    f"line {number}: embedding of {len(vector)} values, expected {dimension}"
                )
            metadata = record.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                raise FerryError(f"line {number}: metadata is not an object")
            ids.append(record["id"])
            vectors.append(vector)
            metadatas.append(metadata)
            documents.append(record.get("document"))
        matrix = np.asarray(vectors, dtype=np.float64).astype(np.float32)
        return Batch(ids, matrix.reshape(len(ids), dimension), metadatas, documents)

    def layout(self, dimension: int) -> dict[str, Any]:
        return {
            "files": "data/part-NNNNNNNN.jsonl, one record per line, read in name order",
            "record": {
                "id": "string",
                "embedding": f"array of {dimension} numbers (float32 values written exactly)",
                "document": "string or null",
                "metadata": "object or null; ints without a point, floats with one or an exponent",
            },
        }


class JsonlConnector(PortableConnector):
    codec = JsonlCodec()
