"""LangChain: langchain-chroma → `ferry migrate --layout langchain` → langchain-qdrant.

The app switches `Chroma(...)` for `QdrantVectorStore(client, collection_name, embedding,
distance=…)` (the only per-collection setting: the collection's distance) and keeps working.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_chroma")
pytest.importorskip("langchain_qdrant")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402
from langchain_chroma import Chroma  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_qdrant import QdrantVectorStore  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402

from tests.frameworks_common import (  # noqa: E402
    METRICS,
    QUERIES,
    RECORDS,
    Built,
    assert_clean,
    assert_exact,
    drop_on_server,
    embed,
    ferry_point,
    metadata,
    migrate_to_server,
    plan_of,
    record_id,
    text,
)

DISTANCE = {
    "l2": models.Distance.EUCLID,
    "cosine": models.Distance.COSINE,
    "ip": models.Distance.DOT,
}
NAMES = {"l2": "langchain", "cosine": "lc_cosine", "ip": "lc_ip"}  # "langchain": its default


class Deterministic(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text)


def chroma_store(client: Any, metric: str) -> Chroma:
    return Chroma(
        collection_name=NAMES[metric],
        embedding_function=Deterministic(),
        client=client,
        collection_configuration={"hnsw": {"space": metric}},
    )


def qdrant_store(client: QdrantClient, metric: str) -> QdrantVectorStore:
    """Defaults, plus the one documented per-collection setting: `distance`."""
    return QdrantVectorStore(
        client=client,
        collection_name=NAMES[metric],
        embedding=Deterministic(),
        distance=DISTANCE[metric],
    )


def hits(results: list[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(d.id, d.page_content, d.metadata) for d in results]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("langchain")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", dict(NAMES))
    client = chromadb.PersistentClient(
        path=str(b.chroma_dir), settings=Settings(anonymized_telemetry=False)
    )
    answers: dict[str, Any] = {}
    for metric in METRICS:
        store = chroma_store(client, metric)
        store.add_texts(
            [text(i) for i in range(RECORDS)],
            metadatas=[metadata(i) for i in range(RECORDS)],
            ids=[record_id(i) for i in range(RECORDS)],
        )
        answers[metric] = [hits(store.similarity_search(q, k=4)) for q in QUERIES]
    b.extra["chroma"] = client
    b.extra["answers"] = answers
    b.migrate("langchain")
    b.extra["validated_before"] = b.validate()
    return b


def test_plan_detects_langchain_by_its_default_name_and_says_what_to_set(built: Built) -> None:
    plan = plan_of(built, "langchain")
    assert plan.detection.framework == "LangChain"
    assert plan.layout == "langchain"
    assert any("distance=models.Distance.EUCLID" in line for line in plan.switch)
    assert any("√t" in line for line in plan.switch)  # squared L2 vs plain distance
    cosine = plan_of(built, "lc_cosine")
    assert cosine.detection.framework is None and cosine.layout == "langchain"
    assert not any("distance=" in line for line in cosine.switch)  # COSINE is the default
    assert any("uuid5" in line for line in cosine.switch)  # custom ids: where they live


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    report = built.extra["validated_before"]
    assert_clean(report)
    assert {c.layout for c in report.collections} == {"langchain"}


@pytest.mark.parametrize("metric", METRICS)
def test_app_reads_the_same_documents_text_metadata_and_ids(built: Built, metric: str) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        store = qdrant_store(client, metric)
        for query, before in zip(QUERIES, built.extra["answers"][metric], strict=True):
            after = store.similarity_search(query, k=4)
            assert len(after) == len(before)
            for doc, (chroma_id, chroma_text, chroma_meta) in zip(after, before, strict=True):
                assert doc.page_content == chroma_text
                meta = dict(doc.metadata)
                # LangChain adds these two itself; everything else is the app's own metadata
                assert meta.pop("_collection_name") == NAMES[metric]
                assert meta.pop("_id") == ferry_point(chroma_id)
                assert_exact(meta, chroma_meta)
    finally:
        client.close()


def test_app_reads_the_copy_on_a_qdrant_server_through_its_url(
    built: Built, qdrant_url: str
) -> None:
    """The same copy on a server (REST, `QdrantClient(url=...)`): another client path."""
    names = migrate_to_server(built, qdrant_url, "langchain")
    client = QdrantClient(url=qdrant_url, api_key=os.environ.get("QDRANT_API_KEY"))
    try:
        for metric in METRICS:
            store = QdrantVectorStore(
                client=client,
                collection_name=names[metric],
                embedding=Deterministic(),
                distance=DISTANCE[metric],
            )
            for query, before in zip(QUERIES, built.extra["answers"][metric], strict=True):
                after = store.similarity_search(query, k=4)
                assert [d.page_content for d in after] == [b[1] for b in before]
                for doc, (chroma_id, _text, chroma_meta) in zip(after, before, strict=True):
                    meta = dict(doc.metadata)
                    assert meta.pop("_collection_name") == names[metric]
                    assert meta.pop("_id") == ferry_point(chroma_id)
                    assert_exact(meta, chroma_meta)
        only = models.Filter(
            must=[
                models.FieldCondition(key="metadata.topic", match=models.MatchValue(value="search"))
            ]
        )
        store = QdrantVectorStore(
            client=client, collection_name=names["cosine"], embedding=Deterministic()
        )
        found = store.similarity_search(QUERIES[0], k=50, filter=only)
        assert len(found) == RECORDS // 3 and {d.metadata["topic"] for d in found} == {"search"}
    finally:
        client.close()
        drop_on_server(qdrant_url, list(names.values()))


def test_get_delete_filter_and_an_app_write_through_langchain(built: Built) -> None:
    metric = "cosine"
    custom, plain = record_id(2), record_id(3)  # "re.search#2" and a UUID
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        store = qdrant_store(client, metric)
        got = store.get_by_ids([ferry_point(custom), plain])
        assert sorted(d.page_content for d in got) == sorted([text(2), text(3)])
        for doc in got:
            doc.metadata.pop("_id"), doc.metadata.pop("_collection_name")
            assert_exact(doc.metadata, metadata(int(doc.page_content.split(":")[0][4:])))

        # A metadata filter, the LangChain way on Qdrant: on `metadata.KEY`.
        only = models.Filter(
            must=[
                models.FieldCondition(key="metadata.topic", match=models.MatchValue(value="search"))
            ]
        )
        found = store.similarity_search(QUERIES[0], k=50, filter=only)
        assert len(found) == RECORDS // 3
        assert {d.metadata["topic"] for d in found} == {"search"}
        by_int = models.Filter(
            must=[models.FieldCondition(key="metadata.n", match=models.MatchValue(value=5))]
        )
        assert [d.page_content for d in store.similarity_search("x", k=5, filter=by_int)] == [
            text(5)
        ]

        # The app keeps writing: the same record through both stores (dual-write), then a delete.
        new_id = str(uuid.uuid4())  # LangChain's own id kind
        new_meta = {"topic": "regex", "n": 99, "weight": 0.1, "draft": False}
        store.add_texts(["written by the app"], metadatas=[new_meta], ids=[new_id])
        chroma_store(built.extra["chroma"], metric).add_texts(
            ["written by the app"], metadatas=[new_meta], ids=[new_id]
        )
        assert store.delete(ids=[plain]) is True
        chroma_store(built.extra["chroma"], metric).delete(ids=[plain])
        assert store.get_by_ids([plain]) == []
        assert [d.page_content for d in store.get_by_ids([new_id])] == ["written by the app"]
    finally:
        client.close()
    report = built.validate()
    assert_clean(report)
    cosine = next(c for c in report.collections if c.name == NAMES[metric])
    assert cosine.source_count == RECORDS  # one written, one deleted, on both sides


def test_a_flat_copy_is_what_the_issue_saw_and_validation_reads_it_as_flat(
    built: Built, tmp_path: Path
) -> None:
    """Without the layout LangChain gets empty text and no metadata: why layouts exist."""
    flat = Built(built.chroma_dir, tmp_path / "flat", tmp_path / "j.db", built.collections)
    flat.migrate("flat")
    client = QdrantClient(path=str(flat.qdrant_dir))
    try:
        doc = qdrant_store(client, "cosine").similarity_search(QUERIES[0], k=1)[0]
        assert doc.page_content == ""
        assert set(doc.metadata) == {"_id", "_collection_name"}
    finally:
        client.close()
