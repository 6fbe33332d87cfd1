"""Re-embedding during `ferry migrate` against real parts: an embedded Chroma source, a
qdrant-client local target, and an OpenAI-compatible server process (tests/embed_server.py)
serving the bundled wordllama model's embeddings with 429s (Retry-After), 500s and slow
answers. Every vector in the target must be the model's embedding of its document."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.connectors import open_connector
from tests.conftest import ROOT, dir_checksum, trap_metadata, wait_until
from tests.embed_fixtures import embed_server, server_stats, wordllama_vectors
from tests.names import KEEP_NAMES

KEY_ENV = "FERRY_TEST_EMBED_KEY"
KEY = "sk-test-7f3a9c1e5b2d4f60a8e1"
MODEL = "openai/wordllama-l2"
WORDS = ["harbour", "ferry", "river", "cargo", "tide", "bridge", "island", "crane", "dock"]


def document(i: int) -> str:
    if i % 10 == 9:  # identical documents: embedded once
        i -= 1
    return f"{WORDS[i % 9]} {WORDS[(i * 7) % 9]} note {i} about the {WORDS[(i // 9) % 9]}"


def make_source(path: Path, n: int, missing: tuple[int, ...] = ()) -> Path:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("notes", configuration={"hnsw": {"space": "l2"}})
    rng = np.random.default_rng(3)
    step = 500
    for start in range(0, n, step):
        rows = range(start, min(n, start + step))
        collection.add(
            ids=[f"n-{i}" for i in rows],
            embeddings=rng.normal(size=(len(rows), 16)).astype(np.float32),
            metadatas=[trap_metadata(i) for i in rows],
            documents=[None if i in missing else document(i) for i in rows],
        )
    del client
    return path


def migrate_argv(source: str, target: str, state: Path, base_url: str, *extra: str) -> list[str]:
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
        "--embed",
        MODEL,
        "--embed-base-url",
        base_url,
        "--embed-api-key-env",
        KEY_ENV,
        "--yes",
        "--json",
        "--log",
        "--state",
        str(state),
        *extra,
    ]


def env_with_key() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), KEY_ENV: KEY}


async def target_records(target: str, source: str) -> list[tuple[Any, Any, Any, Any, Any, Any]]:
    """(id, source doc, source metadata, target doc, target metadata, target vector)."""
    tgt, src = open_connector(target), open_connector(source)
    rows = []
    try:
        async for batch in src.read("notes", None, 500):
            got = await tgt.fetch("notes", batch.ids)
            order = {sid: i for i, sid in enumerate(got.ids)}
            for i, sid in enumerate(batch.ids):
                j = order[sid]
                rows.append(
                    (
                        sid,
                        batch.documents[i],
                        batch.metadatas[i],
                        got.documents[j],
                        got.metadatas[j],
                        got.vectors[j],
                    )
                )
    finally:
        await tgt.close()
        await src.close()
    return rows


def assert_reembedded(target: str, source: str, n: int) -> None:
    rows = asyncio.run(target_records(target, source))
    assert len(rows) == n
    for _sid, doc, meta, got_doc, got_meta, _vector in rows:
        assert got_doc == doc and got_meta == meta
    expected = wordllama_vectors([r[1] for r in rows])
    vectors = np.stack([r[5] for r in rows])
    assert vectors.shape == (n, 256)  # the model's dimension, not the source's 16
    assert np.allclose(vectors, expected, atol=1e-5)


def test_migrate_reembeds_every_record_through_throttling_errors_and_slow_answers(
    tmp_path: Path,
) -> None:
    n = 400
    src = make_source(tmp_path / "src", n)
    before = dir_checksum(src)
    source, target = f"chroma+file://{src}", f"qdrant+file://{tmp_path / 'dst'}"
    state = tmp_path / "state" / "journal.sqlite3"
    env = env_with_key()
    flags = ["--key-env", KEY_ENV, "--throttle-every", "4", "--retry-after", "1"]
    flags += ["--error-every", "7", "--slow-every", "5", "--slow-seconds", "0.3"]
    with embed_server(*flags, env=env) as base_url:
        done = subprocess.run(
            migrate_argv(
                source, target, state, base_url, "--batch-size", "50", "--embed-batch", "25"
            ),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        stats = server_stats(base_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "completed"
    embed = report["embed"]
    assert embed["throttled"] >= 1 and embed["retries"] > embed["throttled"]  # 500s too
    assert stats["throttled"] >= 1 and stats["errors"] >= 1
    # Identical documents were embedded once: the server saw each distinct text once.
    distinct = len({document(i) for i in range(n)})
    assert stats["twice"] == 0 and stats["distinct"] == distinct + 1  # + the dimension probe
    assert embed["duplicates"] == n - distinct
    assert "embed throttled by the endpoint" in done.stderr  # the log says so, as such
    assert_reembedded(target, source, n)
    assert dir_checksum(src) == before
    # The key's value: nowhere Ferry wrote or printed anything.
    for text in (done.stdout, done.stderr):
        assert KEY not in text
    for path in state.parent.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    journal = (state.parent / "journal.sqlite3").read_bytes()
    assert KEY_ENV.encode() in journal  # the variable's name is journaled, not its value


def test_kill_9_half_way_then_the_same_command_pays_for_almost_nothing_twice(
    tmp_path: Path,
) -> None:
    n = 1000
    src = make_source(tmp_path / "src", n)
    source, target = f"chroma+file://{src}", f"qdrant+edge://{tmp_path / 'dst'}"
    state = tmp_path / "state" / "journal.sqlite3"
    env = env_with_key()
    argv_extra = ("--batch-size", "20", "--embed-batch", "20")
    with embed_server("--key-env", KEY_ENV, "--delay-per-text", "0.004", env=env) as base_url:
        victim = subprocess.Popen(
            migrate_argv(source, target, state, base_url, *argv_extra),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: server_stats(base_url)["texts"] >= 350 or victim.poll() is not None,
            timeout=120,
        )
        assert victim.poll() is None, "the run ended before it could be killed"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        paid_before = server_stats(base_url)["texts"]
        again = subprocess.run(
            migrate_argv(source, target, state, base_url, *argv_extra),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        stats = server_stats(base_url)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["status"] == "completed" and report["resumed"] is True
    assert report["embed"]["cached"] > 0
    distinct = len({document(i) for i in range(n)})
    assert 0 < paid_before < distinct
    # At most the requests in flight at the kill were paid twice: a few percent.
    assert stats["twice"] <= 0.05 * n, stats
    assert stats["distinct"] == distinct + 1  # + the dimension probe
    assert_reembedded(target, source, n)


def test_plan_then_records_without_documents_refused_by_id_or_skipped(tmp_path: Path) -> None:
    """The dry run's plan: model, dimension, metric, documents, tokens, time at the rate
    limit, cost; then the run refuses records without a document by id before writing
    anything, and `--embed-missing skip` leaves them out, counted."""
    src = make_source(tmp_path / "src", 120, missing=(3, 41))
    source, target = f"chroma+file://{src}", f"qdrant+file://{tmp_path / 'dst'}"
    state = tmp_path / "state" / "journal.sqlite3"
    env = env_with_key()
    with embed_server("--key-env", KEY_ENV, env=env) as base_url:
        argv = migrate_argv(source, target, state, base_url, "--dry-run", "--embed-missing", "skip")
        argv += ["--embed-price", "0.02", "--embed-rpm", "60", "--embed-batch", "10"]
        argv.remove("--json")
        shown = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        refused = subprocess.run(
            migrate_argv(source, target, state, base_url),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        refused_collections = asyncio.run(target_collections(target))
        skipped = subprocess.run(
            migrate_argv(source, target, state, base_url, "--embed-missing", "skip"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"re-embed with {MODEL}: dimension 16 → 256, metric cosine" in out
    assert "(Chroma recorded: default)" in out
    assert "118 documents (106 distinct)" in out
    assert "2 record(s) without a document, skipped" in out and "'n-3', 'n-41'" in out
    assert "~11s at 60 requests/min" in out  # 11 requests of 10 at one a second
    assert "estimated cost" in out
    assert KEY not in out + shown.stderr

    assert refused.returncode == 2
    assert "'n-3', 'n-41'" in refused.stderr and "--embed-missing skip" in refused.stderr
    assert refused_collections == []  # refused before anything was written

    assert skipped.returncode == 0, skipped.stderr
    report = json.loads(skipped.stdout)
    assert report["embed"]["skipped"] == 2
    assert asyncio.run(count_target(target)) == 118


async def target_collections(target: str) -> list[str]:
    tgt = open_connector(target)
    try:
        return list(await tgt.list_collections())
    finally:
        await tgt.close()


async def count_target(target: str) -> int:
    tgt = open_connector(target)
    try:
        return await tgt.count("notes")
    finally:
        await tgt.close()
