"""`ferry demo`: a real-text demo source, migrated into an embedded Qdrant."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferry.cli.common import add_common, check_number
from ferry.core.demo import DEMO_COLLECTIONS, build_demo_source, demo_built, demo_paths

WATCH_SECONDS = 45.0  # how long the TUI demo run lasts by default: time to pause and resume


def watchable_rate(records: int) -> float:
    """The records/s cap that makes the demo run last about WATCH_SECONDS (20/s at least)."""
    return float(max(20, round(records / WATCH_SECONDS)))


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="open the TUI on a demo source, ready to migrate")
    parser.add_argument("--dir", metavar="PATH", help="where the demo data lives")
    parser.add_argument("--records", type=int, default=3000, help="records per collection")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="N",
        help="records/s cap of the TUI demo run (default: what makes it last ~45 s, long "
        "enough to pause, cancel and resume; 0: no cap)",
    )
    parser.add_argument(
        "--no-app-writes",
        action="store_true",
        help="the demo's application does not write to its source after the copy (by "
        "default it changes 5 records, for validation to find and repair)",
    )
    parser.add_argument(
        "--headless", action="store_true", help="migrate without the TUI (what CI runs)"
    )
    add_common(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_number("--records", args.records, least=1, most=10_000_000, example="3000")
    if args.rate is None:
        args.rate = watchable_rate(args.records * len(DEMO_COLLECTIONS))
    check_number("--rate", args.rate, least=0, example="1000 (0: no cap)")
    source_dir, target_dir = demo_paths(Path(args.dir).resolve() if args.dir else None)
    if not args.json:
        # "(building once)" only when it does build: later starts just open it.
        building = "" if demo_built(source_dir) else " (building once)…"
        print(f"ferry demo: source {source_dir}{building}", file=sys.stderr)
    build_demo_source(source_dir, args.records)
    source_uri = f"chroma+file://{source_dir}"
    target_uri = f"qdrant+edge://{target_dir}"
    headless = args.headless or not sys.stdout.isatty()
    if not headless:
        try:
            from ferry.tui.app import run_tui
        except ImportError:
            headless = True
        else:
            # Inventory shown, every demo collection selected: `m` starts the migration.
            return run_tui(
                state=args.state,
                source=source_uri,
                target=target_uri,
                start="inventory",
                select_all=True,
                migrate_args=["--rate", f"{args.rate:g}"] if args.rate else None,
                demo_source=None if args.no_app_writes else source_dir,
            )
    from ferry.cli import main

    argv = ["migrate", "--from", source_uri, "--to", target_uri, "--yes"]
    if args.state:
        argv += ["--state", args.state]
    if args.json:
        argv.append("--json")
    return main(argv)
