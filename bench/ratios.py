"""Every ratio of issue 23's table in one run: `python bench/ratios.py` → bench/results.md.

Why one command, ratios, alternation and medians: the machine this runs on is shared and
its load moves by a factor of two within minutes. An absolute rate means little; the ratio of
two arms measured back to back, alternating their order round by round, and taken as the
median of the rounds, holds. Every arm runs in a process of its own (its own memory, no state
carried over) and records the 1-minute load average when it started.

Rows (sizes as in the issue; `--size` changes the Edge rows):

1. whole `ferry migrate --no-index` vs the tutorial loop into the same Edge target (chromadb
   `get` pages on a copy → `Point`s → `upsert`, one flush): process wall time, each a fresh
   process (interpreter start and imports included on both sides);
2. Ferry's copy rate (its copy phase) vs the Edge binding alone (one process, rows in memory,
   `tolist()` Points in batches of 1,000, one flush at the end, Ferry's shard configuration);
3. time to a search-ready target: `ferry migrate` (copy + index phase) vs the tutorial loop +
   `optimize()`, process wall time;
4. top-10 p50 latency of Ferry's search-ready shard vs the tutorial's optimized shard: both
   shards open in one process, the same queries (records of the source), each query sent to
   both with the order rotating, so cache warmth favours neither;
5. into a Chroma server (`chroma run` on 127.0.0.1, 20k): Ferry vs the tutorial loop (`add` in
   pages of 1,000), wall time and the client process's own CPU seconds per 1,000 records;
6. `describe` + the plan's sample of one collection at each built size (and the 300k / 100k
   ratio: flat means the plan does not grow with the collection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
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

WORK = build_data.DATA_DIR / "work-ratios"
COLLECTION = build_data.COLLECTION
QUERIES = 300
K = 10


def load() -> float:
    return round(os.getloadavg()[0], 2)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def source_uri(size: str) -> str:
    return f"chroma+file://{build_data.chroma_dir(size)}"


# -- arms: each runs as a process of its own -------------------------------------------------
def wall(argv: list[str], **env: str) -> dict[str, Any]:
    """Run a command; its wall time (interpreter start included) and the load before it."""
    before = load()
    started = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=BENCH.parent, env={**os.environ, **env}
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … failed:\n{done.stderr[-3000:]}")
    text = done.stdout.strip()
    result: dict[str, Any] = {}
    for candidate in (text, text.splitlines()[-1] if text else ""):
        try:
            result = json.loads(candidate)
            break
        except ValueError:
            continue
    result.update(wall_seconds=seconds, load=before)
    return result


def ferry_migrate(size: str, index: bool) -> dict[str, Any]:
    target = fresh(WORK / f"ferry-{'index' if index else 'copy'}")
    state = fresh(WORK / f"ferry-{'index' if index else 'copy'}.sqlite3")
    argv = [
        str(Path(sys.executable).parent / "ferry"),
        "migrate",
        "--from",
        source_uri(size),
        "--to",
        f"qdrant+edge://{target}",
        "--state",
        str(state),
        "--json",
    ]
    if not index:
        argv.append("--no-index")
    result = wall(argv)
    collection = result["collections"][0]
    assert collection["status"] == "completed", collection
    return {
        "wall_seconds": result["wall_seconds"],
        "load": result["load"],
        "copy_records_per_second": collection["records_per_second"],
        "index_seconds": collection.get("index_seconds"),
        "hnsw_ef": collection.get("hnsw_ef"),
        "shard": str(target / (collection.get("target_name") or COLLECTION)),
    }


def tutorial_edge(size: str, optimize: bool) -> dict[str, Any]:
    child = "tutorial" if optimize else "tutorial_copy"
    return wall([sys.executable, __file__, "--child", child, "--size", size])


def binding(size: str) -> dict[str, Any]:
    return wall([sys.executable, str(BENCH / "search_ready.py"), "--child", "binding",
                 "--size", size, "--param", "rows=tolist"])  # fmt: skip


# -- children ---------------------------------------------------------------------------------
def child_tutorial(size: str, optimize: bool = True) -> dict[str, Any]:
    """The tutorial loop into Edge (chromadb pages on a copy → Points → upsert), optionally
    followed by `optimize()`; the shard stays for the latency row."""
    import qdrant_edge as qe

    collection = bench_run.open_api_collection(size)
    path = fresh(WORK / ("tutorial" if optimize else "tutorial-copy")) / COLLECTION
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=build_data.DIMENSION, distance=qe.Distance.Cosine)
    )
    shard = qe.EdgeShard.create(str(path), config)
    records = 0
    for page in bench_run.api_pages(collection):
        points = [
            qe.Point(
                str(uuid.uuid5(bench_run.NAIVE_NAMESPACE, sid)),
                vector.tolist(),
                bench_run.naive_payload(sid, meta, doc),
            )
            for sid, vector, meta, doc in zip(
                page["ids"], page["embeddings"], page["metadatas"], page["documents"], strict=True
            )
        ]
        shard.update(qe.UpdateOperation.upsert_points(points))
        records += len(points)
    shard.flush()
    if optimize:
        shard.optimize()
        shard.flush()
    shard.close()
    return {"records": records, "shard": str(path)}


def child_latency(size: str, ferry: str, tutorial: str, ferry_ef: str = "") -> dict[str, Any]:
    """p50/p99 of single top-k queries on both shards, alternating, rotating the order."""
    import numpy as np
    import qdrant_edge as qe

    from ferry.core.connectors import open_connector

    async def sample() -> Any:
        rng = np.random.default_rng(11)
        chosen: list[Any] = []
        async with open_connector(source_uri(size)) as source:
            async for batch in source.read(COLLECTION, None, 5000):
                pick = rng.choice(len(batch), size=min(len(batch), QUERIES // 10), replace=False)
                chosen += [batch.vectors[i] for i in pick]
        return np.stack(chosen[:QUERIES])

    queries = asyncio.run(sample())
    shards = {"ferry": qe.EdgeShard.load(ferry), "tutorial": qe.EdgeShard.load(tutorial)}
    ef = qe.SearchParams(hnsw_ef=int(ferry_ef)) if ferry_ef else None
    arms = [("ferry", None), ("tutorial", None)] + ([("ferry_ef", ef)] if ef else [])
    latencies: dict[str, list[float]] = {name: [] for name, _ in arms}
    hits: dict[str, int] = dict.fromkeys(latencies, 0)
    for _pass in range(2):
        for i, vector in enumerate(queries):
            v = vector.tolist()
            exact = {
                p.id
                for p in shards["tutorial"].query(
                    qe.QueryRequest(limit=K, query=qe.Query.Nearest(v), params=qe.SearchParams(exact=True))
                )
            }  # fmt: skip
            for name, params in arms[i % len(arms) :] + arms[: i % len(arms)]:
                shard = shards[name.split("_")[0]]
                request = qe.QueryRequest(limit=K, query=qe.Query.Nearest(v), params=params)
                t0 = time.perf_counter()
                found = shard.query(request)
                latencies[name].append((time.perf_counter() - t0) * 1000)
                # Both give a source id the same point id: uuid5(Ferry's namespace, id).
                hits[name] += len({p.id for p in found} & exact)
    for shard in shards.values():
        shard.close()
    n = 2 * len(queries)
    return {
        name: {
            "p50_ms": statistics.median(values),
            "p99_ms": sorted(values)[int(0.99 * (len(values) - 1))],
            "recall_vs_exact": hits[name] / (n * K),
        }
        for name, values in latencies.items()
    }


def child_chroma_server(size: str, rounds: int) -> dict[str, Any]:
    """Ferry vs the tutorial loop into `chroma run`, alternating; each arm gets a server of
    its own on an empty data folder (a server still applying the previous arm's writes in
    the background, and holding its records, made whichever arm came second slower: rounds
    of one arm varied 12.6–17.5 s). Wall time and this process's CPU seconds per arm."""
    import chromadb

    sys.path.insert(0, str(BENCH.parent / "tests"))
    from conftest import running_chroma_server

    from ferry.core.engine import MigrationOptions
    from ferry.core.journal import Journal
    from ferry.core.runner import migrate
    from ferry.core.targets import TargetNames

    results: dict[str, list[dict[str, float]]] = {"ferry": [], "tutorial": []}
    source = bench_run.open_api_collection(size)
    for round_ in range(rounds):
        order = ["ferry", "tutorial"] if round_ % 2 == 0 else ["tutorial", "ferry"]
        for arm in order:
            name = f"{arm}-{round_}"
            data = fresh(WORK / "chroma-server")
            data.mkdir(parents=True)
            with running_chroma_server(data) as uri:
                port = int(uri.rsplit(":", 1)[1])
                client = chromadb.HttpClient(host="127.0.0.1", port=port)
                before = load()
                cpu0, t0 = time.process_time(), time.perf_counter()
                if arm == "tutorial":
                    target = client.create_collection(
                        name, configuration={"hnsw": {"space": "cosine"}}
                    )
                    records = 0
                    for page in bench_run.api_pages(source):
                        target.add(
                            ids=page["ids"],
                            embeddings=page["embeddings"],
                            metadatas=page["metadatas"],
                            documents=page["documents"],
                        )
                        records += len(page["ids"])
                else:
                    journal = Journal(fresh(WORK / f"chroma-{name}.sqlite3"))
                    options = MigrationOptions(
                        index=False, targets=TargetNames.from_args([f"{COLLECTION}={name}"])
                    )
                    outcome = asyncio.run(
                        migrate(source_uri(size), uri, [COLLECTION], options, journal)
                    )
                    journal.close()
                    assert outcome.status == "completed", outcome.to_json()
                    records = outcome.collections[0].records_written
                seconds = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                assert client.get_collection(name).count() == records
            results[arm].append(
                {
                    "seconds": seconds,
                    "records_per_second": records / seconds,
                    "cpu_ms_per_1000": 1000 * cpu / records * 1000,
                    "load": before,
                }
            )
    return results


