"""Payload layouts without the frameworks: exact round trips, ids, detection, strictness, and
what the plan, validation and the router do with them (real Chroma, Edge and qdrant-client)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import open_connector
from ferry.core.engine import MigrationOptions
from ferry.core.errors import FerryError, PermanentError
from ferry.core.journal import Journal
from ferry.core.layouts import (
    HAYSTACK_NAMESPACE,
    LAYOUT_NAMES,
    detect_framework,
    detect_written_layout,
    haystack_ids,
    make_layout,
    score_lines,
)
from ferry.core.mapping import FERRY_ID_NAMESPACE, PayloadFields
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.router.stores import EdgeStore
from ferry.core.runner import migrate
from ferry.core.validate import ValidationOptions, validate
from tests.conftest import make_chroma

META = {"topic": "regex", "n": 3, "weight": 0.1 + 0.2, "draft": True, "tags": ["a", "b"]}
NODE = json.dumps(
    {"id_": "re.search#0", "metadata": {"n": 3}, "text": "", "class_name": "TextNode"},
    ensure_ascii=False,
)
LLAMA_META = {
    "n": 3,
    "_node_content": NODE,
    "_node_type": "TextNode",
    "doc_id": "None",
    "document_id": "None",
    "ref_doc_id": "None",
}


@pytest.mark.parametrize("name", LAYOUT_NAMES)
@pytest.mark.parametrize(
    "sid", ["re.search#0", "2422ea8a-c115-4e9e-989f-6127b6e2b15a", "42", "00042"]
)
@pytest.mark.parametrize("document", ["héllo — text", None])
def test_every_layout_round_trips_exactly(name: str, sid: str, document: str | None) -> None:
    layout = make_layout(name)
    meta = LLAMA_META if name == "llamaindex" else META
    payload = json.loads(json.dumps(layout.to_payload(sid, meta, document)))  # as stored
    back = layout.from_payload(layout.point_id(sid), payload)
    assert back == (sid, meta, document)
    assert [type(v) for v in back[1].values()] == [type(v) for v in meta.values()]


def test_payload_shapes_are_the_frameworks_own() -> None:
    sid = "re.search#0"
    assert make_layout("langchain").to_payload(sid, META, "t") == {
        "page_content": "t",
        "metadata": META,
        "source_id": sid,
    }
    assert make_layout("haystack").to_payload(sid, META, "t") == {
        "id": sid,
        "content": "t",
        "blob": None,
        "meta": META,
        "score": None,
        "sparse_embedding": None,
    }
    llama = make_layout("llamaindex").to_payload(sid, LLAMA_META, "the text")
    assert json.loads(llama["_node_content"])["text"] == "the text"  # restored
    assert {k: v for k, v in llama.items() if k not in ("_node_content", "source_id")} == {
        k: v for k, v in LLAMA_META.items() if k != "_node_content"
    }


def test_point_ids_per_layout() -> None:
    canonical = str(uuid.uuid4())
    for name in ("flat", "langchain", "llamaindex"):
        layout = make_layout(name)
        assert layout.point_id(canonical) == canonical
        assert layout.point_id("7") == 7
        assert layout.point_id("re.search#0") == str(uuid.uuid5(FERRY_ID_NAMESPACE, "re.search#0"))
    haystack = make_layout("haystack")
    # qdrant-haystack's convert_id: uuid5(its namespace, id).hex, for every id (UUIDs too)
    for sid in (canonical, "7", "re.search#0"):
        assert haystack.point_id(sid) == str(uuid.uuid5(HAYSTACK_NAMESPACE, sid))
        assert haystack.maps_id(sid)


def test_a_payload_of_another_layout_reads_as_differences_not_silence() -> None:
    flat = make_layout("flat").to_payload("a", META, "t")
    sid, meta, doc = make_layout("langchain").from_payload("a", flat)
    assert doc is None and meta is not None
    assert {k for k in meta if k.startswith("payload:")} == {f"payload:{k}" for k in META} | {
        "payload:document"
    }
    lang = make_layout("langchain").to_payload("a", META, "t")
    assert make_layout("flat").from_payload("a", lang)[1:] == (
        {"page_content": "t", "metadata": META},
        None,
    )
    hay = make_layout("haystack").from_payload("x", lang)
    assert hay[0] == "x" and hay[2] is None  # no "id": not the source's record


def test_unknown_layout_is_a_one_line_error() -> None:
    with pytest.raises(FerryError, match="unknown layout 'django'") as caught:
        make_layout("django")
    assert "flat, langchain, llamaindex, haystack" in caught.value.one_line()


def test_llamaindex_id_field_clash_is_refused() -> None:
    with pytest.raises(PermanentError, match="source_id"):
        make_layout("llamaindex").to_payload("a", {"source_id": 1}, "t")


def test_detection_marks() -> None:
    info = CollectionInfo("docs", 2, 4, Metric.COSINE)
    llama = detect_framework(info, ["a", "b"], [LLAMA_META, None], ["x", "y"])
    assert (llama.framework, llama.layout) == ("LlamaIndex", "llamaindex")
    assert llama.marks == ["_node_content/_node_type metadata in 1 of 2 sampled records"]
    hashed = sorted(haystack_ids("some text", {"b": 1, "a": "x"}))[0]
    haystack = detect_framework(info, [hashed], [{"a": "x", "b": 1}], ["some text"])
    assert haystack.framework == "Haystack"
    assert detect_framework(info, ["re.search#0"], [{"a": 1}], ["t"]).framework is None
    named = CollectionInfo("langchain", 1, 4, Metric.L2)
    assert detect_framework(named, ["x"], [None], ["t"]).layout == "langchain"


def test_haystack_hash_is_haystacks_own() -> None:
    haystack = pytest.importorskip("haystack")
    document = haystack.Document(content="some text", meta={"b": 1, "a": "x", "f": 0.5})
    assert document.id in haystack_ids("some text", {"a": "x", "b": 1, "f": 0.5})


def test_written_layout_is_read_from_the_points() -> None:
    fields = PayloadFields()
    # The app frameworks' shapes need their own records: tests/test_app_layouts.py
    for name in ("flat", "langchain", "llamaindex", "haystack"):
        layout = make_layout(name)
        meta = LLAMA_META if name == "llamaindex" else META
        payloads = [layout.to_payload(f"r{i}", meta, "t") for i in range(3)]
        assert detect_written_layout(payloads, fields) == name


@pytest.mark.parametrize("metric", list(Metric))
def test_score_lines_follow_the_traits(metric: Metric) -> None:
    from ferry.core.connectors.traits import CHROMA, QDRANT

    line = score_lines(metric, "LangChain")[0]
    threshold = 0.25
    converted = CHROMA.convert(metric, threshold, to=QDRANT)
    if metric is Metric.L2:
        assert "√t" in line and converted == pytest.approx(threshold**0.5)
    else:
        assert "1 - t" in line and converted == pytest.approx(1 - threshold)


# -- through the plan, the engine, validation and the router --------------------------------
def llama_chroma(path: Path, metric: str = "cosine", n: int = 12) -> Path:
    """A Chroma collection shaped as llama-index's Chroma store writes (without llama-index)."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("nodes", configuration={"hnsw": {"space": metric}})
    rng = np.random.default_rng(1)
    ids = [
        f"re.search#{i}" if i % 2 else str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))) for i in range(n)
    ]
    metadatas = []
    for i, sid in enumerate(ids):
        node = {"id_": sid, "metadata": {"n": i}, "text": "", "class_name": "TextNode"}
        metadatas.append(
            {
                "n": i,
                "w": i / 3,
                "_node_content": json.dumps(node, ensure_ascii=False),
                "_node_type": "TextNode",
                "doc_id": "None",
                "document_id": "None",
                "ref_doc_id": "None",
            }
        )
    collection.add(
        ids=ids,
        embeddings=rng.normal(size=(n, 8)).astype(np.float32),
        metadatas=metadatas,
        documents=[f"text of {sid} — ü" for sid in ids],
    )
    del client
    return path


