"""The connector contract: what the engine, validation and cutover rely on, checked against
every connector with real engines underneath.

Each *subject* is one connector with a known data set loaded: read-only sources get it
from a Chroma directory built once per module, targets get it through their own `prepare`
and `write` (so reading it back is a round trip). A new connector (JSONL, Parquet) joins
the whole suite by adding one subject to `SUBJECTS` and one branch to `_open`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import (
    Capability,
    SourceConnector,
    TargetConnector,
    WriteMode,
    open_connector,
)
from ferry.core.errors import FerryError, PreflightError, TransientError
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.validate.recall import exact_scores
from tests.conftest import TRAP_IDS, trap_metadata

DIM = 8
IDS = TRAP_IDS + [f"rec-{i}" for i in range(36)]  # 48 records, the id traps first
_rng = np.random.default_rng(11)
VECTORS = _rng.normal(size=(len(IDS), DIM)).astype(np.float32)
METADATAS = [trap_metadata(i) for i in range(len(IDS))]
DOCUMENTS = [None if i % 7 == 3 else f"document {i}" for i in range(len(IDS))]
BY_ID = {sid: i for i, sid in enumerate(IDS)}
METRICS = [Metric.COSINE, Metric.L2, Metric.IP]


def data_batch(rows: range | list[int] | None = None, dimension: int = DIM) -> Batch:
    rows = list(range(len(IDS))) if rows is None else list(rows)
    vectors = VECTORS[rows] if dimension == DIM else np.ones((len(rows), dimension), np.float32)
    return Batch(
        [IDS[i] for i in rows],
        vectors,
        [METADATAS[i] for i in rows],
        [DOCUMENTS[i] for i in rows],
    )


def collection_name(metric: Metric) -> str:
    return f"contract-{metric.value}"


# -- subjects ---------------------------------------------------------------------------------
SUBJECTS = [
    "chroma-files",  # chroma+file:// through the file reader (read-only)
    "chroma-0.3",  # chroma+file:// on a Chroma 0.3 DuckDB+Parquet directory (read-only)
    "chroma-api-copy-reader",  # chroma+file://…?api=1: the API on a private copy (read-only)
    "chroma-api-on-a-copy",  # ChromaApiConnector over PersistentClient on a copy: writable
    "chroma-server",  # a real `chroma run`
    "qdrant-edge",
    "qdrant-local-file",
    "qdrant-memory",
    "qdrant-server",  # QDRANT_URL, else the Qdrant test server (tests/qdrant_server)
    "memory",  # memory://NAME (core/connectors/memory.py)
    "parquet",  # parquet+file:// (core/connectors/files/parquet.py)
    "jsonl",  # jsonl+file:// (core/connectors/files/jsonl.py)
]


@pytest.fixture(scope="module")
def chroma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded Chroma directory with the data set in each metric (built once)."""
    import chromadb
    from chromadb.config import Settings

    path = tmp_path_factory.mktemp("contract-chroma") / "chroma"
    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    for metric in METRICS:
        collection = client.create_collection(
            collection_name(metric), configuration={"hnsw": {"space": metric.value}}
        )
        collection.add(ids=IDS, embeddings=VECTORS, metadatas=METADATAS, documents=DOCUMENTS)
    del client
    return path


@pytest.fixture(scope="module")
def chroma03_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data set in Chroma 0.3's layout (float64 vectors, JSON metadata text)."""
    from tests.chroma03 import Row, write_chroma03

    path = tmp_path_factory.mktemp("contract-chroma03") / "chroma03"
    rows = [
        Row(collection_name(m), sid, VECTORS[i].astype(np.float64).tolist(), DOCUMENTS[i], meta)
        for i, sid in enumerate(IDS)
        for m in METRICS
        for meta in [METADATAS[i] if METADATAS[i] is not None else "null"]
    ]
    write_chroma03(path, {collection_name(m): {"hnsw:space": m.value} for m in METRICS}, rows)
    return path


@dataclass
class Subject:
    """A connector under contract, its loaded collections, and how to name new ones."""

    label: str
    connector: SourceConnector
    loaded: dict[Metric, str] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)  # created by the test: dropped afterwards
    prefix: str = field(default_factory=lambda: f"ct{uuid.uuid4().hex[:8]}")

    @property
    def target(self) -> TargetConnector:
        assert isinstance(self.connector, TargetConnector), f"{self.label} is read-only"
        return self.connector

    def fresh(self, tag: str = "new") -> str:
        name = f"{self.prefix}-{tag}-{len(self.made)}"
        self.made.append(name)
        return name

    async def collection(self, metric: Metric = Metric.L2) -> str:
        """A collection holding the data set in `metric` (loaded on first use). The default is
        l2, which every engine stores as given (Qdrant normalises cosine vectors)."""
        if metric not in self.loaded:
            name = self.fresh(metric.value)
            info = CollectionInfo(name, len(IDS), DIM, metric)
            await self.target.prepare(info, WriteMode.CREATE)
            for start in range(0, len(IDS), 20):
                await self.target.write(name, data_batch(range(start, min(start + 20, len(IDS)))))
            await self.target.sync(name)
            self.loaded[metric] = name
        return self.loaded[metric]


