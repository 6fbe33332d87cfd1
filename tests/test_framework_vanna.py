"""Vanna: vanna.legacy ChromaDB_VectorStore → `ferry migrate` (layout detected) → Qdrant_VectorStore.

The app swaps its vector-store mixin (`ChromaDB_VectorStore` for `Qdrant_VectorStore`, both
at their defaults) and trains, retrieves and removes as before. Both stores get the same
deterministic embedder through Vanna's own hook (`embedding_function` for the Chroma store,
`generate_embedding` for the Qdrant one); no LLM is called.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import numpy as np
import pytest

pytest.importorskip("vanna.legacy.chromadb")
pytest.importorskip("vanna.legacy.qdrant")

from chromadb import Documents, EmbeddingFunction, Embeddings  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402
from vanna.legacy.chromadb import ChromaDB_VectorStore  # noqa: E402
from vanna.legacy.qdrant import Qdrant_VectorStore  # noqa: E402

from tests.frameworks_common import Built, assert_clean, plan_of  # noqa: E402

DIM = 16
PAIRS = [
    (f"how many orders in month {i}?", f"SELECT count(*) FROM orders WHERE m = {i}")
    for i in range(8)
]
PAIRS.append(("¿cuántos clientes?", "SELECT count(*) FROM clientes"))  # non-ASCII: ensure_ascii
DDL = [f"CREATE TABLE t{i} (id INT, v{i} TEXT)" for i in range(6)]
DOCS = [f"Table t{i} holds the v{i} values of the warehouse" for i in range(6)]
QUESTIONS = ("orders in month 3", "warehouse values", "clientes", "CREATE TABLE t2")


def embed(text: str) -> list[float]:
    """Deterministic and unit length, as Vanna's default models (MiniLM, bge-small) are:
    then Chroma's l2 and the Qdrant store's COSINE rank alike."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return [float(x) for x in v / np.linalg.norm(v)]


class DeterministicEF(EmbeddingFunction[Documents]):
    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [np.asarray(embed(t), dtype=np.float32) for t in input]

    @staticmethod
    def name() -> str:
        return "ferry-test-deterministic"


class NoLLM:
    """The LLM half of a Vanna class; the vector-store calls never reach it."""

    def system_message(self, message: str) -> Any:
        return message

    def user_message(self, message: str) -> Any:
        return message

    def assistant_message(self, message: str) -> Any:
        return message

    def submit_prompt(self, prompt: Any, **kwargs: Any) -> str:
        raise AssertionError("no LLM in these tests")


class ChromaVanna(NoLLM, ChromaDB_VectorStore):
    def __init__(self, path: str) -> None:
        ChromaDB_VectorStore.__init__(
            self, config={"path": path, "embedding_function": DeterministicEF(), "n_results": 3}
        )


class QdrantVanna(NoLLM, Qdrant_VectorStore):
    def __init__(self, client: QdrantClient) -> None:
        Qdrant_VectorStore.__init__(self, config={"client": client, "n_results": 3})

    def generate_embedding(self, data: str, **kwargs: Any) -> list[float]:
        return embed(data)


def answers(vn: Any) -> list[Any]:
    return [
        (vn.get_similar_question_sql(q), vn.get_related_ddl(q), vn.get_related_documentation(q))
        for q in QUESTIONS
    ]


def training(vn: Any) -> list[tuple[str, Any, str, str]]:
    df = vn.get_training_data()
    rows = zip(df["id"], df["question"], df["content"], df["training_data_type"], strict=True)
    return sorted((i, q if isinstance(q, str) else None, c, t) for i, q, c, t in rows)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("vanna")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", {})
    vn = ChromaVanna(str(b.chroma_dir))
    for question, sql in PAIRS:
        vn.add_question_sql(question, sql)
    for ddl in DDL:
        vn.add_ddl(ddl)
    for doc in DOCS:
        vn.add_documentation(doc)
    b.extra["chroma"] = vn
    b.extra["answers"] = answers(vn)
    b.extra["training"] = training(vn)
    b.migrate(None)  # detected: no --layout
    b.extra["validated_before"] = b.validate()
    return b


def test_plan_detects_vanna_and_says_what_changes(built: Built) -> None:
    for name in ("sql", "ddl", "documentation"):
        plan = plan_of(built, name)
        assert plan.detection.framework == "Vanna", plan.detection
        assert plan.layout == "vanna"
        text = "\n".join(plan.switch)
        assert "Qdrant_VectorStore" in text
        assert "COSINE" in text and "l2" in text  # the distance changes: said
        assert "--embed" in text and "bge-small" in text  # the default embedders differ
        assert "-sql/-ddl/-doc" in text


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    assert_clean(built.extra["validated_before"])


def test_target_is_what_vanna_qdrant_creates_and_writes(built: Built) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        for name in ("sql", "ddl", "documentation"):
            params = client.get_collection(name).config.params.vectors
            assert params.distance == models.Distance.COSINE
        question, sql = PAIRS[0]
        points, _ = client.scroll("sql", limit=100, with_payload=True)
        assert len(points) == len(PAIRS)
        first = next(p for p in points if p.payload["question"] == question)
        assert first.payload == {"question": question, "sql": sql}  # nothing else leaks
        ddl = client.scroll("ddl", limit=100, with_payload=True)[0]
        assert {p.payload["ddl"] for p in ddl} == set(DDL)
    finally:
        client.close()


def test_vanna_qdrant_store_gives_the_same_answers_and_training_data(built: Built) -> None:
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        vn = QdrantVanna(client)
        assert answers(vn) == built.extra["answers"]
        # Same ids as Chroma had (suffix included), same questions and contents.
        assert training(vn) == built.extra["training"]
    finally:
        client.close()


