"""Search-ready targets: the index phase, tuning carried from the source, the fair recall gate,
byte-capped requests. Real Chroma (embedded and a `chroma run` server), real Qdrant Edge; the
engine's crash and hold points on `memory://` stores (no pacing, no timing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from ferry.cli import main
from ferry.cli.status import render
from ferry.core.connectors import WriteMode, open_connector
from ferry.core.connectors.base import byte_chunks
from ferry.core.connectors.memory import MemoryStore, memory_store
from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.journal.recorder import RunRecorder
from ferry.core.model import Batch, CollectionInfo, Metric, Phase
from ferry.core.runner import migrate
from ferry.core.runs import RunView
from ferry.core.tuning import TuningOptions, observed_types, plan_tuning
from ferry.core.validate import ValidationOptions, validate
from ferry.core.validate.recall import RecallResult
from tests.conftest import make_chroma, unique_name
from tests.names import KEEP_NAMES
from tests.tcp_proxy import DroppingProxy

N, BATCH, DIM = 120, 20, 4
SOURCE, TARGET = "memory://src", "memory://dst"
HNSW = {"max_neighbors": 8, "ef_construction": 40, "ef_search": 20}


def options(**extra: Any) -> MigrationOptions:
    return MigrationOptions(
        batch_size=BATCH, workers=2, retry_initial=0.001, retry_max=0.002, **extra
    )


async def filled_source() -> MemoryStore:
    rng = np.random.default_rng(3)
    async with open_connector(SOURCE) as source:
        await source.prepare(CollectionInfo("docs", 0, DIM, Metric.L2), WriteMode.CREATE)
        await source.write(
            "docs",
            Batch(
                [f"id-{i}" for i in range(N)],
                rng.normal(size=(N, DIM)).astype(np.float32),
                [{"i": i, "tag": f"t{i % 3}"} for i in range(N)],
                [f"doc {i}" for i in range(N)],
            ),
        )
    return memory_store("src")


class Recorders:
    """Catches the run's RunRecorder (to flush it) and can make it deaf: events after
    `die()` never reach the journal, as when the engine process is killed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[RunRecorder] = []
        self.dead = False
        record, attach = RunRecorder.record, RunRecorder.attach

        def deaf_record(recorder: RunRecorder, event: Any) -> None:
            if not self.dead:
                record(recorder, event)

        def catching_attach(recorder: RunRecorder, bus: Any) -> RunRecorder:
            self.seen.append(recorder)
            return attach(recorder, bus)

        monkeypatch.setattr(RunRecorder, "record", deaf_record)
        monkeypatch.setattr(RunRecorder, "attach", catching_attach)


# -- the index phase ----------------------------------------------------------------------------
async def test_a_collection_is_indexing_until_its_target_is_search_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await filled_source()
    target = memory_store("dst")
    hold = target.faults.hold("index")
    recorders = Recorders(monkeypatch)
    journal = Journal(tmp_path / "j.sqlite3")
    run = asyncio.create_task(migrate(SOURCE, TARGET, [], options(), journal))
    await hold.reached()
    await recorders.seen[0].flush()

    view = RunView.load(journal, journal.runs.recent()[0].run_id)
    assert view is not None
    docs = view.collection("docs")
    assert docs is not None and docs.phase is Phase.INDEXING and docs.records_written == N
    assert [c.name for c in view.indexing] == ["docs"]
    data = view.to_json()["collections"][0]
    assert data["status"] == "indexing" and data["indexing"]["total"] == N
    assert data["search_ready"] is False
    assert "indexing" in render(view)  # `ferry status`

    hold.release()
    outcome = await run
    assert outcome.status == "completed"
    done = RunView.load(journal, outcome.run_id)
    assert done is not None
    finished = done.collection("docs")
    assert finished is not None and finished.phase is Phase.COMPLETED and finished.search_ready
    log = [e.message for e in journal.events.after(outcome.run_id)]
    indexing = next(i for i, m in enumerate(log) if m.startswith("indexing"))
    completed = next(i for i, m in enumerate(log) if m.startswith("completed"))
    assert indexing < completed


