"""Chroma ≤ 0.3 directories (DuckDB + Parquet): read exactly, read-only, through pyarrow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ferry.cli import main
from ferry.core.connectors import TargetConnector, open_connector
from ferry.core.connectors.chroma.legacy import LAYOUT, ChromaLegacyConnector
from ferry.core.engine import MigrationOptions
from ferry.core.errors import FerryError
from ferry.core.inventory import load_inventory
from ferry.core.journal import Journal
from ferry.core.model import Metric
from ferry.core.runner import migrate
from tests.chroma03 import Row, write_chroma03
from tests.conftest import dir_checksum

DIM = 5


def vector(i: int) -> list[float]:
    """float64 values a float32 cannot hold exactly (0.3 kept what it was given)."""
    rng = np.random.default_rng(i)
    return rng.normal(size=DIM).tolist()


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    path = tmp_path / "chroma03"
    rows: list[Row] = []
    for i in range(30):  # three collections' rows interleaved, as inserts left them
        meta: object = {"n": i, "score": i + 0.25, "whole": 2.0, "tag": f"t{i}", "ok": i % 2 == 0}
        if i % 6 == 1:
            meta = "null"  # json.dumps(None): what 0.3 wrote for a record without metadata
        elif i % 6 == 2:
            meta = None  # SQL NULL
        elif i % 6 == 3:
            meta = "{}"
        rows.append(Row("plain", f"p{i}", vector(i), None if i % 4 == 0 else f"doc {i}", meta))
        rows.append(Row("cos", f"c{i}", vector(100 + i), f"cos doc {i}", {"i": i}))
        if i < 10:
            rows.append(Row("dot", f"{i:03d}", vector(200 + i), None, None))
    # Before 0.3.22 `add` did not check ids: the same id twice, with other values.
    rows.append(Row("plain", "p7", vector(999), "the second p7", {"n": -1}))
    rows.append(Row("cos", "c3", vector(100 + 3), "cos doc 3", {"i": 3}))
    write_chroma03(
        path,
        {
            "plain": None,  # 'null'
            "cos": {"hnsw:space": "cosine", "hnsw:M": "32", "hnsw:construction_ef": 200},
            "dot": {"hnsw:space": "ip", "source": "kept"},
        },
        rows,
    )
    return path


async def test_every_record_is_read_exactly_and_nothing_is_written(legacy: Path) -> None:
    before = dir_checksum(legacy)
    connector = open_connector(f"chroma+file://{legacy}")
    assert isinstance(connector, ChromaLegacyConnector)
    assert not isinstance(connector, TargetConnector)
    async with connector:
        assert await connector.list_collections() == ["cos", "dot", "plain"]
        plain = await connector.describe("plain")
        assert (plain.count, plain.dimension, plain.metric) == (30, DIM, Metric.L2)
        assert plain.metadata_keys == ["n", "ok", "score", "tag", "whole"]
        assert plain.facts["rows"] == 31 and plain.facts["duplicate_ids"] == 1
        assert any("'p7'" in w and "first row" in w for w in plain.facts["warnings"])
        assert plain.facts["vectors_rounded_to_float32"] == 31  # random doubles, every row

        records = {}
        async for batch in connector.read("plain", None, 7):
            assert batch.vectors.dtype == np.float32
            for i, sid in enumerate(batch.ids):
                assert sid not in records
                records[sid] = (batch.vectors[i], batch.metadatas[i], batch.documents[i])
        assert len(records) == 30
        for i in range(30):
            got_vector, got_meta, got_doc = records[f"p{i}"]
            assert got_vector.tobytes() == np.asarray(vector(i), np.float32).tobytes()
            assert got_doc == (None if i % 4 == 0 else f"doc {i}")
            if i % 6 in (1, 2, 3):
                assert got_meta is None  # 'null', NULL and {} are "no metadata"
            else:
                assert got_meta == {
                    "n": i,
                    "score": i + 0.25,
                    "whole": 2.0,
                    "tag": f"t{i}",
                    "ok": i % 2 == 0,
                }
                assert [type(v) for v in got_meta.values()] == [int, float, float, str, bool]
        assert records["p7"][2] == "doc 7"  # the first of the duplicates is kept
    assert dir_checksum(legacy) == before, "the 0.3 directory changed"


async def test_space_and_hnsw_settings_come_from_the_collection_metadata(legacy: Path) -> None:
    async with open_connector(f"chroma+file://{legacy}") as connector:
        cos = await connector.describe("cos")
        dot = await connector.describe("dot")
        assert (cos.metric, dot.metric) == (Metric.COSINE, Metric.IP)
        assert cos.count == 30 and cos.facts["duplicate_ids"] == 1
        assert cos.facts["hnsw"] == {
            "space": "cosine",
            "M": 32,  # "32" as text: 0.3 checked str(value)
            "ef_construction": 200,
            "ef_search": 10,
            "source": "0.3 collection metadata",
        }
        assert any("0.3.0-0.3.14" in n for n in cos.facts["space_notes"])
        # Exact search, reported as Chroma reports cosine distance.
        query = np.asarray([vector(105)], np.float32)
        hits = await connector.query("cos", query, 3)
        assert hits[0][0][0] == "c5" and math.isclose(hits[0][0][1], 0.0, abs_tol=1e-6)


async def test_resume_fetch_and_missing(legacy: Path) -> None:
    async with open_connector(f"chroma+file://{legacy}") as connector:
        batches = [b async for b in connector.read("plain", None, 4)]
        order = [sid for b in batches for sid in b.ids]
        resumed = [
            sid async for b in connector.read("plain", batches[2].cursor_after, 4) for sid in b.ids
        ]
        assert resumed == order[12:]
        got = await connector.fetch("plain", ["p3", "p7", "nope"])
        assert sorted(got.ids) == ["p3", "p7"]
        assert got.documents[got.ids.index("p7")] == "doc 7"
        with pytest.raises(FerryError, match="no collection"):
            await connector.describe("missing")


async def test_inventory_names_the_layout(legacy: Path) -> None:
    inventory = await load_inventory(f"chroma+file://{legacy}")
    assert inventory.version == LAYOUT
    assert inventory.to_json()["schema"]["summary"] == "Chroma 0.3 (DuckDB+Parquet)"
    assert {p.source.name: p.source.count for p in inventory.plans} == {
        "cos": 30,
        "dot": 10,
        "plain": 30,
    }


def test_cli_inventory_shows_the_layout(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", f"chroma+file://{legacy}"]) == 0
    assert "Chroma 0.3 (DuckDB+Parquet)" in capsys.readouterr().out


def test_api_option_is_refused_in_one_line(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inventory", f"chroma+file://{legacy}?api=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not apply" in err and len(err.splitlines()) == 1


async def test_a_broken_file_is_a_ferry_error(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    write_chroma03(path, {"c": None}, [Row("c", "a", [1.0, 2.0]), Row("c", "b", [1.0])])
    async with open_connector(f"chroma+file://{path}") as connector:
        with pytest.raises(FerryError, match="dimensions"):
            await connector.describe("c")


async def test_migrates_to_a_parquet_export_with_the_plan_warnings(
    legacy: Path, tmp_path: Path
) -> None:
    target = f"parquet+file://{tmp_path / 'out'}"
    outcome = await migrate(
        f"chroma+file://{legacy}",
        target,
        [],
        MigrationOptions(batch_size=8),
        Journal(tmp_path / "j.sqlite3"),
    )
    assert outcome.status == "completed", outcome.to_json()
    assert any(
        "duplicate" in w
        for w in outcome.warnings + [w for c in outcome.plan.collections for w in c.warnings]
    )
    manifest = json.loads((tmp_path / "out" / "cos" / "manifest.json").read_text())
    assert (manifest["state"], manifest["count"], manifest["metric"]) == ("complete", 30, "cosine")
    assert manifest["hnsw"]["M"] == 32
    async with open_connector(target) as out:
        got = await out.fetch("plain", ["p0", "p7"])
        assert got.documents[got.ids.index("p7")] == "doc 7"
        assert await out.count("dot") == 10
