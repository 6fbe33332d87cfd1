"""Does watching slow the migration? Throughput headless vs with the TUI attached.

Same data, same target kind, alternating runs: `ferry migrate` alone, then the same command
launched by the real app (`FerryApp`, headless driver, rendering at 120×40, polling the journal
four times a second) and watched on the Monitor until it completes. The figure is the engine's
own records/s (records written / seconds, from the journal), median of the repetitions.

    python bench/tui_overhead.py [--records 20000] [--dim 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def throughput(state: Path, run_id: str) -> float:
    from core.journal import Journal

    journal = Journal(state)
    rows = journal.collections(run_id)
    journal.close()
    return sum(r["records_written"] for r in rows) / sum(r["seconds"] for r in rows)


def headless(source: str, target: str, state: Path) -> float:
    from core.journal import Journal

    subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "migrate",
            "--from",
            source,
            "--to",
            target,
            "--yes",
            "--json",
            "--state",
            str(state),
            "--restart",
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    journal = Journal(state)
    run_id = journal.list_runs(1)[0]["run_id"]
    journal.close()
    return throughput(state, run_id)


async def attached(source: str, target: str, state: Path, names: list[str]) -> float:
    from tui.app import FerryApp

    app = FerryApp(state, source, target, start="inventory", select_all=True)
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.screen_for("inventory") and app.context.selected):
            await pilot.pause(0.05)
        await pilot.press("m")
        cpu = time.process_time()
        while not (app.snapshot and app.snapshot.state == "completed"):
            await asyncio.sleep(0.25)  # the bench itself stays out of the way
        app_cpu = time.process_time() - cpu
        run_id = app.context.run_id
    print(f"  (TUI process CPU while watching: {app_cpu:.2f}s)", flush=True)
    assert run_id
    return throughput(state, run_id)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tests.conftest import make_chroma

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        base = Path(tmp)
        os.environ["FERRY_CONFIG"] = str(base / "profiles.toml")
        names = ["bench-a", "bench-b"]
        make_chroma(
            base / "src",
            {n: {"n": args.records, "dim": args.dim, "seed": i} for i, n in enumerate(names)},
        )
        source = f"chroma+file://{base / 'src'}"
        alone, watched = [], []
        for i in range(args.repeat):
            alone.append(headless(source, f"qdrant+edge://{base / f'h{i}'}", base / f"h{i}.db"))
            watched.append(
                asyncio.run(
                    attached(source, f"qdrant+edge://{base / f'w{i}'}", base / f"w{i}.db", names)
                )
            )
            print(
                f"run {i + 1}: headless {alone[-1]:,.0f} rec/s, TUI attached {watched[-1]:,.0f}"
                " rec/s",
                flush=True,
            )
        a, w = statistics.median(alone), statistics.median(watched)
        print(
            f"median: headless {a:,.0f} rec/s, TUI attached {w:,.0f} rec/s, "
            f"cost {100 * (a - w) / a:+.1f}% ({2 * args.records:,} records × {args.dim} dims)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