async def _open(label: str, chroma_dir: Path, tmp_path: Path, request: Any) -> Subject:
    if label == "chroma-files":
        connector = open_connector(f"chroma+file://{chroma_dir}")
        return Subject(label, connector, {m: collection_name(m) for m in METRICS})
    if label == "chroma-0.3":
        connector = open_connector(f"chroma+file://{request.getfixturevalue('chroma03_dir')}")
        return Subject(label, connector, {m: collection_name(m) for m in METRICS})
    if label == "chroma-api-copy-reader":
        connector = open_connector(f"chroma+file://{chroma_dir}?api=1")
        return Subject(label, connector, {m: collection_name(m) for m in METRICS})
    if label == "chroma-api-on-a-copy":
        from chromadb.config import Settings

        from ferry.core.connectors.chroma.api import ChromaApiConnector

        copy = tmp_path / "chroma-copy"
        shutil.copytree(chroma_dir, copy)

        def make_client() -> Any:
            import chromadb

            return chromadb.PersistentClient(
                str(copy), settings=Settings(anonymized_telemetry=False)
            )

        connector = ChromaApiConnector(
            f"chroma+file://{copy}", make_client, kind="chroma-embedded-copy"
        )
        return Subject(label, connector, {m: collection_name(m) for m in METRICS})
    if label == "chroma-server":
        return Subject(label, open_connector(request.getfixturevalue("chroma_server")))
    if label == "qdrant-edge":
        return Subject(label, open_connector(f"qdrant+edge://{tmp_path / 'edge'}"))
    if label == "qdrant-local-file":
        return Subject(label, open_connector(f"qdrant+file://{tmp_path / 'qdrant-local'}"))
    if label == "qdrant-memory":
        return Subject(label, open_connector("qdrant+memory:"))
    if label == "qdrant-server":
        from tests.test_qdrant_server import server_uri

        return Subject(label, open_connector(server_uri(request.getfixturevalue("qdrant_url"))))
    if label == "memory":
        return Subject(label, open_connector(f"memory://contract-{uuid.uuid4().hex[:8]}"))
    if label in {"parquet", "jsonl"}:
        return Subject(label, open_connector(f"{label}+file://{tmp_path / label}"))
    raise AssertionError(label)


@pytest.fixture(params=SUBJECTS)
async def subject(
    request: pytest.FixtureRequest, chroma_dir: Path, tmp_path: Path
) -> AsyncIterator[Subject]:
    opened = await _open(request.param, chroma_dir, tmp_path, request)
    async with opened.connector:
        try:
            yield opened
        finally:
            await _drop(opened)


@pytest.fixture
def target_subject(subject: Subject) -> Subject:
    if not isinstance(subject.connector, TargetConnector):
        pytest.skip(f"{subject.label} is a read-only source")
    return subject


async def _drop(subject: Subject) -> None:
    """Servers outlive the test: remove what it created there."""
    if subject.label == "chroma-server":
        client = await subject.connector._client_ready()  # type: ignore[attr-defined]
        for name in subject.made:
            try:
                client.delete_collection(name)
            except Exception:
                pass
    if subject.label == "qdrant-server":
        for name in subject.made:
            await subject.connector.client.delete_collection(name)  # type: ignore[attr-defined]


async def read_all(connector: SourceConnector, name: str, batch_size: int, cursor: Any = None):  # type: ignore[no-untyped-def]
    batches = []
    async for batch in connector.read(name, cursor, batch_size):
        batches.append(batch)
    return batches


def assert_records_match(batch: Batch, rows: Callable[[str], int] = BY_ID.__getitem__) -> None:
    for k, sid in enumerate(batch.ids):
        i = rows(sid)
        assert np.allclose(batch.vectors[k], VECTORS[i], atol=1e-5), sid
        assert (batch.metadatas[k] or None) == METADATAS[i], sid
        assert batch.documents[k] == DOCUMENTS[i], sid


# -- every connector: the source side ---------------------------------------------------------
async def test_lists_describes_and_counts(subject: Subject) -> None:
    name = await subject.collection()
    assert name in await subject.connector.list_collections()
    info = await subject.connector.describe(name)
    assert (info.name, info.count, info.dimension, info.metric) == (
        name,
        len(IDS),
        DIM,
        Metric.L2,
    )
    assert await subject.connector.count(name) == len(IDS)
    ping = await subject.connector.ping()
    assert ping.ok, ping.detail


