"""`ferry backup` and the cutover's backup: a copy equal to the source, never a write to the
source, never a complete-looking backup after a kill, and no second copy of an unchanged
state. Real chromadb directories, a real Qdrant Edge worker, real qdrant-client local mode."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ferry import cli
from ferry.core.backup import run_backup
from ferry.core.backup_store import DATA, MANIFEST, PARTIAL_PREFIX, STOP_AT_ENV
from ferry.core.connectors import open_connector
from ferry.core.connectors.base import WriteMode
from ferry.core.connectors.chroma.files import ChromaDirectory
from ferry.core.journal import Journal
from ferry.core.model import Batch, CollectionInfo, Metric
from tests.conftest import ROOT, TRAP_IDS, dir_checksum, make_chroma
from tests.test_cutover import make_collections, validate

N = 2500


@pytest.fixture
def source(tmp_path: Path) -> Path:
    ids = TRAP_IDS + [f"doc-{i}" for i in range(N - len(TRAP_IDS))]
    return make_chroma(
        tmp_path / "src",
        {
            "alpha": {
                "metric": "cosine",
                "n": N,
                "dim": 24,
                "seed": 3,
                "ids": ids,
            },
            "beta": {"metric": "l2", "n": 40, "dim": 8, "seed": 4},
        },
    )


def backup_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ferry.cli", "backup", *argv, "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def records(path: Path, name: str) -> dict[str, tuple[bytes, str, str | None]]:
    """Every record as the file reader returns it: id → (vector bytes, metadata, document)."""
    out: dict[str, tuple[bytes, str, str | None]] = {}
    with ChromaDirectory(path) as directory:
        for batch in directory.read(name, None, 1000):
            vectors = np.asarray(batch.vectors, dtype=np.float32)
            for i, record_id in enumerate(batch.ids):
                meta = json.dumps(batch.metadatas[i], sort_keys=True, default=repr)
                out[record_id] = (vectors[i].tobytes(), meta, batch.documents[i])
    return out


def complete_backups(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def test_chroma_backup_equals_the_source_and_never_writes_to_it(
    source: Path, tmp_path: Path
) -> None:
    before = dir_checksum(source)
    to = tmp_path / "backups"
    done = backup_cli(f"chroma+file://{source}", "--collection", "alpha", "--to", str(to))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["reused"] is False and out["kind"] == "chroma-embedded"
    assert out["counts"]["records"] == N
    backup = Path(out["path"])
    assert complete_backups(to) == [backup]
    # The copy reads back exactly: ids, vectors, metadata with types, documents.
    original, copied = records(source, "alpha"), records(backup / DATA, "alpha")
    assert len(original) == N and copied == original
    assert out["restore_uri"] == f"chroma+file://{backup / DATA}"
    # The source is byte-identical (no journal, lock or -shm left by the backup API).
    assert dir_checksum(source) == before
    # The manifest lists every file of the copy with its sha256, and its own hash is given.
    manifest = json.loads((backup / MANIFEST).read_text())
    for entry in manifest["files"]:
        data = (backup / DATA / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert {Path(f["path"]).parts[0] for f in manifest["files"]} >= {"chroma.sqlite3"}
    assert hashlib.sha256((backup / MANIFEST).read_bytes()).hexdigest() == out["manifest_sha256"]
    assert manifest["source_uri"] == f"chroma+file://{source}"


def test_an_unchanged_source_reuses_its_verified_backup(source: Path, tmp_path: Path) -> None:
    to = tmp_path / "backups"
    uri = f"chroma+file://{source}"
    first = json.loads(backup_cli(uri, "--collection", "alpha", "--to", str(to)).stdout)
    inode = (Path(first["path"]) / MANIFEST).stat().st_ino
    second = backup_cli(uri, "--collection", "alpha", "--to", str(to))
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["reused"] is True and again["path"] == first["path"]
    assert again["manifest_sha256"] == first["manifest_sha256"]
    assert (Path(again["path"]) / MANIFEST).stat().st_ino == inode  # nothing was rewritten
    assert complete_backups(to) == [Path(first["path"])]

    # A damaged backup is not trusted: the next backup copies again.
    victim = next((Path(first["path"]) / DATA).rglob("data_level0.bin"))
    victim.write_bytes(b"\0" + victim.read_bytes()[1:])
    third = json.loads(backup_cli(uri, "--collection", "alpha", "--to", str(to)).stdout)
    assert third["reused"] is False and third["path"] != first["path"]

    # A changed source gets a new backup too.
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(source), settings=Settings(anonymized_telemetry=False))
    client.get_collection("alpha").add(ids=["new-one"], embeddings=[[0.5] * 24])
    del client
    fourth = json.loads(backup_cli(uri, "--collection", "alpha", "--to", str(to)).stdout)
    assert fourth["reused"] is False and fourth["counts"]["records"] == N + 1


@pytest.mark.parametrize("seed", [11, 23, 47])
def test_a_killed_backup_leaves_nothing_complete_looking_and_the_next_run_succeeds(
    source: Path, tmp_path: Path, seed: int
) -> None:
    to = tmp_path / "backups"
    uri = f"chroma+file://{source}"
    total = (source / "chroma.sqlite3").stat().st_size + sum(
        f.stat().st_size for f in source.iterdir() if f.is_dir() for f in f.rglob("*")
    )
    # A seeded point anywhere in the copy (the hook stops the process there; we kill it).
    stop_at = random.Random(seed).randint(1, total // 2)
    victim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferry.cli",
            "backup",
            uri,
            "--collection",
            "alpha",
            "--to",
            str(to),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), STOP_AT_ENV: str(stop_at)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status = os.waitpid(victim.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the backup ended before the kill point"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    left = list(to.iterdir())
    assert left and all(p.name.startswith(PARTIAL_PREFIX) for p in left), left
    assert not any((p / MANIFEST).exists() for p in left)

    done = backup_cli(uri, "--collection", "alpha", "--to", str(to))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["reused"] is False and out["counts"]["records"] == N
    assert [p.name for p in to.iterdir()] == [Path(out["path"]).name]  # the partial is gone
    assert records(Path(out["path"]) / DATA, "alpha") == records(source, "alpha")


def test_bad_destinations_and_names_are_one_line_refusals(
    source: Path, tmp_path: Path, capsys
) -> None:
    before = dir_checksum(source)
    uri = f"chroma+file://{source}"
    cases = [
        (["--collection", "alpha", "--to", str(source / "bk")], "inside what it would copy"),
        (["--collection", "nope", "--to", str(tmp_path / "b")], "no collection 'nope'"),
        (["--collection", "", "--to", str(tmp_path / "b")], "--collection is empty"),
    ]
    for argv, words in cases:
        assert cli.main(["backup", uri, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    assert dir_checksum(source) == before
    assert not (tmp_path / "b").exists() or complete_backups(tmp_path / "b") == []


def edge_batch(n: int, start: int = 0) -> Batch:
    rng = np.random.default_rng(start)
    return Batch(
        ids=[f"p-{i}" for i in range(start, start + n)],
        vectors=rng.random((n, 8), dtype=np.float32),
        metadatas=[{"i": i, "f": i / 7} for i in range(start, start + n)],
        documents=[f"doc {i}" for i in range(start, start + n)],
    )


def test_edge_backup_while_a_connector_holds_the_shard(tmp_path: Path) -> None:
    root = tmp_path / "edge"
    uri = f"qdrant+edge://{root}"
    to = tmp_path / "backups"

    async def scenario() -> None:
        async with open_connector(uri) as held:
            info = CollectionInfo(name="docs", count=0, dimension=8, metric=Metric.COSINE)
            await held.prepare(info, WriteMode.CREATE)
            await held.write("docs", edge_batch(700))  # acknowledged, not yet flushed
            # The shard is open in this process's worker: the backup goes through it.
            first = await run_backup(uri, "docs", to)
            assert first.reused is False and first.manifest["counts"] == {"points": 700}
            # Sparse files stay sparse: far fewer blocks than the apparent size.
            data = first.path / DATA
            apparent = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
            blocks = sum(f.stat().st_blocks * 512 for f in data.rglob("*") if f.is_file())
            assert blocks < apparent / 4
            # Unchanged (a flush touches mtimes, not bytes): reused, not copied again.
            second = await run_backup(uri, "docs", to)
            assert second.reused is True and second.path == first.path
            await held.write("docs", edge_batch(5, start=700))
            third = await run_backup(uri, "docs", to)
            assert third.reused is False and third.manifest["counts"] == {"points": 705}
            # The connector still works after the backups.
            assert await held.count("docs") == 705
            originals = await held.fetch("docs", [f"p-{i}" for i in range(705)])
        # The backup is an Edge directory of its own with the same records.
        async with open_connector(f"qdrant+edge://{third.path / DATA}") as copy:
            got = await copy.fetch("docs", originals.ids)
        assert sorted(got.ids) == sorted(originals.ids)
        order = {sid: i for i, sid in enumerate(got.ids)}
        for i, sid in enumerate(originals.ids):
            assert np.array_equal(got.vectors[order[sid]], originals.vectors[i])
            assert got.metadatas[order[sid]] == originals.metadatas[i]

    asyncio.run(scenario())


def test_local_mode_backup_is_a_local_directory_of_that_collection(tmp_path: Path) -> None:
    root = tmp_path / "qlocal"
    uri = f"qdrant+file://{root}"
    make_collections(uri, {"keep": 6, "other": 3})
    to = tmp_path / "backups"
    assert cli.main(["backup", uri, "--collection", "keep", "--to", str(to), "--json"]) == 0
    backups = complete_backups(to)
    assert len(backups) == 1
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(backups[0] / DATA))
    try:
        assert [c.name for c in client.get_collections().collections] == ["keep"]
        assert client.count("keep").count == 6
    finally:
        client.close()


def test_a_killed_cutover_leaves_no_complete_looking_backup_and_the_next_reuses(
    tmp_path: Path,
) -> None:
    root = tmp_path / "edge"
    target = f"qdrant+edge://{root}"
    make_collections(target, {"docs__a": 5, "docs__b": 300})
    state = tmp_path / "journal.sqlite3"
    journal = Journal(state)
    validate(journal, target, "docs__a")
    validate(journal, target, "docs__b")

    def cutover(collection: str, stop_at: int | None = None) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if stop_at is not None:
            env[STOP_AT_ENV] = str(stop_at)
        argv = ["cutover", "--to", target, "--collection", collection, "--alias", "docs"]
        return subprocess.Popen(
            [sys.executable, "-m", "ferry.cli", *argv, "--yes", "--json", "--state", str(state)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    assert cutover("docs__a").wait() == 0
    victim = cutover("docs__b", stop_at=random.Random(5).randint(1, 100_000))
    _pid, status = os.waitpid(victim.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    snapshots = root / ".ferry-snapshots"
    names = [p.name for p in snapshots.iterdir()]
    assert not any(n.startswith("docs__b") for n in names), names  # only partials of it
    assert Journal(state).cutovers.history(target, "docs")[0].to_collection == "docs__a"

    finished = cutover("docs__b")
    out, err = finished.communicate()
    assert finished.returncode == 0, err
    backup = json.loads(out)["snapshot"]
    assert backup["reused"] is False and backup["counts"] == {"points": 300}
    assert not any(p.name.startswith(PARTIAL_PREFIX + "docs__b") for p in snapshots.iterdir())
    record = Journal(state).cutovers.history(target, "docs")[0].detail["backup"]
    manifest = Path(record["path"]) / MANIFEST
    assert record["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()

    # Back and forth again: docs__b has not changed, so its verified backup is reused.
    assert (
        cli.main(["rollback", "--to", target, "--alias", "docs", "--yes", "--state", str(state)])
        == 0
    )
    again = cutover("docs__b")
    out, err = again.communicate()
    assert again.returncode == 0, err
    reused = json.loads(out)["snapshot"]
    assert reused["reused"] is True and reused["path"] == backup["path"]
    assert len([p for p in snapshots.iterdir() if p.name.startswith("docs__b")]) == 1


def test_qdrant_server_backup_downloads_the_snapshot(qdrant_url: str, tmp_path: Path) -> None:
    import uuid

    name = f"bk-{uuid.uuid4().hex[:8]}"
    target = "qdrant+" + qdrant_url
    make_collections(target, {name: 9})
    to = tmp_path / "backups"
    result = asyncio.run(run_backup(target, name, to))
    assert result.manifest["counts"] == {"points": 9}
    files = list((result.path / DATA).iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 0
    checksum = result.manifest["server_snapshot"]["checksum"]
    if checksum:
        assert hashlib.sha256(files[0].read_bytes()).hexdigest() == checksum


def test_ferry_backup_of_a_qdrant_server_verifies_the_download_and_refuses_a_cut_one(
    emulator,  # noqa: ANN001 - the Qdrant test server's control handle
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import uuid

    name = f"bk-{uuid.uuid4().hex[:8]}"
    target = f"qdrant+http://127.0.0.1:{emulator.port}"
    make_collections(target, {name: 12})
    to = tmp_path / "backups"
    snapshot = f"/collections/{name}/snapshots/.*"
    emulator.faults({"method": "GET", "path": snapshot, "cut": True})  # every download
    code = cli.main(["backup", target, "--collection", name, "--to", str(to), "--json"])
    words = capsys.readouterr()
    assert code == 1 and "snapshot download failed" in words.out + words.err
    assert emulator.fault_hits() == [3]  # tried again, then gave up
    assert not [p for p in to.iterdir() if not p.name.startswith(PARTIAL_PREFIX)]  # none kept

    emulator.faults({"method": "GET", "path": snapshot, "cut": True, "times": 1})  # a blip
    code = cli.main(["backup", target, "--collection", name, "--to", str(to), "--json"])
    assert code == 0 and emulator.fault_hits() == [1]
    result = json.loads(capsys.readouterr().out)
    manifest = json.loads((Path(result["path"]) / MANIFEST).read_text())
    assert manifest["counts"] == {"points": 12}
    (snapshot_file,) = (Path(result["path"]) / DATA).iterdir()
    checksum = manifest["server_snapshot"]["checksum"]
    assert checksum and hashlib.sha256(snapshot_file.read_bytes()).hexdigest() == checksum
    assert snapshot_file.name == manifest["server_snapshot"]["name"]