async def test_a_crash_during_indexing_resumes_into_indexing_not_copying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = await filled_source()
    target = memory_store("dst")
    hold = target.faults.hold("index")
    recorders = Recorders(monkeypatch)
    journal = Journal(tmp_path / "j.sqlite3")
    run = asyncio.create_task(migrate(SOURCE, TARGET, [], options(), journal))
    await hold.reached()
    await recorders.seen[0].flush()
    # The process dies here: nothing more reaches the journal.
    recorders.dead = True
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    run_id = journal.runs.recent()[0].run_id
    row = {r.name: r for r in journal.runs.collections(run_id)}["docs"]
    assert row.phase == "indexing" and row.records_written == N
    copy_reads = len([r for r in source.reads if r.batch_size == BATCH])

    recorders.dead = False
    outcome = await migrate(SOURCE, TARGET, [], options(), journal)
    assert outcome.resumed and outcome.status == "completed"
    assert outcome.collections[0].search_ready is True
    assert outcome.collections[0].records_written == N
    # Resumed into the index phase: the copy was not read again.
    assert len([r for r in source.reads if r.batch_size == BATCH]) == copy_reads
    assert target.faults.calls["index"] == 2
    log = [e.message for e in journal.events.after(run_id)]
    assert any(m.startswith("indexing") and "resuming after the copy" in m for m in log)
    assert sum(m.startswith("copying") for m in log) == 1  # the first run's only


async def test_no_index_is_a_staging_copy(tmp_path: Path) -> None:
    await filled_source()
    target = memory_store("dst")
    outcome = await migrate(SOURCE, TARGET, [], options(index=False), Journal(tmp_path / "j"))
    result = outcome.collections[0]
    assert outcome.status == "completed" and result.search_ready is False
    assert target.faults.calls["index"] == 0
    assert outcome.plan.collections[0].index == "none: staging copy (--no-index)"


# -- Qdrant Edge: indexed, tuned from the source ---------------------------------------------------
def edge_migrate(tmp_path: Path, src: Path, *extra: str) -> dict[str, Any]:
    code = main(
        [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{src}",
            "--to",
            f"qdrant+edge://{tmp_path / 'edge'}",
            "--yes",
            "--json",
            "--state",
            str(tmp_path / "j.sqlite3"),
            "--batch-size",
            "300",
            *extra,
        ]
    )
    assert code == 0
    return {}


def test_a_migrated_edge_target_is_hnsw_indexed_with_the_source_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(
        tmp_path / "src", {"docs": {"metric": "cosine", "n": 1200, "dim": 16, "hnsw": HNSW}}
    )
    edge_migrate(tmp_path, src)
    report = json.loads(capsys.readouterr().out)
    result = report["collections"][0]
    assert result["status"] == "completed" and result["search_ready"] is True
    assert result["hnsw_ef"] == HNSW["ef_search"]

    async def facts() -> dict[str, Any]:
        async with open_connector(f"qdrant+edge://{tmp_path / 'edge'}") as edge:
            return await edge.index_facts("docs")  # type: ignore[attr-defined,no-any-return]

    index = asyncio.run(facts())
    # Every point sits in an HNSW segment (the only other one is Edge's empty appendable one).
    assert "hnsw" in index["segments"] and index["indexed"] == index["points"] == 1200
    config = json.loads((tmp_path / "edge" / "docs" / "edge_config.json").read_text())
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (8, 40)
    # A payload index per metadata key, of its observed type (lists by their elements).
    assert index["payload_indexes"] == {
        "source_id": "keyword",
        "int": "integer",
        "float": "float",
        "whole_float": "float",
        "bool": "bool",
        "str": "keyword",
        "ints": "integer",
        "strs": "keyword",
        "floats": "float",
        "bools": "bool",
    }
    # The journal keeps what the app should search with; `ferry status --json` shows it.
    journal = Journal(tmp_path / "j.sqlite3")
    settings = journal.runs.search_settings(f"qdrant+edge://{tmp_path / 'edge'}", "docs")
    assert settings is not None and settings.hnsw_ef == 20 and settings.search_ready
    assert settings.tuning["m"] == 8 and settings.tuning["ef_construct"] == 40


