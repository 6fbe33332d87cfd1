"""Portable files (parquet+file://, jsonl+file://): exact round trips, manifests, resumes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import WriteMode
from ferry.core.connectors.files.portable import public_uri
from ferry.core.engine import MigrationOptions
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.runner import migrate
from tests.conftest import ROOT, dir_checksum, make_chroma, unique_name
from tests.test_crash_resume import durable_written, migrate_argv

Records = dict[str, tuple[bytes, Any, Any]]


async def snapshot(uri: str, name: str) -> Records:
    """Every record as (float32 bytes, metadata, document); a repeated id fails."""
    records: Records = {}
    async with open_connector(uri) as connector:
        async for batch in connector.read(name, None, 64):
            assert batch.vectors.dtype == np.float32
            for i, sid in enumerate(batch.ids):
                assert sid not in records, f"{sid!r} read twice from {uri}"
                records[sid] = (batch.vectors[i].tobytes(), batch.metadatas[i], batch.documents[i])
    return records


def typed(value: Any) -> Any:
    """The value with its types spelled out, so 1 and 1.0 and True differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def assert_identical(a: Records, b: Records, where: str) -> None:
    assert a.keys() == b.keys(), where
    for sid in a:
        assert a[sid][0] == b[sid][0], f"{where}: vector of {sid!r} differs"
        assert typed(a[sid][1]) == typed(b[sid][1]), f"{where}: metadata of {sid!r}"
        assert a[sid][2] == b[sid][2], f"{where}: document of {sid!r}"


async def run(source: str, target: str, tmp_path: Path, names: list[str], **options: Any):  # type: ignore[no-untyped-def]
    outcome = await migrate(
        source, target, names, MigrationOptions(**options), Journal(tmp_path / "j.sqlite3")
    )
    assert outcome.status == "completed", outcome.to_json()
    return outcome


async def test_round_trip_chroma_parquet_edge_jsonl_chroma_server_is_exact(
    tmp_path: Path, fresh_chroma_server: str
) -> None:
    """Chroma → Parquet → Qdrant Edge → JSONL → Chroma server: every record bit for bit.

    l2 and ip, because Qdrant stores cosine vectors normalised (a documented change, not a
    loss); metadata of every type Chroma keeps, ids Qdrant must map, missing documents."""
    l2, ip = unique_name("rt-l2"), unique_name("rt-ip")
    src = make_chroma(
        tmp_path / "src",
        {l2: {"metric": "l2", "n": 230, "dim": 12, "seed": 4}, ip: {"metric": "ip", "n": 40}},
    )
    before = dir_checksum(src)
    chroma = f"chroma+file://{src}"
    parquet = f"parquet+file://{tmp_path / 'parquet'}"
    edge = f"qdrant+edge://{tmp_path / 'edge'}"
    jsonl = f"jsonl+file://{tmp_path / 'jsonl'}"
    chain = [chroma, parquet, edge, jsonl, fresh_chroma_server]
    for source, target in zip(chain, chain[1:], strict=False):
        await run(source, target, tmp_path, [l2, ip], batch_size=50, workers=2)
    for name in (l2, ip):
        original = await snapshot(chroma, name)
        assert len(original) == (230 if name == l2 else 40)
        for uri in chain[1:]:
            assert_identical(original, await snapshot(uri, name), f"{name} in {uri}")
        async with open_connector(fresh_chroma_server) as server:
            assert (await server.describe(name)).metric is (Metric.L2 if name == l2 else Metric.IP)
    assert dir_checksum(src) == before


