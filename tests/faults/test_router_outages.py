"""An app on the router meets a broken target and lives: a full disk under Qdrant Edge (a
real tmpfs, filled), a deleted collection, a dead server. Each time the app keeps being
served by the source without one exception, every write lands on the source, the outage
counts toward the error rate, the router rolls back by itself, and the rollback is in the
state file and in the journal the app gave it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings
from qdrant_client import QdrantClient, models

from ferry import cli
from ferry.core.connectors.qdrant.edge_worker import EdgeProcess
from ferry.core.journal import Journal
from ferry.core.layouts import make_layout
from ferry.core.mapping import PayloadFields
from ferry.core.router import ChromaStore, EdgeStore, QdrantStore, Router, read_state
from tests.tcp_proxy import FaultProxy

DIM = 16
DEADLINE_SECONDS = 240.0


def app_store(path: Path, name: str = "docs") -> ChromaStore:
    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    return ChromaStore(
        client.get_or_create_collection(name, configuration={"hnsw": {"space": "cosine"}})
    )


def router_set(state: Path, journal: Path, *args: str) -> None:
    argv = ["router", "set", *args, "--state-file", str(state), "--state", str(journal)]
    assert cli.main(argv) == 0


def run_app(router: Router, state: Path, fault: Callable[[], None], healthy: int = 30) -> int:
    """One write and one keyed read per step, as an app does; the fault strikes after
    `healthy` steps; runs until the router rolled back and 20 steps more. Returns the
    number of records written. Any exception here is the app going down."""
    rng = np.random.default_rng(7)
    step = 0
    rolled_back_at = None
    deadline = time.monotonic() + DEADLINE_SECONDS
    while rolled_back_at is None or step < rolled_back_at + 20:
        assert time.monotonic() < deadline, f"no rollback after {step} steps: {router.stats()}"
        if step == healthy:
            fault()
        vector = rng.normal(size=DIM).astype(np.float32)
        router.upsert([f"w-{step}"], vector, [{"step": step}], [f"doc {step}"])
        hits = router.query(vector, k=3, key=f"user-{step % 97}")
        assert hits.ids[0][0] == f"w-{step}"  # answered, and correctly
        if rolled_back_at is None and read_state(state).get("rolled_back"):
            rolled_back_at = step
        step += 1
    return step


def assert_rolled_back(state: Path, journal: Path, to: str, router: Router, written: int) -> None:
    after = read_state(state)
    assert after["mode"] == to
    assert after["reason"].startswith("automatic rollback: secondary error rate")
    rows = [r for r in Journal(journal).cutovers.history() if (r.detail or {}).get("automatic")]
    assert len(rows) == 1 and rows[0].reason == after["reason"]
    figures = router.flush_stats()
    assert figures["serving_errors"] == 0
    assert figures["replay_backlog"] > 0  # what the target missed waits, in order
    assert router.stores["primary"].count() == written  # every write reached the source


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of `size` at `path` (True), or a plain directory when mounting is not
    permitted here (False)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        unmounted = mounted and not subprocess.run(["umount", str(path)]).returncode
        if mounted and not unmounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> None:
    """Write a file until the filesystem has no byte left."""
    with open(directory / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 16))
                handle.flush()
        except OSError:
            pass


def test_a_full_disk_under_the_edge_target_does_not_take_the_app_down(tmp_path: Path) -> None:
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    with small_filesystem(tmp_path / "small", "40m") as mounted:
        root = tmp_path / "small" / "edge"
        creator = EdgeProcess(root)
        creator.call(
            "create", "docs", DIM, "Cosine", make_layout(None, PayloadFields()).id_field, {}
        )
        creator.close()
        router_set(state, journal, "shadow", "--auto-rollback", "--max-error-rate", "0.05")
        target = EdgeStore(root, "docs")
        router = Router(app_store(tmp_path / "app"), target, state, journal=str(journal))
        worker: dict[str, Any] = {}

        def disk_full() -> None:
            worker["process"] = target.worker._process
            if mounted:
                fill(tmp_path / "small")
            else:  # no tmpfs here: the worker dies as a SIGBUS would kill it
                os.kill(target.worker._process.pid, signal.SIGKILL)

        try:
            written = run_app(router, state, disk_full)
            assert target.count() >= 30 or not mounted  # the healthy part reached the target
            assert_rolled_back(state, journal, "primary-only", router, written)
            figures = router.stats()
            assert figures["stores"]["secondary"]["errors"] >= 3, figures  # failed + queued writes
            print(
                "first failure:",
                router.replay_log.entries()[0]["error"],
                "worker",
                worker["process"].poll(),
            )
            # What the target reported, first: the disk is full. Edge writes through memory
            # maps, so the engine may die of SIGBUS (in the app's process: exit 135, the app
            # gone) or refuse with an error; either way the app above kept being served.
            first = router.replay_log.entries()[0]["error"]
            died = worker["process"].poll()
            if mounted:
                assert died in (None, -signal.SIGBUS), died
                assert "disk full" in first or "No space" in first, first
            else:
                assert died == -signal.SIGKILL, died
        finally:
            router.close()
            target.close()


def test_a_deleted_collection_rolls_the_canary_back_and_the_app_keeps_serving(
    tmp_path: Path,
) -> None:
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    client = QdrantClient(":memory:")
    client.create_collection(
        "docs", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    router_set(state, journal, "canary", "--percent", "50", "--auto-rollback")
    router = Router(
        app_store(tmp_path / "app"), QdrantStore(client, "docs"), state, journal=journal
    )
    try:
        written = run_app(router, state, lambda: client.delete_collection("docs"))
        assert_rolled_back(state, journal, "canary", router, written)
        after = read_state(state)
        assert after["percent"] == 0 and after["rolled_back"]["from_percent"] == 50
        figures = router.stats()
        assert figures["canary"]["fallbacks"] > 0  # target reads were served by the source
        # Every write after the deletion counts: the error rate is not 1 failure in 200.
        assert figures["stores"]["secondary"]["errors"] >= figures["deferred"] + 1
    finally:
        router.close()


def kill_server(proxy: FaultProxy) -> None:
    """The target's server is gone: open connections reset, new ones refused (the proxy's
    listener stays closed for the rest of the test)."""
    asyncio.run_coroutine_threadsafe(proxy._refuse(3600), proxy._loop)
    deadline = time.monotonic() + 30
    while not proxy.injected.get("refused listener"):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_dead_target_server_rolls_back_and_the_app_keeps_serving(
    tmp_path: Path, chroma_server: str
) -> None:
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    proxy = FaultProxy(port).__enter__()
    try:
        remote = chromadb.HttpClient(
            host="127.0.0.1", port=proxy.port, settings=Settings(anonymized_telemetry=False)
        )
        name = f"router-dead-{os.getpid()}-{time.monotonic_ns()}"
        target = ChromaStore(
            remote.create_collection(name, configuration={"hnsw": {"space": "cosine"}})
        )
        router_set(state, journal, "canary", "--percent", "25", "--shadow", "--auto-rollback")
        router = Router(app_store(tmp_path / "app"), target, state, journal=journal)
        written = run_app(router, state, lambda: kill_server(proxy))
        assert_rolled_back(state, journal, "canary", router, written)
        assert read_state(state)["percent"] == 0
        router.close()
    finally:
        proxy.__exit__(None, None, None)


def test_an_edge_shard_held_by_a_ferry_run_is_refused_to_the_app_at_once(tmp_path: Path) -> None:
    """The app's Edge worker does not wait the 15 s a migration's worker would: the app's
    call fails at once (a mirror failure, queued for replay) and names the holder."""
    root = tmp_path / "edge"
    holder = EdgeProcess(root)
    holder.call("create", "docs", DIM, "Cosine", make_layout(None, PayloadFields()).id_field, {})
    store = EdgeStore(root, "docs")
    try:
        with pytest.raises(Exception, match="open in another process"):
            store.count()
        holder.close()  # the run ends: the app's next call gets the shard
        assert store.count() == 0
    finally:
        store.close()
        holder.close()
