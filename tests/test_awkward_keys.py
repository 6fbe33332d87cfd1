"""Metadata keys that are not identifiers (`Department:`, `a.b`, spaces, unicode, quotes) are
data: the migration succeeds on every Qdrant target, payload indexes use quoted paths, and a
filter on such a key finds its records (asked through the engines' own APIs)."""

from __future__ import annotations

import json
from pathlib import Path

import chromadb
import numpy as np
import pytest
import qdrant_edge as qe

from ferry.cli import main
from ferry.core.mapping import canonical_point_id
from ferry.core.payload_paths import path_segment
from tests.names import KEEP_NAMES

KEYS = ["Department:", "WashU Email Address:", "a.b", "with space", "größe", 'say "hi"', "x\\y"]


def awkward_source(root: Path) -> str:
    client = chromadb.PersistentClient(str(root))
    collection = client.create_collection("people", configuration={"hnsw": {"space": "l2"}})
    n = 12
    metadatas = [{key: f"v{i % 3}" for key in KEYS} | {"n": i} for i in range(n)]
    collection.add(
        ids=[f"p{i}" for i in range(n)],
        embeddings=np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32),
        metadatas=metadatas,
    )
    return f"chroma+file://{root}"


def test_path_segments() -> None:
    assert path_segment("plain_key-1") == "plain_key-1"
    assert path_segment("a.b") == '"a.b"' and path_segment("Department:") == '"Department:"'
    assert path_segment('say "hi"') is None and path_segment("x\\y") is None


@pytest.mark.parametrize("scheme", ["qdrant+edge", "qdrant+file"])
def test_awkward_keys_migrate_and_filter_on_the_target(
    scheme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = awkward_source(tmp_path / "src")
    target = tmp_path / "q"
    argv = [
        "migrate",
        *KEEP_NAMES,
        "--from",
        source,
        "--to",
        f"{scheme}://{target}",
        "--yes",
        "--json",
    ]
    code = main([*argv, "--state", str(tmp_path / "j.sqlite3")])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["collections"][0]["records_written"] == 12
    fresh = [
        "migrate",
        *KEEP_NAMES,
        "--from",
        source,
        "--to",
        f"{scheme}://{tmp_path / 'q2'}",
        "--yes",
    ]
    dry = main([*fresh, "--dry-run", "--json", "--state", str(tmp_path / "j2.sqlite3")])
    plan_text = capsys.readouterr()
    assert dry == 0 and "Qdrant cannot name that key" in plan_text.out + plan_text.err

    wanted = {f"p{i}" for i in range(12) if i % 3 == 1}
    for key in ("Department:", "a.b", "with space", "größe"):
        condition_key = '"' + key + '"' if path_segment(key) != key else key
        if scheme == "qdrant+edge":
            shard = qe.EdgeShard.load(str(target / "people"))
            try:
                only = qe.Filter(
                    must=[qe.FieldCondition(key=condition_key, match=qe.MatchValue(value="v1"))]
                )
                assert shard.count(qe.CountRequest(exact=True, filter=only)) == len(wanted), key
                hits = shard.retrieve([canonical_point_id(i) for i in wanted], True, False)
                assert all(dict(p.payload)[key] == "v1" for p in hits)
            finally:
                shard.close()
        else:
            from qdrant_client import QdrantClient, models

            client = QdrantClient(path=str(target))
            try:
                only = models.Filter(
                    must=[
                        models.FieldCondition(
                            key=condition_key, match=models.MatchValue(value="v1")
                        )
                    ]
                )
                assert client.count("people", count_filter=only, exact=True).count == len(wanted)
            finally:
                client.close()