def test_flags_override_the_source_and_no_index_leaves_a_plain_staging_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(
        tmp_path / "src", {"docs": {"metric": "l2", "n": 600, "dim": 8, "hnsw": HNSW}}
    )
    edge_migrate(
        tmp_path,
        src,
        "--hnsw-m",
        "12",
        "--hnsw-ef-construct",
        "64",
        "--no-payload-indexes",
        "--payload-index",
        "int:float",
        "--no-index",
    )
    result = json.loads(capsys.readouterr().out)["collections"][0]
    assert result["status"] == "completed" and result["search_ready"] is False
    target = f"qdrant+edge://{tmp_path / 'edge'}"

    async def facts() -> dict[str, Any]:
        async with open_connector(target) as edge:
            return await edge.index_facts("docs")  # type: ignore[attr-defined,no-any-return]

    index = asyncio.run(facts())
    assert index["indexed"] == 0 and "hnsw" not in index["segments"]
    assert index["payload_indexes"] == {"source_id": "keyword", "int": "float"}
    config = json.loads((tmp_path / "edge" / "docs" / "edge_config.json").read_text())
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (12, 64)

    # Validation will not judge recall on a target that has no index yet.
    report = asyncio.run(
        validate(f"chroma+file://{src}", target, ["docs"], ValidationOptions(sample=50))
    )
    c = report.collections[0]
    assert c.recall is None and not c.ok
    assert c.recall_refused is not None and "not search-ready" in c.recall_refused
    assert c.reasons == [c.recall_refused]

    # A bad flag is a one-line error, exit code 2.
    code = main(["migrate", *KEEP_NAMES, "--from", f"chroma+file://{src}", "--to", target, "--yes",
                 "--state", str(tmp_path / "j.sqlite3"), "--payload-index", "year:date"])  # fmt: skip
    assert code == 2
    assert "--payload-index 'year:date' is not KEY:TYPE" in capsys.readouterr().err


def test_observed_types_and_tuning_from_facts() -> None:
    types, notes = observed_types(
        [{"a": 1, "b": 1.5, "c": True, "d": "x", "e": [1, 2], "f": 1, "g": "s"},
         {"a": 2, "b": 2, "c": False, "e": [3], "f": 2.5, "g": 3}, None]
    )  # fmt: skip
    assert types == {"a": "integer", "b": "float", "c": "bool", "d": "keyword", "e": "integer",
                     "f": "float"}  # fmt: skip
    assert notes == ["no payload index for 'g': values of mixed types (integer, keyword)"]
    facts = {"hnsw": {"M": 32, "ef_construction": 200, "ef_search": 150, "source": "schema"}}
    tuning = plan_tuning(facts, [{"source_id": "x", "k": "v"}], reserved=["source_id"])
    assert (tuning.m, tuning.ef_construct, tuning.hnsw_ef) == (32, 200, 150)
    assert tuning.payload_indexes == {"k": "keyword"}
    forced = plan_tuning(facts, [], TuningOptions(hnsw_m=8, on_disk_vectors=True))
    assert (forced.m, forced.ef_construct, forced.on_disk_vectors) == (8, 200, True)
    assert "overridden" in forced.source


# -- recall judged fairly ----------------------------------------------------------------------------
def test_the_tolerance_is_three_standard_errors_of_the_paired_per_query_difference() -> None:
    from ferry.core.validate.recall import measure

    exact = [[(f"e{q}-{i}", 1.0 - i / 10) for i in range(10)] for q in range(4)]
    # Per query, the source finds 8, 8, 6, 6 of the exact ten and the target 8, 6, 6, 4.
    source = [
        hits[:n] + [("x", 0.0)] * (10 - n) for hits, n in zip(exact, (8, 8, 6, 6), strict=True)
    ]
    target = [
        hits[:n] + [("y", 0.0)] * (10 - n) for hits, n in zip(exact, (8, 6, 6, 4), strict=True)
    ]

    def score(qi: int, item: str) -> float:
        return dict(exact[qi]).get(item, -1.0)

    result = measure(10, exact, source, target, score, (lambda v: v, lambda v: v))
    differences = [0.0, 0.2, 0.0, 0.2]  # source − target, per query
    se = statistics.stdev(differences) / math.sqrt(4)
    assert result.difference_se == pytest.approx(se)
    assert result.tolerance == pytest.approx(max(0.05, 3 * se))
    assert result.to_json()["difference_se"] == pytest.approx(se, abs=1e-6)


def test_the_gate_judges_the_target_against_the_source_s_own_distance_from_exact() -> None:
    def result(source: float, target: float, agree: float) -> RecallResult:
        return RecallResult(10, 20, agree, source, target, None, 0.0)

    # The identical copy that used to fail: Chroma ip 10k → Chroma server.
    copy = result(0.700, 0.685, 0.80)
    assert copy.acceptable(0.95) and copy.failures(0.95) == []
    assert "within tolerance" in copy.verdict(0.95) and "source 0.70" in copy.verdict(0.95)
    # A target missing a third of a good source's neighbours.
    missing = result(1.0, 0.67, 0.67)
    assert not missing.acceptable(0.95)
    assert "below the source" in missing.failures(0.95)[0]
    # Near exact is fine whatever the source does; agreeing with the source is fine too.
    assert result(0.5, 0.96, 0.5).acceptable(0.95) and result(0.5, 0.3, 0.97).acceptable(0.95)


