"""The Qdrant server path: a real server when QDRANT_URL is set, else the Qdrant test server
(tests/qdrant_server, docs/qdrant-test-server.md); tests that inject faults or require a key
always use the test server (its control API)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ferry.cli import main
from ferry.core.connectors import open_connector
from tests.conftest import make_chroma, unique_name
from tests.names import KEEP_NAMES


def server_uri(url: str) -> str:
    parts = urlsplit(url)
    scheme = "qdrant+https" if parts.scheme == "https" else "qdrant+http"
    uri = f"{scheme}://{parts.hostname}:{parts.port or 6333}"
    if os.environ.get("QDRANT_API_KEY"):
        uri += "?api_key_env=QDRANT_API_KEY"
    return uri


def test_migrate_into_a_qdrant_server(
    tmp_path: Path, qdrant_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_name("ferry-test")
    src = make_chroma(tmp_path / "src", {name: {"metric": "cosine", "n": 300, "dim": 8}})
    target = server_uri(qdrant_url)
    code = main(
        [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{src}",
            "--to",
            target,
            "--yes",
            "--json",
            "--state",
            str(tmp_path / "j.sqlite3"),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report

    async def count_and_drop() -> int:
        connector = open_connector(target)
        try:
            return await connector.count(name)
        finally:
            await connector.client.delete_collection(name)
            await connector.close()

    assert asyncio.run(count_and_drop()) == 300


# -- against the Qdrant test server (tests/qdrant_server): what only an emulator can stage ------
def migrate_json(
    capsys: pytest.CaptureFixture[str], src: Path, target: str, state: Path, *extra: str
) -> tuple[int, dict, str]:
    code = main(
        [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{src}",
            "--to",
            target,
            "--yes",
            "--json",
            "--state",
            str(state),
            *extra,
        ]
    )
    captured = capsys.readouterr()
    try:
        report = json.loads(captured.out)
    except ValueError:
        report = {}
    return code, report, captured.out + captured.err


def count_on(url: str, name: str, key: str | None = None) -> int:
    from qdrant_client import QdrantClient

    client = QdrantClient(url=url, api_key=key, check_compatibility=False)
    try:
        return int(client.count(name, exact=True).count)
    finally:
        client.close()


def test_a_key_in_api_key_env_reaches_the_server_as_api_key_and_nowhere_else(
    tmp_path: Path,
    emulator,  # noqa: ANN001 - the emulator's control handle
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "k3y-" + unique_name("canary")
    name = unique_name("keyed")
    src = make_chroma(tmp_path / "src", {name: {"metric": "cosine", "n": 120, "dim": 8}})
    emulator.require_key(key)
    state = tmp_path / "j.sqlite3"
    target = f"qdrant+http://127.0.0.1:{emulator.port}?api_key_env=FERRY_TEST_QDRANT_KEY"

    # Without the variable's value the server refuses us: one line naming the variable.
    monkeypatch.setenv("FERRY_TEST_QDRANT_KEY", "wrong-key")

    async def ping() -> Any:
        async with open_connector(target) as connector:
            return await connector.ping()

    refused = asyncio.run(ping())
    assert not refused.ok and refused.auth == "failed" and "wrong-key" not in refused.detail
    code, _report, words = migrate_json(capsys, src, target, tmp_path / "refused.sqlite3")
    assert code != 0 and "api_key_env" in words and "wrong-key" not in words

    monkeypatch.setenv("FERRY_TEST_QDRANT_KEY", key)
    code, report, words = migrate_json(capsys, src, target, state)
    assert code == 0, words
    assert report["collections"][0]["search_ready"] is True
    assert count_on(emulator.url, name, key) == 120
    seen = [s for s in emulator.log() if s["status"] != 401]
    assert seen and all(s["api_key_header"] for s in seen)
    assert not any(s["key_elsewhere"] for s in emulator.log())  # not in a URL, body, header
    assert key not in words
    for path in tmp_path.rglob("*"):  # the journal, its WAL, anything Ferry wrote
        if path.is_file() and "src" not in path.parts:
            assert key.encode() not in path.read_bytes(), path
    status = main(["status", "--json", "--state", str(state)])
    assert status == 0 and key not in capsys.readouterr().out


def test_429_and_503_from_the_server_are_waited_out_and_counted(
    tmp_path: Path,
    emulator,  # noqa: ANN001
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = unique_name("throttled")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 200, "dim": 8}})
    upserts = f"/collections/{name}/points"
    emulator.faults(
        {"method": "PUT", "path": upserts, "status": 429, "retry_after": "1", "times": 3},
        {"method": "POST", "path": f"/collections/{name}/points/count", "status": 503, "times": 2},
    )
    target = f"qdrant+http://127.0.0.1:{emulator.port}"
    code, report, words = migrate_json(
        capsys, src, target, tmp_path / "j.sqlite3", "--batch-size", "50"
    )
    assert code == 0, words
    assert emulator.fault_hits() == [3, 2]
    assert report["retries"] >= 3  # the upserts' waits, counted (the count's are preflight's)
    assert report["collections"][0]["records_written"] == 200
    assert count_on(emulator.url, name) == 200
    answered = [s["status"] for s in emulator.log() if s["path"] == upserts]
    assert answered.count(429) == 3 and answered[-1] == 200


def test_a_server_that_keeps_throttling_is_reported_as_throttled_within_the_give_up_time(
    tmp_path: Path,
    emulator,  # noqa: ANN001
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = unique_name("always429")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 60, "dim": 8}})
    emulator.faults(
        {"method": "PUT", "path": f"/collections/{name}/points", "status": 429, "retry_after": "1"}
    )
    target = f"qdrant+http://127.0.0.1:{emulator.port}"
    code, report, words = migrate_json(
        capsys, src, target, tmp_path / "j.sqlite3", "--give-up-after", "4"
    )
    assert code == 1, words
    result = report["collections"][0]
    assert result["status"] == "failed" and "throttled" in result["error"]
    assert "answered 429" in result["error"] and "cannot reach" not in words
    assert 2 <= emulator.fault_hits()[0] <= 8  # waited, ~1 s apart, then gave up
    assert report["retries"] >= 2


def test_migrate_is_search_ready_after_the_index_phase_goes_yellow_then_green(
    tmp_path: Path,
    emulator,  # noqa: ANN001
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ferry defers HNSW (m=0) during the copy, restores it, and waits for green: the
    emulator's optimizer builds it in a process of its own and answers yellow until done."""
    emulator.indexing_threshold_kb(16)  # 1,500 × 32 floats: over it, so Qdrant would index
    emulator.optimizer_min_seconds(2.5)  # as long as a big collection's: Ferry polls each second
    name = unique_name("indexed")
    src = make_chroma(tmp_path / "src", {name: {"metric": "cosine", "n": 1500, "dim": 32}})
    target = f"qdrant+http://127.0.0.1:{emulator.port}"
    code, report, words = migrate_json(capsys, src, target, tmp_path / "j.sqlite3")
    assert code == 0, words
    result = report["collections"][0]
    assert result["status"] == "completed" and result["search_ready"] is True
    statuses = [
        s["collection_status"]
        for s in emulator.log()
        if s["path"] == f"/collections/{name}" and s["collection_status"]
    ]
    assert "yellow" in statuses, statuses
    assert statuses[-1] == "green" and statuses.index("yellow") < len(statuses) - 1
    from qdrant_client import QdrantClient

    client = QdrantClient(url=emulator.url, check_compatibility=False)
    try:
        info = client.get_collection(name)
        assert info.config.hnsw_config.m and info.indexed_vectors_count == 1500
    finally:
        client.close()


