"""Shared fixtures: real Chroma (embedded and a `chroma run` server), real Qdrant engines.

Nothing here is a mock. Every fixture builds real data in a temporary directory, and the
Chroma server is a real process on 127.0.0.1 with a free port, torn down after the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the developer's own config, state or cache."""
    monkeypatch.setenv("FERRY_STATE", str(tmp_path / "state" / "journal.sqlite3"))
    monkeypatch.setenv("FERRY_CONFIG", str(tmp_path / "config" / "profiles.toml"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def edge_workers_stopped() -> Iterator[None]:
    """A test that forgot to close a connector must not leave its Edge worker running."""
    yield
    from ferry.core.connectors.qdrant.edge import close_all_workers

    close_all_workers()


@pytest.fixture(autouse=True)
def memory_stores_forgotten() -> Iterator[None]:
    """`memory://` stores live in the process: each test starts without any."""
    yield
    from ferry.core.connectors.memory import forget_memory_stores

    forget_memory_stores()


# The id traps of the Core issue: each pair must stay two records.
TRAP_IDS = [
    "12",
    "00012",
    "-5",
    "0",
    "18446744073709551615",  # u64 max: canonical
    "18446744073709551616",  # u64 max + 1: must be mapped
    "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
    "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "x" * 300,
    "ünïcødé-ид-标识-🚀",
    "with space",
    " 7",
]


def trap_metadata(i: int) -> dict[str, Any] | None:
    """Metadata of every type Chroma stores, and sometimes none at all."""
    if i % 5 == 4:
        return None
    return {
        "int": i,
        "float": float(i) + 0.5,
        "whole_float": 1.0,
        "bool": i % 2 == 0,
        "str": f"value-{i}",
        "ints": [i, i + 1],
        "strs": ["a", f"b{i}"],
        "floats": [0.5, 1.0],
        "bools": [True, False],
    }


def make_chroma(
    path: Path,
    collections: dict[str, dict[str, Any]],
) -> Path:
    """Build an embedded Chroma directory. Spec per collection: metric, n, dim, ids?, seed,
    hnsw? (chroma's configuration keys: max_neighbors, ef_construction, ef_search)."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    for name, spec in collections.items():
        hnsw = {"space": spec.get("metric", "cosine"), **spec.get("hnsw", {})}
        collection = client.create_collection(name, configuration={"hnsw": hnsw})
        n = spec.get("n", 0)
        if not n:
            continue
        dim = spec.get("dim", 8)
        rng = np.random.default_rng(spec.get("seed", 0))
        ids = spec.get("ids") or [f"rec-{i}" for i in range(n)]
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        metadatas = [trap_metadata(i) for i in range(n)]
        documents = [None if i % 7 == 3 else f"document {i} of {name}" for i in range(n)]
        step = client.get_max_batch_size()
        for start in range(0, n, step):
            end = start + step
            collection.add(
                ids=ids[start:end],
                embeddings=vectors[start:end],
                metadatas=metadatas[start:end],
                documents=documents[start:end],
            )
    del client
    return path


def dir_checksum(path: Path) -> dict[str, str]:
    """sha256 of every file below `path`: proves the source was not touched."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll a condition until it holds (waiting on a fact, not sleeping for time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@contextlib.contextmanager
def running_chroma_server(data: Path) -> Iterator[str]:
    """A real `chroma run` server on 127.0.0.1 with a free port, its data under `data`."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [chroma, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError((data / "server.log").read_text()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    try:
        wait_until(answers, timeout=60)
        yield f"chroma+http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the session: yields its base URI."""
    with running_chroma_server(tmp_path_factory.mktemp("chroma-server")) as uri:
        yield uri


@pytest.fixture
def fresh_chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of the test's own, for a test whose exactness must not depend on what the
    session's server went through (chromadb 1.5's server has returned another record's
    metadata for a None-metadata record after long use: see the round-trip test)."""
    with running_chroma_server(tmp_path_factory.mktemp("chroma-fresh")) as uri:
        yield uri


def unique_name(prefix: str = "col") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def qdrant_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The Qdrant REST test server (tests/qdrant_server) for the session: Qdrant Edge behind
    Qdrant's REST API, on 127.0.0.1 with a free port. Tests name their own collections."""
    from tests.qdrant_server import running_emulator

    with running_emulator(tmp_path_factory.mktemp("qdrant-emulator")) as control:
        yield control


@pytest.fixture
def emulator(qdrant_emulator: Any) -> Iterator[Any]:
    """The session's emulator with no faults, no key and Qdrant's indexing threshold, before
    and after the test (for tests that inject faults or require a key)."""
    from tests.qdrant_server.convert import DEFAULT_INDEXING_KB

    qdrant_emulator.reset(DEFAULT_INDEXING_KB)
    yield qdrant_emulator
    qdrant_emulator.reset(DEFAULT_INDEXING_KB)


@pytest.fixture
def qdrant_url(request: pytest.FixtureRequest) -> str:
    """A real server when QDRANT_URL is set, else the emulator (never a skip)."""
    url = os.environ.get("QDRANT_URL")
    if url:
        return url
    return str(request.getfixturevalue("qdrant_emulator").url)
