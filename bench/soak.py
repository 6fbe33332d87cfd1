"""Soak: 1M × 384 from embedded Chroma into Qdrant Edge, throughput and memory over time.

What it answers (issue 13): does Ferry keep its pace over a long run, and does its memory
stay flat as N grows? Each size runs `ferry.core.runner.migrate(chroma+file → qdrant+edge)` in a
child process of its own (so `ru_maxrss` is that run's own peak); a thread samples every
second the records the journal holds as written (checkpointed: durable on the target), the
records read, Ferry's RSS (anonymous / file-backed) and the Edge worker's RSS (a process of
its own: the target database, reported apart). The parent writes `soak_results.md` and
`soak_results.json` next to this file.

Sizes 100k and 300k run the same way, so "peak RSS at 100k / 300k / 1M" compares like with
like. The 1M source is built once by `python bench/build_data.py 1m` (~40 min).

`--index` adds the index phase; the default skips it (`--no-index`, a staging copy): Edge's
optimizer took 34 s for 100k × 384 on this 2-core machine (bench/search_ready.md)
and an HNSW build grows faster than N, so 1M would index for well over 15 minutes; the index
phase moves no records.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import build_data  # noqa: E402

WORK = build_data.DATA_DIR / "soak"
SAMPLE_SECONDS = 1.0
TARGET_RSS_GROWTH = 1.10  # peak RSS at the largest size / at the smallest


def _status(pid: int | str) -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in MB (empty if it is gone)."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


def _worker_pids() -> list[int]:
    """This process's children except multiprocessing's resource tracker: the Edge worker."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    workers = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            workers.append(pid)
    return workers


class Sampler:
    """Every second: journal progress, Ferry's memory, the Edge worker's memory."""

    def __init__(self, journal_path: Path) -> None:
        self.journal_path = journal_path
        self.samples: list[dict[str, Any]] = []
        self.worker_peak_mb = 0.0
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _progress(self) -> tuple[int, int, str | None]:
        if not self.journal_path.exists():
            return 0, 0, None
        try:
            with sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True) as db:
                row = db.execute(
                    "SELECT records_written, records_read, status FROM run_collections "
                    "ORDER BY rowid DESC LIMIT 1"
                ).fetchone()
        except sqlite3.Error:
            return 0, 0, None
        return (int(row[0]), int(row[1]), row[2]) if row else (0, 0, None)

    def sample(self) -> None:
        written, read, status = self._progress()
        mine = _status("self")
        worker_rss = worker_hwm = 0.0
        for pid in _worker_pids():
            theirs = _status(pid)
            worker_rss += theirs.get("VmRSS", 0.0)
            worker_hwm = max(worker_hwm, theirs.get("VmHWM", 0.0))
        self.worker_peak_mb = max(self.worker_peak_mb, worker_hwm)
        self.samples.append(
            {
                "t": round(time.monotonic() - self._started, 2),
                "written": written,
                "read": read,
                "status": status,
                "rss_mb": round(mine.get("VmRSS", 0.0), 1),
                "hwm_mb": round(mine.get("VmHWM", 0.0), 1),
                "anon_mb": round(mine.get("RssAnon", 0.0), 1),
                "file_mb": round(mine.get("RssFile", 0.0), 1),
                "worker_rss_mb": round(worker_rss, 1),
            }
        )

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def child(size: str, index: bool) -> dict[str, Any]:
    """One migration of `size`, sampled; prints one JSON line."""
    from ferry.core.engine import MigrationOptions
    from ferry.core.journal import Journal
    from ferry.core.runner import migrate

    work = WORK / size
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    target = work / "target"
    journal_path = work / "journal.sqlite3"
    journal = Journal(journal_path)
    sampler = Sampler(journal_path)
    started = time.perf_counter()
    outcome = asyncio.run(
        migrate(
            f"chroma+file://{build_data.chroma_dir(size)}",
            f"qdrant+edge://{target}",
            [build_data.COLLECTION],
            MigrationOptions(index=index),
            journal,
        )
    )
    seconds = time.perf_counter() - started
    sampler.sample()
    sampler.stop()
    row = journal.runs.collections(outcome.run_id)[0]
    journal.close()
    if outcome.status != "completed":
        raise SystemExit(f"migration ended {outcome.status}: {outcome.to_json()}")
    result = outcome.collections[0]
    shutil.rmtree(target, ignore_errors=True)  # 1M × 384 is ~2.5 GB: do not keep it
    return {
        "size": size,
        "records": int(row.records_written),
        "seconds": round(seconds, 2),
        "index": index,
        "index_seconds": round(result.index_seconds or 0.0, 2),
        "search_ready": bool(result.search_ready),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_anon_mb": max((s["anon_mb"] for s in sampler.samples), default=0.0),
        "peak_file_mb": max((s["file_mb"] for s in sampler.samples), default=0.0),
        # The worker has exited and been reaped: its own peak, like run.py reports it.
        "worker_peak_rss_mb": round(
            max(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                sampler.worker_peak_mb,
            ),
            1,
        ),
        "samples": sampler.samples,
    }


