"""The router library an app embeds: real chromadb as the app's primary store, real Qdrant
(local mode, or a client pointed at a closed port for a real refused connection) as the
secondary, and the real `ferry router set` command changing the mode under a live Router.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings
from qdrant_client import QdrantClient, models

from ferry import cli
from ferry.core.journal import Journal
from ferry.core.router import ChromaStore, QdrantStore, Router, Thresholds, overlap_at_k, read_state

DIM = 16


def chroma_store(tmp_path: Path, name: str = "docs") -> ChromaStore:
    client = chromadb.PersistentClient(
        str(tmp_path / "app-chroma"), settings=Settings(anonymized_telemetry=False)
    )
    return ChromaStore(
        client.get_or_create_collection(name, configuration={"hnsw": {"space": "cosine"}})
    )


def qdrant_memory(name: str = "docs") -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection(
        name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    return client


def closed_port() -> int:
    """A localhost port nobody listens on: connecting is refused by the kernel."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_qdrant() -> QdrantStore:
    client = QdrantClient(
        host="127.0.0.1", port=closed_port(), timeout=2, check_compatibility=False
    )
    return QdrantStore(client, "docs")


def records(start: int, n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[Any]]:
    rng = np.random.default_rng(seed + start)
    ids = [f"doc-{i}" for i in range(start, start + n)]
    return ids, rng.normal(size=(n, DIM)).astype(np.float32), [{"i": i} for i in range(n)]


def set_mode(state: Path, journal: Path, mode: str, *extra: str) -> None:
    assert (
        cli.main(
            ["router", "set", mode, "--state-file", str(state), "--state", str(journal), *extra]
        )
        == 0
    )


