"""`ferry status [RUN] [--follow]`: runs as the journal records them, from any process."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ferry.cli.common import EXIT_OK, add_common, open_journal, print_json
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.runs import RunView, recent_runs
from ferry.core.secrets import redact

FOLLOW_INTERVAL = 0.5


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("status", help="show runs and their progress")
    parser.add_argument("run", nargs="?", help="run id (or a unique prefix); latest when omitted")
    parser.add_argument("--follow", action="store_true", help="keep showing until the run ends")
    parser.add_argument("--all", action="store_true", help="list every run, not only recent ones")
    add_common(parser)
    parser.set_defaults(handler=run)


def find_run(journal: Journal, run_id: str | None) -> RunView:
    if run_id:
        view = RunView.load(journal, run_id)
        if view is None:
            raise FerryError(
                f"no run {run_id!r} in the journal",
                where=str(journal.path),
                fix="run `ferry status` to list runs",
            )
        return view
    runs = recent_runs(journal, 1)
    if not runs:
        raise FerryError(
            "no runs yet",
            where=str(journal.path),
            fix="start one with `ferry migrate` or `ferry demo`",
        )
    return runs[0]


def render(view: RunView) -> str:
    lines = [f"run {view.run_id}  {view.state.value}  {view.source_uri} → {view.target_uri}"]
    for c in view.collections:
        total = max(c.total, 1)
        percent = 100.0 * c.records_written / total if c.total else 100.0
        # A rate or an ETA only while the collection is really moving (core.runs).
        moving = c.moving and view.state.value == "running"
        eta = f"ETA {c.eta_seconds:.0f}s" if moving and c.eta_seconds else ""
        speed = f"{c.records_per_second:>9,.0f} rec/s" if moving else ""
        # A named target shows as its pair: the journal row keeps both names.
        shown = c.name if c.target_name == c.name else f"{c.name} → {c.target_name}"
        lines.append(
            f"  {shown:<24} {c.state_word:<11} {c.records_written:>10,}/{c.total:<10,} "
            f"{percent:5.1f}%  {speed}  {eta}".rstrip()
        )
        if c.indexing:
            lines.append(f"    {c.index_words()}")
        elif c.phase.value == "completed" and c.tuning is not None:
            ready = "search-ready" if c.search_ready else "not indexed (staging copy)"
            ef = f"; search with hnsw_ef={c.hnsw_ef}" if c.hnsw_ef else ""
            lines.append(f"    {ready} (indexed in {c.index_seconds:.1f}s){ef}")
        if c.live is not None:
            seq = f"cut seq {c.live['cut_seq_id']}, {c.live['catch_ups']} catch-up(s)"
            lines.append(f"    live source: {c.live_words or 'lag 0'} ({seq})")
        if c.error:
            lines.append(f"    error: {c.error}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    journal = open_journal(args)
    if not args.run and not args.follow:
        runs = recent_runs(journal, 1000 if args.all else 20)
        if args.json:
            print_json({"runs": [view.to_json() for view in runs]})
        else:
            if not runs:
                print("no runs yet")
            for view in runs:
                print(redact(render(view)))
        return EXIT_OK
    view = find_run(journal, args.run)
    if not args.follow:
        print_json(view.to_json()) if args.json else print(redact(render(view)))
        return EXIT_OK
    last = ""
    while True:
        view = RunView.load(journal, view.run_id) or view
        text = json.dumps(view.to_json(), default=str) if args.json else render(view)
        if text != last:
            print(redact(text) if args.json else redact(text) + "\n", flush=True)
            last = text
        if not view.active:
            return EXIT_OK
        try:
            time.sleep(FOLLOW_INTERVAL)  # polling another process's journal: nothing to await
        except KeyboardInterrupt:
            print("stopped following; the run goes on", file=sys.stderr)
            return EXIT_OK
