"""The connector contract, importable: what the engine, validation and cutover rely on.

A connector's test runs the whole suite against its own connector by subclassing
`ConnectorContract` and giving it a `subject` fixture (the connector, opened, with nothing
loaded — the suite loads its data set through `prepare` and `write`)::

    from tests.connector_contract import ConnectorContract, Subject

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        async def subject(self, tmp_path):
            async with open_connector(f"my+file://{tmp_path}") as connector:
                yield Subject("my", connector)

A read-only source has no `prepare`: its subject names collections already holding the data
set (`loaded`), and the target half of the suite skips itself. tests/test_connector_contract.py
runs the suite on every backend in the registry, with real engines underneath.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import Capability, SourceConnector, TargetConnector, WriteMode
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


class ConnectorContract:
    """Every test a connector must pass; a subclass supplies the `subject` fixture."""

    @pytest.fixture
    def target_subject(self, subject: Subject) -> Subject:
        if not isinstance(subject.connector, TargetConnector):
            pytest.skip(f"{subject.label} is a read-only source")
        return subject

    # -- every connector: the source side -----------------------------------------------------
    async def test_lists_describes_and_counts(self, subject: Subject) -> None:
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

    async def test_read_yields_every_record_once_as_written(self, subject: Subject) -> None:
        name = await subject.collection()
        batches = await read_all(subject.connector, name, 10)
        ids = [sid for batch in batches for sid in batch.ids]
        assert sorted(ids) == sorted(IDS) and len(ids) == len(set(ids))
        assert all(0 < len(batch) <= 10 for batch in batches)
        for batch in batches:
            assert batch.vectors.dtype == np.float32 and batch.vectors.shape == (len(batch), DIM)
            assert_records_match(batch)

    @pytest.mark.parametrize("cut", [1, 3])
    async def test_read_resumes_exactly_after_a_cursor(self, subject: Subject, cut: int) -> None:
        """The engine's resume: from a batch's cursor come exactly the records after it."""
        name = await subject.collection()
        batches = await read_all(subject.connector, name, 7)
        order = [sid for batch in batches for sid in batch.ids]
        assert len(batches) > cut
        resumed = await read_all(subject.connector, name, 7, batches[cut - 1].cursor_after)
        assert [sid for batch in resumed for sid in batch.ids] == order[cut * 7 :]

    async def test_fetch_omits_missing_ids(self, subject: Subject) -> None:
        name = await subject.collection()
        wanted = [IDS[0], "no-such-record", IDS[-1], IDS[8]]
        batch = await subject.connector.fetch(name, wanted)
        assert sorted(batch.ids) == sorted([IDS[0], IDS[-1], IDS[8]])
        assert_records_match(batch)
        assert len(await subject.connector.fetch(name, ["no-such-record"])) == 0
        assert len(await subject.connector.fetch(name, [])) == 0

    @pytest.mark.parametrize("metric", METRICS)
    async def test_query_scores_follow_the_engines_traits(
        self, subject: Subject, metric: Metric
    ) -> None:
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
    async def test_a_missing_collection_is_a_ferry_error(self, subject: Subject, call: str) -> None:
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

    async def test_sample_is_the_first_records(self, subject: Subject) -> None:
        name = await subject.collection()
        first = (await read_all(subject.connector, name, 5))[0]
        sample = await subject.connector.sample(name, 5)
        assert sample is not None and sample.ids == first.ids

    # -- targets: prepare, write, delete ------------------------------------------------------
    async def test_prepare_creates_once_then_accepts_its_own(self, target_subject: Subject) -> None:
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

    async def test_prepare_refuses_a_dimension_mismatch(self, target_subject: Subject) -> None:
        target = target_subject.target
        name = await target_subject.collection()
        for mode in WriteMode:
            with pytest.raises(PreflightError, match="dimension"):
                await target.prepare(CollectionInfo(name, 0, DIM + 1, Metric.L2), mode, owned=True)
        with pytest.raises(PreflightError, match="metric"):
            await target.prepare(
                CollectionInfo(name, 0, DIM, Metric.IP), WriteMode.CREATE, owned=True
            )
        with pytest.raises(PreflightError, match="already exists"):
            await target.prepare(CollectionInfo(name, 0, DIM, Metric.L2), WriteMode.CREATE)
        unknown = CollectionInfo(target_subject.fresh(), 0, None, None)
        with pytest.raises(PreflightError, match="no known dimension"):
            await target.prepare(unknown, WriteMode.CREATE)
        assert unknown.name not in await target.list_collections()
        assert await target.count(name) == len(IDS)  # nothing was touched

    async def test_writes_are_idempotent_upserts(self, target_subject: Subject) -> None:
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

    async def test_delete_removes_only_the_named_ids(self, target_subject: Subject) -> None:
        target = target_subject.target
        name = await target_subject.collection()
        await target.delete(name, [IDS[0], IDS[7], "no-such-record"])
        await target.sync(name)
        assert await target.count(name) == len(IDS) - 2
        left = await target.fetch(name, IDS)
        assert sorted(left.ids) == sorted(set(IDS) - {IDS[0], IDS[7]})

    async def test_delete_found_counts_what_the_target_confirms(
        self, target_subject: Subject
    ) -> None:
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

    async def test_bad_writes_are_ferry_errors_not_retried(self, target_subject: Subject) -> None:
        target = target_subject.target
        name = await target_subject.collection()
        with pytest.raises(FerryError) as caught:
            await target.write(name, data_batch(range(3), dimension=DIM + 3))
        assert not isinstance(caught.value, TransientError)  # retrying will not help
        with pytest.raises(FerryError):
            await target.prepare(CollectionInfo("bad/name", 0, DIM, Metric.L2), WriteMode.CREATE)
        assert await target.count(name) == len(IDS)

    async def test_capabilities_are_what_the_connector_does(self, target_subject: Subject) -> None:
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