def test_dual_write_with_an_unreachable_secondary_keeps_serving(tmp_path: Path) -> None:
    state = tmp_path / "router.json"
    set_mode(state, tmp_path / "j.sqlite3", "dual-write")
    primary = chroma_store(tmp_path)
    router = Router(primary, unreachable_qdrant(), state)
    for start in (0, 10, 20):
        ids, vectors, metas = records(start, 10)
        router.upsert(ids, vectors, metas)  # must not raise: the secondary is only a mirror
    router.delete(["doc-3"])
    assert primary.count() == 29
    hits = router.query(records(0, 1)[1], k=1)
    assert hits.ids == [["doc-0"]]  # served from the primary, unaffected
    assert router.mirror_failures == 1  # the first write failed for real...
    assert router.deferred == 3  # ...the rest queued behind it, in order
    lines = (tmp_path / "router.json.replay.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["op"] for e in entries] == ["upsert", "upsert", "upsert", "delete"]
    assert all(e["side"] == "secondary" for e in entries)
    assert "ResponseHandlingException" in entries[0]["error"]
    assert entries[0]["ids"][:2] == ["doc-0", "doc-1"]
    figures = router.flush_stats()
    # One real failure and three writes queued behind it: all four count as failed writes,
    # so an outage shows in the error rate instead of hiding behind its first failure.
    assert figures["stores"]["secondary"]["errors"] == 4
    assert figures["replay_backlog"] == 4
    # Still down: a replay keeps everything for the next try.
    result = router.replay()
    assert (result.replayed, result.remaining) == (0, 4) and result.error
    router.close()


def test_replay_pushes_missed_writes_in_order_once_the_secondary_is_back(
    tmp_path: Path,
) -> None:
    state = tmp_path / "router.json"
    set_mode(state, tmp_path / "j.sqlite3", "dual-write")
    client = qdrant_memory()
    client.delete_collection("docs")  # a real failure: the collection is gone
    router = Router(chroma_store(tmp_path), QdrantStore(client, "docs"), state)
    ids, vectors, metas = records(0, 5)
    router.upsert(ids, vectors, metas, ["first"] * 5)
    router.upsert(ids[:2], vectors[:2], metas[:2], ["second"] * 2)  # newer values
    router.delete(["doc-4"])
    assert router.mirror_failures == 1 and router.deferred == 2

    client.create_collection(
        "docs", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    result = router.replay()
    assert (result.replayed, result.remaining, result.error) == (3, 0, None)
    assert client.count("docs").count == 4
    got = router.stores["secondary"].get(["doc-0", "doc-2", "doc-4"])
    assert got.ids == ["doc-0", "doc-2"]
    assert got.documents == ["second", "first"]  # order kept: the old value did not win
    # The mirror writes directly again now the backlog is empty.
    router.upsert(["doc-9"], records(9, 1)[1])
    assert router.deferred == 2 and client.count("docs").count == 5
    router.close()


def test_shadow_reads_record_overlap_and_latency(tmp_path: Path, capsys) -> None:
    state = tmp_path / "router.json"
    journal = tmp_path / "j.sqlite3"
    set_mode(state, journal, "dual-write")
    secondary_client = qdrant_memory()
    router = Router(chroma_store(tmp_path), QdrantStore(secondary_client, "docs"), state)
    ids, vectors, metas = records(0, 200)
    router.upsert(ids, vectors, metas)
    assert secondary_client.count("docs").count == 200

    set_mode(state, journal, "shadow")
    queries = records(1000, 20, seed=7)[1]
    for vector in queries:
        served = router.query(vector, k=10)
        assert len(served.ids[0]) == 10
    router.wait_for_shadows()
    shadow = router.stats()["shadow"]
    assert shadow["compared"] == 20 and shadow["errors"] == 0
    assert shadow["overlap_at_k"] >= 0.9  # same data, two HNSW indexes
    assert isinstance(shadow["latency_diff_ms"], float)

    # Half the records missing on the secondary: the overlap says so.
    secondary_client.delete(
        "docs",
        points_selector=models.PointIdsList(
            points=[p.id for p in secondary_client.scroll("docs", limit=100)[0]]
        ),
    )
    fresh = Router(
        router.stores["primary"],
        router.stores["secondary"],
        state,
        stats_path=tmp_path / "other.json",
    )
    for vector in queries:
        fresh.query(vector, k=10)
    fresh.wait_for_shadows()
    assert fresh.stats()["shadow"]["overlap_at_k"] < 0.8

    router.flush_stats()
    capsys.readouterr()
    assert cli.main(["router", "status", "--state-file", str(state), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["mode"] == "shadow"
    assert view["stats"]["shadow"]["compared"] == 20
    assert view["stats"]["shadow"]["overlap_at_k"] >= 0.9
    router.close()
    fresh.close()


def test_a_mode_change_reaches_a_running_app(tmp_path: Path) -> None:
    state = tmp_path / "router.json"
    journal = tmp_path / "j.sqlite3"
    secondary_client = qdrant_memory()
    router = Router(chroma_store(tmp_path), QdrantStore(secondary_client, "docs"), state)
    assert router.mode.value == "primary-only"  # no state file yet
    router.upsert(*records(0, 3)[:2])
    assert secondary_client.count("docs").count == 0

    set_mode(state, journal, "dual-write", "--reason", "start mirroring")
    router.upsert(*records(3, 3)[:2])
    assert secondary_client.count("docs").count == 3  # the next call used the new mode

    # Only the secondary knows this record: a flipped router serves it.
    only_there = np.full((1, DIM), 0.5, np.float32)
    QdrantStore(secondary_client, "docs").upsert(["secondary-only"], only_there)
    assert router.query(only_there, k=1).ids != [["secondary-only"]]  # primary serves
    set_mode(state, journal, "flipped")
    assert router.query(only_there, k=1).ids == [["secondary-only"]]
    set_mode(state, journal, "primary-only")
    assert router.query(only_there, k=1).ids != [["secondary-only"]]

    rows = Journal(journal).cutovers.history()
    assert [(r.action, r.from_collection, r.to_collection) for r in rows] == [
        ("router", "flipped", "primary-only"),
        ("router", "dual-write", "flipped"),
        ("router", "primary-only", "dual-write"),
    ]
    assert rows[-1].reason == "start mirroring"
    router.close()


def test_a_failing_target_after_the_flip_rolls_back_by_itself_when_enabled(
    tmp_path: Path,
) -> None:
    state = tmp_path / "router.json"
    journal_path = tmp_path / "j.sqlite3"
    set_mode(state, journal_path, "flipped", "--auto-rollback", "--max-error-rate", "0.05")
    primary = chroma_store(tmp_path)
    primary.upsert(*records(0, 5)[:2])
    router = Router(
        primary,
        unreachable_qdrant(),
        state,
        thresholds=Thresholds(min_calls=3),
        journal=Journal(journal_path),
    )
    failures = 0
    for _ in range(3):
        with pytest.raises(Exception, match="Connection refused|ConnectError|refused"):
            router.query(records(0, 1)[1], k=1)  # the serving store's errors reach the app
        failures += 1
    assert failures == 3
    assert router.recommendation is not None
    assert router.recommendation["to"] == "dual-write"
    assert read_state(state)["mode"] == "dual-write"
    assert read_state(state)["changed_by"].startswith("router pid")
    # The next call is served by the primary again.
    assert router.query(records(0, 1)[1], k=1).ids == [["doc-0"]]
    row = Journal(journal_path).cutovers.history()[0]
    assert (row.action, row.from_collection, row.to_collection) == (
        "router",
        "flipped",
        "dual-write",
    )
    assert "error rate" in row.reason
    router.close()


def test_shadow_errors_recommend_but_do_not_act_unless_enabled(tmp_path: Path) -> None:
    state = tmp_path / "router.json"
    set_mode(state, tmp_path / "j.sqlite3", "shadow")
    primary = chroma_store(tmp_path)
    primary.upsert(*records(0, 5)[:2])
    router = Router(primary, unreachable_qdrant(), state, thresholds=Thresholds(min_calls=3))
    for _ in range(4):
        assert router.query(records(0, 1)[1], k=1).ids == [["doc-0"]]
    router.wait_for_shadows()
    router.query(records(0, 1)[1], k=1)
    figures = router.flush_stats()
    assert figures["shadow"]["errors"] >= 4
    assert figures["recommendation"]["to"] == "primary-only"
    assert read_state(state)["mode"] == "shadow"  # auto-rollback is off
    router.close()


def test_overlap_at_k() -> None:
    assert overlap_at_k([["a", "b", "c", "d"]], [["d", "c", "x", "y"]], 4) == 0.5
    assert overlap_at_k([["a"], ["b"]], [["a"], ["c"]], 1) == 0.5
    assert overlap_at_k([["a", "b"]], [["a"]], 10) == 0.5


def test_dual_write_into_a_qdrant_server_replays_what_its_429_refused(
    tmp_path: Path,
    emulator,  # noqa: ANN001 - the Qdrant test server's control handle
) -> None:
    """The mirror on a real REST client: a throttled write is queued, not lost, and the
    replay pushes it once the server accepts writes again."""
    import uuid

    name = f"router-{uuid.uuid4().hex[:8]}"
    client = QdrantClient(url=emulator.url, timeout=10, check_compatibility=False)
    client.create_collection(
        name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    state = tmp_path / "router.json"
    set_mode(state, tmp_path / "j.sqlite3", "dual-write")
    points = f"/collections/{name}/points"
    emulator.faults({"method": "PUT", "path": points, "status": 429, "retry_after": "1"})
    router = Router(chroma_store(tmp_path), QdrantStore(client, name), state)
    try:
        for start in (0, 5):
            router.upsert(*records(start, 5))
        assert router.mirror_failures == 1 and router.deferred == 1
        assert router.replay().remaining == 2  # still throttled: kept for the next try
        emulator.faults()
        result = router.replay()
        assert (result.replayed, result.remaining, result.error) == (2, 0, None)
        assert client.count(name).count == 10
        hits = router.stores["secondary"].query(records(0, 1)[1], k=1)
        assert hits.ids == [["doc-0"]]
    finally:
        router.close()
        client.delete_collection(name)
        client.close()
