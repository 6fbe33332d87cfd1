"""CrewAI's side of tests/test_framework_crewai.py, run in CrewAI's own venv (see
tests/framework_venvs.py): `write DIR` fills a Chroma directory through CrewAI's knowledge
storage and RAG client; `read DIR` opens the migrated Qdrant directory with CrewAI's Qdrant
client. Both print what CrewAI's own queries return, as JSON on the last line."""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import qdrant_client.models  # noqa: E402

# crewai/rag/qdrant/types.py imports `InitFrom`, which qdrant-client 1.16 removed, for one
# TypedDict annotation; crewai's pin (qdrant-client ~= 1.14) cannot open a local directory
# written by the qdrant-client Ferry runs on. The annotation's stand-in lets CrewAI's Qdrant
# client run, unchanged, on a current qdrant-client.
if not hasattr(qdrant_client.models, "InitFrom"):
    qdrant_client.models.InitFrom = str  # type: ignore[attr-defined]

from chromadb import Documents, EmbeddingFunction, Embeddings  # noqa: E402
from chromadb.config import Settings  # noqa: E402
from crewai.knowledge.storage.knowledge_storage import KnowledgeStorage  # noqa: E402
from crewai.rag.chromadb.config import ChromaDBConfig  # noqa: E402
from crewai.rag.config.utils import get_rag_client, set_rag_config  # noqa: E402
from crewai.rag.qdrant.config import QdrantConfig  # noqa: E402
from framework_embed import embed  # noqa: E402
from framework_serve import main  # noqa: E402

HANDBOOK = [f"Handbook page {i}: how the crew handles case {i}" for i in range(10)]
NOTES = [
    {"content": f"note {i} about ticket {i}", "metadata": {"ticket": i, "team": "ab"[i % 2]}}
    for i in range(8)
]
QUERIES = ["case 3", "how the crew handles things", "ticket 5"]


class EF(EmbeddingFunction[Documents]):
    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [embed(t) for t in input]

    @staticmethod
    def name() -> str:
        return "ferry-test-deterministic"


def answers() -> dict[str, Any]:
    """CrewAI's knowledge query and its client's search, score_threshold 0 (every hit)."""
    knowledge = KnowledgeStorage(collection_name="handbook")
    client = get_rag_client()
    out: dict[str, Any] = {}
    for q in QUERIES:
        hits = knowledge.search([q], limit=4, score_threshold=0.0)
        notes = client.search(collection_name="crew_notes", query=q, limit=4, score_threshold=0.0)
        team_a = {"collection_name": "crew_notes", "query": q, "limit": 8}
        team_a["metadata_filter"] = {"team": "a"}
        every = client.search(**team_a, score_threshold=0.0)
        kept = client.search(**team_a)  # the client's default score_threshold (0.6)
        out[q] = {
            "knowledge": [(h["content"], h["metadata"], round(h["score"], 5)) for h in hits],
            "notes": [(h["content"], h["metadata"], round(h["score"], 5)) for h in notes],
            "team_a": [(h["content"], round(h["score"], 5)) for h in every],
            "team_a_default_threshold": [h["content"] for h in kept],
        }
    return out


def handle(mode: str, path: str) -> dict[str, Any]:
    logging.disable(logging.WARNING)
    if mode == "write":
        settings = Settings(
            persist_directory=path, allow_reset=True, is_persistent=True, anonymized_telemetry=False
        )
        set_rag_config(ChromaDBConfig(settings=settings, embedding_function=EF()))
        KnowledgeStorage(collection_name="handbook").save(HANDBOOK)
        client = get_rag_client()
        client.get_or_create_collection(collection_name="crew_notes")
        client.add_documents(collection_name="crew_notes", documents=NOTES)
        return answers()
    set_rag_config(QdrantConfig(options={"path": path}, embedding_function=embed))
    result = answers()
    if mode == "read-and-write":
        client = get_rag_client()
        client.add_documents(
            collection_name="crew_notes",
            documents=[{"content": "written by the app", "metadata": {"ticket": 99}}],
        )
        hit = client.search(collection_name="crew_notes", query="written by the app", limit=1)
        result["app_write"] = [(h["content"], h["metadata"]) for h in hit]
    return result


if __name__ == "__main__":
    main(handle)
