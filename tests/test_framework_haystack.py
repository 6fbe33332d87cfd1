"""Haystack: chroma-haystack → `ferry migrate --layout haystack` → qdrant-haystack, opened with
`QdrantDocumentStore(path, index, embedding_dim, similarity)` (its documented settings).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

pytest.importorskip("haystack_integrations.document_stores.chroma")
pytest.importorskip("haystack_integrations.document_stores.qdrant")

from haystack import Document  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402
from haystack_integrations.components.retrievers.chroma import (  # noqa: E402
    ChromaEmbeddingRetriever,
)
from haystack_integrations.components.retrievers.qdrant import (  # noqa: E402
    QdrantEmbeddingRetriever,
)
from haystack_integrations.document_stores.chroma import ChromaDocumentStore  # noqa: E402
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore  # noqa: E402

from tests.frameworks_common import (  # noqa: E402
    DIM,
    METRICS,
    QUERIES,
    RECORDS,
    Built,
    assert_clean,
    assert_exact,
    drop_on_server,
    embed,
    metadata,
    migrate_to_server,
    plan_of,
    record_id,
    text,
)

NAMES = {metric: f"hs_{metric}" for metric in METRICS}
HASHED = "hs_hashed"  # default Haystack ids (content hashes): what detection recognises
SIMILARITY = {"l2": "l2", "cosine": "cosine", "ip": "dot_product"}


def document(i: int, doc_id: str | None = None) -> Document:
    """`doc_id=""`: Haystack's own id (a hash of content and meta, made before embedding)."""
    if doc_id == "":
        made = Document(content=text(i), meta=metadata(i))
        return replace(made, embedding=embed(text(i)))  # the id stays the content hash
    return Document(
        id=doc_id or record_id(i), content=text(i), meta=metadata(i), embedding=embed(text(i))
    )


def chroma_store(built: Built, name: str, metric: str = "cosine") -> ChromaDocumentStore:
    return ChromaDocumentStore(
        collection_name=name, persist_path=str(built.chroma_dir), distance_function=metric
    )


def qdrant_store(built: Built, name: str, metric: str) -> QdrantDocumentStore:
    """Defaults plus the documented per-collection settings: index, embedding_dim, similarity."""
    return QdrantDocumentStore(
        path=str(built.qdrant_dir),
        index=name,
        embedding_dim=DIM,
        similarity=SIMILARITY[metric],
        progress_bar=False,
    )


def hits(documents: list[Document]) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(d.id, d.content, d.meta) for d in documents]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("haystack")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", dict(NAMES))
    answers: dict[str, Any] = {}
    stores: dict[str, ChromaDocumentStore] = {}
    for metric in METRICS:
        # Kept open for the app's later writes (chromadb keeps one system per directory).
        store = stores[metric] = chroma_store(b, NAMES[metric], metric)
        store.write_documents([document(i) for i in range(RECORDS)])
        retriever = ChromaEmbeddingRetriever(store, top_k=4)
        answers[metric] = [
            hits(retriever.run(query_embedding=embed(q))["documents"]) for q in QUERIES
        ]
    chroma_store(b, HASHED).write_documents([document(i, "") for i in range(6)])
    b.extra["answers"] = answers
    b.extra["stores"] = stores
    b.migrate("haystack")
    b.extra["validated_before"] = b.validate()
    return b


def test_plan_detects_haystack_content_hash_ids_and_says_what_to_set(built: Built) -> None:
    hashed = plan_of(built, HASHED)
    assert hashed.detection.framework == "Haystack"
    assert hashed.detection.marks == [
        "6 of 6 sampled ids are Haystack content hashes of (content, meta)"
    ]
    plan = plan_of(built, NAMES["ip"])
    assert plan.detection.framework is None  # custom ids leave no mark: --layout says it
    assert plan.layout == "haystack"
    assert any(
        f"embedding_dim={DIM}" in line and 'similarity="dot_product"' in line
        for line in plan.switch
    )


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    report = built.extra["validated_before"]
    assert_clean(report)
    assert {c.layout for c in report.collections} == {"haystack"}


