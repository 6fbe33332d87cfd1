"""`kill -9` in the middle of `ferry migrate`, then the same command: every record once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import open_connector
from tests.conftest import ROOT, dir_checksum, make_chroma
from tests.names import KEEP_NAMES

N = 3000


def durable_written(state: Path) -> int:
    if not state.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(
                "SELECT COALESCE(SUM(records_written), 0) FROM run_collections"
            ).fetchone()
            return int(row[0])
    except sqlite3.OperationalError:
        return 0


def resume(source: str, target: str, state: Path, env: dict[str, str]) -> dict[str, Any]:
    """The same command again, without a kill: it must exit 0; its `--json` report."""
    resumed = subprocess.run(
        migrate_argv(source, target, state),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    return dict(json.loads(resumed.stdout))


def migrate_argv(source: str, target: str, state: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ferry.cli",
        "migrate",
        *KEEP_NAMES,
        "--from",
        source,
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        str(state),
        "--batch-size",
        "50",
        *extra,
    ]


# The run kills itself right after its first or second checkpoint commit (the engine's own
# fault point): alpha's 3,000 records take >= 2 s at --rate 1000 and commits come >= 0.5 s
# apart, so both land while the copy is under way, on a quiet machine or a busy one (a poller
# that waited for N durable records was late on a busy one).
@pytest.mark.parametrize("kill_at", ["committed:1", "committed:2"])
def test_kill_9_then_resume_copies_every_record_exactly_once(tmp_path: Path, kill_at: str) -> None:
    src = make_chroma(
        tmp_path / "src",
        {
            "alpha": {
                "metric": "cosine",
                "n": N,
                "dim": 16,
                "seed": 5,
                "ids": [f"{i:05d}" if i % 3 else str(i) for i in range(N)],
            },
            "beta": {"metric": "l2", "n": 500, "dim": 16, "seed": 6},
        },
    )
    before = dir_checksum(src)
    source, target = f"chroma+file://{src}", f"qdrant+edge://{tmp_path / 'edge'}"
    state = tmp_path / "journal.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    victim = subprocess.Popen(
        migrate_argv(source, target, state, "--rate", "1000"),
        cwd=ROOT,
        env={**env, "FERRY_KILL_AT": kill_at},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert victim.wait(timeout=120) == -signal.SIGKILL, "the run ended before its kill point"
    interrupted_at = durable_written(state)
    assert 0 < interrupted_at < N + 500

    report = resume(source, target, state, env)
    assert report["status"] == "completed" and report["resumed"] is True
    written = {c["name"]: c["records_written"] for c in report["collections"]}
    assert written == {"alpha": N, "beta": 500}

    import asyncio

    async def check() -> None:
        tgt, src_conn = open_connector(target), open_connector(source)
        try:
            for name, n in (("alpha", N), ("beta", 500)):
                assert await tgt.count(name) == n
                seen: set[str] = set()
                async for batch in src_conn.read(name, None, 500):
                    got = await tgt.fetch(name, batch.ids)
                    assert sorted(got.ids) == sorted(batch.ids)
                    order = {sid: i for i, sid in enumerate(got.ids)}
                    for i, sid in enumerate(batch.ids):
                        assert sid not in seen
                        seen.add(sid)
                        j = order[sid]
                        assert got.metadatas[j] == batch.metadatas[i]
                        assert got.documents[j] == batch.documents[i]
                        a = batch.vectors[i] / (
                            np.linalg.norm(batch.vectors[i]) if name == "alpha" else 1
                        )
                        assert np.allclose(got.vectors[j], a, atol=1e-5)
                assert len(seen) == n
        finally:
            await tgt.close()
            await src_conn.close()

    asyncio.run(check())
    assert dir_checksum(src) == before


def test_killed_while_its_edge_worker_builds_the_index_then_resume(tmp_path: Path) -> None:
    """The run dies with the optimize request in its Edge worker's pipe: the worker, now an
    orphan, goes on building (and swapping) segments for a while. The resumed run's worker
    must wait for it (engine lock) rather than load segments being written, then finish the
    index: completed, search-ready, every record once."""
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "cosine", "n": 2000, "dim": 32}})
    source, target = f"chroma+file://{src}", f"qdrant+edge://{tmp_path / 'edge'}"
    state = tmp_path / "journal.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERRY_KILL_AT": "optimizing:1"}
    killed = subprocess.run(
        migrate_argv(source, target, state), cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL
    env.pop("FERRY_KILL_AT")
    report = resume(source, target, state, env)
    (collection,) = report["collections"]
    assert collection["status"] == "completed" and collection["search_ready"] is True
    assert collection["records_written"] == 2000
