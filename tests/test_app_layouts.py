"""The app frameworks' layouts (core/layouts/apps.py) without the frameworks: the records each
framework's Chroma store writes, their payloads, ids, detection, and a migration + validation
through the distance change (l2 → COSINE) and CrewAI's recomputed ids, on Edge and
qdrant-client. The frameworks themselves: tests/test_framework_{vanna,mem0,crewai,embedchain}.py.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors.base import WriteMode
from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.layouts import detect_framework, detect_written_layout, make_layout
from ferry.core.layouts.apps import crewai_id, vanna_uuid
from ferry.core.mapping import FERRY_ID_NAMESPACE, PayloadFields
from ferry.core.model import CollectionInfo, Metric
from ferry.core.runner import migrate
from ferry.core.validate import ValidationOptions, validate

PAIR = json.dumps({"question": "¿cuántos?", "sql": "SELECT 1"}, ensure_ascii=False)
ESCAPED = json.dumps({"question": "¿cuántos más?", "sql": "SELECT 2"})  # \u00bf…: also Vanna's
VANNA = [
    (vanna_uuid(PAIR) + "-sql", None, PAIR),
    (vanna_uuid(ESCAPED) + "-sql", None, ESCAPED),
    (vanna_uuid("CREATE TABLE t (a INT)") + "-ddl", None, "CREATE TABLE t (a INT)"),
    (vanna_uuid("t holds a") + "-doc", None, "t holds a"),
]
MEM0_META = {"data": "likes tea", "hash": "abc", "user_id": "alice", "created_at": "2026"}
MEM0 = [(str(uuid.uuid4()), MEM0_META, None), ("legacy-7", {**MEM0_META, "n": 7}, None)]
CREW_META = {"ticket": 3, "team": "a", "w": 0.5}
CREWAI = [
    (crewai_id("note 3", CREW_META), CREW_META, "note 3"),
    (crewai_id("plain", None), None, "plain"),
    ("custom-id", {"a": 1}, "other"),
]
EC_META = {"url": "local", "data_type": "text", "doc_id": "d" * 64}
EMBEDCHAIN = [(hashlib.sha256(b"chunk local").hexdigest(), EC_META, "chunk")]
TOOL_META = {
    "question": "how many?",
    "tool_name": "run_sql",
    "args_json": json.dumps({"sql": "SELECT 1", "n": [1, 2.5]}),
    "timestamp": "2026-12-05T00:00:00",
    "success": True,
    "metadata_json": "{}",
}
TEXT_META = {"content": "fiscal year starts in April", "timestamp": "t", "is_text_memory": True}
VANNA_MEMORY = [
    (str(uuid.uuid4()), TOOL_META, "how many?"),
    (str(uuid.uuid4()), TEXT_META, "fiscal year starts in April"),
    ("odd-id", {**TOOL_META, "args_json": '{"a":1}'}, "other text"),  # not json.dumps' spacing
]
RECORDS = {
    "vanna": VANNA,
    "vanna-memory": VANNA_MEMORY,
    "mem0": MEM0,
    "crewai": CREWAI,
    "embedchain": EMBEDCHAIN,
}


@pytest.mark.parametrize("name", RECORDS)
def test_the_frameworks_records_round_trip_exactly(name: str) -> None:
    layout = make_layout(name)
    for sid, meta, doc in RECORDS[name]:
        payload = json.loads(json.dumps(layout.to_payload(sid, meta, doc)))  # as stored
        assert layout.from_payload(layout.point_id(sid), payload) == (sid, meta, doc)
        assert layout.hit_source_id(layout.point_id(sid), payload) == sid


def test_payloads_are_what_each_qdrant_store_reads() -> None:
    vanna = make_layout("vanna")
    (sql, _, pair), _, (ddl, _, text), _ = VANNA
    assert vanna.to_payload(sql, None, pair) == {"question": "¿cuántos?", "sql": "SELECT 1"}
    assert vanna.point_id(sql) == sql.removesuffix("-sql")  # the bare UUID
    assert vanna.to_payload(ddl, None, text) == {"ddl": text, "source_id": ddl}
    mem0 = make_layout("mem0")
    assert mem0.to_payload(*MEM0[0]) == MEM0_META  # a uuid4 id: nothing added
    assert mem0.to_payload(*MEM0[1])["source_id"] == "legacy-7"
    crewai = make_layout("crewai")
    sid, meta, doc = CREWAI[0]
    assert crewai.to_payload(sid, meta, doc) == {"content": "note 3", **CREW_META}
    assert crewai.point_id(sid) == str(uuid.uuid5(FERRY_ID_NAMESPACE, sid))
    assert crewai.to_payload(*CREWAI[2])["source_id"] == "custom-id"
    ec = make_layout("embedchain")
    sid, meta, doc = EMBEDCHAIN[0]
    assert ec.to_payload(sid, meta, doc) == {
        "identifier": sid,
        "text": "chunk",
        "metadata": {**EC_META, "text": "chunk"},
    }
    assert ec.metadata_path("doc_id") == "metadata.doc_id"  # embedchain's `where`
    memory = make_layout("vanna-memory")
    tool = memory.to_payload(*VANNA_MEMORY[0])
    assert tool["args"] == {"sql": "SELECT 1", "n": [1, 2.5]} and tool["metadata"] == {}
    assert "args_json" not in tool and "document" not in tool and "source_id" not in tool
    odd = memory.to_payload(*VANNA_MEMORY[2])
    assert odd["args_json"] == '{"a":1}' and odd["document"] == "other text"


def test_create_settings_follow_the_qdrant_stores() -> None:
    assert {n: make_layout(n).target_metric for n in RECORDS} == dict.fromkeys(
        RECORDS, Metric.COSINE
    )
    assert make_layout("mem0").sparse_slots == ("bm25",)
    assert set(make_layout("mem0").keyword_indexes) == {"user_id", "agent_id", "run_id", "actor_id"}
    assert make_layout("langchain").target_metric is None


def test_detection_marks() -> None:
    def detected(name: str, records: list[Any]) -> Any:
        ids, metas, docs = (list(x) for x in zip(*records, strict=True))
        return detect_framework(CollectionInfo(name, len(ids), 8, Metric.L2), ids, metas, docs)

    assert detected("sql", VANNA[:1]).layout == "vanna"
    assert detected("memories", MEM0).layout == "mem0"
    assert detected("mem0migrations", [("x", {"user_id": "u"}, None)]).layout == "mem0"
    assert detected("notes", CREWAI).layout == "crewai"
    assert detected("knowledge_x", [("z", None, "t")]).layout == "crewai"
    assert detected("chunks", EMBEDCHAIN).layout == "embedchain"
    assert detected("memories", VANNA_MEMORY).layout == "vanna-memory"
    assert detected("other", [("re.search#0", {"a": 1}, "t")]).framework is None


@pytest.mark.parametrize("name", RECORDS)
def test_written_layout_is_read_from_the_points(name: str) -> None:
    layout = make_layout(name)
    payloads = [layout.to_payload(*record) for record in RECORDS[name]]
    assert detect_written_layout(payloads, PayloadFields()) == name


def test_unknown_layout_lists_the_app_layouts() -> None:
    from ferry.core.errors import PreflightError

    with pytest.raises(PreflightError, match="vanna, vanna-memory, mem0, crewai, embedchain"):
        make_layout("autogen")


# -- through the engine and validation ------------------------------------------------------
def crew_chroma(path: Path, n: int = 16) -> Path:
    """What CrewAI's Chroma client writes (sha256 ids), l2 and unnormalised vectors here, so
    that the target's COSINE is a real change of distance for the engine and validation."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("crew_notes", configuration={"hnsw": {"space": "l2"}})
    docs = [f"note {i} about ticket {i}" for i in range(n)]
    metas = [{"ticket": i, "team": "ab"[i % 2]} for i in range(n)]
    collection.add(
        ids=[crewai_id(d, m) for d, m in zip(docs, metas, strict=True)],
        embeddings=np.random.default_rng(3).normal(size=(n, 8)).astype(np.float32) * 3,
        metadatas=metas,
        documents=docs,
    )
    del client
    return path


