"""`ferry migrate` into a Qdrant server — the Qdrant test server on Qdrant Edge — at 100k × 384,
watching the index phase go yellow → green from outside.

Why: Qdrant server is where most users land, and its search-ready path (HNSW deferred with
`m=0` during the copy, restored, then waiting for green by `indexed_vectors_count`) had never
run end to end. No Qdrant binary installs here, so the target is `tests/qdrant_server` (real
engine, Qdrant's REST API; see docs/qdrant-test-server.md). The figures say how Ferry's
server path behaves at size (request sizes, the index phase, the wait for green) — not how
fast a real Qdrant server is.

    python bench/build_data.py 100k              # once
    nice python bench/qdrant_server.py --size 100k   # → bench/qdrant_server.md (+ .json)

A watcher in this process polls `GET /collections/bench` every 0.5 s (the way an operator's
dashboard would) and records each status change; Ferry's own `--json` says whether the
collection completed search-ready. `load` is the 1-minute load average (a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import build_data  # noqa: E402

WORK = build_data.DATA_DIR / "work-qdrant-server"
POLL_SECONDS = 0.5
QUERIES = 100


def watch(url: str, name: str, stop: threading.Event, timeline: list[dict[str, Any]]) -> None:
    """Record (time, status, indexed, points) whenever the status or the counts change."""
    import httpx

    started = time.monotonic()
    last: tuple[Any, ...] | None = None
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            try:
                answer = http.get(f"{url}/collections/{name}")
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                result = answer.json()["result"]
                now = (
                    result["status"],
                    result.get("indexed_vectors_count"),
                    result.get("points_count"),
                    result["config"]["hnsw_config"]["m"],
                )
                if now != last:
                    timeline.append(
                        {
                            "t": round(time.monotonic() - started, 2),
                            "status": now[0],
                            "indexed": now[1],
                            "points": now[2],
                            "m": now[3],
                        }
                    )
                    last = now
            stop.wait(POLL_SECONDS)


def latency(url: str, name: str) -> dict[str, float]:
    """Top-10 query latency over REST, one query at a time (p50/p99 ms)."""
    import numpy as np
    from qdrant_client import QdrantClient

    client = QdrantClient(url=url, timeout=60, check_compatibility=False)
    rng = np.random.default_rng(1)
    times = []
    try:
        for vector in rng.normal(size=(QUERIES, build_data.DIMENSION)).astype(np.float32):
            started = time.perf_counter()
            client.query_points(name, query=vector.tolist(), limit=10)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def run(size: str) -> dict[str, Any]:
    import shutil

    from tests.qdrant_server import running_emulator

    build_data.build(size)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    load = os.getloadavg()[0]
    with running_emulator(WORK / "emulator") as emulator:
        timeline: list[dict[str, Any]] = []
        stop = threading.Event()
        watcher = threading.Thread(
            target=watch, args=(emulator.url, build_data.COLLECTION, stop, timeline), daemon=True
        )
        watcher.start()
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ferry.cli",
                "migrate",
                "--from",
                f"chroma+file://{build_data.chroma_dir(size)}",
                "--to",
                f"qdrant+http://127.0.0.1:{emulator.port}",
                "--yes",
                "--json",
                "--state",
                str(WORK / "journal.sqlite3"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        stop.set()
        watcher.join(10)
        if done.returncode != 0:
            raise SystemExit(f"migrate failed ({done.returncode}):\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout)
        query = latency(emulator.url, build_data.COLLECTION)
        upserts = [
            s for s in emulator.log() if s["path"] == f"/collections/{build_data.COLLECTION}/points"
        ]
    collection = report["collections"][0]
    statuses = [row["status"] for row in timeline]
    first_yellow = next((r["t"] for r in timeline if r["status"] == "yellow"), None)
    green_after = next(
        (
            r["t"]
            for r in timeline
            if r["status"] == "green" and first_yellow and r["t"] > first_yellow
        ),
        None,
    )
    return {
        "size": size,
        "records": build_data.SIZES[size],
        "dimension": build_data.DIMENSION,
        "exit": done.returncode,
        "seconds": round(seconds, 1),
        "copy_seconds": collection.get("seconds"),
        "index_seconds": collection.get("index_seconds"),
        "search_ready": collection.get("search_ready"),
        "retries": report.get("retries"),
        "upsert_requests": len(upserts),
        "largest_upsert_mb": round(max(s["bytes"] for s in upserts) / 2**20, 2),
        "yellow_then_green": first_yellow is not None and green_after is not None,
        "yellow_at": first_yellow,
        "green_at": green_after,
        "final": timeline[-1] if timeline else None,
        "statuses_seen": sorted(set(statuses)),
        "timeline": timeline,
        "query": query,
        "load": round(load, 2),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def markdown(r: dict[str, Any]) -> str:
    final = r["final"] or {}
    lines = [
        f"# Ferry → a Qdrant server (the test server on Qdrant Edge), {r['records']:,} × {r['dimension']}",
        "",
        f"Generated by `python bench/qdrant_server.py --size {r['size']}` on {r['when']} "
        f"({r['cpus']} CPUs, Python {r['python']}, 1-minute load {r['load']} at the start: a "
        "shared machine, other work only slows it down). The target is `tests/qdrant_server` "
        "(docs/qdrant-test-server.md): these figures are Ferry's server path at size, not a "
        "real Qdrant server's speed.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| exit code / search-ready | {r['exit']} / {r['search_ready']} |",
        f"| wall time of `ferry migrate` (s) | {r['seconds']} |",
        f"| collection time, copy + index (s) | {r['copy_seconds']} |",
        f"| index phase (s) | {r['index_seconds']} |",
        f"| upsert requests / largest (MiB) | {r['upsert_requests']} / {r['largest_upsert_mb']} |",
        f"| retries | {r['retries']} |",
        f"| yellow first seen at (s) | {r['yellow_at']} |",
        f"| green after yellow at (s) | {r['green_at']} |",
        f"| final: status, indexed / points, m | {final.get('status')}, "
        f"{final.get('indexed'):,} / {final.get('points'):,}, {final.get('m')} |"
        if final
        else "| final | – |",
        f"| REST query top-10 p50 / p99 (ms) | {r['query']['p50_ms']:.2f} / {r['query']['p99_ms']:.2f} |",
        "",
        "Index phase as a watcher polling `GET /collections/bench` every 0.5 s saw it "
        "(status, indexed_vectors_count, points_count, hnsw m):",
        "",
        "| t (s) | status | indexed | points | m |",
        "|---:|---|---:|---:|---:|",
    ]
    rows = r["timeline"]
    if len(rows) > 14:  # the copy's many point counts: keep the start and the index phase
        rows = rows[:3] + [row for row in rows[3:] if row["m"] or row["status"] != "green"][-11:]
    for row in rows:
        lines.append(
            f"| {row['t']} | {row['status']} | {row['indexed'] or 0:,} | {row['points'] or 0:,} "
            f"| {row['m']} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", choices=sorted(build_data.SIZES))
    args = parser.parse_args()
    result = run(args.size)
    (BENCH / "qdrant_server.json").write_text(json.dumps(result, indent=2) + "\n")
    (BENCH / "qdrant_server.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["yellow_then_green"] and result["search_ready"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