def test_recall_gate_on_real_indexes_passes_a_poor_copy_and_fails_a_third_missing(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_name("poor")
    poor = {"max_neighbors": 6, "ef_construction": 20, "ef_search": 10}  # recall ≈ 0.7
    src = make_chroma(
        tmp_path / "src",
        {name: {"metric": "ip", "n": 3000, "dim": 32, "seed": 9, "hnsw": poor}},
    )
    source = f"chroma+file://{src}"
    state = str(tmp_path / "j.sqlite3")
    assert main(["migrate", *KEEP_NAMES, "--from", source, "--to", chroma_server, "--collection", name,
                 "--yes", "--json", "--state", state]) == 0  # fmt: skip
    capsys.readouterr()
    opts = ValidationOptions(sample=100, queries=100, k=10, seed=4)
    journal = Journal(state)
    copy = asyncio.run(validate(source, chroma_server, [name], opts, journal)).collections[0]
    assert copy.recall is not None
    assert copy.recall.source_vs_exact < 0.95, "the source index should be a poor one"
    assert copy.ok, copy.reasons
    assert copy.recall.latency_ms["source"]["p50"] is not None
    assert copy.recall.latency_ms["target"]["p99"] is not None

    async def drop_a_third() -> None:
        async with open_connector(chroma_server) as server:
            ids = []
            async for batch in server.read(name, None, 500):
                ids += batch.ids
            await server.delete(name, ids[::3])

    asyncio.run(drop_a_third())
    broken = asyncio.run(validate(source, chroma_server, [name], opts)).collections[0]
    assert not broken.ok and broken.recall is not None
    recall_reasons = [r for r in broken.reasons if r.startswith("recall@10")]
    assert recall_reasons and "below the source" in recall_reasons[0]


# -- requests sized by bytes ---------------------------------------------------------------------------
def test_byte_chunks_keep_every_request_under_the_limit() -> None:
    assert byte_chunks([10] * 10, 35) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert byte_chunks([50, 5, 5], 20) == [(0, 1), (1, 3)]  # an oversized row goes alone
    assert byte_chunks([10] * 4, None) == [(0, 4)] and byte_chunks([], 10) == []


def wide_batch(n: int, dim: int = 3072, document_chars: int = 40_000) -> Batch:
    rng = np.random.default_rng(5)
    return Batch(
        [f"wide-{i}" for i in range(n)],
        rng.normal(size=(n, dim)).astype(np.float32),
        [{"i": i, "title": "t" * 200} for i in range(n)],
        [("lorem ipsum " * (document_chars // 12))[:document_chars] for _ in range(n)],
    )


def test_qdrant_request_sizes_bound_the_real_json(tmp_path: Path) -> None:
    from ferry.core.connectors.qdrant.api import QdrantApiConnector
    from ferry.core.connectors.qdrant.common import batch_to_columns

    connector = open_connector(f"qdrant+file://{tmp_path / 'q'}")
    assert isinstance(connector, QdrantApiConnector)
    batch = wide_batch(12)
    ids, vectors, payloads = batch_to_columns(batch, connector.layouts("wide"))
    sizes = connector.request_sizes(ids, vectors.shape[1], payloads)
    limit = 400_000
    runs = byte_chunks(sizes, limit)
    assert len(runs) > 1
    for start, end in runs:
        body = json.dumps(
            {
                "batch": {
                    "ids": ids[start:end],
                    "vectors": vectors[start:end].tolist(),
                    "payloads": payloads[start:end],
                }
            }  # fmt: skip
        )
        assert len(body) <= limit or end - start == 1


def test_a_byte_capped_batch_splits_into_several_requests_to_a_chroma_server(
    chroma_server: str,
) -> None:
    name = unique_name("wide")
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    batch = wide_batch(24)

    async def write_through(proxy_port: int) -> tuple[int, Batch]:
        async with open_connector(f"chroma+http://127.0.0.1:{proxy_port}") as target:
            target.max_request_bytes = 400_000  # type: ignore[attr-defined]
            await target.prepare(CollectionInfo(name, 0, 3072, Metric.COSINE), WriteMode.CREATE)
            await target.write(name, batch)
            return await target.count(name), await target.fetch(name, batch.ids)

    with DroppingProxy(port, drop=set(), only=b"/upsert") as proxy:
        count, back = asyncio.run(write_through(proxy.port))
        requests = proxy.requests
    # ~70 KB of vector JSON + 40 KB of document per record: at most 3 under 400 KB.
    assert requests >= 24 // 3
    assert count == 24
    by_id = dict(zip(back.ids, back.documents, strict=True))
    assert all(by_id[i] == d for i, d in zip(batch.ids, batch.documents, strict=True))