def child_plan(size: str) -> dict[str, Any]:
    """describe + the plan's sample of one collection (a fresh reader, as `m` in the TUI)."""
    import resource

    from ferry.core.connectors import open_connector
    from ferry.core.connectors.base import mark_plan_only

    async def go() -> tuple[float, float]:
        async with open_connector(source_uri(size)) as source:
            mark_plan_only(source)  # as the inventory, the run dialog and --dry-run open it
            t0 = time.perf_counter()
            await source.describe(COLLECTION)
            t1 = time.perf_counter()
            await source.sample(COLLECTION)
            return t1 - t0, time.perf_counter() - t1

    describe, sample = asyncio.run(go())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"describe_seconds": describe, "sample_seconds": sample, "peak_rss_mb": peak}


CHILDREN = {
    "tutorial": lambda size, **_: child_tutorial(size, optimize=True),
    "tutorial_copy": lambda size, **_: child_tutorial(size, optimize=False),
    "latency": child_latency,
    "chroma_server": lambda size, rounds="3", **_: child_chroma_server(size, int(rounds)),
    "plan": lambda size, **_: child_plan(size),
}


def child(name: str, size: str, **params: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", name, "--size", size]
    for key, value in params.items():
        argv += ["--param", f"{key}={value}"]
    return wall(argv)


# -- the run ------------------------------------------------------------------------------------
def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def alternate(rounds: int, arms: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each arm once per round, the order reversed every other round."""
    names = list(arms)
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            result = arms[name]()
            out[name].append(result)
            print(f"  {name}: {json.dumps(result)[:160]}", file=sys.stderr, flush=True)
    return out


def run(size: str, rounds: int, only: set[str]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "size": size,
        "rounds": rounds,
        "machine": bench_run.machine_facts(),
        "load_at_start": os.getloadavg(),
        "rows": {},
    }
    rows = report["rows"]
    bench_run.api_copy(size)  # made once, outside every timing
    if "copy" in only:
        print("copy: whole command, copy rate", file=sys.stderr)
        rows["copy"] = alternate(
            rounds,
            {
                "ferry": lambda: ferry_migrate(size, index=False),
                "tutorial": lambda: tutorial_edge(size, optimize=False),
                "binding": lambda: binding(size),
            },
        )
    if "ready" in only:
        print("search-ready", file=sys.stderr)
        rows["ready"] = alternate(
            max(1, rounds - 1),
            {
                "ferry": lambda: ferry_migrate(size, index=True),
                "tutorial": lambda: tutorial_edge(size, optimize=True),
            },
        )
        ferry_ready = rows["ready"]["ferry"][-1]
        rows["latency"] = child(
            "latency",
            size,
            ferry=ferry_ready["shard"],
            tutorial=str(WORK / "tutorial" / COLLECTION),
            ferry_ef=str(ferry_ready["hnsw_ef"] or ""),
        )
    if "chroma" in only:
        print("chroma server", file=sys.stderr)
        bench_run.api_copy("20k")
        rows["chroma"] = child("chroma_server", "20k", rounds=str(rounds))
    if "plan" in only:
        print("plan", file=sys.stderr)
        sizes = [s for s in ("100k", "300k", "1m") if build_data.is_complete(s)]
        rows["plan"] = {s: [child("plan", s) for _ in range(3)] for s in sizes}
    return report


# -- the page -----------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    m = report["machine"]
    n = build_data.SIZES[report["size"]]
    lines = [
        "# Ferry's performance, as ratios within one run",
        "",
        f"Generated by `python bench/ratios.py` on {m['date']} ({m['cpus']} CPUs, "
        f"{m['cpu_model']}, Python {m['python']}, chromadb {m['chromadb']}, "
        f"qdrant-edge-py {m['qdrant-edge-py']}). 1-minute load at the start: "
        f"{report['load_at_start'][0]:.2f} (the machine is shared: compare the ratios, not "
        "the absolute times). Every figure is the median over the rounds; arms alternate, "
        "their order reversed every other round; `load` is the 1-minute load average when "
        "each arm started. Method: `bench/ratios.py`'s docstring.",
        "",
        "| measure | Ferry | baseline | ratio | goal | load (min–max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def loads(*arms: list[dict[str, Any]]) -> str:
        values = [r["load"] for arm in arms for r in arm]
        return f"{min(values):.1f}–{max(values):.1f}"

    if "copy" in rows:
        c = rows["copy"]
        ferry_wall, tutorial_wall = (
            median(c["ferry"], "wall_seconds"),
            median(c["tutorial"], "wall_seconds"),
        )
        lines.append(
            f"| whole `ferry migrate --no-index` vs the tutorial loop into Edge, {n:,} × 384 "
            f"(process wall s) | {ferry_wall:.1f} s | {tutorial_wall:.1f} s "
            f"| **{tutorial_wall / ferry_wall:.2f}× faster** | ≥ 2× | {loads(c['ferry'], c['tutorial'])} |"
        )  # fmt: skip
        ferry_rate = median(c["ferry"], "copy_records_per_second")
        binding_rate = statistics.median(r["records"] / r["seconds"] for r in c["binding"])
        lines.append(
            f"| Ferry's copy rate vs the Edge binding alone (rows in memory, `tolist()` Points, "
            f"one flush) | {ferry_rate:,.0f} rec/s | {binding_rate:,.0f} rec/s "
            f"| **{ferry_rate / binding_rate:.2f}** | ≥ 0.9 | {loads(c['ferry'], c['binding'])} |"
        )  # fmt: skip
    if "ready" in rows:
        r = rows["ready"]
        ferry_wall, tutorial_wall = (
            median(r["ferry"], "wall_seconds"),
            median(r["tutorial"], "wall_seconds"),
        )
        lines.append(
            f"| time to a search-ready target vs the tutorial loop + `optimize()` "
            f"(process wall s) | {ferry_wall:.1f} s | {tutorial_wall:.1f} s "
            f"| **{tutorial_wall / ferry_wall:.2f}× faster** | ≥ 1.3× | {loads(r['ferry'], r['tutorial'])} |"
        )  # fmt: skip
    if "latency" in rows:
        lat = rows["latency"]
        f50, t50 = lat["ferry"]["p50_ms"], lat["tutorial"]["p50_ms"]
        lines.append(
            f"| top-10 p50 latency, Ferry's search-ready shard vs the tutorial's optimized "
            f"shard (same queries, same request) | {f50:.3f} ms | {t50:.3f} ms "
            f"| **{f50 / t50:.2f}×** | ≤ 1.1× | {lat['load']:.1f} |"
        )
        if "ferry_ef" in lat:
            fe = lat["ferry_ef"]["p50_ms"]
            lines.append(
                f"| … Ferry's shard with the source's `hnsw_ef` (what validate searches with) "
                f"| {fe:.3f} ms | {t50:.3f} ms | {fe / t50:.2f}× | – | {lat['load']:.1f} |"
            )
    if "chroma" in rows:
        ch = rows["chroma"]
        fr, tr = (
            median(ch["ferry"], "records_per_second"),
            median(ch["tutorial"], "records_per_second"),
        )
        fc, tc = median(ch["ferry"], "cpu_ms_per_1000"), median(ch["tutorial"], "cpu_ms_per_1000")
        lines.append(
            f"| into a Chroma server on this machine, 20k × 384: Ferry vs the tutorial loop "
            f"(`add` in pages of 1,000) | {fr:,.0f} rec/s | {tr:,.0f} rec/s | **{fr / tr:.2f}×** "
            f"| ≥ 1.0× | {loads(ch['ferry'], ch['tutorial'])} |"
        )  # fmt: skip
        lines.append(
            f"| … client CPU per 1,000 records (Ferry's process vs the loop's; the server's "
            f"not counted) | {fc:,.0f} ms | {tc:,.0f} ms | {fc / tc:.2f}× | minimal | – |"
        )
    if rows.get("plan"):
        plan = rows["plan"]
        cells = []
        for s, runs in plan.items():
            d = median(runs, "describe_seconds") + median(runs, "sample_seconds")
            cells.append((s, d, median(runs, "peak_rss_mb"), loads(runs)))
        text = " / ".join(f"{s}: {d:.2f} s" for s, d, _, _ in cells)
        ratio = (
            f"{cells[-1][1] / cells[0][1]:.2f}× ({cells[-1][0]} / {cells[0][0]})"
            if len(cells) > 1
            else "–"
        )
        lines.append(
            f"| `describe` + the plan's sample of one collection | {text} | – | {ratio} "
            f"| ≤ 1 s at 1M | {cells[0][3]} |"
        )  # fmt: skip
    lines += ["", "## Details", ""]
    if "copy" in rows:
        lines += ["Whole-command and copy-rate rounds (s, records/s, load):", ""]
        for arm, runs in rows["copy"].items():
            shown = ", ".join(
                f"{r.get('wall_seconds', 0):.1f} s"
                + (f" / {r['copy_records_per_second']:,.0f} rec/s" if "copy_records_per_second" in r else "")
                + (f" / {r['records'] / r['seconds']:,.0f} rec/s" if arm == "binding" else "")
                + f" @ {r['load']:.1f}"
                for r in runs
            )  # fmt: skip
            lines.append(f"- {arm}: {shown}")
        lines.append("")
    if "ready" in rows:
        lines.append("Search-ready rounds (process wall s @ load): " + "; ".join(
            f"{arm}: " + ", ".join(f"{r['wall_seconds']:.1f} @ {r['load']:.1f}" for r in runs)
            for arm, runs in rows["ready"].items()
        ))  # fmt: skip
        lines.append("")
    if "latency" in rows:
        lat = rows["latency"]
        lines.append("Latency (ms) and recall@10 vs exact: " + "; ".join(
            f"{arm}: p50 {v['p50_ms']:.3f}, p99 {v['p99_ms']:.3f}, recall {v['recall_vs_exact']:.3f}"
            for arm, v in lat.items() if isinstance(v, dict)
        ))  # fmt: skip
        lines.append("")
    if rows.get("plan"):
        lines.append("Plan per size (describe s + sample s, peak RSS MB): " + "; ".join(
            f"{s}: " + ", ".join(f"{r['describe_seconds']:.2f}+{r['sample_seconds']:.2f} s "
                                 f"{r['peak_rss_mb']:.0f} MB" for r in runs)
            for s, runs in rows["plan"].items()
        ))  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", choices=list(build_data.SIZES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", default="copy,ready,chroma,plan", help="rows: copy,ready,chroma,plan"
    )
    parser.add_argument("--render", action="store_true", help="results.md from results.json")
    parser.add_argument("--child", choices=list(CHILDREN))
    parser.add_argument("--param", action="append", default=[])
    args = parser.parse_args()
    if args.child:
        params = dict(p.split("=", 1) for p in args.param)
        print(json.dumps(CHILDREN[args.child](args.size, **params), default=str))
        return 0
    if args.render:
        report = json.loads((BENCH / "results.json").read_text())
    else:
        report = run(args.size, args.rounds, set(args.only.split(",")))
        (BENCH / "results.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (BENCH / "results.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
