"""Ferry's file reader against directories written by REAL older chromadb releases.

Each release runs in a pinned venv of its own (tests/chroma_releases/build.py: built once,
cached; a release that cannot be installed skips with the installer's last error line).
Its PersistentClient writes the directory, and its own ``get()`` and ``query()`` are the
ground truth. Ferry reads a byte-for-byte copy of what the release left on disk and must:

* return exactly the ids, vectors, metadata (with exact Python types) and documents the
  release returns;
* describe the metric the release *searches* with, derived from the release's own query
  distances (never from what Ferry or a config field says);
* leave every byte of the directory as it was.

Select with ``-m releases``; ``FERRY_RELEASES=all`` (or a comma list) adds releases.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors.chroma.files import ChromaDirectory, NeedsCut
from ferry.core.errors import FerryError
from tests.chroma_releases import spec
from tests.chroma_releases.build import DataSet, build_all, checksums, searched_metric
from tests.names import KEEP_NAMES

pytestmark = [pytest.mark.releases, pytest.mark.timeout(1800)]  # first test builds the venvs

DATASETS = spec.selected_datasets()
PAIRS = [
    pytest.param(ds, plan.name, id=f"{ds}:{plan.name}")
    for ds in DATASETS
    for plan in spec.collections(ds)
]
MIGRATED = spec.UPGRADED_FROM  # the release whose directory goes end to end into Qdrant Edge


@pytest.fixture(scope="session")
def built() -> dict[str, DataSet]:
    return build_all(DATASETS)


def usable(built: dict[str, DataSet], name: str) -> DataSet:
    ds = built.get(name)
    if ds is None:
        pytest.skip(f"{name} is not in FERRY_RELEASES")
    if ds.skip:
        pytest.skip(ds.skip)
    if ds.error:
        pytest.fail(f"building {name} failed: {ds.error}", pytrace=False)
    return ds


@dataclass
class Expected:
    """What the release says one collection holds."""

    source: str
    ids: list[str]
    vectors: dict[str, np.ndarray]
    metadatas: dict[str, Any]
    documents: dict[str, Any]
    metric: str | None
    # Ids the release keeps in its metadata but cannot give a vector for (0.4.24's
    # delete + re-add bug): compared with the vector its writer re-added.
    written: dict[str, np.ndarray] = field(default_factory=dict)


def _vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


@functools.cache
def _expected(path: Path, base_path: Path | None, name: str) -> Expected:
    ds = DataSet(path.parent.name, path)
    truth = ds.truth()
    entry = truth["collections"].get(name)
    assert entry is not None, f"the release lists no collection {name!r}"
    source = f"chromadb {truth['chromadb']}"
    info = json.loads((path / "build.json").read_text())
    if "error" in entry:
        if base_path is None:
            raise AssertionError(f"{source} cannot read {name!r}: {entry['error']}")
        # chromadb 1.5.9 panics on this upgraded collection ("Document not found in
        # metadata": a WAL row with "chroma:document": null, chroma-core/chroma#6517). The
        # records did not change in the upgrade: 0.6.3's own view is the reference.
        source = f"chromadb {spec.UPGRADED_FROM} (1.x cannot read it: {entry['error'][:80]})"
        base = DataSet(base_path.parent.name, base_path)
        truth = base.truth()
        entry = truth["collections"][name]
        info = json.loads((base_path / "build.json").read_text())
    rows = np.frombuffer(base64.b64decode(entry["embeddings"]), dtype="<f4")
    rows = rows.reshape(len(entry["ids"]), -1) if entry["ids"] else rows.reshape(0, spec.DIM)
    readded = info.get("writer", {}).get("readded", {}).get(name, {})
    written = {rid: _vector(readded[rid]) for rid in entry.get("no_vector", [])}
    return Expected(
        source=source,
        ids=list(entry["ids"]),
        vectors={rid: rows[k] for k, rid in enumerate(entry["ids"])},
        metadatas=dict(zip(entry["ids"], entry["metadatas"], strict=True)),
        documents=dict(zip(entry["ids"], entry["documents"], strict=True)),
        metric=searched_metric(truth, name),
        written=written,
    )


def expected(built: dict[str, DataSet], ds_name: str, name: str) -> Expected:
    ds = usable(built, ds_name)
    assert ds.path is not None
    base = built.get(spec.UPGRADED_FROM) if ds_name == spec.UPGRADED else None
    return _expected(ds.path, base.path if base else None, name)


@dataclass
class Read:
    """What Ferry's file reader returns for one collection."""

    count: int
    metric: str | None
    records: dict[str, tuple[np.ndarray, Any, Any]]


@functools.cache
def _ferry(directory: Path, name: str) -> Read:
    records: dict[str, tuple[np.ndarray, Any, Any]] = {}
    with ChromaDirectory(directory) as reader:
        info = reader.describe(name)
        for batch in reader.read(name, None, 257):
            assert batch.vectors.dtype == np.float32
            for k, rid in enumerate(batch.ids):
                assert rid not in records, f"{rid!r} read twice"
                records[rid] = (batch.vectors[k], batch.metadatas[k], batch.documents[k])
    return Read(info.count, info.metric.value if info.metric else None, records)