async def test_migrate_detects_writes_and_validates_a_layout_on_edge(tmp_path: Path) -> None:
    source = f"chroma+file://{llama_chroma(tmp_path / 'src')}"
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    journal = Journal(tmp_path / "j.db")
    outcome = await migrate(source, target, [], MigrationOptions(), journal)
    item = outcome.plan.collections[0]
    assert (item.detection.framework, item.layout) == ("LlamaIndex", "llamaindex")
    assert journal.runs.recent()[0].mapping["layouts"] == {"nodes": "llamaindex"}
    assert journal.runs.target_layout(target, "nodes") == "llamaindex"
    entry = outcome.to_json()["collections"][0]
    assert entry["layout"] == "llamaindex" and entry["switch"]

    report = await validate(source, target, None, ValidationOptions(full=True, queries=4), journal)
    assert report.ok, report.collections[0].reasons
    assert report.collections[0].layout_reason == "as migrated (journal)"

    # Without the journal, validation reads the layout off the points themselves.
    report = await validate(source, target, None, ValidationOptions(full=True, queries=0))
    assert report.ok and report.collections[0].layout == "llamaindex"

    # The router's Edge store reads and writes the same layout: an app write validates equal.
    store = EdgeStore(tmp_path / "edge", "nodes", layout="llamaindex")
    try:
        got = store.get(["re.search#1"])
        assert got.documents == ["text of re.search#1 — ü"]
        assert got.metadatas[0]["_node_content"] == json.dumps(
            {"id_": "re.search#1", "metadata": {"n": 1}, "text": "", "class_name": "TextNode"},
            ensure_ascii=False,
        )
        hits = store.query(got.embeddings, 1)
        assert hits.ids == [["re.search#1"]] and hits.documents == [["text of re.search#1 — ü"]]
    finally:
        store.close()
    journal.close()


