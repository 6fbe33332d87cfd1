"""Validation against real databases: a real Chroma directory migrated into real Qdrant Edge,
then the target corrupted behind Ferry's back, and validate must find exactly that.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import qdrant_edge as qe

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import WriteMode
from ferry.core.connectors.traits import CHROMA, QDRANT
from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.mapping import canonical_point_id
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.runner import migrate
from ferry.core.validate import ValidationOptions, ValidationProgress, fetch_pair, validate
from ferry.core.validate.checks import Reservoir
from ferry.core.validate.compare import compare_record, metadata_differences, same_value
from ferry.core.validate.recall import (
    ExactTopK,
    exact_scores,
    float32_allowance,
    kendall_tau,
    measure,
    tie_aware_overlap,
)

DIM = 16
N = 240
NAME = "docs"


def ids_for(n: int) -> list[str]:
    """Mostly ids that Qdrant cannot take as-is (mapped to uuid5), some canonical ints."""
    return [str(i) if i % 10 == 0 else f"doc-{i}" for i in range(n)]


def metadata_for(i: int) -> dict[str, Any] | None:
    if i % 9 == 0:
        return None
    return {"n": i, "half": i / 2, "even": i % 2 == 0, "tag": f"t{i % 4}", "ints": [i, 1]}


def make_source(root: Path, space: str, n: int = N, name: str = NAME) -> str:
    client = chromadb.PersistentClient(str(root))
    collection = client.create_collection(name, configuration={"hnsw": {"space": space}})
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32) * 3  # not unit length
    ids = ids_for(n)
    collection.add(
        ids=ids,
        embeddings=vectors,
        metadatas=[metadata_for(i) for i in range(n)],
        documents=[f"document {i}" if i % 5 else None for i in range(n)],
    )
    return f"chroma+file://{root}"


@pytest.fixture(scope="module")
def cosine_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_source(tmp_path_factory.mktemp("src-cosine"), "cosine")


async def migrated(
    source_uri: str, tmp_path: Path, names: list[str] | None = None
) -> tuple[str, Journal]:
    journal = Journal(tmp_path / "journal.sqlite3")
    target_uri = f"qdrant+edge://{tmp_path / 'target'}"
    outcome = await migrate(source_uri, target_uri, names or [NAME], MigrationOptions(), journal)
    assert outcome.status == "completed"
    return target_uri, journal


def corrupt(target_dir: Path, name: str = NAME) -> dict[str, str]:
    """Change one vector, drop one point, make one int a float, add a stranger point."""
    shard = qe.EdgeShard.load(str(target_dir / name))
    try:
        changed, dropped, retyped = "doc-3", "doc-5", "doc-7"
        point = shard.retrieve([canonical_point_id(changed)], True, True)[0]
        shard.update(
            qe.UpdateOperation.upsert_points([qe.Point(point.id, [0.5] * DIM, point.payload)])
        )
        shard.update(qe.UpdateOperation.delete_points([canonical_point_id(dropped)]))
        point = shard.retrieve([canonical_point_id(retyped)], True, True)[0]
        payload = dict(point.payload)
        payload["n"] = float(payload["n"])  # 7 -> 7.0: equal in Python, not to a filter
        shard.update(qe.UpdateOperation.set_payload([point.id], payload))
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(987654321, [0.1] * DIM, {"x": 1})]))
        shard.flush()
    finally:
        shard.close()
    return {"changed": changed, "dropped": dropped, "retyped": retyped, "stranger": "987654321"}


# -- the scenario ----------------------------------------------------------------------
async def test_finds_exactly_the_corruption_repairs_it_and_revalidates_clean(
    cosine_source: str, tmp_path: Path
) -> None:
    target_uri, journal = await migrated(cosine_source, tmp_path)
    clean = await validate(cosine_source, target_uri, [NAME], ValidationOptions(full=True), journal)
    assert clean.ok, clean.to_json()

    bad = corrupt(tmp_path / "target")
    steps: list[ValidationProgress] = []
    report = await validate(
        cosine_source, target_uri, [NAME], ValidationOptions(full=True), journal, steps.append
    )
    c = report.collections[0]
    assert not report.ok
    assert (c.source_count, c.target_count, c.checked) == (N, N, N)  # -1 +1: counts alone miss it
    assert c.missing.items == [bad["dropped"]]
    assert c.extra.items == [bad["stranger"]]
    assert {m.id: m.fields for m in c.mismatched.items} == {
        bad["changed"]: ["vector"],
        bad["retyped"]: ["metadata.n"],
    }
    vector = next(m.vector for m in c.mismatched.items if m.id == bad["changed"])
    assert vector is not None and vector.max_abs_diff > 0.1 and vector.cosine < 0.99
    assert {p.step for p in steps} >= {"counts", "source", "extras", "exact", "queries", "done"}
    stored = journal.validations.latest(target_uri, NAME)
    assert stored is not None and stored.ok == 0
    assert stored.result["missing"] == [bad["dropped"]]

    repaired = await validate(
        cosine_source, target_uri, [NAME], ValidationOptions(full=True, repair=True), journal
    )
    r = repaired.collections[0]
    assert r.repair is not None and (r.repair.rewritten, r.repair.verified) == (3, 3)
    assert r.repair.deleted == 0 and r.target_count_after == N + 1  # the stranger stays

    again = await validate(cosine_source, target_uri, [NAME], ValidationOptions(full=True), journal)
    a = again.collections[0]
    assert (a.missing.total, a.mismatched.total, a.extra.items) == (0, 0, [bad["stranger"]])

    await validate(
        cosine_source,
        target_uri,
        [NAME],
        ValidationOptions(full=True, delete_extra=True),
        journal,
    )
    final = await validate(cosine_source, target_uri, [NAME], ValidationOptions(full=True), journal)
    assert final.ok, final.to_json()
    assert final.collections[0].recall is not None
    assert final.collections[0].recall.recall_at_k == 1.0
    stored = journal.validations.latest(target_uri, NAME)
    assert stored is not None and stored.ok == 1


async def test_detail_pair_shows_both_sides(cosine_source: str, tmp_path: Path) -> None:
    target_uri, _journal = await migrated(cosine_source, tmp_path)
    bad = corrupt(tmp_path / "target")
    pair = await fetch_pair(cosine_source, target_uri, NAME, bad["retyped"])
    assert pair.fields == ["metadata.n"]
    assert pair.source is not None and pair.target is not None
    assert type(pair.source[1]["n"]) is int and type(pair.target[1]["n"]) is float
    gone = await fetch_pair(cosine_source, target_uri, NAME, bad["dropped"])
    assert gone.target is None and gone.fields == ["record"]


async def test_sample_mode_is_seeded_and_checks_what_it_samples(
    cosine_source: str, tmp_path: Path
) -> None:
    target_uri, _journal = await migrated(cosine_source, tmp_path)
    corrupt(tmp_path / "target")
    everything = await validate(
        cosine_source, target_uri, [NAME], ValidationOptions(sample=N, queries=0)
    )
    c = everything.collections[0]
    assert c.mode == "sample" and c.checked == N and c.recall is None
    assert c.missing.items == ["doc-5"] and c.mismatched.total == 2
    assert c.extra.total == 0  # a sample never scans the target

    first = await validate(cosine_source, target_uri, [NAME], ValidationOptions(sample=60, seed=3))
    second = await validate(cosine_source, target_uri, [NAME], ValidationOptions(sample=60, seed=3))
    assert first.collections[0].checked == 60
    recalls = [r.to_json()["collections"][0]["recall"] for r in (first, second)]
    for recall in recalls:  # query timings are measured, not seeded: the rest must agree
        assert set(recall.pop("query_ms")) == {"source", "target"}
        assert set(recall.pop("latency_ms")) == {"source", "target"}
    assert recalls[0] == recalls[1]


@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
async def test_recall_of_an_identical_copy_is_exact(space: str, tmp_path: Path) -> None:
    source_uri = make_source(tmp_path / "src", space, n=150)
    target_uri, _journal = await migrated(source_uri, tmp_path)
    report = await validate(source_uri, target_uri, [NAME], ValidationOptions(queries=15, k=7))
    recall = report.collections[0].recall
    assert recall is not None and report.ok
    assert (recall.recall_at_k, recall.source_vs_exact, recall.target_vs_exact) == (1.0, 1.0, 1.0)
    assert recall.rank_agreement == 1.0 and recall.k == 7 and recall.queries == 15
    # Each side's reported score, converted (Chroma: squared l2, 1 − dot, 1 − cos; Qdrant:
    # plain l2, dot, cos), equals Ferry's exact score: the conversion table is right.
    for side in ("source", "target"):
        worst = recall.score_max_abs_diff[side]
        assert worst is not None and worst < 1e-3, (side, worst)


async def test_k_above_count_uses_the_whole_collection(tmp_path: Path) -> None:
    source_uri = make_source(tmp_path / "src", "l2", n=4)
    target_uri, _journal = await migrated(source_uri, tmp_path)
    report = await validate(source_uri, target_uri, [NAME], ValidationOptions(queries=3, k=10))
    c = report.collections[0]
    assert c.recall is not None and c.recall.recall_at_k == 1.0 and report.ok
    assert c.recall.k == 4


async def test_absent_target_collection_is_a_failure_not_a_crash(
    cosine_source: str, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    target_uri = f"qdrant+edge://{tmp_path / 'empty'}"
    report = await validate(cosine_source, target_uri, [NAME], ValidationOptions(), journal)
    c = report.collections[0]
    assert not report.ok and c.error and "does not exist" in c.error
    assert c.source_count == N


async def test_full_diff_keeps_capped_lists_with_totals(tmp_path: Path) -> None:
    """Qdrant Edge on both sides (fast to fill): an empty target, everything missing."""
    source_uri = f"qdrant+edge://{tmp_path / 'src'}"
    target_uri = f"qdrant+edge://{tmp_path / 'dst'}"
    info = CollectionInfo(NAME, 0, DIM, Metric.L2)
    source, target = open_connector(source_uri), open_connector(target_uri)
    rng = np.random.default_rng(1)
    total = 3000
    try:
        await source.prepare(info, WriteMode.CREATE)
        await target.prepare(info, WriteMode.CREATE)
        for start in range(0, total, 1000):
            ids = [f"r{i}" for i in range(start, start + 1000)]
            vectors = rng.normal(size=(1000, DIM)).astype(np.float32)
            await source.write(NAME, Batch(ids, vectors, [{"i": 1}] * 1000, [None] * 1000))
    finally:
        await source.close()
        await target.close()
    options = ValidationOptions(full=True, cap=5, queries=0, batch_size=256)
    report = await validate(source_uri, target_uri, [NAME], options)
    c = report.collections[0]
    assert (c.missing.total, len(c.missing.items), c.checked) == (total, 5, total)
    data = report.to_json()["collections"][0]
    assert data["missing_total"] == total and len(data["missing"]) == 5


# -- the parts ---------------------------------------------------------------------------------
def test_values_compare_type_exact() -> None:
    assert same_value(1, 1) and same_value([1, "a"], [1, "a"])
    assert not same_value(1, 1.0)
    assert not same_value(True, 1)
    assert not same_value([1, 2], [1, 2.0])
    assert not same_value("1", 1)
    assert same_value(math.nan, math.nan)
    assert metadata_differences(None, {}) == []
    assert metadata_differences({"a": True}, {"a": 1, "b": None}) == ["metadata.a", "metadata.b"]


def test_cosine_vectors_compare_after_normalising() -> None:
    v = np.array([3.0, 4.0], dtype=np.float32)
    unit = v / 5
    assert compare_record((v, None, "d"), (unit, None, "d"), Metric.COSINE).equal
    diff = compare_record((v, None, "d"), (unit, None, "d"), Metric.L2)
    assert diff.fields == ["vector"]
    assert compare_record((v, None, None), (v, None, ""), Metric.L2).fields == ["document"]


def test_reservoir_is_bounded_seeded_and_covers_the_stream() -> None:
    def run(seed: int) -> list[str]:
        reservoir = Reservoir(10, np.random.default_rng(seed))
        for start in range(0, 1000, 64):
            ids = [str(i) for i in range(start, min(start + 64, 1000))]
            reservoir.offer(
                Batch(
                    ids, np.zeros((len(ids), 2), np.float32), [None] * len(ids), [None] * len(ids)
                )
            )
        assert len(reservoir.ids) == 10 and reservoir.seen == 1000
        return reservoir.ids

    assert run(1) == run(1) and run(1) != run(2)
    assert max(int(i) for i in run(1)) > 100  # not just the first records


def test_exact_top_k_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 8)).astype(np.float32)
    queries = data[:5]
    for metric in Metric:
        top = ExactTopK(queries, metric, 6)
        for start in range(0, 500, 37):
            top.update(
                [str(i) for i in range(start, min(start + 37, 500))], data[start : start + 37]
            )
        if metric == Metric.L2:
            truth = np.argsort(((queries[:, None, :] - data[None]) ** 2).sum(-1), axis=1)
        elif metric == Metric.IP:
            truth = np.argsort(-(queries @ data.T), axis=1)
        else:
            unit = data / np.linalg.norm(data, axis=1, keepdims=True)
            truth = np.argsort(-(unit[:5] @ unit.T), axis=1)
        got = [[i for i, _ in hits] for hits in top.result()]
        assert got == [[str(i) for i in row[:6]] for row in truth]


def test_ties_and_ranks() -> None:
    scores = {"a": 3.0, "b": 2.0, "c": 1.0, "c2": 1.0, "d": 0.5}
    assert tie_aware_overlap(["a", "b", "c2"], ["a", "b", "c"], scores.__getitem__) == 3
    assert tie_aware_overlap(["a", "b", "d"], ["a", "b", "c"], scores.__getitem__) == 2
    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert kendall_tau(["a"], ["a"]) is None


async def test_stopping_midway_records_nothing_and_closes_the_streams(
    cosine_source: str, tmp_path: Path
) -> None:
    """A view stops the checks by raising from its progress callback (the TUI's Stop key)."""
    target_uri, journal = await migrated(cosine_source, tmp_path)

    class Stop(Exception):
        pass

    def stop_at_first_batch(p: ValidationProgress) -> None:
        if p.step == "source" and p.done > 0:
            raise Stop

    with pytest.raises(Stop):
        await validate(
            cosine_source,
            target_uri,
            [NAME],
            ValidationOptions(full=True, batch_size=50),
            journal,
            stop_at_first_batch,
        )
    assert journal.validations.latest(target_uri, NAME) is None
    # The Edge shard was closed on the way out: it opens again at once.
    again = await validate(cosine_source, target_uri, [NAME], ValidationOptions(), journal)
    assert again.ok


def test_differently_named_target_collection(cosine_source: str, tmp_path: Path) -> None:
    """`--collection docs=docs__b`: cutover's `<alias>__<suffix>` targets validate too."""
    from ferry.cli import main

    target_uri, _journal = asyncio.run(migrated(cosine_source, tmp_path))
    (tmp_path / "target" / NAME).rename(tmp_path / "target" / "docs__b")
    state = str(tmp_path / "j2.sqlite3")
    argv = ["validate", "--from", cosine_source, "--to", target_uri, "--state", state, "--json"]
    assert main([*argv, "--collection", f"{NAME}=docs__b"]) == 0
    stored = Journal(state).validations.latest(target_uri, "docs__b")
    assert stored is not None and stored.ok == 1 and stored.collection == NAME
    assert main([*argv, "--collection", f"{NAME}="]) == 2


# -- extras written by someone else are deleted by the point they are --------------------------
def plant_foreign_points(target_dir: Path, n: int, name: str = NAME) -> int:
    """Points another tool or an app could have written: random UUID point ids, some with a
    `source_id` Ferry never wrote, one repeating a real record's source id, one with none."""
    rng = np.random.default_rng(11)
    shard = qe.EdgeShard.load(str(target_dir / name))
    try:
        import uuid

        points = [
            qe.Point(
                str(uuid.UUID(int=int(rng.integers(1, 2**62)) << 64)),
                [0.2] * DIM,
                {"source_id": f"ghost-{i}", "x": i},
            )
            for i in range(n)
        ]
        points.append(qe.Point(str(uuid.uuid4()), [0.3] * DIM, {"source_id": "doc-3"}))
        points.append(qe.Point(str(uuid.uuid4()), [0.4] * DIM, {"note": "no source id"}))
        shard.update(qe.UpdateOperation.upsert_points(points))
        shard.flush()
    finally:
        shard.close()
    return len(points)


async def test_delete_extra_deletes_foreign_points_and_counts_what_the_target_confirms(
    cosine_source: str, tmp_path: Path
) -> None:
    target_uri, journal = await migrated(cosine_source, tmp_path)
    planted = plant_foreign_points(tmp_path / "target", 300)
    found = await validate(cosine_source, target_uri, [NAME], ValidationOptions(full=True), journal)
    c = found.collections[0]
    assert not found.ok and c.extra.total == planted and c.missing.total == 0
    assert any(item.startswith("doc-3 (duplicate at ") for item in c.extra.items)

    deleted = await validate(
        cosine_source, target_uri, [NAME], ValidationOptions(full=True, delete_extra=True), journal
    )
    repair = deleted.collections[0].repair
    assert repair is not None and (repair.deleted, repair.delete_failed) == (planted, 0)

    final = await validate(cosine_source, target_uri, [NAME], ValidationOptions(full=True), journal)
    assert final.ok, final.to_json()
    assert final.collections[0].target_count == N  # the real doc-3 survived its duplicate
    pair = await fetch_pair(cosine_source, target_uri, NAME, "doc-3")
    assert pair.fields == []


# -- a wrong distance can never pass -------------------------------------------------------------
async def test_target_with_another_distance_fails_validation_with_the_reason(
    cosine_source: str, tmp_path: Path
) -> None:
    """Same records, same ids, but the target was created as Euclid: every record compares
    equal, so only the distance checks can catch it."""
    l2_source = make_source(tmp_path / "src-l2", "l2")
    target_uri, journal = await migrated(l2_source, tmp_path)
    report = await validate(
        cosine_source, target_uri, [NAME], ValidationOptions(full=True, queries=10), journal
    )
    c = report.collections[0]
    assert (c.missing.total, c.extra.total, c.mismatched.total) == (0, 0, 0)
    assert not report.ok
    assert any(r.startswith("distance: the target searches with l2") for r in c.reasons)
    assert c.recall is not None and not c.recall.scores_agree("target")
    assert c.recall.scores_agree("source")


def test_scores_that_follow_another_metric_are_named() -> None:
    """The 0.5/0.6 bug's signature: Chroma searched with cosine while Ferry believed l2."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, DIM)).astype(np.float32) * 4
    queries = vectors[:5]
    ids = [f"v{i}" for i in range(50)]
    believed = Metric.L2
    exact = ExactTopK(queries, believed, 5)
    exact.update(ids, vectors)
    table = exact_scores(queries, vectors, believed)
    cos = exact_scores(queries, vectors, Metric.COSINE)
    # what Chroma reports for a cosine collection: 1 − cos, best first
    reported = [[(ids[j], float(1 - cos[q, j])) for j in np.argsort(-cos[q])[:5]] for q in range(5)]
    result = measure(
        5,
        exact.result(),
        reported,
        exact.result(),
        lambda q, item: float(table[q, ids.index(item)]),
        (
            lambda raw: CHROMA.similarity(believed, raw),
            lambda raw: QDRANT.similarity(believed, raw),
        ),
    )
    assert not result.scores_agree("source")
    assert any("source scores disagree" in f for f in result.failures(0.95))


async def test_validate_agrees_with_migrate_about_a_never_written_collection(
    tmp_path: Path,
) -> None:
    root = tmp_path / "src"
    make_source(root, "cosine")
    chromadb.PersistentClient(str(root)).create_collection("empty")
    source_uri = f"chroma+file://{root}"
    target_uri, journal = await migrated(source_uri, tmp_path, [NAME, "empty"])
    report = await validate(source_uri, target_uri, None, ValidationOptions(full=True), journal)
    by_name = {c.name: c for c in report.collections}
    assert report.ok, report.to_json()
    assert by_name["empty"].skipped_reason is not None


# -- float32 rounding at large magnitudes is not a metric mismatch --------------------------------
def large_parallel_source(root: Path, space: str) -> str:
    """l2/cosine vectors with components near 1e6 pointing almost the same way: the engines'
    float32 arithmetic is off by more than 1e-3 of the small distances between them."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=16) * 1e6
    vectors = (base + rng.normal(size=(200, 16)) * 10).astype(np.float32)
    client = chromadb.PersistentClient(str(root))
    collection = client.create_collection(NAME, configuration={"hnsw": {"space": space}})
    collection.add(ids=[f"r{i}" for i in range(200)], embeddings=vectors)
    return f"chroma+file://{root}"


async def test_an_exact_copy_at_magnitude_1e6_passes_validation(tmp_path: Path) -> None:
    source = large_parallel_source(tmp_path / "src", "l2")
    target, journal = await migrated(source, tmp_path)
    report = await validate(source, target, [NAME], ValidationOptions(full=True), journal)
    c = report.collections[0]
    assert report.ok, c.reasons
    assert c.recall is not None and c.recall.scores_agree("source")
    assert c.recall.scores_agree("target")


def test_a_metric_mismatch_at_magnitude_1e6_still_fails() -> None:
    """The float32 allowance is relative to the vectors' size, but a cosine engine believed
    to be l2 reports scores off by their own size: still named."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=DIM) * 1e6
    vectors = (base + rng.normal(size=(50, DIM)) * 10).astype(np.float32)
    queries, ids, believed = vectors[:5], [f"v{i}" for i in range(50)], Metric.L2
    exact = ExactTopK(queries, believed, 5)
    exact.update(ids, vectors)
    table = exact_scores(queries, vectors, believed)
    cos = exact_scores(queries, vectors, Metric.COSINE)
    reported = [[(ids[j], float(1 - cos[q, j])) for j in np.argsort(-cos[q])[:5]] for q in range(5)]
    norms = np.linalg.norm(queries.astype(np.float64), axis=1)
    largest = float(np.linalg.norm(vectors.astype(np.float64), axis=1).max())
    allowances = [float32_allowance(believed, float(n), largest) for n in norms]
    result = measure(
        5,
        exact.result(),
        reported,
        exact.result(),
        lambda q, item: float(table[q, ids.index(item)]),
        (
            lambda raw: CHROMA.similarity(believed, raw),
            lambda raw: QDRANT.similarity(believed, raw),
        ),
        allowance=lambda qi, truth: allowances[qi](truth),
    )
    assert not result.scores_agree("source")
    assert any("source scores disagree" in f for f in result.failures(0.95))
