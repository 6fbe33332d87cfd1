"""`ferry migrate`: run or resume a migration; a Rich live display, or one JSON document."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    add_common,
    confirm,
    open_journal,
    print_json,
)
from core.connectors.base import WriteMode
from core.engine import MigrationEngine, MigrationOptions
from core.errors import FerryError
from core.mapping import PayloadFields
from core.runner import RunOutcome, migrate
from core.runs import RunState
from core.tuning import TuningOptions, parse_payload_index


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("migrate", help="copy collections from a source to a target")
    parser.add_argument("--from", dest="source", required=True, metavar="URI")
    parser.add_argument("--to", dest="target", required=True, metavar="URI")
    parser.add_argument(
        "--collection",
        action="append",
        default=[],
        metavar="NAME",
        help="repeatable; all collections when omitted",
    )
    parser.add_argument("--batch-size", type=int, default=1000, metavar="N")
    parser.add_argument("--workers", type=int, default=2, metavar="N")
    parser.add_argument(
        "--rate", type=float, default=None, metavar="N", help="cap records per second"
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in WriteMode],
        default="create",
        help="append: upsert into an existing target collection",
    )
    parser.add_argument("--id-field", default="source_id", help="payload field for the source id")
    parser.add_argument(
        "--document-field", default="document", help="payload field for the document"
    )
    parser.add_argument(
        "--no-index",
        action="store_true",
        help="a staging copy: skip the index phase (the target is not search-ready)",
    )
    parser.add_argument(
        "--hnsw-m", type=int, default=None, metavar="M", help="override the source's HNSW M"
    )
    parser.add_argument(
        "--hnsw-ef-construct",
        type=int,
        default=None,
        metavar="EF",
        help="override the source's HNSW ef_construction",
    )
    parser.add_argument(
        "--on-disk-vectors", action="store_true", help="keep the target's vectors on disk"
    )
    parser.add_argument(
        "--payload-index",
        action="append",
        default=[],
        metavar="KEY:TYPE",
        help="repeatable; index KEY as keyword|integer|float|bool (overrides the observed type)",
    )
    parser.add_argument(
        "--no-payload-indexes",
        action="store_true",
        help="create no payload index from the metadata types (only --payload-index ones)",
    )
    parser.add_argument("--restart", action="store_true", help="start over instead of resuming")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_common(parser)
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> MigrationOptions:
    for flag, value in (("--batch-size", args.batch_size), ("--workers", args.workers)):
        if value < 1:
            raise FerryError(f"{flag} must be at least 1", fix=f"pass {flag} 1 or more")
    if args.rate is not None and args.rate <= 0:
        raise FerryError("--rate must be positive", fix="omit --rate for no limit")
    for flag, value in (("--hnsw-m", args.hnsw_m), ("--hnsw-ef-construct", args.hnsw_ef_construct)):
        if value is not None and value < 1:
            raise FerryError(f"{flag} must be at least 1", fix=f"pass {flag} 1 or more")
    return MigrationOptions(
        batch_size=args.batch_size,
        workers=args.workers,
        rate=args.rate,
        mode=WriteMode(args.mode),
        fields=PayloadFields(args.id_field, args.document_field),
        index=not args.no_index,
        tuning=TuningOptions(
            hnsw_m=args.hnsw_m,
            hnsw_ef_construct=args.hnsw_ef_construct,
            on_disk_vectors=args.on_disk_vectors,
            payload_indexes=tuple(parse_payload_index(p) for p in args.payload_index),
            no_payload_indexes=args.no_payload_indexes,
        ),
    )


def run(args: argparse.Namespace) -> int:
    options = options_from(args)
    journal = open_journal(args)
    if not args.yes and not args.json and sys.stdin.isatty():
        prompt = (
            f"Copy {', '.join(args.collection) or 'all collections'} from {args.source} "
            f"to {args.target}? [y/N] "
        )
        if not confirm(prompt):
            print("ferry: nothing done", file=sys.stderr)
            return EXIT_BAD_INPUT
    engines: list[MigrationEngine] = []

    async def main() -> RunOutcome:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, lambda: engines and engines[0].cancel())
            except (NotImplementedError, RuntimeError):
                pass
        if args.json or not sys.stderr.isatty():
            return await migrate(
                args.source,
                args.target,
                args.collection,
                options,
                journal,
                restart=args.restart,
                on_engine=engines.append,
            )
        from cli.live import LiveDisplay

        display = LiveDisplay()

        def attach(engine: MigrationEngine) -> None:
            engines.append(engine)
            display.attach(engine)

        with display:
            return await migrate(
                args.source,
                args.target,
                args.collection,
                options,
                journal,
                restart=args.restart,
                on_engine=attach,
            )

    outcome = asyncio.run(main())
    if args.json:
        print_json(outcome.to_json())
    else:
        report(outcome)
    return EXIT_OK if outcome.status is RunState.COMPLETED else EXIT_FAILED


def report(outcome: RunOutcome) -> None:
    lines: list[str] = [f"run {outcome.run_id}: {outcome.status.value}"]
    for c in outcome.collections:
        detail: Any = (
            c.skipped_reason
            or c.error
            or (
                f"{c.records_written:,} records in {c.seconds:.1f}s ({c.records_per_second:,.0f}/s)"
            )
        )
        lines.append(f"  {c.name}: {c.status.value} — {detail}")
        if c.status.value == "completed" and not c.skipped_reason:
            if c.search_ready:
                ef = f"; search it with hnsw_ef={c.hnsw_ef}" if c.hnsw_ef else ""
                lines.append(f"    search-ready (index phase {c.index_seconds:.1f}s){ef}")
            else:
                lines.append("    not indexed (--no-index): a staging copy, not search-ready")
    for warning in outcome.warnings:
        lines.append(f"  warning: {warning}")
    if outcome.status is RunState.CANCELLED:
        lines.append("  re-run the same command to resume")
    print("\n".join(lines), file=sys.stderr)
