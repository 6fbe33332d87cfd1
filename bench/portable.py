"""The Parquet path against the direct path: Chroma → Parquet → Qdrant Edge vs Chroma → Edge.

What it answers: how much does carrying a collection across an air gap as Parquet files
cost, compared with migrating directly? Each leg is `ferry.core.runner.migrate` with default
options (batch 1000 × 2 workers), in a child process of its own (so its peak RSS is its
own), on the data `build_data.py` makes (cosine, 384 dimensions, realistic metadata and
documents). Best of `--repeat` runs per leg, the legs interleaved so load on the shared
machine hits them alike. JSON Lines is measured the same way, for comparison.

    python bench/build_data.py --quick      # once: the 20k directory
    python bench/portable.py --size 20k     # → bench/portable_results.{json,md}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import build_data  # noqa: E402
from run import RssSampler, machine_facts, package_version, peak_rss_mb  # noqa: E402

WORK = build_data.DATA_DIR / "work-portable"
RESULTS = BENCH / "portable_results"


def uri(kind: str, size: str) -> str:
    if kind == "chroma":
        return f"chroma+file://{build_data.chroma_dir(size)}"
    return {
        "edge": f"qdrant+edge://{WORK / 'edge'}",
        "parquet": f"parquet+file://{WORK / f'parquet-{size}'}",
        "jsonl": f"jsonl+file://{WORK / f'jsonl-{size}'}",
    }[kind]


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def child(source: str, target: str, size: str) -> dict[str, Any]:
    """One `migrate` leg into a fresh target; prints what it took."""
    from ferry.core.engine import MigrationOptions
    from ferry.core.journal import Journal
    from ferry.core.runner import migrate

    target_dir = Path(uri(target, size).split("://", 1)[1])
    shutil.rmtree(target_dir, ignore_errors=True)
    journal_path = WORK / "journal.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal_path}{suffix}").unlink(missing_ok=True)
    journal = Journal(journal_path)
    sampler = RssSampler()
    started = time.perf_counter()
    outcome = asyncio.run(
        migrate(
            uri(source, size),
            uri(target, size),
            [build_data.COLLECTION],
            MigrationOptions(),
            journal,
        )
    )
    seconds = time.perf_counter() - started
    sampler.stop()
    if outcome.status != "completed":
        raise SystemExit(f"{source} → {target}: {outcome.to_json()}")
    import resource

    return {
        "records": outcome.collections[0].records_written,
        "seconds": seconds,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_anon_mb": round(sampler.peak_anon_mb, 1),
        "worker_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "target_mb": round(folder_mb(target_dir), 1) if target != "edge" else None,
    }


def leg(source: str, target: str, size: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps([source, target, size])],
        capture_output=True,
        text=True,
        cwd=BENCH.parent,
    )
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"leg {source} → {target} failed")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_after"] = round(os.getloadavg()[0], 2)
    result["records_per_second"] = round(result["records"] / result["seconds"], 1)
    print(
        f"  {source} → {target}: {result['seconds']:.2f}s, "
        f"{result['records_per_second']:,.0f} rec/s, peak RSS {result['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return result


LEGS = [
    ("chroma", "edge"),
    ("chroma", "parquet"),
    ("parquet", "edge"),
    ("chroma", "jsonl"),
    ("jsonl", "edge"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20k", choices=sorted(build_data.SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(RESULTS.with_suffix(".json").read_text())
        RESULTS.with_suffix(".md").write_text(markdown(report))
        return 0
    if args.child:
        source, target, size = json.loads(args.child)
        print(json.dumps(child(source, target, size)))
        return 0
    if not build_data.is_complete(args.size):
        raise SystemExit(f"build the data first: python bench/build_data.py (size {args.size})")
    WORK.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {f"{s} → {t}": [] for s, t in LEGS}
    for round_ in range(args.repeat):
        print(f"round {round_ + 1}/{args.repeat}", flush=True)
        for source, target in LEGS:
            runs[f"{source} → {target}"].append(leg(source, target, args.size))
    best = {name: min(results, key=lambda r: r["seconds"]) for name, results in runs.items()}
    for name, results in runs.items():
        best[name]["runs_seconds"] = [round(r["seconds"], 2) for r in results]
    direct = best["chroma → edge"]["seconds"]
    summary = {}
    for fmt in ("parquet", "jsonl"):
        export, load = best[f"chroma → {fmt}"], best[f"{fmt} → edge"]
        total = export["seconds"] + load["seconds"]
        summary[fmt] = {
            "export_seconds": round(export["seconds"], 2),
            "import_seconds": round(load["seconds"], 2),
            "total_seconds": round(total, 2),
            "total_over_direct": round(total / direct, 2),
            "import_over_direct": round(load["seconds"] / direct, 2),
            "export_mb": export["target_mb"],
        }
    report = {
        "size": args.size,
        "records": best["chroma → edge"]["records"],
        "source_mb": round(folder_mb(build_data.chroma_dir(args.size)), 1),
        "machine": machine_facts(),
        "versions": {n: package_version(n) for n in ("pyarrow", "chromadb", "qdrant-edge-py")},
        "legs": best,
        "summary": summary,
    }
    RESULTS.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    loads = [leg_["load_after"] for leg_ in report["legs"].values()]
    lines = [
        f"# Parquet path vs direct path ({report['records']:,} × {build_data.DIMENSION}, cosine)",
        "",
        "`python bench/portable.py --size " + report["size"] + "`; each leg is `ferry migrate`",
        "(default batch 1000 × 2 workers) in a process of its own, best of "
        f"{len(next(iter(report['legs'].values()))['runs_seconds'])} interleaved runs on "
        f"{report['machine'].get('cpus', '?')} shared cores. Source directory: "
        f"{report['source_mb']} MB. Load average after each leg: "
        f"{min(loads):.1f}–{max(loads):.1f} (other work shared the machine: compare the "
        "ratios, not the absolute rates, with `results.md`).",
        "",
        "| leg | seconds (best) | all runs | records/s | peak RSS | on disk |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, leg_ in report["legs"].items():
        disk = f"{leg_['target_mb']} MB" if leg_["target_mb"] is not None else "—"
        lines.append(
            f"| {name} | {leg_['seconds']:.2f} | {leg_['runs_seconds']} | "
            f"{leg_['records_per_second']:,.0f} | {leg_['peak_rss_mb']:.0f} MB | {disk} |"
        )
    lines += [
        "",
        "| path | export | import | total | total / direct |",
        "|---|---:|---:|---:|---:|",
    ]
    direct = report["legs"]["chroma → edge"]["seconds"]
    lines.append(f"| direct: chroma → edge | | | {direct:.2f} s | 1.00 |")
    for fmt, s in report["summary"].items():
        lines.append(
            f"| via {fmt} | {s['export_seconds']:.2f} s | {s['import_seconds']:.2f} s | "
            f"{s['total_seconds']:.2f} s | {s['total_over_direct']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