@pytest.mark.parametrize("kind", ["edge", "file"])
async def test_migrate_and_validate_through_the_distance_change(tmp_path: Path, kind: str) -> None:
    source = f"chroma+file://{crew_chroma(tmp_path / 'src')}"
    target = f"qdrant+{kind}://{tmp_path / 'q'}"
    journal = Journal(tmp_path / "j.db")
    try:
        outcome = await migrate(source, target, [], MigrationOptions(), journal)
        item = outcome.plan.collections[0]
        assert (item.detection.framework, item.layout) == ("CrewAI", "crewai")
        assert any("created COSINE (the source searched with l2)" in s for s in item.switch)
        options = ValidationOptions(full=True, queries=6, k=4)
        report = await validate(source, target, None, options, journal)
        result = report.collections[0]
        assert report.ok, (result.reasons, result.to_json()["mismatched"])
        assert result.recall is not None and result.recall.recall_at_k > 0
        assert not result.problems  # the target's COSINE is what the layout asks for
        if kind == "file":  # repair writes a lost record back in the layout, at its point
            from qdrant_client import QdrantClient

            sid = crewai_id("note 5 about ticket 5", {"ticket": 5, "team": "b"})
            client = QdrantClient(path=str(tmp_path / "q"))
            client.delete("crew_notes", [make_layout("crewai").point_id(sid)])
            client.close()
            fix = ValidationOptions(full=True, queries=0, repair=True)
            broken = (await validate(source, target, None, fix, journal)).collections[0]
            assert broken.to_json()["missing"] == [sid]
            assert broken.repair is not None and broken.repair.rewritten == 1
            healed = await validate(source, target, None, options, journal)
            assert healed.ok, healed.collections[0].reasons
    finally:
        journal.close()
    # Another run (another journal) appending into the COSINE target it made: the plan and
    # `prepare` compare the target with COSINE, not with the source's l2, and accept it.
    other = Journal(tmp_path / "j2.db")
    try:
        again = await migrate(source, target, [], MigrationOptions(mode=WriteMode.APPEND), other)
        assert again.status.value == "completed", again.to_json()
        assert not again.plan.collections[0].error
        said = again.plan.collections[0].warnings + again.to_json()["warnings"]
        assert not [w for w in said if "metric" in w], said
    finally:
        other.close()


