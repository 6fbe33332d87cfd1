"""What the byte bound costs ordinary records: `ferry migrate` with and without it.

Why: `--batch-mb` (core/engine/sizing.py) adds a 16-record probe read per collection and
tops it up to a whole first batch. On records of ordinary size that must cost nothing
measurable. One run builds a Chroma directory (N × 384, short documents), then copies it
into fresh Qdrant Edge folders (`--no-index`: the copy alone), alternating the default bound
and no bound (`--batch-mb 4096`, never reached), ROUNDS times each; it writes the medians
and their ratio to bench/byte_bound.md. Judge by the ratio, measured within one run.

    python bench/byte_bound.py [--records 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def build(path: Path, records: int) -> None:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("docs", configuration={"hnsw": {"space": "cosine"}})
    rng = np.random.default_rng(0)
    step = client.get_max_batch_size()
    for start in range(0, records, step):
        end = min(start + step, records)
        collection.add(
            ids=[f"doc-{i}" for i in range(start, end)],
            embeddings=rng.normal(size=(end - start, 384)).astype(np.float32),
            metadatas=[{"n": i, "kind": "a" if i % 2 else "b"} for i in range(start, end)],
            documents=[f"document {i} " * 20 for i in range(start, end)],
        )
    del client


def copy_seconds(source: Path, target: Path, state: Path, batch_mb: str | None) -> float:
    argv = [sys.executable, "-m", "ferry.cli", "migrate", "--from", f"chroma+file://{source}",
            "--to", f"qdrant+edge://{target}", "--collection", "docs=docs", "--no-index",
            "--yes", "--json", "--state", str(state)]  # fmt: skip
    if batch_mb:
        argv += ["--batch-mb", batch_mb]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"bound (default 32 MiB)": [], "no bound": []}
    with tempfile.TemporaryDirectory(prefix="ferry-bytebound-") as tmp:
        root = Path(tmp)
        build(root / "src", args.records)
        for round_ in range(args.rounds):
            for label, batch_mb in (("bound (default 32 MiB)", None), ("no bound", "4096")):
                target = root / f"t-{round_}-{batch_mb}"
                times[label].append(
                    copy_seconds(root / "src", target, root / f"j-{round_}.sqlite3", batch_mb)
                )
                shutil.rmtree(target)
    medians = {label: statistics.median(values) for label, values in times.items()}
    ratio = medians["no bound"] / medians["bound (default 32 MiB)"]
    load = os.getloadavg()[0]
    lines = [
        "# The byte bound on ordinary records",
        "",
        f"`python bench/byte_bound.py --records {args.records} --rounds {args.rounds}`: "
        f"{args.records:,} × 384 cosine, short documents, embedded Chroma → Qdrant Edge "
        f"(`--no-index`), alternating, medians; load {load:.1f} at the end.",
        "",
        "| run | median s | records/s |",
        "|---|---:|---:|",
        *(
            f"| {label} | {seconds:.2f} | {args.records / seconds:,.0f} |"
            for label, seconds in medians.items()
        ),
        "",
        f"Speed with the bound relative to without: **{ratio:.3f}** (1.0: no cost).",
        "",
    ]
    (HERE / "byte_bound.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