async def test_read_yields_every_record_once_as_written(subject: Subject) -> None:
    name = await subject.collection()
    batches = await read_all(subject.connector, name, 10)
    ids = [sid for batch in batches for sid in batch.ids]
    assert sorted(ids) == sorted(IDS) and len(ids) == len(set(ids))
    assert all(0 < len(batch) <= 10 for batch in batches)
    for batch in batches:
        assert batch.vectors.dtype == np.float32 and batch.vectors.shape == (len(batch), DIM)
        assert_records_match(batch)


@pytest.mark.parametrize("cut", [1, 3])
async def test_read_resumes_exactly_after_a_cursor(subject: Subject, cut: int) -> None:
    """The engine's resume: from a batch's cursor come exactly the records after it."""
    name = await subject.collection()
    batches = await read_all(subject.connector, name, 7)
    order = [sid for batch in batches for sid in batch.ids]
    assert len(batches) > cut
    resumed = await read_all(subject.connector, name, 7, batches[cut - 1].cursor_after)
    assert [sid for batch in resumed for sid in batch.ids] == order[cut * 7 :]


async def test_fetch_omits_missing_ids(subject: Subject) -> None:
    name = await subject.collection()
    wanted = [IDS[0], "no-such-record", IDS[-1], IDS[8]]
    batch = await subject.connector.fetch(name, wanted)
    assert sorted(batch.ids) == sorted([IDS[0], IDS[-1], IDS[8]])
    assert_records_match(batch)
    assert len(await subject.connector.fetch(name, ["no-such-record"])) == 0
    assert len(await subject.connector.fetch(name, [])) == 0


@pytest.mark.parametrize("metric", METRICS)
async def test_query_scores_follow_the_engines_traits(subject: Subject, metric: Metric) -> None:
    """Every reported score, through `traits.similarity`, is Ferry's exact score."""
    name = await subject.collection(metric)
    queries = VECTORS[[1, 20, 40]] + 0.01
    hits = await subject.connector.query(name, queries, 5)
    assert len(hits) == 3
    for q, row in enumerate(hits):
        assert len(row) == 5
        for sid, raw in row:
            exact = exact_scores(queries[q : q + 1], VECTORS[[BY_ID[sid]]], metric)[0, 0]
            converted = subject.connector.traits.similarity(metric, raw)
            assert converted == pytest.approx(exact, rel=1e-3, abs=1e-3), (sid, raw)
    if metric is not Metric.IP:  # a near-copy of a record is its own nearest neighbour
        assert [row[0][0] for row in hits] == [IDS[1], IDS[20], IDS[40]]


@pytest.mark.parametrize("call", ["describe", "count", "fetch", "read", "query"])
async def test_a_missing_collection_is_a_ferry_error(subject: Subject, call: str) -> None:
    connector, missing = subject.connector, "no-such-collection"
    with pytest.raises(FerryError):
        if call == "describe":
            await connector.describe(missing)
        elif call == "count":
            await connector.count(missing)
        elif call == "fetch":
            await connector.fetch(missing, [IDS[0]])
        elif call == "read":
            await read_all(connector, missing, 10)
        else:
            await connector.query(missing, VECTORS[:1], 3)


async def test_sample_is_the_first_records(subject: Subject) -> None:
    name = await subject.collection()
    first = (await read_all(subject.connector, name, 5))[0]
    sample = await subject.connector.sample(name, 5)
    assert sample is not None and sample.ids == first.ids


# -- targets: prepare, write, delete ----------------------------------------------------------
async def test_prepare_creates_once_then_accepts_its_own(target_subject: Subject) -> None:
    target, name = target_subject.target, target_subject.fresh()
    info = CollectionInfo(name, 0, DIM, Metric.L2)
    first = await target.prepare(info, WriteMode.CREATE)
    assert (first.created, first.existed) == (True, False)
    described = await target.describe(name)
    assert (described.count, described.metric) == (0, Metric.L2)
    # Chroma learns the dimension from the first record; the others store it at creation.
    assert described.dimension == DIM or (
        described.dimension is None and target.traits.engine == "Chroma"
    )
    again = await target.prepare(info, WriteMode.CREATE, owned=True)
    assert (again.created, again.existed, again.warnings) == (False, True, [])