@pytest.mark.parametrize("name", ["vanna", "crewai", "mem0"])
def test_the_routers_qdrant_store_writes_and_reads_what_migrate_wrote(
    tmp_path: Path, name: str
) -> None:
    """Dual-write through the router: the same points the migration writes, read back."""
    from qdrant_client import QdrantClient, models

    from ferry.core.router.stores import QdrantStore

    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        client.create_collection(
            "c", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
        )
        store = QdrantStore(client, "c", layout=name)
        layout = make_layout(name)
        ids = [sid for sid, _, _ in RECORDS[name]]
        metas = [meta for _, meta, _ in RECORDS[name]]
        docs = [doc for _, _, doc in RECORDS[name]]
        vectors = np.eye(2)[[i % 2 for i in range(len(ids))]] + 0.1
        store.upsert(ids, vectors, metas, docs)
        for sid, meta, doc in RECORDS[name]:
            point = client.retrieve("c", [layout.point_id(sid)], with_payload=True)[0]
            assert point.payload == layout.to_payload(sid, meta, doc)
        got = store.get(ids)
        assert (got.ids, got.metadatas, got.documents) == (ids, metas, docs)
        hits = store.query(vectors[:1], len(ids))
        assert set(hits.ids[0]) == set(ids)
        store.delete(ids[:1])
        assert store.count() == len(ids) - 1
    finally:
        client.close()


@pytest.mark.server
async def test_mem0_on_a_qdrant_server_gets_its_keyword_indexes_and_bm25_slot(
    tmp_path: Path, qdrant_url: str
) -> None:
    """What mem0's Qdrant store creates on a server (it skips indexes in local mode)."""
    import os

    if not os.environ.get("QDRANT_URL"):  # the test server answers sparse vectors with 400
        pytest.skip("mem0's bm25 sparse slot needs a real Qdrant server (QDRANT_URL)")
    import chromadb
    from chromadb.config import Settings
    from qdrant_client import QdrantClient, models

    from tests.conftest import unique_name
    from tests.test_qdrant_server import server_uri

    name = unique_name("ferry-mem0")
    client = chromadb.PersistentClient(
        str(tmp_path / "src"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.create_collection(name)
    collection.add(
        ids=[str(uuid.uuid4()) for _ in range(4)],
        embeddings=np.random.default_rng(5).normal(size=(4, 8)).astype(np.float32),
        metadatas=[{**MEM0_META, "user_id": f"u{i}"} for i in range(4)],
    )
    del client
    journal = Journal(tmp_path / "j.db")
    try:
        source = f"chroma+file://{tmp_path / 'src'}"
        outcome = await migrate(source, server_uri(qdrant_url), [], MigrationOptions(), journal)
        assert outcome.status.value == "completed", [c.error for c in outcome.collections]
    finally:
        journal.close()
    qdrant = QdrantClient(url=qdrant_url)
    try:
        info = qdrant.get_collection(name)
        assert info.config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
        assert {"user_id", "agent_id", "run_id", "actor_id"} <= set(info.payload_schema)
        qdrant.delete_collection(name)
    finally:
        qdrant.close()