def test_app_writes_and_removes_through_vanna_and_validation_stays_clean(built: Built) -> None:
    old_sql_id = next(i for i, _, _, t in built.extra["training"] if t == "sql")
    old_ddl_id = next(i for i, _, _, t in built.extra["training"] if t == "ddl")
    client = QdrantClient(path=str(built.qdrant_dir))
    try:
        vn = QdrantVanna(client)
        # Ids the app kept from its Chroma days remove the same records on Qdrant.
        assert vn.remove_training_data(old_sql_id) is True
        assert vn.remove_training_data(old_ddl_id) is True
        # The app keeps training (dual-write: the same records on both sides).
        new_ddl = "CREATE TABLE written_by_the_app (id INT)"
        new_doc = "written_by_the_app holds what the app wrote"
        ddl_id, doc_id = vn.add_ddl(new_ddl), vn.add_documentation(new_doc)
        assert new_ddl in vn.get_related_ddl(new_ddl)
        ids = {row[0] for row in training(vn)}
        assert {ddl_id, doc_id} <= ids and old_sql_id not in ids
    finally:
        client.close()
    chroma = built.extra["chroma"]
    assert chroma.remove_training_data(old_sql_id) and chroma.remove_training_data(old_ddl_id)
    assert chroma.add_ddl(new_ddl) == ddl_id and chroma.add_documentation(new_doc) == doc_id
    assert_clean(built.validate())


def test_sql_ids_are_vannas_deterministic_uuids() -> None:
    """Vanna's Chroma id of a pair is deterministic_uuid(json) + "-sql" (what detection sees)."""
    from vanna.legacy.utils import deterministic_uuid

    from ferry.core.layouts.apps import VANNA_ID, vanna_uuid

    assert vanna_uuid("ddl text") == deterministic_uuid("ddl text")
    assert VANNA_ID.match(f"{uuid.uuid4()}-sql")


# -- Vanna 2 agent memory: ChromaAgentMemory → QdrantAgentMemory ------------------------------
TOOL_USES = [
    (f"how many orders in month {i}?", "run_sql", {"sql": f"SELECT {i}", "n": [i, 2.5]})
    for i in range(6)
]
TEXT_MEMORIES = ["the fiscal year starts in April", "always exclude test accounts — ¡sí!"]


def agent_memory_classes() -> tuple[Any, Any, Any]:
    from vanna.core.tool import ToolContext
    from vanna.core.user import User
    from vanna.integrations.chromadb import ChromaAgentMemory
    from vanna.integrations.qdrant import QdrantAgentMemory

    class DeterministicQdrantMemory(QdrantAgentMemory):
        """Its embedding is a placeholder hash: the app's model goes here (the same one)."""

        def _create_embedding(self, text: str) -> list[float]:
            return embed(text)

    def context(memory: Any) -> Any:
        return ToolContext(
            user=User(id="u1"), conversation_id="c1", request_id="r1", agent_memory=memory
        )

    return ChromaAgentMemory, DeterministicQdrantMemory, context


def memory_view(memory: Any, ctx: Any) -> dict[str, Any]:
    """Thresholds -1: every hit on both stores (their similarities differ: see the plan)."""
    import asyncio

    async def read() -> dict[str, Any]:
        similar = await memory.search_similar_usage(
            "orders in month 2", ctx, limit=4, similarity_threshold=-1.0
        )
        texts = await memory.search_text_memories(
            "fiscal year", ctx, limit=2, similarity_threshold=-1.0
        )
        recent = await memory.get_recent_memories(ctx, limit=10)
        return {
            "similar": [r.memory.model_dump() for r in similar],
            "texts": [r.memory.model_dump() for r in texts],
            "recent": [m.model_dump() for m in recent],
        }

    return asyncio.run(read())


def test_agent_memory_moves_to_qdrant_agent_memory(tmp_path: Any) -> None:
    import asyncio

    pytest.importorskip("vanna.integrations.qdrant")
    chroma_cls, qdrant_cls, context = agent_memory_classes()
    b = Built(tmp_path / "chroma", tmp_path / "qdrant", tmp_path / "journal.db", {})
    chroma = chroma_cls(persist_directory=str(b.chroma_dir), embedding_function=DeterministicEF())
    ctx = context(chroma)

    async def fill() -> None:
        for question, tool, args in TOOL_USES:
            await chroma.save_tool_usage(question, tool, args, ctx, metadata={"rows": 3})
        await chroma.save_tool_usage("a failed one", "run_sql", {"sql": "x"}, ctx, success=False)
        for text in TEXT_MEMORIES:
            await chroma.save_text_memory(text, ctx)

    asyncio.run(fill())
    before = memory_view(chroma, ctx)
    outcome = b.migrate(None)
    plan = outcome.plan.collections[0]
    assert (plan.detection.framework, plan.layout) == ("Vanna", "vanna-memory")
    assert any("QdrantAgentMemory" in line for line in plan.switch)
    assert_clean(b.validate())

    qdrant = qdrant_cls(path=str(b.qdrant_dir), dimension=DIM)
    try:
        after = memory_view(qdrant, context(qdrant))
        # The same memories, ids, parsed args and metadata; get_recent_memories lists text
        # memories on Chroma but not on Qdrant (each store's own choice), so compare tools.
        assert after["similar"] == before["similar"] and len(after["similar"]) == 4
        assert after["texts"] == before["texts"]
        assert after["recent"] == [m for m in before["recent"] if "content" not in m]
        point = qdrant._get_client().scroll("tool_memories", limit=1, with_payload=True)[0][0]
        assert set(point.payload) <= {
            "question", "tool_name", "args", "timestamp", "success", "metadata",
            "content", "is_text_memory",
        }  # fmt: skip
    finally:
        if qdrant._client is not None:
            qdrant._client.close()
