"""Time to a search-ready target, query latency before/after indexing, and Ferry's Edge write
path against the binding's own one-process rate — measured in one run, on the same data.

Why these: a migration is finished when the target answers queries as well as the source did
(issue 11), so the figure that matters is *copy + index*, compared with what a user would do by
hand (the tutorial loop: chromadb pages → Edge `Point`s → `upsert`, then `optimize()`). And
Ferry's worker should cost little over the binding itself: the bench feeds the binding
prebuilt numpy matrices and payload dicts in one process (no reading, no mapping) and compares.

    python bench/build_data.py 100k          # once
    python bench/search_ready.py --size 100k # → bench/search_ready.md (+ .json)

Each measurement runs in a child process of its own (fresh interpreter, its own peak memory,
no state carried between rows); `load` is the 1-minute load average when it started — the
machine is shared, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import build_data  # noqa: E402
import run as bench_run  # noqa: E402

WORK = build_data.DATA_DIR / "work-search-ready"
COLLECTION = build_data.COLLECTION
PAGE = 1000
QUERIES = 200
K = 10
TARGET_OF_BINDING = 0.85


def fresh(path: Path) -> Path:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def source_uri(size: str) -> str:
    return f"chroma+file://{build_data.chroma_dir(size)}"


def ferry_tuning(size: str) -> dict[str, Any]:
    """The tuning Ferry plans for the bench collection (HNSW + payload indexes)."""
    from ferry.core.connectors import open_connector
    from ferry.core.connectors.base import WriteMode
    from ferry.core.mapping import PayloadFields
    from ferry.core.plan import build_plan

    async def plan() -> dict[str, Any]:
        async with (
            open_connector(source_uri(size)) as source,
            open_connector(f"qdrant+edge://{fresh(WORK / 'plan')}") as target,
        ):
            made = await build_plan(source, target, [COLLECTION], WriteMode.CREATE, PayloadFields())
            return made.collections[0].tuning.to_json()

    return asyncio.run(plan())


# -- children ------------------------------------------------------------------------------------
def child_binding(size: str, rows: str = "tolist", **_: Any) -> dict[str, Any]:
    """The binding alone, one process: prebuilt numpy + payload dicts → `Point`s → upsert.

    `rows`: "tolist" converts each matrix with `tolist()` (what a tutorial does with numpy);
    "memoryview" hands each row over as a float32 memoryview (what Ferry's worker does).
    The shard has Ferry's configuration (same HNSW settings and payload indexes), so the
    upserts cost the same as Ferry's; one flush at the end.
    """
    import qdrant_edge as qe

    from ferry.core.connectors import open_connector
    from ferry.core.connectors.qdrant.common import batch_to_columns
    from ferry.core.connectors.qdrant.edge_worker import _SCHEMA, INDEXING_THRESHOLD_KB
    from ferry.core.layouts import make_layout

    async def load() -> list[Any]:
        out = []
        async with open_connector(source_uri(size)) as source:
            async for batch in source.read(COLLECTION, None, PAGE):
                out.append(batch_to_columns(batch, make_layout("flat")))
        return out

    prepared = asyncio.run(load())
    tuning = ferry_tuning(size)
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=build_data.DIMENSION, distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(
            m=tuning["m"] or 16,
            ef_construct=tuning["ef_construct"] or 100,
            full_scan_threshold=10_000,
        ),  # fmt: skip
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
    )
    shard = qe.EdgeShard.create(str(fresh(WORK / f"binding-{rows}") / COLLECTION), config)
    shard.update(qe.UpdateOperation.create_field_index("source_id", qe.PayloadSchemaType.Keyword))
    for key, kind in tuning["payload_indexes"].items():
        params = getattr(qe, f"{_SCHEMA[kind]}IndexParams")(enable_hnsw=False)  # as Ferry's
        shard.update(qe.UpdateOperation.create_field_index(key, params))
    build = upsert = 0.0
    records = 0
    started = time.perf_counter()
    for point_ids, matrix, payloads in prepared:
        t0 = time.perf_counter()
        if rows == "tolist":
            vectors: Any = matrix.tolist()
        else:
            flat = memoryview(matrix).cast("B")
            width = matrix.shape[1] * 4
            vectors = [flat[i * width : (i + 1) * width].cast("f") for i in range(len(matrix))]
        points = [qe.Point(p, v, pl) for p, v, pl in zip(point_ids, vectors, payloads, strict=True)]
        t1 = time.perf_counter()
        shard.update(qe.UpdateOperation.upsert_points(points))
        t2 = time.perf_counter()
        build += t1 - t0
        upsert += t2 - t1
        records += len(points)
    shard.flush()
    seconds = time.perf_counter() - started
    shard.close()
    return {
        "records": records,
        "seconds": seconds,
        "build_points_per_second": records / build,
        "upserts_per_second": records / upsert,
    }


def child_ferry(size: str, index: str = "yes", **_: Any) -> dict[str, Any]:
    """`ferry.core.runner.migrate` Chroma embedded → Edge: copy only (`--no-index`) or copy + index."""
    from ferry.core.engine import MigrationOptions
    from ferry.core.journal import Journal
    from ferry.core.runner import migrate

    target = fresh(WORK / f"ferry-{index}")
    journal_path = fresh(WORK / f"ferry-{index}.sqlite3")
    for suffix in ("", "-wal", "-shm"):  # a file: `fresh` removes folders only
        Path(f"{journal_path}{suffix}").unlink(missing_ok=True)
    journal = Journal(journal_path)
    started = time.perf_counter()
    outcome = asyncio.run(
        migrate(
            source_uri(size),
            f"qdrant+edge://{target}",
            [COLLECTION],
            MigrationOptions(index=index == "yes"),
            journal,
        )
    )
    wall = time.perf_counter() - started
    result = outcome.collections[0]
    assert outcome.status == "completed", result.error
    return {
        "records": result.records_written,
        "seconds": wall,
        "copy_seconds": result.seconds - result.index_seconds,
        "copy_records_per_second": result.records_per_second,
        "index_seconds": result.index_seconds,
        "search_ready": result.search_ready,
        "hnsw_ef": result.hnsw_ef,
        "shard": str(target / COLLECTION),
    }


def child_tutorial(size: str, **_: Any) -> dict[str, Any]:
    """What a user does by hand: chromadb pages (on a copy) → `Point`s → upsert, then
    `optimize()`. Edge's default configuration, no payload indexes."""
    import qdrant_edge as qe

    collection = bench_run.open_api_collection(size)
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=build_data.DIMENSION, distance=qe.Distance.Cosine)
    )
    path = fresh(WORK / "tutorial") / COLLECTION
    shard = qe.EdgeShard.create(str(path), config)
    records = 0
    started = time.perf_counter()
    for page in bench_run.api_pages(collection):
        points = [
            qe.Point(
                str(uuid.uuid5(bench_run.NAIVE_NAMESPACE, sid)),
                vector.tolist(),
                bench_run.naive_payload(sid, m, d),
            )
            for sid, vector, m, d in zip(
                page["ids"], page["embeddings"], page["metadatas"], page["documents"], strict=True
            )
        ]
        shard.update(qe.UpdateOperation.upsert_points(points))
        records += len(points)
    shard.flush()
    copied = time.perf_counter()
    shard.optimize()
    shard.flush()
    done = time.perf_counter()
    info = shard.info()
    indexed = int(info.indexed_vectors_count)
    shard.close()
    return {
        "records": records,
        "seconds": done - started,
        "copy_seconds": copied - started,
        "index_seconds": done - copied,
        "indexed": indexed,
        "shard": str(path),
    }