async def test_half_in_one_layout_half_in_another_is_a_difference(tmp_path: Path) -> None:
    source = f"chroma+file://{make_chroma(tmp_path / 'src', {'docs': {'n': 20, 'metric': 'l2'}})}"
    target = f"qdrant+file://{tmp_path / 'q'}"
    journal = Journal(tmp_path / "j.db")
    await migrate(source, target, [], MigrationOptions(layout="langchain"), journal)
    async with open_connector(source) as src, open_connector(target) as tgt:
        first = await src.sample("docs", 10)
        assert first is not None
        tgt.use_payload_layout("docs", make_layout("flat"))
        await tgt.write("docs", first)  # the same points, rewritten flat
    for layout in ("langchain", "flat", None):
        report = await validate(
            source, target, None, ValidationOptions(full=True, queries=0), journal, layout=layout
        )
        c = report.collections[0]
        assert not c.ok
        assert c.mismatched.total == 10, (layout, c.to_json())
    journal.close()


async def test_a_layout_on_a_target_that_keeps_records_natively_is_refused(
    tmp_path: Path,
) -> None:
    source = f"chroma+file://{llama_chroma(tmp_path / 'src')}"
    journal = Journal(tmp_path / "j.db")
    with pytest.raises(FerryError, match="applies to Qdrant targets"):
        await migrate(source, "memory://dst", [], MigrationOptions(layout="llamaindex"), journal)
    outcome = await migrate(source, "memory://dst", [], MigrationOptions(), journal)
    item = outcome.plan.collections[0]
    assert item.layout == "flat" and item.detection.framework == "LlamaIndex"
    assert "keeps records as LlamaIndex wrote them" in item.layout_reason
    journal.close()


async def test_resume_keeps_the_layout_the_run_started_with(tmp_path: Path) -> None:
    from ferry.core.plan import run_key
    from ferry.core.runner import keep_started_layouts

    source = f"chroma+file://{llama_chroma(tmp_path / 'src')}"
    target = f"qdrant+file://{tmp_path / 'q'}"
    journal = Journal(tmp_path / "j.db")
    outcome = await migrate(source, target, [], MigrationOptions(), journal)
    run = journal.runs.recent()[0]
    assert run.run_key == run_key(source, target, [], PayloadFields(), "create")
    plan = outcome.plan
    plan.collections[0].layout = "flat"  # as if detection said otherwise now
    async with open_connector(target) as tgt:
        keep_started_layouts(plan, tgt, run)
        assert tgt.payload_layout("nodes").name == "llamaindex"
    assert plan.collections[0].layout == "llamaindex"
    assert any("resuming nodes in layout llamaindex" in w for w in plan.warnings)
    journal.close()


def test_migrate_cli_takes_layout_and_prints_the_switch(tmp_path: Path, capsys: Any) -> None:
    from ferry.cli import main

    source = f"chroma+file://{llama_chroma(tmp_path / 'src')}"
    target = f"qdrant+file://{tmp_path / 'q'}"
    code = main(["migrate", "--from", source, "--to", target, "--json", "--yes"])
    assert code == 0
    entry = json.loads(capsys.readouterr().out)["collections"][0]
    assert entry["layout"] == "llamaindex" and entry["framework"] == "LlamaIndex"
    assert any('QdrantVectorStore(collection_name="nodes"' in line for line in entry["switch"])
    with pytest.raises(SystemExit):
        main(["migrate", "--from", source, "--to", target, "--layout", "django"])


def test_batch_written_by_the_router_equals_what_migrate_wrote(tmp_path: Path) -> None:
    """QdrantStore (qdrant-client) with the haystack layout writes the migration's points."""
    from qdrant_client import QdrantClient, models

    from ferry.core.router.stores import QdrantStore

    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        client.create_collection(
            "c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
        )
        store = QdrantStore(client, "c", layout="haystack")
        store.upsert(["re.search#0"], np.array([[1.0, 0.0]]), [{"a": 1}], ["t"])
        point = client.retrieve("c", [str(uuid.uuid5(HAYSTACK_NAMESPACE, "re.search#0"))])[0]
        assert point.payload == make_layout("haystack").to_payload("re.search#0", {"a": 1}, "t")
        got = store.get(["re.search#0"])
        assert got.ids == ["re.search#0"] and got.metadatas == [{"a": 1}]
        store.delete(["re.search#0"])
        assert store.count() == 0
    finally:
        client.close()


def test_batch_type_is_unchanged() -> None:
    assert Batch.empty(3).native_ids is None