def test_upserts_stay_under_the_server_s_request_limit_with_long_documents(
    tmp_path: Path,
    emulator,  # noqa: ANN001
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A batch of 40 records with ~1 MB documents is ~40 MB as JSON: over Qdrant's 32 MiB
    request limit (which the test server enforces with Qdrant's 400), so Ferry splits it."""
    import chromadb
    from chromadb.config import Settings

    name = unique_name("long-docs")
    client = chromadb.PersistentClient(
        str(tmp_path / "src"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.create_collection(name)
    collection.add(
        ids=[f"d{i}" for i in range(40)],
        embeddings=[[float(i), 1.0, 0.5, 0.25] for i in range(40)],
        documents=[f"{i} " + "é" * 500_000 for i in range(40)],  # 1 MB of UTF-8 each
    )
    del client
    target = f"qdrant+http://127.0.0.1:{emulator.port}"
    code, report, words = migrate_json(
        capsys, tmp_path / "src", target, tmp_path / "j.sqlite3", "--batch-size", "40"
    )
    assert code == 0, words[-2000:]
    upserts = [s for s in emulator.log() if s["path"] == f"/collections/{name}/points"]
    assert len(upserts) >= 2 and all(s["status"] == 200 for s in upserts)
    assert max(s["bytes"] for s in upserts) <= 32 * 1024 * 1024
    assert sum(s["bytes"] for s in upserts) > 32 * 1024 * 1024  # one request would not fit
    assert count_on(emulator.url, name) == 40


def test_the_test_server_answers_what_it_does_not_serve_in_qdrant_s_error_shape(
    emulator,  # noqa: ANN001
) -> None:
    """Unknown endpoints and fields, missing collections: Qdrant's status codes and its
    `{"status": {"error": ...}, "time": ...}`, which qdrant-client raises as it would."""
    import httpx
    from qdrant_client import QdrantClient
    from qdrant_client.http.exceptions import UnexpectedResponse

    def shape(answer: httpx.Response) -> str:
        body = answer.json()
        assert set(body) == {"status", "time"} and isinstance(body["time"], float)
        return str(body["status"]["error"])

    base = emulator.url
    assert "Not found" in shape(httpx.post(f"{base}/collections/x/points/recommend", json={}))
    name = unique_name("shape")
    unknown_field = {"vectors": {"size": 4, "distance": "Cosine"}, "colour": "blue"}
    answer = httpx.put(f"{base}/collections/{name}", json=unknown_field)
    assert answer.status_code == 400 and "colour" in shape(answer)
    answer = httpx.get(f"{base}/collections/{name}")
    assert answer.status_code == 404 and f"Collection `{name}` doesn't exist" in shape(answer)
    client = QdrantClient(url=base, check_compatibility=False)
    try:
        with pytest.raises(UnexpectedResponse) as caught:
            client.count(name)
        assert caught.value.status_code == 404
    finally:
        client.close()