def ferry(built: dict[str, DataSet], ds_name: str, name: str) -> Read:
    ds = usable(built, ds_name)
    try:
        return _ferry(ds.ferry_dir, name)
    except FerryError as exc:
        pytest.fail(f"Ferry cannot read {ds_name}:{name}: {exc.one_line()}", pytrace=False)


def same(a: Any, b: Any) -> bool:
    """Equal with identical Python types all the way down (1.0 is not 1, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize(("ds_name", "name"), PAIRS)
def test_ids_and_count(built: dict[str, DataSet], ds_name: str, name: str) -> None:
    want = expected(built, ds_name, name)
    got = ferry(built, ds_name, name)
    assert sorted(got.records) == sorted(want.ids), want.source
    assert got.count == len(want.ids)


COSINE_RTOL = 1e-6


@pytest.mark.parametrize(("ds_name", "name"), PAIRS)
def test_vectors(built: dict[str, DataSet], ds_name: str, name: str) -> None:
    """Every float32 as the release returns it: bit-exact, except WAL rows of cosine.

    l2 and ip: bit-exact, always. Cosine: hnswlib stores the unit vector and its norm
    (length.bin) and get() returns ``unit × norm`` in float32; for rows in the persisted
    HNSW files Ferry computes the same product, bit for bit. Rows that only live in the WAL
    are different: the release replays them into its index when it opens the directory, so
    its get() returns them normalised and scaled back (float32 rounding, measured
    <= 1e-7 relative), while Ferry returns the logged float32 exactly as the user wrote it.
    So cosine allows ||ferry - release|| <= 1e-6 ||release|| per vector; a reader that
    forgets the norms is off by ~1.0 and fails either way.
    """
    want = expected(built, ds_name, name)
    got = ferry(built, ds_name, name)
    wrong = []
    for rid in want.ids:
        if rid not in got.records:
            continue  # reported by test_ids_and_count
        reference = want.written.get(rid, want.vectors[rid])
        vector = got.records[rid][0]
        if np.array_equal(vector.view("<u4"), reference.view("<u4")):
            continue
        error = np.linalg.norm(vector.astype(np.float64) - reference) / np.linalg.norm(reference)
        if want.metric != "cosine" or not error <= COSINE_RTOL:
            wrong.append((rid, float(error)))
    worst = sorted(wrong, key=lambda w: -w[1])[:3]
    assert not wrong, (
        f"{len(wrong)}/{len(want.ids)} vectors differ from {want.source} "
        f"(searched metric {want.metric}); worst relative errors {worst}"
    )


@pytest.mark.parametrize(("ds_name", "name"), PAIRS)
def test_metadata_and_documents(built: dict[str, DataSet], ds_name: str, name: str) -> None:
    want = expected(built, ds_name, name)
    got = ferry(built, ds_name, name)
    for rid in want.ids:
        if rid not in got.records:
            continue
        _, metadata, document = got.records[rid]
        assert same(metadata, want.metadatas[rid]), (rid, metadata, want.metadatas[rid])
        assert same(document, want.documents[rid]), (rid, document, want.documents[rid])


@pytest.mark.parametrize(("ds_name", "name"), PAIRS)
def test_metric_is_the_one_the_release_searches_with(
    built: dict[str, DataSet], ds_name: str, name: str
) -> None:
    want = expected(built, ds_name, name)
    if want.metric is None:
        pytest.skip("empty collection: the release's query() gives no evidence of its metric")
    got = ferry(built, ds_name, name)
    assert got.metric == want.metric, (
        f"Ferry says {got.metric}, {want.source} searches with {want.metric}"
    )


@pytest.mark.parametrize("ds_name", DATASETS)
async def test_reading_leaves_every_byte(built: dict[str, DataSet], ds_name: str) -> None:
    """The file reader and the `chroma+file://` connector read everything read-only."""
    from ferry.core.connectors import open_connector

    ds = usable(built, ds_name)
    before = checksums(ds.ferry_dir)
    assert before == ds.manifest(), "the cached copy changed since the release wrote it"
    errors = []
    with ChromaDirectory(ds.ferry_dir) as reader:
        names = reader.list_collections()
        for name in names:
            try:
                reader.describe(name)
                for _ in reader.read(name, None, 100):
                    pass
            except FerryError as exc:
                errors.append(f"{name}: {exc.one_line()}")
    connector = open_connector(f"chroma+file://{ds.ferry_dir}")
    try:
        assert sorted(await connector.list_collections()) == sorted(names)
        for name in names:
            info = await connector.describe(name)
            assert info.facts["reader"] == "files", (name, info.facts)  # never the API copy
            async for _ in connector.read(name, None, 100):
                pass
    finally:
        await connector.close()
    assert checksums(ds.ferry_dir) == before  # same files, no -journal/-wal/-shm, same bytes
    assert not errors, errors


@pytest.mark.parametrize(("ds_name", "name"), PAIRS)
def test_a_plan_read_in_place_agrees_with_the_reader(
    built: dict[str, DataSet], ds_name: str, name: str
) -> None:
    """What the inventory reads of the live files (chroma/peek.py: `pread`, no memory maps,
    no cut) is what the reader gives: the count, the metric, and each sampled record exactly
    (a sample that needs the whole index raises NeedsCut: the plan then takes a cut)."""
    got = ferry(built, ds_name, name)
    ds = usable(built, ds_name)
    before = checksums(ds.ferry_dir)
    with ChromaDirectory(ds.ferry_dir, cut=True, in_place=True) as reader:
        info = reader.describe(name)
        try:
            sample = reader.sample(name, 50)
        except NeedsCut:
            sample = None
    assert checksums(ds.ferry_dir) == before
    assert info.count == got.count
    assert (info.metric.value if info.metric else None) == got.metric
    for k, rid in enumerate(sample.ids if sample is not None else []):
        vector, metadata, document = got.records[rid]
        assert np.array_equal(sample.vectors[k].view("<u4"), vector.view("<u4")), rid
        assert same(sample.metadatas[k], metadata) and same(sample.documents[k], document), rid


# -- end to end: one release's directory into Qdrant Edge with `ferry migrate` -------------


@pytest.fixture(scope="module")
def migrated(
    built: dict[str, DataSet], tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, Any, str]:
    """`ferry migrate` of the whole directory: (exit code, --json outcome, target URI)."""
    from ferry.cli import main
    from ferry.core.connectors.qdrant.edge import close_all_workers

    ds = usable(built, MIGRATED)
    root = tmp_path_factory.mktemp("releases-migrate")
    target = f"qdrant+edge://{root / 'edge'}"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (
            ("FERRY_STATE", "state/journal.sqlite3"),
            ("FERRY_CONFIG", "config/profiles.toml"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_STATE_HOME", "xdg-state"),
            ("XDG_CONFIG_HOME", "xdg-config"),
            ("XDG_DATA_HOME", "xdg-data"),
        ):
            mp.setenv(var, str(root / sub))
        before = checksums(ds.ferry_dir)
        with contextlib.redirect_stdout(out):
            code = main(
                [
                    "migrate",
                    *KEEP_NAMES,
                    "--from",
                    f"chroma+file://{ds.ferry_dir}",
                    "--to",
                    target,
                    "--yes",
                    "--json",
                    "--state",
                    str(root / "j.sqlite3"),
                ]
            )
        close_all_workers()
        assert checksums(ds.ferry_dir) == before, "migrate changed the source directory"
    text = out.getvalue()
    return code, json.loads(text) if text.strip().startswith("{") else text, target


MIGRATED_PAIRS = [
    pytest.param(plan.name, id=f"{MIGRATED}:{plan.name}")
    for plan in spec.collections(MIGRATED)
    if plan.story != "empty" and MIGRATED in DATASETS
]


@pytest.mark.parametrize("name", MIGRATED_PAIRS)
async def test_migrated_to_edge_with_the_searched_distance(
    built: dict[str, DataSet], migrated: tuple[int, Any, str], name: str
) -> None:
    from ferry.core.connectors import open_connector

    code, outcome, target = migrated
    assert code == 0, outcome
    want = expected(built, MIGRATED, name)
    connector = open_connector(target)
    try:
        info = await connector.describe(name)
        assert info.metric is not None and info.metric.value == want.metric, (
            f"target distance {info.metric}, {want.source} searches with {want.metric}"
        )
        assert info.count == len(want.ids)
        copied: dict[str, np.ndarray] = {}
        async for batch in connector.read(name, None, 500):
            for k, rid in enumerate(batch.ids):
                copied[rid] = batch.vectors[k]
    finally:
        await connector.close()
    assert sorted(copied) == sorted(want.ids)
    for rid in want.ids:
        source = want.written.get(rid, want.vectors[rid]).astype(np.float64)
        target_vector = copied[rid].astype(np.float64)
        if want.metric == "cosine":  # Qdrant stores cosine vectors normalised
            source = source / np.linalg.norm(source)
        assert np.allclose(target_vector, source, rtol=1e-6, atol=1e-6), (
            rid,
            target_vector[:3],
            source[:3],
        )


def test_validate_after_migrate_passes_on_every_collection(
    built: dict[str, DataSet],
    migrated: tuple[int, Any, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Validation agrees with migrate on the whole release directory: the empty collection is
    skipped, and the distance checks pass (source scores match the resolved metric, the
    target searches with it) — where chromadb cannot query a copy, by exact search."""
    from ferry.cli import main

    code, outcome, target = migrated
    assert code == 0, outcome
    ds = usable(built, MIGRATED)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "validate",
                "--from",
                f"chroma+file://{ds.ferry_dir}",
                "--to",
                target,
                "--full",
                "--queries",
                "5",
                "--json",
                "--state",
                str(tmp_path / "j.sqlite3"),
            ]
        )
    report = json.loads(out.getvalue())
    assert code == 0 and report["ok"], [c["reasons"] for c in report["collections"]]
    assert all(
        c["skipped_reason"] or c["recall"]["score_max_rel_diff"]["source"] is not None
        for c in report["collections"]
    )