async def test_prepare_refuses_a_dimension_mismatch(target_subject: Subject) -> None:
    target = target_subject.target
    name = await target_subject.collection()
    for mode in WriteMode:
        with pytest.raises(PreflightError, match="dimension"):
            await target.prepare(CollectionInfo(name, 0, DIM + 1, Metric.L2), mode, owned=True)
    with pytest.raises(PreflightError, match="metric"):
        await target.prepare(CollectionInfo(name, 0, DIM, Metric.IP), WriteMode.CREATE, owned=True)
    with pytest.raises(PreflightError, match="already exists"):
        await target.prepare(CollectionInfo(name, 0, DIM, Metric.L2), WriteMode.CREATE)
    unknown = CollectionInfo(target_subject.fresh(), 0, None, None)
    with pytest.raises(PreflightError, match="no known dimension"):
        await target.prepare(unknown, WriteMode.CREATE)
    assert unknown.name not in await target.list_collections()
    assert await target.count(name) == len(IDS)  # nothing was touched


async def test_writes_are_idempotent_upserts(target_subject: Subject) -> None:
    target, name = target_subject.target, target_subject.fresh()
    await target.prepare(CollectionInfo(name, 0, DIM, Metric.L2), WriteMode.CREATE)
    await target.write(name, data_batch(range(0, 20)))
    await target.write(name, data_batch(range(0, 20)))  # a replay after a crash
    await target.write(name, data_batch(range(10, 30)))  # overlapping
    await target.sync(name)
    assert await target.count(name) == 30
    # A record written again with other values: the new values win. (Chroma merges metadata
    # on upsert, so a key the new version lacks would survive there: not asserted.)
    changed = data_batch([5])
    changed.metadatas = [{**(METADATAS[5] or {}), "int": -1, "str": "changed", "new": True}]
    changed.documents = ["changed document"]
    changed.vectors = changed.vectors * 2
    await target.write(name, changed)
    await target.sync(name)
    assert await target.count(name) == 30
    got = await target.fetch(name, [IDS[5]])
    assert got.metadatas == changed.metadatas and got.documents == ["changed document"]
    assert np.allclose(got.vectors[0], VECTORS[5] * 2, atol=1e-5)
    await target.write(name, Batch.empty(DIM))  # nothing to do is fine
    assert await target.count(name) == 30


async def test_delete_removes_only_the_named_ids(target_subject: Subject) -> None:
    target = target_subject.target
    name = await target_subject.collection()
    await target.delete(name, [IDS[0], IDS[7], "no-such-record"])
    await target.sync(name)
    assert await target.count(name) == len(IDS) - 2
    left = await target.fetch(name, IDS)
    assert sorted(left.ids) == sorted(set(IDS) - {IDS[0], IDS[7]})


async def test_delete_found_counts_what_the_target_confirms(target_subject: Subject) -> None:
    """Deleting by the target's own keys (validation's delete-extra) counts read-backs."""
    target = target_subject.target
    name = await target_subject.collection()
    batch = await target.fetch(name, IDS[:3])
    keys = batch.native_ids if batch.native_ids is not None else list(batch.ids)
    assert sorted(map(str, keys)) == sorted(str(target.native_id(sid)) for sid in batch.ids)
    assert await target.present(name, keys) == set(keys)
    missing = target.native_id("no-such-record")
    assert await target.delete_found(name, [*keys[:2], missing]) == 2
    assert await target.count(name) == len(IDS) - 2
    assert await target.present(name, keys) == {keys[2]}


async def test_bad_writes_are_ferry_errors_not_retried(target_subject: Subject) -> None:
    target = target_subject.target
    name = await target_subject.collection()
    with pytest.raises(FerryError) as caught:
        await target.write(name, data_batch(range(3), dimension=DIM + 3))
    assert not isinstance(caught.value, TransientError)  # retrying will not help
    with pytest.raises(FerryError):
        await target.prepare(CollectionInfo("bad/name", 0, DIM, Metric.L2), WriteMode.CREATE)
    assert await target.count(name) == len(IDS)


async def test_capabilities_are_what_the_connector_does(target_subject: Subject) -> None:
    target = target_subject.target
    assert target.can(Capability.WRITE)
    backend = target.aliases()
    assert (backend is not None) == target.can(Capability.ALIASES)
    name = await target_subject.collection()
    snapshot = await target.snapshot(name)
    assert (snapshot["kind"] != "none") == target.can(Capability.SNAPSHOTS), snapshot
    if backend is not None:
        alias = target_subject.fresh("alias")
        target_subject.made.remove(alias)  # an alias, not a collection
        await backend.switch(alias, name)
        assert await backend.current(alias) == name
        assert name in await backend.collections()
        await backend.remove(alias, expected=name)  # a first cutover rolled back
        assert await backend.current(alias) is None
        assert name in await backend.collections()  # the collection stays


def test_read_only_sources_are_not_targets(chroma_dir: Path) -> None:
    connector = open_connector(f"chroma+file://{chroma_dir}")
    assert not isinstance(connector, TargetConnector)
    assert not connector.can(Capability.WRITE)
