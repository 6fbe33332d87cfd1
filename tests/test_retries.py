"""Transient failures are retried (tenacity), counted, and lose or duplicate nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cli import main
from core.connectors import open_connector
from tests.conftest import make_chroma, unique_name
from tests.tcp_proxy import DroppingProxy


def test_dropped_connections_mid_migration_are_retried(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_name("flaky")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 400, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    state = tmp_path / "j.sqlite3"
    with DroppingProxy(port, drop={2, 3, 6}, only=b"/upsert") as proxy:
        code = main(
            [
                "migrate",
                "--from",
                f"chroma+file://{src}",
                "--to",
                f"chroma+http://127.0.0.1:{proxy.port}",
                "--collection",
                name,
                "--batch-size",
                "40",
                "--yes",
                "--json",
                "--state",
                str(state),
            ]
        )
        # Usually 3; a request line split across TCP reads is not counted (and not dropped).
        assert proxy.dropped >= 2
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["collections"][0]["records_written"] == 400
    with sqlite3.connect(state) as db:
        retries = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'retry'").fetchone()[0]
    assert retries >= proxy.dropped
    assert asyncio.run(open_connector(chroma_server).count(name)) == 400


async def test_retries_run_out_the_collection_fails_cleanly(
    tmp_path: Path, chroma_server: str
) -> None:
    """Every write dropped: retries run out, the collection fails with a reason, nothing hangs."""
    from core.engine import MigrationOptions
    from core.journal import Journal
    from core.runner import migrate

    name = unique_name("down")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 300, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    with DroppingProxy(port, drop=set(range(1, 10_000)), only=b"/upsert") as proxy:
        outcome = await migrate(
            f"chroma+file://{src}",
            f"chroma+http://127.0.0.1:{proxy.port}",
            [name],
            MigrationOptions(batch_size=50, max_attempts=2, retry_initial=0.01, retry_max=0.02),
            Journal(tmp_path / "j.sqlite3"),
        )
    assert outcome.status == "failed"
    result = outcome.collections[0]
    assert result.status == "failed" and result.records_written == 0
    assert result.error and "Chroma did not answer upsert" in result.error
