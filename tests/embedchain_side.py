"""Embedchain's side of tests/test_framework_embedchain.py, run in Embedchain's own venv (it
pins chromadb < 0.6 and langchain 0.3; see tests/framework_venvs.py).

`write DIR`: Embedchain's text chunker and loader make the chunks, ids and metadata, and its
ChromaDB store writes them. `read DIR`: its QdrantDB store reads the migrated collection
(`query`, `get`, `count`) and adds a chunk. Both print JSON on the last line.

Two things are adapted, and only these: QdrantDB opens `QdrantClient(url=$QDRANT_URL)` (a
server), so its client is pointed at the migrated local directory; and it calls
`QdrantClient.search`, which qdrant-client 1.16 removed, so `search` is given back as the thin
`query_points` call it was (the local directory Ferry writes needs a current qdrant-client).
"""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("EC_TELEMETRY", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from embedchain.chunkers.text import TextChunker  # noqa: E402
from embedchain.config.vector_db.chroma import ChromaDbConfig  # noqa: E402
from embedchain.config.vector_db.qdrant import QdrantDBConfig  # noqa: E402
from embedchain.embedder.base import BaseEmbedder, EmbeddingFunc  # noqa: E402
from embedchain.loaders.local_text import LocalTextLoader  # noqa: E402
from embedchain.models.data_type import DataType  # noqa: E402
from embedchain.vectordb.chroma import ChromaDB  # noqa: E402
from framework_embed import DIM, embed  # noqa: E402
from framework_serve import main  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402

SOURCES = [
    f"Section {i}. The ferry leaves pier {i} at {8 + i} o'clock and carries {i * 10} cars."
    for i in range(8)
]
QUERIES = ["when does the ferry leave pier 3", "how many cars", "pier 6"]


def embedder() -> BaseEmbedder:
    e = BaseEmbedder()
    e.set_embedding_fn(EmbeddingFunc(lambda texts: [embed(t) for t in texts]))
    e.set_vector_dimension(DIM)
    return e


def chunker_for_text() -> TextChunker:
    """What `App.add(text, data_type="text")` chunks with."""
    chunker = TextChunker()
    chunker.set_data_type(DataType.TEXT)
    return chunker


def answers(db: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in QUERIES:
        hits = db.query(q, n_results=3, where=None, citations=True)
        out[q] = [(text, {k: v for k, v in meta.items() if k != "score"}) for text, meta in hits]
        one = db.query(q, n_results=5, where={"doc_id": out[q][0][1]["doc_id"]}, citations=False)
        out[q + " (where doc_id)"] = one
    got = db.get()
    out["get"] = sorted(got["ids"])
    out["count"] = db.count()
    return out


def qdrant_search(self: QdrantClient, collection_name: str, query_vector: Any, **kw: Any) -> Any:
    return self.query_points(collection_name, query=query_vector, **kw).points


def handle(mode: str, path: str) -> dict[str, Any]:
    logging.disable(logging.WARNING)
    if mode == "write":
        db = ChromaDB(config=ChromaDbConfig(dir=path, allow_reset=False))
        db._set_embedder(embedder())
        db._initialize()
        chunker = chunker_for_text()
        for text in SOURCES:
            chunks = chunker.create_chunks(LocalTextLoader(), text, app_id=None)
            db.add(documents=chunks["documents"], metadatas=chunks["metadatas"], ids=chunks["ids"])
        return answers(db)
    from embedchain.vectordb.qdrant import QdrantDB

    QdrantClient.search = qdrant_search  # type: ignore[attr-defined]
    db = QdrantDB(config=QdrantDBConfig(collection_name="embedchain_store"))
    db.client = QdrantClient(path=path)
    db._set_embedder(embedder())
    db._initialize()
    result = answers(db)
    result["collection"] = db.collection_name
    chunks = chunker_for_text().create_chunks(LocalTextLoader(), "Written by the app.", app_id=None)
    try:  # Embedchain's own writer passes its sha256 ids to Qdrant as point ids
        db.add(documents=chunks["documents"], metadatas=chunks["metadatas"], ids=chunks["ids"])
        result["app_write"] = db.query("Written by the app.", n_results=1, where=None)
    except ValueError as exc:
        result["app_write_error"] = str(exc)
    return result


if __name__ == "__main__":
    main(handle)