def child_latency(size: str, shard: str = "", hnsw_ef: str = "", **_: Any) -> dict[str, Any]:
    """p50/p99 of single top-k queries on a shard, in-process, and their recall vs exact."""
    import numpy as np
    import qdrant_edge as qe

    from ferry.core.connectors import open_connector
    from ferry.core.validate.recall import percentile

    async def sample() -> Any:
        rng = np.random.default_rng(11)
        chosen: list[Any] = []
        async with open_connector(source_uri(size)) as source:
            async for batch in source.read(COLLECTION, None, 5000):
                pick = rng.choice(len(batch), size=min(len(batch), QUERIES // 10), replace=False)
                chosen += [batch.vectors[i] for i in pick]
        return np.stack(chosen[:QUERIES])

    queries = asyncio.run(sample())
    opened = qe.EdgeShard.load(shard)
    params = qe.SearchParams(hnsw_ef=int(hnsw_ef)) if hnsw_ef else None
    latencies: list[float] = []
    hits = 0
    for vector in queries:
        request = qe.QueryRequest(limit=K, query=qe.Query.Nearest(vector.tolist()), params=params)
        t0 = time.perf_counter()
        found = opened.query(request)
        latencies.append((time.perf_counter() - t0) * 1000)
        exact = opened.query(
            qe.QueryRequest(
                limit=K, query=qe.Query.Nearest(vector.tolist()), params=qe.SearchParams(exact=True)
            )
        )
        hits += len({p.id for p in found} & {p.id for p in exact})
    info = opened.info()
    opened.close()
    return {
        "records": int(info.points_count),
        "seconds": 0.0,
        "indexed": int(info.indexed_vectors_count),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "recall_vs_exact": hits / (len(queries) * K),
    }


CHILDREN = {
    "binding": child_binding,
    "ferry": child_ferry,
    "tutorial": child_tutorial,
    "latency": child_latency,
}


def measure(child: str, size: str, **params: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
    argv = [sys.executable, __file__, "--child", child, "--size", size]
    for key, value in params.items():
        argv += ["--param", f"{key}={value}"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{child} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = load
    print(f"  {child} {params}: {json.dumps(result)}", file=sys.stderr)
    return result


def rate_of(row: dict[str, Any]) -> float:
    """Records/s of a write-path row: Ferry's copy phase, or the binding's timed loop."""
    if "copy_records_per_second" in row:
        return float(row["copy_records_per_second"])
    return row["records"] / row["seconds"]


def run(size: str, rounds: int) -> dict[str, Any]:
    n = build_data.SIZES[size]
    rows: dict[str, Any] = {}
    print(f"search-ready bench, {size}", file=sys.stderr)
    # The write-path rows interleaved, `rounds` times, keeping each one's fastest run: on a
    # shared machine other work only slows a run down, and interleaving gives each row the
    # same chances.
    write_rows = {
        "binding_tolist": ("binding", {"rows": "tolist"}),
        "binding_memoryview": ("binding", {"rows": "memoryview"}),
        "ferry_copy": ("ferry", {"index": "no"}),
    }
    for _round in range(rounds):
        for key, (child, params) in write_rows.items():
            result = measure(child, size, **params)
            result["runs"] = rows.get(key, {}).get("runs", 0) + 1
            if key not in rows or rate_of(result) > rate_of(rows[key]):
                rows[key] = result
            else:
                rows[key]["runs"] = result["runs"]
    rows["ferry_ready"] = measure("ferry", size, index="yes")
    rows["tutorial_ready"] = measure("tutorial", size)
    ef = str(rows["ferry_ready"]["hnsw_ef"] or "")
    rows["latency_before"] = measure("latency", size, shard=rows["ferry_copy"]["shard"], hnsw_ef=ef)
    rows["latency_after"] = measure("latency", size, shard=rows["ferry_ready"]["shard"], hnsw_ef=ef)
    rows["latency_tutorial"] = measure("latency", size, shard=rows["tutorial_ready"]["shard"])
    return {
        "size": size,
        "records": n,
        "dimension": build_data.DIMENSION,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rounds": rounds,
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    r = report["rows"]
    n = report["records"]
    binding = rate_of(r["binding_tolist"])
    binding_mv = rate_of(r["binding_memoryview"])
    ferry_copy = rate_of(r["ferry_copy"])
    lines = [
        f"# Search-ready targets: Chroma embedded → Qdrant Edge, {n:,} × {report['dimension']}",
        "",
        f"Generated by `python bench/search_ready.py --size {report['size']}` on "
        f"{report['date']} ({report['cpus']} CPUs, Python {report['python']}). Each row is its "
        "own process; `load` is the 1-minute load average when it started (a shared machine: "
        "other work only slows a row down).",
        "",
        "## Time to a search-ready target (copy + index)",
        "",
        "| how | copy s | index s | total s | load |",
        "|---|---:|---:|---:|---:|",
        f"| Ferry `migrate` (copy, then the index phase) | {r['ferry_ready']['copy_seconds']:.1f} "
        f"| {r['ferry_ready']['index_seconds']:.1f} | {r['ferry_ready']['seconds']:.1f} "
        f"| {r['ferry_ready']['load']:.1f} |",
        f"| tutorial loop, then `optimize()` | {r['tutorial_ready']['copy_seconds']:.1f} "
        f"| {r['tutorial_ready']['index_seconds']:.1f} | {r['tutorial_ready']['seconds']:.1f} "
        f"| {r['tutorial_ready']['load']:.1f} |",
        "",
        "Ferry's total includes preflight (plan, sample) and building its payload indexes "
        "(one per metadata key); the tutorial loop builds none.",
        "",
        "## Query latency, top-10, one query at a time (in-process on the shard)",
        "",
        "| target | indexed vectors | p50 ms | p99 ms | recall@10 vs exact | load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("latency_before", "Ferry copy before indexing (`--no-index`)"),
        ("latency_after", f"Ferry, search-ready (hnsw_ef={r['ferry_ready']['hnsw_ef']})"),
        ("latency_tutorial", "tutorial loop + optimize() (default ef)"),
    ):
        row = r[key]
        lines.append(
            f"| {label} | {row['indexed']:,} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['recall_vs_exact']:.3f} | {row['load']:.1f} |"
        )
    lines += [
        "",
        "## Write path: Ferry vs the binding's own one-process rate (same run)",
        "",
        f"Interleaved, fastest of {report['rounds']} run(s) each. The binding rows time only "
        "Point building + upserts over data already in memory (read and mapped beforehand, "
        "untimed), into a shard with Ferry's configuration (same payload indexes), one flush "
        "at the end. Ferry's row is its copy phase end to end: reading the Chroma files, "
        "mapping, the hand-over to the Edge worker, upserts, and its durable checkpoints "
        "(a flush every ≥ 0.5 s).",
        "",
        "| measurement | records/s | build Points/s | upserts/s | load |",
        "|---|---:|---:|---:|---:|",
        f"| binding, prebuilt numpy → `tolist()` → Points → upsert | {binding:,.0f} "
        f"| {r['binding_tolist']['build_points_per_second']:,.0f} "
        f"| {r['binding_tolist']['upserts_per_second']:,.0f} | {r['binding_tolist']['load']:.1f} |",
        f"| binding, prebuilt numpy → memoryview rows → Points → upsert | {binding_mv:,.0f} "
        f"| {r['binding_memoryview']['build_points_per_second']:,.0f} "
        f"| {r['binding_memoryview']['upserts_per_second']:,.0f} "
        f"| {r['binding_memoryview']['load']:.1f} |",
        f"| Ferry end to end, copy phase (Chroma files → Edge worker) | {ferry_copy:,.0f} | – | – "
        f"| {r['ferry_copy']['load']:.1f} |",
        f"| Ferry, whole command (preflight, worker start, copy) | "
        f"{r['ferry_copy']['records'] / r['ferry_copy']['seconds']:,.0f} | – | – "
        f"| {r['ferry_copy']['load']:.1f} |",
        "",
        f"Ferry / binding (tolist, the tutorial's way): **{ferry_copy / binding:.2f}** "
        f"(target ≥ {TARGET_OF_BINDING}); Ferry / binding (memoryview, the fastest way found): "
        f"**{ferry_copy / binding_mv:.2f}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", choices=list(build_data.SIZES))
    parser.add_argument("--child", choices=list(CHILDREN))
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=2, help="write-path rows, interleaved")
    args = parser.parse_args()
    if args.child:
        params = dict(p.split("=", 1) for p in args.param)
        print(json.dumps(CHILDREN[args.child](args.size, **params), default=str))
        return 0
    report = run(args.size, args.rounds)
    suffix = "" if args.size == "100k" else f"-{args.size}"
    (BENCH / f"search_ready{suffix}.json").write_text(json.dumps(report, indent=1, default=str))
    (BENCH / f"search_ready{suffix}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