@pytest.mark.parametrize("metric", METRICS)
def test_app_reads_the_same_documents_content_meta_and_ids(built: Built, metric: str) -> None:
    store = qdrant_store(built, NAMES[metric], metric)
    try:
        retriever = QdrantEmbeddingRetriever(store, top_k=4)
        for query, before in zip(QUERIES, built.extra["answers"][metric], strict=True):
            after = hits(retriever.run(query_embedding=embed(query))["documents"])
            assert [h[0] for h in after] == [h[0] for h in before]  # the app's own ids
            for (_, content, meta), (_, chroma_content, chroma_meta) in zip(
                after, before, strict=True
            ):
                assert content == chroma_content
                assert_exact(meta, chroma_meta)
    finally:
        store.close()


def test_app_reads_the_copy_on_a_qdrant_server_through_its_url(
    built: Built, qdrant_url: str
) -> None:
    """The same copy on a server (REST, `QdrantDocumentStore(url=...)`): another client path."""
    from haystack.utils import Secret

    names = migrate_to_server(built, qdrant_url, "haystack")
    key = Secret.from_env_var("QDRANT_API_KEY") if os.environ.get("QDRANT_API_KEY") else None
    try:
        for metric in METRICS:
            store = QdrantDocumentStore(
                url=qdrant_url,
                api_key=key,
                index=names[metric],
                embedding_dim=DIM,
                similarity=SIMILARITY[metric],
                progress_bar=False,
            )
            try:
                retriever = QdrantEmbeddingRetriever(store, top_k=4)
                for query, before in zip(QUERIES, built.extra["answers"][metric], strict=True):
                    after = hits(retriever.run(query_embedding=embed(query))["documents"])
                    assert [h[0] for h in after] == [h[0] for h in before]
                    for (_, content, meta), (_, c_content, c_meta) in zip(
                        after, before, strict=True
                    ):
                        assert content == c_content
                        assert_exact(meta, c_meta)
                found = store.filter_documents(
                    {"field": "meta.topic", "operator": "==", "value": "regex"}
                )
                assert len(found) == RECORDS // 3
            finally:
                store.close()
    finally:
        drop_on_server(qdrant_url, list(names.values()))


def test_get_delete_filter_and_an_app_write_through_haystack(built: Built) -> None:
    metric = "ip"
    name = NAMES[metric]
    custom, plain = record_id(6), record_id(7)
    store = qdrant_store(built, name, metric)
    try:
        got = store.get_documents_by_id([custom, plain])
        assert sorted(d.id for d in got) == sorted([custom, plain])
        for d in got:
            assert_exact(d.meta, metadata(6 if d.id == custom else 7))

        found = store.filter_documents({"field": "meta.topic", "operator": "==", "value": "regex"})
        assert len(found) == RECORDS // 3
        exact = store.filter_documents({"field": "meta.n", "operator": "==", "value": 9})
        assert [d.content for d in exact] == [text(9)]

        # FAIL refuses a duplicate id (the issue saw a second copy written instead).
        with pytest.raises(Exception, match="already exist|Duplicate|duplicate"):
            store.write_documents([document(6)], policy=DuplicatePolicy.FAIL)
        assert store.count_documents() == RECORDS

        new = Document(
            id="app#1",
            content="written by the app",
            meta={"topic": "regex", "n": 77},
            embedding=embed("written by the app"),
        )
        assert store.write_documents([new]) == 1
        store.delete_documents([plain])
        assert store.get_documents_by_id([plain]) == []
        assert [d.content for d in store.get_documents_by_id(["app#1"])] == ["written by the app"]
    finally:
        store.close()
    source = built.extra["stores"][metric]
    source.write_documents([new])
    source.delete_documents([plain])
    report = built.validate()
    assert_clean(report)
