"""LlamaIndex: llama-index-vector-stores-chroma → `ferry migrate` (layout detected) →
llama-index-vector-stores-qdrant, opened with `QdrantVectorStore(collection_name, client)` only.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

pytest.importorskip("llama_index.vector_stores.chroma")
pytest.importorskip("llama_index.vector_stores.qdrant")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402
from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores import MetadataFilter, MetadataFilters  # noqa: E402
from llama_index.vector_stores.chroma import ChromaVectorStore  # noqa: E402
from llama_index.vector_stores.qdrant import QdrantVectorStore  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402

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

NAMES = {metric: f"li_{metric}" for metric in METRICS}


class Deterministic(BaseEmbedding):
    def _get_text_embedding(self, text: str) -> list[float]:
        return embed(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return embed(query)


def node(i: int, node_id: str | None = None) -> TextNode:
    made = TextNode(
        id_=node_id or record_id(i), text=text(i), metadata=metadata(i), embedding=embed(text(i))
    )
    if i % 2:  # half come from a source document: ref_doc_id / doc_id / document_id are set
        made.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"file-{i % 3}")
    return made


def retrieve(store: Any, query: str, k: int = 4, **kwargs: Any) -> list[Any]:
    index = VectorStoreIndex.from_vector_store(store, embed_model=Deterministic())
    return index.as_retriever(similarity_top_k=k, **kwargs).retrieve(query)


def hits(results: list[Any]) -> list[tuple[str, str, dict[str, Any], str | None]]:
    return [
        (n.node.node_id, n.node.get_content(), n.node.metadata, n.node.ref_doc_id) for n in results
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("llamaindex")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", dict(NAMES))
    client = chromadb.PersistentClient(
        path=str(b.chroma_dir), settings=Settings(anonymized_telemetry=False)
    )
    answers: dict[str, Any] = {}
    for metric in METRICS:
        collection = client.create_collection(
            NAMES[metric], configuration={"hnsw": {"space": metric}}
        )
        store = ChromaVectorStore(chroma_collection=collection)
        store.add([node(i) for i in range(RECORDS)])
        answers[metric] = [hits(retrieve(store, q)) for q in QUERIES]
    b.extra["chroma"] = client
    b.extra["answers"] = answers
    b.migrate(None)  # no --layout: LlamaIndex is detected
    b.extra["validated_before"] = b.validate()
    return b


def chroma_store(built: Built, metric: str) -> ChromaVectorStore:
    return ChromaVectorStore(chroma_collection=built.extra["chroma"].get_collection(NAMES[metric]))


def test_plan_detects_llamaindex_and_uses_its_layout(built: Built) -> None:
    for metric in METRICS:
        plan = plan_of(built, NAMES[metric])
        assert plan.detection.framework == "LlamaIndex"
        assert plan.layout == "llamaindex"
        assert plan.layout_reason.startswith("detected LlamaIndex: _node_content/_node_type")
        assert any("llama_index.vector_stores.qdrant" in line for line in plan.switch)
        assert any("similarity_cutoff" in line for line in plan.switch)


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    report = built.extra["validated_before"]
    assert_clean(report)
    assert {c.layout for c in report.collections} == {"llamaindex"}


@pytest.mark.parametrize("metric", METRICS)
def test_app_reads_the_same_nodes_text_metadata_and_ids(built: Built, metric: str) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        store = QdrantVectorStore(collection_name=NAMES[metric], client=client)
        for query, before in zip(QUERIES, built.extra["answers"][metric], strict=True):
            after = hits(retrieve(store, query))
            assert [h[0] for h in after] == [h[0] for h in before]  # ids, custom ones included
            for (_, content, meta, ref), (_, chroma_content, chroma_meta, chroma_ref) in zip(
                after, before, strict=True
            ):
                assert content == chroma_content
                assert_exact(meta, chroma_meta)
                assert ref == chroma_ref
    finally:
        client.close()


def test_app_reads_the_copy_on_a_qdrant_server_through_its_url(
    built: Built, qdrant_url: str
) -> None:
    """The same copy on a server (REST, `QdrantClient(url=...)`): another client path."""
    names = migrate_to_server(built, qdrant_url, None)  # detected, as in local mode
    client = QdrantClient(url=qdrant_url, api_key=os.environ.get("QDRANT_API_KEY"))
    try:
        for metric in METRICS:
            store = QdrantVectorStore(collection_name=names[metric], client=client)
            for query, before in zip(QUERIES, built.extra["answers"][metric], strict=True):
                after = hits(retrieve(store, query))
                assert [h[0] for h in after] == [h[0] for h in before]
                for (_, content, meta, ref), (_, c_content, c_meta, c_ref) in zip(
                    after, before, strict=True
                ):
                    assert content == c_content and ref == c_ref
                    assert_exact(meta, c_meta)
        store = QdrantVectorStore(collection_name=names["l2"], client=client)
        only = MetadataFilters(filters=[MetadataFilter(key="topic", value="parsing")])
        found = retrieve(store, QUERIES[1], k=50, filters=only)
        assert len(found) == RECORDS // 3
        assert {n.node.metadata["topic"] for n in found} == {"parsing"}
    finally:
        client.close()
        drop_on_server(qdrant_url, list(names.values()))


def test_get_delete_filter_and_an_app_write_through_llamaindex(built: Built) -> None:
    metric = "l2"
    custom, plain = record_id(4), record_id(5)
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        store = QdrantVectorStore(collection_name=NAMES[metric], client=client)
        got = store.get_nodes(node_ids=[ferry_point(custom), plain])
        assert sorted(n.node_id for n in got) == sorted([custom, plain])
        for n in got:
            assert n.get_content() in {text(4), text(5)}

        only = MetadataFilters(filters=[MetadataFilter(key="topic", value="parsing")])
        found = retrieve(store, QUERIES[1], k=50, filters=only)
        assert len(found) == RECORDS // 3
        assert {n.node.metadata["topic"] for n in found} == {"parsing"}

        new = node(7, node_id=str(uuid.uuid4()))  # LlamaIndex's own id kind
        new.text = "written by the app"
        new.embedding = embed(new.text)
        store.add([new])
        chroma_store(built, metric).add([new])
        store.delete_nodes(node_ids=[plain])
        chroma_store(built, metric).delete_nodes(node_ids=[plain])
        assert store.get_nodes(node_ids=[plain]) == []
        assert [n.get_content() for n in store.get_nodes(node_ids=[new.node_id])] == [
            "written by the app"
        ]
    finally:
        client.close()
    report = built.validate()
    assert_clean(report)
