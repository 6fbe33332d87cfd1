"""mem0: `Memory` on its Chroma store → `ferry migrate` (layout detected) → `Memory` on Qdrant.

The app changes the vector store provider in its config (`chroma` → `qdrant`) and keeps its
memories: `search` and `get_all` return the same memories, ids and metadata. No LLM is called
(`add(..., infer=False)` stores messages as they are); the embedder is a deterministic one put
in mem0's embedder slot (`Memory.embedding_model`); no network, no API key is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["MEM0_TELEMETRY"] = "False"  # read when mem0 is imported: no posthog, no mem0migrations
pytest.importorskip("mem0")

from mem0 import Memory  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402

from tests.frameworks_common import Built, assert_clean, plan_of  # noqa: E402

DIM = 16
FACTS = {
    "alice": [f"Alice likes topic {i}" for i in range(6)] + ["Alice drinks green tea"],
    "bob": ["Bob plays chess", "Bob lives in Lyon", "Bob likes tea too"],
}
QUERIES = (("alice", "tea"), ("alice", "Alice likes topic 3"), ("bob", "where does Bob live"))


def embed(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return [float(x) for x in v / np.linalg.norm(v)]  # unit length, as OpenAI's are


class Deterministic:
    """mem0's embedder interface (`EmbeddingBase.embed`)."""

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        return embed(text)


def memory(store: dict[str, Any], history: Path) -> Memory:
    config = {
        "vector_store": store,
        "history_db_path": str(history),
        # Built but never called: its client is replaced below (no key is sent anywhere).
        "embedder": {"provider": "openai", "config": {"embedding_dims": DIM, "api_key": "x"}},
        "llm": {"provider": "openai", "config": {"api_key": "x"}},
    }
    m = Memory.from_config(config)
    m.embedding_model = Deterministic()
    return m


def found(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What the app reads of each memory (the score apart: see `test_memory_on_qdrant…`)."""
    return [
        (r["id"], r["memory"], r["hash"], r["user_id"], r.get("metadata"), r["created_at"])
        for r in result["results"]
    ]


def scored(m: Memory) -> list[list[tuple[tuple[Any, ...], float]]]:
    out = []
    for user, q in QUERIES:
        result = m.search(q, filters={"user_id": user}, top_k=3)
        out.append(list(zip(found(result), [r["score"] for r in result["results"]], strict=True)))
    return out


def answers(m: Memory) -> dict[str, Any]:
    return {
        "search": scored(m),
        "all": {
            user: sorted(found(m.get_all(filters={"user_id": user}, top_k=50))) for user in FACTS
        },
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("mem0")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", {})
    store = {"provider": "chroma", "config": {"collection_name": "mem0", "path": str(b.chroma_dir)}}
    m = memory(store, root / "history.db")
    for user, facts in FACTS.items():
        for fact in facts:
            m.add([{"role": "user", "content": fact}], user_id=user, infer=False, metadata={"n": 1})
    b.extra["chroma"] = m
    b.extra["answers"] = answers(m)
    b.extra["root"] = root
    b.migrate(None)  # detected: no --layout
    b.extra["validated_before"] = b.validate()
    return b


def qdrant_memory(built: Built, client: QdrantClient) -> Memory:
    store = {
        "provider": "qdrant",
        "config": {"collection_name": "mem0", "client": client, "embedding_model_dims": DIM},
    }
    return memory(store, built.extra["root"] / "history-qdrant.db")


def test_plan_detects_mem0_and_says_the_distance_changes(built: Built) -> None:
    plan = plan_of(built, "mem0")
    assert plan.detection.framework == "mem0", plan.detection
    assert plan.layout == "mem0"
    text = "\n".join(plan.switch)
    assert '"provider": "qdrant"' in text
    assert "COSINE" in text


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    assert_clean(built.extra["validated_before"])


def test_target_is_what_mem0_qdrant_creates(built: Built) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        params = client.get_collection("mem0").config.params
        assert params.vectors.distance == models.Distance.COSINE  # unnamed dense vector
        assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
        point = client.scroll("mem0", limit=1, with_payload=True)[0][0]
        # mem0's uuid4 ids are kept: nothing but mem0's own payload keys
        assert "source_id" not in point.payload and "document" not in point.payload
        assert {"data", "hash", "user_id", "created_at"} <= set(point.payload)
    finally:
        client.close()


def test_memory_on_qdrant_finds_the_same_memories(built: Built) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        m = qdrant_memory(built, client)
        assert m.vector_store._has_bm25_slot  # mem0 sees its hybrid-search slot
        after, before = answers(m), built.extra["answers"]
        assert after["all"] == before["all"]
        # Same memories in the same order; the score is another one. mem0's Chroma store
        # scores 1 / (1 + d²) (squared l2), its Qdrant store the cosine: for unit vectors
        # cos = (3 - 1/s) / 2, and `search`'s default threshold 0.1 now applies to the cosine.
        for now, then in zip(after["search"], before["search"], strict=True):
            kept = [(hit, (3 - 1 / s) / 2) for hit, s in then if (3 - 1 / s) / 2 >= 0.1]
            assert [hit for hit, _ in now] == [hit for hit, _ in kept]
            assert [s for _, s in now] == pytest.approx([s for _, s in kept], abs=1e-5)
        assert any(len(now) == 3 for now in after["search"])
    finally:
        client.close()


def test_app_adds_and_deletes_through_memory_and_validation_stays_clean(built: Built) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        m = qdrant_memory(built, client)
        gone = m.get_all(filters={"user_id": "bob"})["results"][0]["id"]
        m.delete(gone)
        added = m.add(
            [{"role": "user", "content": "Bob bought a bike"}], user_id="bob", infer=False
        )
        new_id = added["results"][0]["id"]
        assert "Bob bought a bike" in [
            r["memory"] for r in m.get_all(filters={"user_id": "bob"})["results"]
        ]
        new_point = client.retrieve("mem0", [new_id], with_payload=True, with_vectors=True)[0]
    finally:
        client.close()
    # The same change on the Chroma side (dual-write), with the very record mem0 wrote.
    chroma = built.extra["chroma"].vector_store
    chroma.delete(gone)
    vector = new_point.vector
    chroma.insert(
        [vector[""] if isinstance(vector, dict) else vector], [new_point.payload], [new_id]
    )
    assert_clean(built.validate())
