"""`ferry migrate`: run or resume a migration; a Rich live display, or one JSON document."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ferry.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    add_common,
    check_collection_name,
    check_field_name,
    check_number,
    confirm,
    open_journal,
    print_json,
    resolve_profiles,
)
from ferry.cli.embed_args import add_embed_arguments, embed_settings_from
from ferry.cli.option_args import add_options
from ferry.core.connectors.base import WriteMode
from ferry.core.engine import MigrationEngine, MigrationOptions
from ferry.core.errors import FerryError
from ferry.core.events import ProgressSampled, RunEvent
from ferry.core.journal import Journal, default_state_path
from ferry.core.live.follow import FollowOptions
from ferry.core.mapping import PayloadFields
from ferry.core.options import migrate_options as declared_options
from ferry.core.preview import preview_run
from ferry.core.profile_defaults import profile_embed, profile_layout
from ferry.core.runner import RunOutcome, migrate
from ferry.core.runs import RunState
from ferry.core.targets import TargetNames, parse_collection_args
from ferry.core.tuning import TuningOptions, parse_payload_index


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("migrate", help="copy collections from a source to a target")
    add_options(parser, declared_options(group=None))
    add_embed_arguments(parser)
    add_common(parser)
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> MigrationOptions:
    check_number("--batch-size", args.batch_size, least=1, example="1000")
    check_number("--workers", args.workers, least=1, most=64, example="2")
    check_number("--rate", args.rate, positive=True, example="5000 (or omit it: no limit)")
    check_number("--give-up-after", args.give_up_after, positive=True, most=86_400, example="120")
    check_field_name("--id-field", args.id_field)
    check_field_name("--document-field", args.document_field)
    if args.id_field == args.document_field:
        raise FerryError(
            "--id-field and --document-field name the same field",
            where=args.id_field,
            fix="give them different names",
        )
    for name in args.collection:  # NAME or NAME=TARGET (TargetNames refuses a '/' in TARGET)
        source_name, _, target_name = name.partition("=")
        for part in (source_name, target_name):
            if part and "/" not in part:
                check_collection_name(part)
        if "/" in source_name:
            check_collection_name(source_name)
    check_number("--hnsw-m", args.hnsw_m, least=1, most=1024, example="16")
    check_number(
        "--hnsw-ef-construct", args.hnsw_ef_construct, least=1, most=100_000, example="100"
    )
    return MigrationOptions(
        batch_size=args.batch_size,
        batch_bytes=int(args.batch_mb * 2**20),
        workers=args.workers,
        rate=args.rate,
        mode=WriteMode(args.mode),
        fields=PayloadFields(args.id_field, args.document_field),
        layout=args.layout,
        layout_origin=getattr(args, "layout_origin", None),
        targets=TargetNames.from_args(args.collection, args.target_name),
        give_up_after=args.give_up_after,
        index=not args.no_index,
        tuning=TuningOptions(
            hnsw_m=args.hnsw_m,
            hnsw_ef_construct=args.hnsw_ef_construct,
            on_disk_vectors=args.on_disk_vectors,
            payload_indexes=tuple(parse_payload_index(p) for p in args.payload_index),
            no_payload_indexes=args.no_payload_indexes,
        ),
        embed=embed_settings_from(args),
    )


def dry_run(args: argparse.Namespace, options: MigrationOptions) -> int:
    """The plan the same command would run, without running it: nothing is written (the
    journal is read only when it already exists, to know which targets Ferry made)."""
    state = Path(args.state) if args.state else default_state_path()
    journal = Journal(state) if state.exists() else None
    target = args.target

    def owned(name: str) -> bool:
        return bool(journal and journal.runs.target_owned(target, name))

    earlier = journal.runs.latest_pairs(args.source, target) if journal else {}
    preview = asyncio.run(
        preview_run(args.source, target, args.collection, options, owned, earlier)
    )
    if args.json:
        print_json(preview.to_json())
    else:
        print("\n".join(preview.lines()))
    return EXIT_BAD_INPUT if preview.errors else EXIT_OK


def use_profiles(args: argparse.Namespace) -> None:
    """Profile names in `--from` / `--to` become their URIs; without `--layout`, the layout
    the profiles name is used (the plan says which profile asked for it)."""
    source, target = resolve_profiles(args)
    if args.layout is None:
        asked = profile_layout(source, target)
        if asked.layout:
            args.layout, args.layout_origin = asked.layout, asked.origin
    if args.embed is None:  # the model a profile names; flags given win field by field
        embed = profile_embed(source, target)
        for key in ("embed", "embed_base_url", "embed_api_key_env"):
            if embed.get(key) and getattr(args, key) is None:
                setattr(args, key, embed[key])


def run(args: argparse.Namespace) -> int:
    use_profiles(args)
    options = options_from(args)
    names, _pairs = parse_collection_args(args.collection)
    if args.dry_run:
        return dry_run(args, options)
    journal = open_journal(args)
    if not args.yes and not args.json and sys.stdin.isatty():
        what = ", ".join(
            n if options.targets.resolve(n) == n else f"{n} → {options.targets.resolve(n)}"
            for n in names
        )
        template = f" (as {options.targets.template})" if options.targets.template else ""
        prompt = (
            f"Copy {what or 'all collections' + template} from {args.source} "
            f"to {args.target}? [y/N] "
        )
        if not confirm(prompt):
            print("ferry: nothing done", file=sys.stderr)
            return EXIT_BAD_INPUT
    engines: list[MigrationEngine] = []
    check_number("--follow-interval", args.follow_interval, positive=True, most=3600, example="1")
    follow = FollowOptions(args.follow_interval) if args.follow else None

    async def main() -> RunOutcome:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()  # ends --follow (the engine's cancel ends the copy)

        def cancel() -> None:
            stop.set()
            if engines:
                engines[0].cancel()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, cancel)
            except (NotImplementedError, RuntimeError):
                pass
        if args.json or not sys.stderr.isatty():

            def attach_quiet(engine: MigrationEngine) -> None:
                engines.append(engine)
                if args.log:
                    log_events(engine, args.source, args.target)

            return await migrate(
                args.source,
                args.target,
                names,
                options,
                journal,
                restart=args.restart,
                on_engine=attach_quiet,
                follow=follow,
                stop=stop,
            )
        from ferry.cli.live import LiveDisplay

        display = LiveDisplay()

        def attach(engine: MigrationEngine) -> None:
            engines.append(engine)
            display.attach(engine)

        with display:
            return await migrate(
                args.source,
                args.target,
                names,
                options,
                journal,
                restart=args.restart,
                on_engine=attach,
                follow=follow,
                stop=stop,
            )

    outcome = asyncio.run(main())
    if args.json:
        print_json(outcome.to_json())
    else:
        report(outcome)
    return EXIT_OK if outcome.status is RunState.COMPLETED else EXIT_FAILED


def log_events(engine: MigrationEngine, source: str, target: str) -> None:
    """`--log`: the run's events on stderr as they happen, one line each (the detached
    run's log file, which the TUI's log view follows)."""

    def line(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)

    options = " ".join(f"{k}={v}" for k, v in engine.options.to_json().items())
    line(f"run {engine.run_id}: {source} → {target}")
    line(f"options {options}")

    def write(event: RunEvent) -> None:
        entry = event.log_entry()
        if entry is not None and not isinstance(event, ProgressSampled):
            line(f"{entry.kind:<7} {entry.collection or 'run'}: {entry.message}")

    engine.bus.listen(write)


def report(outcome: RunOutcome) -> None:
    lines: list[str] = [f"run {outcome.run_id}: {outcome.status.value}"]
    plans = {item.source.name: item for item in outcome.plan.collections}
    pairs = outcome.plan.pairs
    for c in outcome.collections:
        detail: Any = (
            c.skipped_reason
            or c.error
            or (
                f"{c.records_written:,} records in {c.seconds:.1f}s ({c.records_per_second:,.0f}/s)"
            )
        )
        target = pairs.get(c.name, c.name)
        shown = c.name if target == c.name else f"{c.name} → {target}"
        # A collection left out (an empty one of unknown dimension) reads "skipped", not
        # "completed — not created"; --json keeps its status and says why in skipped_reason.
        word = "skipped" if c.skipped_reason else c.status.value
        lines.append(f"  {shown}: {word} — {detail}")
        item = plans.get(c.name)
        if item is not None and not c.skipped_reason and not c.error:
            lines.append(f"    layout {item.layout} ({item.layout_reason})")
            lines += [f"    switch the app: {line}" for line in item.switch]
        if c.status.value == "completed" and not c.skipped_reason:
            if c.search_ready:
                ef = f"; search it with hnsw_ef={c.hnsw_ef}" if c.hnsw_ef else ""
                lines.append(f"    search-ready (index phase {c.index_seconds:.1f}s){ef}")
            else:
                lines.append("    not indexed (--no-index): a staging copy, not search-ready")
    for catch_up in outcome.catch_ups:
        lines.append(f"  {catch_up.collection}: {catch_up.words()}")
    if outcome.embed is not None:
        e = outcome.embed
        lines.append(
            f"  embedded with {e['model']}: {e['embedded']:,} documents sent in "
            f"{e['requests']:,} requests, {e['cached']:,} from the cache, "
            f"{e['duplicates']:,} duplicates, {e['skipped']:,} skipped (no document); "
            f"{e['throttled']:,} throttled, {e['retries']:,} retries"
        )
    for warning in outcome.warnings:
        lines.append(f"  warning: {warning}")
    if outcome.status is RunState.CANCELLED:
        lines.append("  re-run the same command to resume")
    print("\n".join(lines), file=sys.stderr)