async def test_manifest_and_parquet_schema(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = make_chroma(tmp_path / "src", {"docs": {"metric": "cosine", "n": 120, "dim": 8}})
    out = tmp_path / "out"
    await run(f"chroma+file://{src}", f"parquet+file://{out}", tmp_path, [], batch_size=50)
    manifest = json.loads((out / "docs" / "manifest.json").read_text())
    assert manifest["state"] == "complete" and manifest["count"] == 120
    assert (manifest["dimension"], manifest["metric"]) == (8, "cosine")
    assert manifest["hnsw"]["space"] == "cosine" and manifest["hnsw"]["M"] == 16
    assert manifest["source"]["uri"] == f"chroma+file://{src}"
    assert manifest["ferry_version"] and manifest["format_version"] == 1
    assert sorted(manifest["metadata_keys"]) == manifest["metadata_keys"]
    assert "whole_float" in manifest["metadata_keys"]
    assert [p["rows"] for p in manifest["parts"]] == [50, 50, 20]
    for part in manifest["parts"]:
        data = (out / "docs" / part["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == part["sha256"]
    table = pq.read_table(out / "docs" / "data")  # any Parquet reader sees one table
    assert table.num_rows == 120
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 8)
    assert table.schema.field("id").type == pa.string()
    first = json.loads(table.column("metadata")[0].as_py())
    assert first["whole_float"] == 1.0 and isinstance(first["whole_float"], float)
    # the cosine vectors are the source's own, not normalised
    original = await snapshot(f"chroma+file://{src}", "docs")
    assert_identical(original, await snapshot(f"parquet+file://{out}", "docs"), "parquet")


def _batch(ids: list[str], seed: int) -> Batch:
    vectors = np.random.default_rng(seed).normal(size=(len(ids), 4)).astype(np.float32)
    return Batch(ids, vectors, [{"seed": seed, "i": i} for i in range(len(ids))], [None] * len(ids))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
async def test_replayed_batches_after_a_crash_leave_each_record_once(
    tmp_path: Path, fmt: str
) -> None:
    """A process writes, dies before `finish`; the next replays from its watermark with other
    batch boundaries. The sealed export holds each id once, with its latest values."""
    uri = f"{fmt}+file://{tmp_path / 'out'}"
    ids = [f"r{i}" for i in range(30)]
    first = open_connector(uri)
    await first.prepare(CollectionInfo("c", 30, 4, Metric.L2), WriteMode.CREATE)  # type: ignore[attr-defined]
    await first.write("c", _batch(ids[:10], 1))  # type: ignore[attr-defined]
    await first.write("c", _batch(ids[10:20], 1))  # type: ignore[attr-defined]
    await first.sync("c")  # type: ignore[attr-defined]
    del first  # killed: no finish, the manifest still says "writing"
    data = tmp_path / "out" / "c" / "data"
    (data / f".part-00000003.{fmt}.tmp").write_bytes(b"half a file")  # an interrupted write
    second = open_connector(uri)
    assert (await second.describe("c")).facts["state"] == "writing"
    await second.prepare(CollectionInfo("c", 30, 4, Metric.L2), WriteMode.CREATE, owned=True)  # type: ignore[attr-defined]
    await second.write("c", _batch(ids[5:25], 2))  # type: ignore[attr-defined]
    await second.write("c", _batch(ids[25:], 2))  # type: ignore[attr-defined]
    assert await second.count("c") == 30
    await second.finish("c")  # type: ignore[attr-defined]
    manifest = json.loads((tmp_path / "out" / "c" / "manifest.json").read_text())
    assert manifest["state"] == "complete" and manifest["count"] == 30
    assert sum(p["rows"] for p in manifest["parts"]) == 30  # superseded rows are gone
    assert not list(data.glob(".*"))
    records = await snapshot(uri, "c")
    assert sorted(records) == sorted(ids)
    assert all(records[sid][1]["seed"] == (1 if int(sid[1:]) < 5 else 2) for sid in ids)
    # written again after it was sealed: "writing" until finished again
    third = open_connector(uri)
    await third.write("c", _batch(["r0"], 3))  # type: ignore[attr-defined]
    assert (await third.describe("c")).facts["state"] == "writing"
    await third.finish("c")  # type: ignore[attr-defined]
    assert (await snapshot(uri, "c"))["r0"][1]["seed"] == 3


async def test_a_damaged_part_is_refused(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "l2", "n": 40, "dim": 4}})
    out = tmp_path / "out"
    await run(f"chroma+file://{src}", f"jsonl+file://{out}", tmp_path, [], batch_size=25)
    part = sorted((out / "docs" / "data").iterdir())[1]
    part.write_bytes(part.read_bytes().replace(b"document", b"DOCUMENT", 1))
    with pytest.raises(FerryError, match="SHA-256"):
        await snapshot(f"jsonl+file://{out}", "docs")


def test_secrets_never_reach_a_manifest() -> None:
    assert public_uri("qdrant+https://user:pw@host:6333?api_key_env=KEY&token=x") == (
        "qdrant+https://host:6333?api_key_env=KEY"
    )
    with pytest.raises(FerryError, match="unknown option"):
        open_connector("parquet+file:///tmp/x?compression=gzip")


def test_kill_9_mid_export_then_resume_writes_each_record_once(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    n = 2000
    src = make_chroma(tmp_path / "src", {"alpha": {"metric": "cosine", "n": n, "dim": 16}})
    out = tmp_path / "out"
    source, target = f"chroma+file://{src}", f"parquet+file://{out}"
    state = tmp_path / "journal.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Killed by the engine itself at its second batch write of eight (FERRY_KILL_AT), not by
    # a poller racing a one-second run: on a busy machine the poller saw the export finish
    # first (and a first checkpoint can already be the last: the rate limiter's burst).
    victim = subprocess.run(
        migrate_argv(source, target, state, "--rate", "2000", "--batch-size", "250"),
        cwd=ROOT,
        env={**env, "FERRY_KILL_AT": "write:2"},
        capture_output=True,
        timeout=300,
    )
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    assert durable_written(state) < n
    assert json.loads((out / "alpha" / "manifest.json").read_text())["state"] == "writing"
    resumed = subprocess.run(
        migrate_argv(source, target, state),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] is True
    table = pq.read_table(out / "alpha" / "data")
    ids = table.column("id").to_pylist()
    assert len(ids) == n and len(set(ids)) == n
    manifest = json.loads((out / "alpha" / "manifest.json").read_text())
    assert (manifest["state"], manifest["count"]) == ("complete", n)
    original = asyncio.run(snapshot(source, "alpha"))
    assert_identical(original, asyncio.run(snapshot(target, "alpha")), "after resume")
