"""`ferry validate` end to end: real Chroma → real Qdrant Edge via `ferry migrate`, the target
corrupted directly, then the command's JSON, exit codes and journal records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import qdrant_edge as qe

from ferry.cli import main
from ferry.core.journal import Journal
from ferry.core.mapping import canonical_point_id
from tests.names import KEEP_NAMES

DIM = 8
N = 120
NAME = "notes"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    client = chromadb.PersistentClient(str(tmp_path / "src"))
    collection = client.create_collection(NAME, configuration={"hnsw": {"space": "l2"}})
    rng = np.random.default_rng(3)
    collection.add(
        ids=[f"note-{i}" for i in range(N)],
        embeddings=rng.normal(size=(N, DIM)).astype(np.float32),
        metadatas=[{"flag": i % 2 == 0, "n": i} for i in range(N)],
        documents=[f"text {i}" for i in range(N)],
    )
    env = {
        "source": f"chroma+file://{tmp_path / 'src'}",
        "target": f"qdrant+edge://{tmp_path / 'dst'}",
        "state": str(tmp_path / "journal.sqlite3"),
        "dst": tmp_path / "dst",
    }
    code = main(["migrate", *KEEP_NAMES, "--from", env["source"], "--to", env["target"], "--yes", "--json",
                 "--state", env["state"]])  # fmt: skip
    assert code == 0
    yield env


def ferry_validate(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["validate", "--from", env["source"], "--to", env["target"],
                 "--state", env["state"], "--json", *extra])  # fmt: skip
    captured = capsys.readouterr()
    data = json.loads(captured.out) if captured.out.strip() else None
    return code, data, captured.err


def corrupt(dst: Path) -> None:
    shard = qe.EdgeShard.load(str(dst / NAME))
    try:
        point = shard.retrieve([canonical_point_id("note-1")], True, True)[0]
        shard.update(
            qe.UpdateOperation.upsert_points([qe.Point(point.id, [9.0] * DIM, point.payload)])
        )
        shard.update(qe.UpdateOperation.delete_points([canonical_point_id("note-2")]))
        point = shard.retrieve([canonical_point_id("note-4")], True, True)[0]
        payload = dict(point.payload)
        payload["flag"] = 1  # True -> 1
        shard.update(qe.UpdateOperation.set_payload([point.id], payload))
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(4242, [0.0] * DIM, {"x": "y"})]))
        shard.flush()
    finally:
        shard.close()


def test_clean_copy_exits_0_with_the_documented_json(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = ferry_validate(
        setup, capsys, "--collection", NAME, "--queries", "10", "--k", "5"
    )
    assert code == 0 and data["ok"] is True
    c = data["collections"][0]
    for key in (
        "name",
        "source_count",
        "target_count",
        "missing",
        "extra",
        "mismatched",
        "recall_at_k",
        "k",
    ):
        assert key in c
    assert (c["name"], c["source_count"], c["target_count"], c["k"]) == (NAME, N, N, 5)
    assert c["recall_at_k"] == 1.0 and c["missing"] == [] and c["mismatched"] == []
    stored = Journal(setup["state"]).validations.latest(setup["target"], NAME)
    assert stored is not None and stored.ok == 1 and stored.result["k"] == 5


def test_corruption_found_repaired_then_clean(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt(setup["dst"])
    code, data, err = ferry_validate(setup, capsys, "--full")
    assert code == 1 and data["ok"] is False
    c = data["collections"][0]
    assert c["missing"] == ["note-2"]  # the source's id, not the uuid5 point id
    assert c["extra"] == ["4242"]
    assert {m["id"]: m["fields"] for m in c["mismatched"]} == {
        "note-1": ["vector"],
        "note-4": ["metadata.flag"],
    }
    assert (c["missing_total"], c["extra_total"], c["mismatched_total"]) == (1, 1, 2)

    # Deleting extras without --yes and without a terminal to ask: refused, nothing done.
    code, data, err = ferry_validate(setup, capsys, "--full", "--delete-extra")
    assert code == 2 and data is None
    assert "confirmation" in err

    code, data, err = ferry_validate(setup, capsys, "--full", "--repair", "--delete-extra", "--yes")
    assert code == 1  # differences were found (and repaired)
    assert data["collections"][0]["repair"] == {
        "rewritten": 3,
        "verified": 3,
        "deleted": 1,
        "delete_failed": 0,
    }

    code, data, err = ferry_validate(setup, capsys, "--full")
    assert code == 0 and data["ok"] is True
    assert data["collections"][0]["recall_at_k"] == 1.0


def test_human_output_and_bad_input(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["validate", "--from", setup["source"], "--to", setup["target"],
                 "--state", setup["state"], "--sample", "50"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "all checks passed" in out and "50 record(s) compared (sample)" in out

    code, _, err = ferry_validate(setup, capsys, "--k", "0")
    assert code == 2 and "--k must be between 1 and" in err
    code, _, err = ferry_validate(setup, capsys, "--collection", "nope")
    assert code == 2 and "no collection 'nope'" in err
    with pytest.raises(SystemExit):
        main(
            [
                "validate",
                "--from",
                setup["source"],
                "--to",
                setup["target"],
                "--full",
                "--sample",
                "3",
            ]
        )
    assert os.path.exists(setup["state"])
