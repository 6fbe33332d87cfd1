"""The file reader must return exactly what chromadb's own `get` returns, and write nothing.

Everything runs against real chromadb: a source folder is built with PersistentClient, the
fast reader reads it in place, and the API side reads a *copy* (opening a folder with
chromadb writes to it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest

from ferry.core.connectors.chroma.files import ChromaDirectory
from ferry.core.connectors.chroma.schema import inspect_schema
from ferry.core.errors import FerryError
from ferry.core.model import Metric

BIG = 2500  # > sync_threshold (1000): the HNSW files hold most vectors
MID = 1100
DIM = 16

U = str(uuid.UUID(int=12345678901234567890))
ODD_IDS = [
    "12",
    "00012",
    "-5",
    U.upper(),
    U.lower(),
    "x" * 300,
    "é" * 150 + "ü" * 150,
    "ключ",
    "日本語のID",
    "rocket 🚀",
    "with space",
    "quote'\"",
]


def _metadata(i: int) -> dict[str, Any] | None:
    """Every metadata type chroma stores, varying by record; some records have none."""
    if i % 11 == 0:
        return None
    md: dict[str, Any] = {"n": i, "half": i / 2, "one": 1.0, "even": i % 2 == 0}
    if i % 3 == 0:
        md["tag"] = f"t{i % 7}"
        md["ints"] = [i, 3, -1, 2**40]
        md["strs"] = ["b", "a", f"s{i}"]
    if i % 5 == 0:
        md["floats"] = [0.5, 1.0, -2.25]
        md["bools"] = [True, False, True]
        md["big"] = -(2**62)
        md["neg"] = -0.125
    return md


def _document(i: int) -> str | None:
    return None if i % 4 == 1 else f"document {i} — ünïcode"


def _build(root: Path) -> Path:
    rng = np.random.default_rng(7)
    client = chromadb.PersistentClient(path=str(root))

    # Cosine, big enough to persist the HNSW index, then writes that stay in the log.
    cos = client.create_collection("cos-big", configuration={"hnsw": {"space": "cosine"}})
    ids = ODD_IDS + [f"r{i}" for i in range(BIG - len(ODD_IDS))]
    vecs = (rng.normal(size=(BIG, DIM)) * 3).astype(np.float32)
    for s in range(0, BIG, 500):
        rows = range(s, min(s + 500, BIG))
        cos.add(
            ids=[ids[i] for i in rows],
            embeddings=vecs[list(rows)],
            metadatas=[_metadata(i) for i in rows],
            documents=[_document(i) for i in rows],
        )
    cos.delete(ids=["r100", "r101", "-5"])  # persisted in HNSW, deleted in the log
    cos.update(ids=["r200"], embeddings=[[0.5] * DIM])  # vector only
    cos.update(ids=["r201"], metadatas=[{"n": None, "new": "yes"}])  # metadata only
    cos.update(ids=["12"], documents=["changed"], embeddings=[[1.0] * DIM])
    cos.upsert(ids=["r202", "fresh"], embeddings=[[2.0] * DIM, [-1.0] * DIM])
    cos.add(ids=["r300"], embeddings=[[9.0] * DIM])  # duplicate add: chroma ignores it
    cos.add(ids=["-5"], embeddings=[[4.0] * DIM], metadatas=[{"back": True}])  # re-added
    cos.add(ids=["late"], embeddings=[[3.0] * DIM], documents=[None])
    cos.delete(ids=["late"])
    cos.update(ids=["r100"], embeddings=[[7.0] * DIM])  # update of a deleted id: ignored

    for space in ("l2", "ip"):
        col = client.create_collection(f"mid-{space}", configuration={"hnsw": {"space": space}})
        v = (rng.normal(size=(MID, 8)) * 2).astype(np.float32)
        col.add(
            ids=[f"m{i}" for i in range(MID)],
            embeddings=v,
            metadatas=[{"i": i} for i in range(MID)],
        )
        col.upsert(ids=["m0", "extra"], embeddings=[[1.0] * 8, [2.0] * 8])
        if space == "l2":
            # Deletes that reach the persisted index (mark-deleted rows stay in the files),
            # then more than sync_threshold writes so the index is saved again.
            col.delete(ids=[f"m{i}" for i in range(10, 60)])
            more = (rng.normal(size=(1000, 8))).astype(np.float32)
            col.add(ids=[f"n{i}" for i in range(1000)], embeddings=more)
            col.update(ids=["m1"], embeddings=[[5.0] * 8])

    tiny = client.create_collection("tiny", configuration={"hnsw": {"space": "ip"}})
    tiny.add(
        ids=ODD_IDS[:6],
        embeddings=rng.normal(size=(6, 4)).astype(np.float32),
        metadatas=[_metadata(i) for i in range(1, 7)],
        documents=[_document(i) for i in range(1, 7)],
    )
    tiny.delete(ids=[ODD_IDS[2]])
    client.create_collection("empty-one")
    # Rowids of cos-big now interleave with other collections' rows.
    cos.upsert(ids=["after-others"], embeddings=[[0.25] * DIM], metadatas=[{"k": "v"}])
    return root


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("chroma-src"))


@pytest.fixture(scope="module")
def api(source: Path, tmp_path_factory: pytest.TempPathFactory) -> chromadb.ClientAPI:
    copy = tmp_path_factory.mktemp("chroma-copy") / "db"
    shutil.copytree(source, copy)
    return chromadb.PersistentClient(path=str(copy))


def _checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _same(a: Any, b: Any) -> bool:
    """Equal with identical Python types all the way down (1.0 is not 1, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _read_all(reader: ChromaDirectory, name: str, batch_size: int = 333) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for batch in reader.read(name, None, batch_size):
        assert batch.vectors.dtype == np.float32
        assert batch.vectors.shape[0] == len(batch.ids) == len(batch.metadatas)
        for k, rid in enumerate(batch.ids):
            assert rid not in out, f"{rid!r} read twice"
            out[rid] = (batch.vectors[k], batch.metadatas[k], batch.documents[k])
    return out


def test_reader_matches_api_exactly(source: Path, api: chromadb.ClientAPI) -> None:
    before = _checksums(source)
    reader = ChromaDirectory(source)
    assert reader.recognised()
    names = reader.list_collections()
    assert names == sorted(c.name for c in api.list_collections())
    for name in names:
        got = _read_all(reader, name)
        want = api.get_collection(name).get(include=["embeddings", "metadatas", "documents"])
        assert set(got) == set(want["ids"]), name
        info = reader.describe(name)
        assert info.count == len(want["ids"])
        for k, rid in enumerate(want["ids"]):
            vec, md, doc = got[rid]
            assert np.allclose(vec, want["embeddings"][k], rtol=1e-5, atol=1e-6), (
                name,
                rid,
            )
            assert _same(md, want["metadatas"][k]), (
                name,
                rid,
                md,
                want["metadatas"][k],
            )
            assert _same(doc, want["documents"][k]), (name, rid)
    reader.close()
    after = _checksums(source)
    assert after == before  # same files (no -wal/-shm/-journal) with the same bytes


def test_describe(source: Path) -> None:
    with ChromaDirectory(source) as reader:
        cos = reader.describe("cos-big")
        assert (cos.dimension, cos.metric) == (DIM, Metric.COSINE)
        # 3 deleted, "-5" back, "fresh" and "after-others" new, "late" gone
        assert cos.count == BIG - 3 + 3
        assert cos.metadata_keys == sorted(
            [
                "n",
                "half",
                "one",
                "even",
                "tag",
                "ints",
                "strs",
                "floats",
                "bools",
                "big",
            ]
            + ["neg", "new", "back", "k"]
        )
        assert cos.embedding_function == "default"
        assert cos.facts["hnsw_files"] and cos.facts["unflushed_wal_rows"] > 0
        assert reader.describe("mid-ip").metric == Metric.IP
        mid = reader.describe("mid-l2")
        assert mid.metric == Metric.L2 and mid.count == MID + 1 - 50 + 1000
        assert mid.facts["hnsw_persisted_records"] > MID
        tiny = reader.describe("tiny")
        assert tiny.count == 5 and tiny.facts["hnsw_persisted_records"] == 0
        empty = reader.describe("empty-one")
        assert (empty.count, empty.dimension, empty.metadata_keys) == (0, None, [])
        assert list(reader.read("empty-one", None, 10)) == []
        with pytest.raises(FerryError):
            reader.describe("no-such-collection")


def test_resume_from_cursor(source: Path) -> None:
    with ChromaDirectory(source) as reader:
        batches = list(reader.read("cos-big", None, 100))
        assert sum(len(b) for b in batches) == reader.describe("cos-big").count
        cursor = json.loads(json.dumps(batches[6].cursor_after))
        rest = [rid for b in reader.read("cos-big", cursor, 77) for rid in b.ids]
        assert rest == [rid for b in batches[7:] for rid in b.ids]
        assert list(reader.read("cos-big", batches[-1].cursor_after, 100)) == []


def test_fetch(source: Path, api: chromadb.ClientAPI) -> None:
    wanted = ["r5", "12", "-5", "r100", "missing", "fresh", U.upper(), "r5"]
    with ChromaDirectory(source) as reader:
        batch = reader.fetch("cos-big", wanted)
    assert batch.ids == ["r5", "12", "-5", "fresh", U.upper()]
    want = api.get_collection("cos-big").get(ids=batch.ids, include=["embeddings", "metadatas"])
    order = {rid: k for k, rid in enumerate(want["ids"])}
    for k, rid in enumerate(batch.ids):
        assert np.allclose(batch.vectors[k], want["embeddings"][order[rid]], rtol=1e-5, atol=1e-6)
        assert _same(batch.metadatas[k], want["metadatas"][order[rid]])


def _copy_and_edit(source: Path, dest: Path, sql: str) -> Path:
    shutil.copytree(source, dest)
    with sqlite3.connect(dest / "chroma.sqlite3") as conn:
        conn.execute(sql)
    return dest


def test_refuses_what_it_does_not_understand(source: Path, tmp_path: Path) -> None:
    assert not ChromaDirectory(tmp_path).recognised()
    with pytest.raises(FerryError, match="not a Chroma directory"):
        ChromaDirectory(tmp_path).list_collections()
    newer = _copy_and_edit(
        source,
        tmp_path / "newer",
        "INSERT INTO migrations VALUES ('metadb', 99, 'x.sql', '', 'h')",
    )
    assert not ChromaDirectory(newer).recognised()
    lagging = _copy_and_edit(
        source,
        tmp_path / "lag",
        "UPDATE max_seq_id SET seq_id = seq_id - 3 WHERE segment_id IN "
        "(SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection "
        "WHERE c.name = 'cos-big' AND s.scope = 'METADATA')",
    )
    with pytest.raises(FerryError, match="behind the write-ahead log"):
        ChromaDirectory(lagging).describe("cos-big")


def test_schema_state(source: Path, tmp_path: Path) -> None:
    state = inspect_schema(source)
    assert state.up_to_date and not state.pending and not state.newer
    assert state.summary.startswith("up to date (sysdb ")
    assert ("metadb", 6, "00006-metadata-array-support.sqlite.sql") in state.applied
    old = _copy_and_edit(
        source,
        tmp_path / "old",
        "DELETE FROM migrations WHERE dir = 'metadb' AND version = 6",
    )
    state = inspect_schema(old)
    assert [m[:2] for m in state.pending] == [("metadb", 6)]
    assert "upgrade it in place" in state.summary
    newer = _copy_and_edit(
        source,
        tmp_path / "newer",
        "INSERT INTO migrations VALUES ('sysdb', 99, 'x.sql', '', 'h')",
    )
    state = inspect_schema(newer)
    assert state.newer == [("sysdb", 99, "x.sql")] and "newer chromadb" in state.summary
    with pytest.raises(FerryError, match="not a Chroma directory"):
        inspect_schema(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["cos-big", "mid-l2", "mid-ip", "tiny"])
def test_sample_is_what_fetch_gives(source: Path, name: str) -> None:
    """A plan's sample reads no id → label map, yet holds the same records as `fetch`."""
    with ChromaDirectory(source) as reader:
        sample = reader.sample(name, 200)
        assert sample is not None and 0 < len(sample) <= 200
        fetched = reader.fetch(name, sample.ids)
    assert fetched.ids == sample.ids
    assert np.array_equal(fetched.vectors, sample.vectors)
    assert all(_same(a, b) for a, b in zip(sample.metadatas, fetched.metadatas, strict=True))
    assert sample.documents == fetched.documents


@pytest.mark.parametrize("name", ["cos-big", "mid-l2", "mid-ip"])
def test_sample_of_rows_out_of_label_order_builds_no_map(source: Path, name: str) -> None:
    """Where rows are not where their labels say (chromadb's parallel inserts), the sample
    takes the first rows and finds their ids in one pass over the pickle: still no id →
    label map, and the records are exactly what `fetch` (through the map) gives."""
    with ChromaDirectory(source) as reader:
        plan = reader._plan(name)
        assert plan.hnsw is not None and plan.hnsw.first_labels
        # Labels that no row holds where a fresh index would put it: the row check fails.
        plan.hnsw.first_labels = [(rid, label + 1) for rid, label in plan.hnsw.first_labels]
        sample = reader.sample(name, 100)
        assert sample is not None and 0 < len(sample) <= 100
        assert plan.hnsw.id_to_label is None and plan.hnsw.label_to_row is None
        fetched = reader.fetch(name, sample.ids)
    assert fetched.ids == sample.ids
    assert np.array_equal(fetched.vectors, sample.vectors)
    assert all(_same(a, b) for a, b in zip(sample.metadatas, fetched.metadatas, strict=True))
    assert sample.documents == fetched.documents


def test_preflight_of_a_large_collection_builds_no_map(source: Path) -> None:
    """Preflight checks a large collection's first records as the plan's sample reads them,
    so pressing m does not wait for the whole id → label map (the engine builds it later)."""
    from ferry.core.connectors import open_connector
    from ferry.core.record_checks import scan_collections

    async def scan() -> Any:
        async with open_connector(f"chroma+file://{source}") as connector:
            await scan_collections(connector, [("mid-l2", 10**6)])  # counted as large
            return connector.directory()._plans["mid-l2"].hnsw

    hnsw = asyncio.run(scan())
    assert hnsw is not None and hnsw.id_to_label is None and hnsw.label_to_row is None


def test_single_collection_keys_without_a_scan(tmp_path: Path) -> None:
    """The folder's only collection: keys from chroma's indexes (bool-only keys included)
    are exactly the keys its records hold; the plan does not read the whole label map."""
    client = chromadb.PersistentClient(path=str(tmp_path / "one"))
    col = client.create_collection("only")
    n = 1_200  # > sync_threshold: an index_metadata.pickle is written
    col.add(
        ids=[f"id{i}" for i in range(n)],
        embeddings=np.random.default_rng(3).normal(size=(n, 8)).astype(np.float32),
        metadatas=[_metadata(i) or {"flag": i % 2 == 0} for i in range(n)],
    )
    del col, client
    want = set()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "one", copy)
    for md in chromadb.PersistentClient(path=str(copy)).get_collection("only").get()["metadatas"]:
        want.update(md or {})
    with ChromaDirectory(tmp_path / "one") as reader:
        info = reader.describe("only")
        assert info.metadata_keys == sorted(want) and "flag" in want
        assert reader._plans["only"].hnsw.id_to_label is None  # the plan built no map
        assert sum(len(b) for b in reader.read("only", None, 500)) == n
