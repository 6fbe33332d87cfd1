"""Against a real Qdrant server, when QDRANT_URL is set (skipped otherwise)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cli import main
from core.connectors import open_connector
from tests.conftest import make_chroma, unique_name


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
