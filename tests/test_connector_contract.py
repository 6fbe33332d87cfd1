"""The connector contract (tests/connector_contract.py) on every registered backend, with
real engines underneath.

Each *subject* is one connector with a known data set loaded: read-only sources get it
from a Chroma directory built once per module, targets get it through their own `prepare`
and `write` (so reading it back is a round trip). The subjects are the registry's backends
(core/connectors/registry.py) in its order: a backend registered without a subject here
fails `test_every_registered_backend_is_under_contract`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import Capability, TargetConnector, backends, open_connector
from ferry.core.layouts import make_layout
from ferry.core.model import CollectionInfo, Metric
from ferry.core.plan import app_switch
from tests.connector_contract import (
    DOCUMENTS,
    IDS,
    METADATAS,
    METRICS,
    VECTORS,
    ConnectorContract,
    Subject,
    collection_name,
)

# -- subjects: each registered backend's, by the registry's name ------------------------------
SUBJECTS_OF: dict[str, list[str]] = {
    "chroma": [
        "chroma-files",  # chroma+file:// through the file reader (read-only)
        "chroma-0.3",  # chroma+file:// on a Chroma 0.3 DuckDB+Parquet directory (read-only)
        "chroma-api-copy-reader",  # chroma+file://…?api=1: the API on a private copy (read-only)
        "chroma-api-on-a-copy",  # ChromaApiConnector over PersistentClient on a copy: writable
        "chroma-server",  # a real `chroma run`
    ],
    "qdrant": [
        "qdrant-edge",
        "qdrant-local-file",
        "qdrant-memory",
        "qdrant-server",  # QDRANT_URL, else the Qdrant test server (tests/qdrant_server)
    ],
    "memory": ["memory"],  # memory://NAME (core/connectors/memory.py)
    "parquet": ["parquet"],  # parquet+file:// (core/connectors/files/parquet.py)
    "jsonl": ["jsonl"],  # jsonl+file:// (core/connectors/files/jsonl.py)
}
SUBJECTS = [label for backend in backends() for label in SUBJECTS_OF.get(backend.name, [])]


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


def test_read_only_sources_are_not_targets(chroma_dir: Path) -> None:
    connector = open_connector(f"chroma+file://{chroma_dir}")
    assert not isinstance(connector, TargetConnector)
    assert not connector.can(Capability.WRITE)


class TestEveryBackend(ConnectorContract):
    """The whole suite, once per subject (the module's `subject` fixture)."""


def test_every_registered_backend_is_under_contract() -> None:
    registered = [backend.name for backend in backends()]
    assert sorted(registered) == sorted(SUBJECTS_OF), "a backend without contract subjects"
    assert {"chroma+file", "qdrant+edge", "jsonl+file"} <= {
        scheme for backend in backends() for scheme in backend.schemes
    }


@pytest.mark.parametrize(
    ("uri", "line"),
    [
        ("chroma+http://localhost:8000", "the app keeps its Chroma store: point it at"),
        ("memory://app-switch", "memory keeps records as read: no app switch applies"),
    ],
)
def test_the_app_switch_follows_the_targets_traits(uri: str, line: str) -> None:
    """A Chroma target keeps the app on Chroma; a target without layouts has nothing to switch
    (the plan reads `traits.apps_read_natively`, not the connector's name)."""
    info = CollectionInfo("docs", 0, 8, Metric.L2)
    lines = app_switch(open_connector(uri), make_layout("flat", None), info, "docs", None)
    assert len(lines) == 1 and lines[0].startswith(line)
