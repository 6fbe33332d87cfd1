"""`ferry status [RUN] [--follow]`: runs as the journal records them, from any process."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cli.common import EXIT_OK, add_common, open_journal, print_json
from core.errors import FerryError
from core.journal import Journal
from core.launcher import process_alive

FOLLOW_INTERVAL = 0.5
ACTIVE = {"pending", "running", "paused"}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("status", help="show runs and their progress")
    parser.add_argument("run", nargs="?", help="run id (or a unique prefix); latest when omitted")
    parser.add_argument("--follow", action="store_true", help="keep showing until the run ends")
    parser.add_argument("--all", action="store_true", help="list every run, not only recent ones")
    add_common(parser)
    parser.set_defaults(handler=run)


def run_view(journal: Journal, run: dict[str, Any]) -> dict[str, Any]:
    """A run with its collections, and `interrupted` when its process is gone."""
    status = run["status"]
    if status in ACTIVE and not process_alive(run["pid"], run["host"]):
        status = "interrupted"
    collections = []
    for c in journal.collections(run["run_id"]):
        collections.append(
            {
                "name": c["name"],
                "target_name": c["target_name"],
                "status": c["status"],
                "total": c["total"],
                "records_read": c["records_read"],
                "records_written": c["records_written"],
                "records_per_second": round(c["records_per_second"], 1),
                "average_records_per_second": round(c["average_records_per_second"], 1),
                "bytes_per_second": round(c["bytes_per_second"], 1),
                "eta_seconds": c["eta_seconds"],
                "retries": c["retries"],
                "errors": c["errors"],
                "seconds": round(c["seconds"], 3),
                "skipped_reason": c["skipped_reason"],
                "error": c["error"],
            }
        )
    return {
        "run_id": run["run_id"],
        "status": status,
        "source": run["source_uri"],
        "target": run["target_uri"],
        "created_at": run["created_at"],
        "finished_at": run["finished_at"],
        "error": run["error"],
        "options": json.loads(run["options"]),
        "collections": collections,
    }


def find_run(journal: Journal, run_id: str | None) -> dict[str, Any]:
    if run_id:
        run = journal.get_run(run_id)
        if run is None:
            raise FerryError(
                f"no run {run_id!r} in the journal",
                where=str(journal.path),
                fix="run `ferry status` to list runs",
            )
        return run
    runs = journal.list_runs(1)
    if not runs:
        raise FerryError(
            "no runs yet",
            where=str(journal.path),
            fix="start one with `ferry migrate` or `ferry demo`",
        )
    return runs[0]


def render(view: dict[str, Any]) -> str:
    lines = [f"run {view['run_id']}  {view['status']}  {view['source']} → {view['target']}"]
    for c in view["collections"]:
        total = max(c["total"], 1)
        percent = 100.0 * c["records_written"] / total if c["total"] else 100.0
        eta = f"ETA {c['eta_seconds']:.0f}s" if c["eta_seconds"] else ""
        lines.append(
            f"  {c['name']:<24} {c['status']:<10} {c['records_written']:>10,}/{c['total']:<10,} "
            f"{percent:5.1f}%  {c['records_per_second']:>9,.0f} rec/s  {eta}"
        )
        if c["error"]:
            lines.append(f"    error: {c['error']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    journal = open_journal(args)
    if not args.run and not args.follow:
        runs = [run_view(journal, r) for r in journal.list_runs(1000 if args.all else 20)]
        if args.json:
            print_json({"runs": runs})
        else:
            if not runs:
                print("no runs yet")
            for view in runs:
                print(render(view))
        return EXIT_OK
    run_row = find_run(journal, args.run)
    if not args.follow:
        view = run_view(journal, run_row)
        print_json(view) if args.json else print(render(view))
        return EXIT_OK
    last = ""
    while True:
        view = run_view(journal, journal.get_run(run_row["run_id"]) or run_row)
        text = json.dumps(view, default=str) if args.json else render(view)
        if text != last:
            print(text if args.json else text + "\n", flush=True)
            last = text
        if view["status"] not in ACTIVE:
            return EXIT_OK
        try:
            time.sleep(FOLLOW_INTERVAL)  # polling another process's journal: nothing to await
        except KeyboardInterrupt:
            print("stopped following; the run goes on", file=sys.stderr)
            return EXIT_OK