def run_size(size: str, index: bool) -> dict[str, Any]:
    if not build_data.is_complete(size):
        raise SystemExit(f"data missing: run `python bench/build_data.py {size}` first")
    print(f"-> {size} ...", end=" ", flush=True)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", size]
        + (["--index"] if index else []),
        capture_output=True,
        text=True,
        cwd=BENCH.parent,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"soak of {size} failed")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{result['records'] / result['seconds']:,.0f} rec/s over {result['seconds']:.0f}s, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB (worker {result['worker_peak_rss_mb']:.0f})",
        flush=True,
    )
    return result


def deciles(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Throughput and memory when the written count crossed 10 %, 20 % … 100 %."""
    total = result["records"]
    samples = result["samples"]
    rows = []
    previous_t, previous_n = 0.0, 0
    start_t = next((s["t"] for s in samples if s["read"] or s["written"]), 0.0)
    for tenth in range(1, 11):
        goal = total * tenth // 10
        hit = next((s for s in samples if s["written"] >= goal), samples[-1] if samples else None)
        if hit is None:
            break
        span = hit["t"] - (previous_t if tenth > 1 else start_t)
        rows.append(
            {
                "percent": tenth * 10,
                "written": hit["written"],
                "elapsed_s": hit["t"],
                "records_per_second": (hit["written"] - previous_n) / span if span > 0 else 0.0,
                "rss_mb": hit["rss_mb"],
                "hwm_mb": hit["hwm_mb"],
                "anon_mb": hit["anon_mb"],
                "worker_rss_mb": hit["worker_rss_mb"],
            }
        )
        previous_t, previous_n = hit["t"], hit["written"]
    return rows


def render(report: dict[str, Any]) -> str:
    runs = report["runs"]
    big = runs[report["soak_size"]]
    machine = report["machine"]
    lines = [
        "# Soak: Chroma embedded → Qdrant Edge, 1M × 384",
        "",
        f"Generated by `python bench/soak.py` on {machine['date']} ({machine['cpus']} CPUs, "
        f"{machine['memory_gb']} GB, 1-minute load {machine['load_before']} at the start; "
        "the machine is shared). See `bench/README.md`.",
        "",
        f"Index phase: {'included' if big['index'] else 'skipped (`--no-index`)'}. "
        + (
            ""
            if big["index"]
            else "Edge's optimizer took 34 s for 100k × 384 here (`search_ready.md`) and an "
            "HNSW build grows faster than N, so indexing 1M on 2 shared cores would take well "
            "over 15 minutes; the index phase moves no records (it runs in the Edge worker). "
        )
        + "Records are the journal's `records_written` (checkpointed, durable on the target), "
        "sampled every second with Ferry's RSS and the Edge worker's (the target database, a "
        "process of its own).",
        "",
        f"## Over time ({report['soak_size']}: {big['records']:,} records in "
        f"{big['seconds']:,.0f} s, {big['records'] / big['seconds']:,.0f} records/s)",
        "",
        "| written | records | elapsed s | records/s in this tenth | Ferry RSS MB | "
        "Ferry peak so far MB | Ferry anon MB | Edge worker RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["deciles"]:
        lines.append(
            f"| {row['percent']} % | {row['written']:,} | {row['elapsed_s']:,.0f} | "
            f"{row['records_per_second']:,.0f} | {row['rss_mb']:.0f} | {row['hwm_mb']:.0f} | "
            f"{row['anon_mb']:.0f} | {row['worker_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "## Peak RSS by collection size",
        "",
        "| records | seconds | records/s | Ferry peak RSS MB | anon / files MB | "
        "Edge worker peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for size, run in runs.items():
        lines.append(
            f"| {size} ({run['records']:,}) | {run['seconds']:,.0f} | "
            f"{run['records'] / run['seconds']:,.0f} | {run['peak_rss_mb']:.0f} | "
            f"{run['peak_anon_mb']:.0f} / {run['peak_file_mb']:.0f} | "
            f"{run['worker_peak_rss_mb']:.0f} |"
        )
    growth = report["rss_growth"]
    lines += [
        "",
        f"**Ferry's peak RSS at {report['soak_size']} / at {report['smallest']}: "
        f"{growth:.2f}** (target ≤ {TARGET_RSS_GROWTH}: "
        f"{'PASS' if growth <= TARGET_RSS_GROWTH else 'FAIL'}). The source was "
        f"{'unchanged' if report['source_unchanged'] else 'CHANGED'} (sizes and mtimes of "
        "every file before and after).",
        "",
        "Ferry's peak is `ru_maxrss` of the run's own process; *anon / files* splits it "
        "(sampled): anonymous memory vs pages of memory-mapped files the kernel can drop. The "
        "Edge worker's memory is the target database's (Qdrant Edge's segments and its "
        "optimizer), shown apart as a database server's would be.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["100k", "300k", "1m"],
        choices=list(build_data.SIZES),
        help="the last one is the soak whose progress over time is tabulated",
    )
    parser.add_argument("--index", action="store_true", help="include the index phase")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    parser.add_argument(
        "--add",
        action="store_true",
        help="keep the sizes already in soak_results.json that this run does not measure",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.index)))
        return 0
    out_json, out_md = BENCH / "soak_results.json", BENCH / "soak_results.md"
    if args.render:
        out_md.write_text(render(json.loads(out_json.read_text())))
        return 0
    from run import machine_facts, source_stamp

    machine = machine_facts()
    machine["load_before"] = round(os.getloadavg()[0], 2)
    stamps = {s: source_stamp(s) for s in args.sizes}
    runs = {size: run_size(size, args.index) for size in args.sizes}
    if args.add and out_json.exists():  # e.g. 100k and 300k measured earlier, 1m now
        earlier = json.loads(out_json.read_text())
        runs = {**earlier["runs"], **runs}
        stamps.update({s: earlier["stamps"][s] for s in earlier["runs"] if s not in stamps})
    order = list(build_data.SIZES)
    runs = dict(sorted(runs.items(), key=lambda item: order.index(item[0])))
    soak_size, smallest = list(runs)[-1], list(runs)[0]
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "soak_size": soak_size,
        "smallest": smallest,
        "runs": runs,
        "deciles": deciles(runs[soak_size]),
        "rss_growth": runs[soak_size]["peak_rss_mb"] / runs[smallest]["peak_rss_mb"],
        "source_unchanged": all(source_stamp(s) == stamps[s] for s in runs),
        "stamps": stamps,
    }
    out_json.write_text(json.dumps(report, indent=1) + "\n")
    out_md.write_text(render(report))
    print(f"peak RSS {soak_size}/{smallest}: {report['rss_growth']:.2f}; wrote {out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
