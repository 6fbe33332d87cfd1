"""`ferry backup URI --collection NAME --to DIR`: a verified backup of one collection.

Prints where the backup is and whether an earlier verified backup of the same state was
reused; `--json` prints the contract documented in the README ("ferry backup --json").
Progress goes to stderr on a terminal only, so stdout stays one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ferry.cli.common import EXIT_OK, add_common, check_collection_name, print_json
from ferry.core.backup import run_backup
from ferry.core.backup_store import BackupProgress


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "backup", help="copy one collection into a verified backup (reused when unchanged)"
    )
    parser.add_argument("uri", help="what to back up, e.g. chroma+file:///data/chroma")
    parser.add_argument("--collection", required=True, metavar="NAME")
    parser.add_argument("--to", required=True, metavar="DIR", help="directory of backups")
    add_common(parser, state=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.collection:  # an empty one is run_backup's to refuse
        check_collection_name(args.collection)
    show = sys.stderr.isatty() and not args.json
    last = [-1]

    def progress(update: BackupProgress) -> None:
        if not show or update.fraction is None:
            return
        percent = int(update.fraction * 100)
        if percent != last[0]:
            last[0] = percent
            print(f"\r{update.phase} {percent:3d}%", end="", file=sys.stderr, flush=True)

    result = asyncio.run(run_backup(args.uri, args.collection, args.to, progress))
    if show:
        print(file=sys.stderr)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    data = result.to_json()
    counts = ", ".join(f"{v:,} {k}" for k, v in data["counts"].items() if isinstance(v, int))
    verb = "reused verified backup" if result.reused else "backed up"
    print(f"{verb} {args.collection} ({counts}) → {result.path}")
    print(
        f"  manifest sha256 {result.manifest_sha256}; {data['files']} files, {data['bytes']:,} bytes"
    )
    if data["restore_uri"]:
        print(f"  read it with: {data['restore_uri']}")
    return EXIT_OK
