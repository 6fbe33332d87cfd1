"""`ferry validate`: does the target hold what the source holds, and search the same?

Exit 0 when everything checked matches, 1 when differences were found (or a target
collection is absent), 2 on error. `--repair` re-copies missing and mismatched records;
`--delete-extra` deletes records the source lacks, after a typed confirmation (or `--yes`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from ferry.cli.common import (
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
from ferry.core.errors import FerryError
from ferry.core.layouts import LAYOUT_NAMES
from ferry.core.mapping import PayloadFields
from ferry.core.targets import parse_collection_args
from ferry.core.validate import (
    ValidationOptions,
    ValidationProgress,
    ValidationReport,
    delete_extras_for,
    validate,
)
from ferry.core.validate.report import RepairResult

SHOW_IDS = 10


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "validate", help="compare a migrated target with its source (counts, diff, recall@k)"
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="URI|PROFILE", help="a URI or a profile"
    )
    parser.add_argument(
        "--to", dest="target", required=True, metavar="URI|PROFILE", help="a URI or a profile"
    )
    parser.add_argument(
        "--collection",
        action="append",
        default=[],
        metavar="NAME[=TARGET]",
        help="repeatable; all source collections when omitted; TARGET defaults to where the "
        "latest run wrote NAME",
    )
    depth = parser.add_mutually_exclusive_group()
    depth.add_argument(
        "--sample",
        type=int,
        default=1000,
        metavar="N",
        help="compare a seeded random sample of N records (default 1000; 0: counts only)",
    )
    depth.add_argument(
        "--full", action="store_true", help="compare every record and look for extras in the target"
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=20,
        metavar="Q",
        help="query vectors sampled from the source for recall@k (0: skip)",
    )
    parser.add_argument("--k", type=int, default=10, metavar="K", help="top-k for recall@k")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-5,
        metavar="ATOL",
        help="max abs difference per vector component (after normalising for cosine)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the sample and the queries")
    parser.add_argument("--batch-size", type=int, default=500, metavar="N")
    parser.add_argument(
        "--recall-threshold",
        type=float,
        default=0.95,
        metavar="R",
        help="recall@k below this fails the check (default 0.95)",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="re-copy missing and mismatched records (idempotent upserts)",
    )
    parser.add_argument(
        "--delete-extra",
        action="store_true",
        help="delete target records the source lacks (implies --full; asks first)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before deleting extras")
    parser.add_argument(
        "--layout",
        choices=list(LAYOUT_NAMES),
        default=None,
        help="payload layout of a Qdrant target (default: as migrated, else as its points are)",
    )
    parser.add_argument("--id-field", default="source_id", help="payload field of the source id")
    parser.add_argument(
        "--document-field", default="document", help="payload field of the document"
    )
    parser.add_argument(
        "--ab-min-overlap",
        type=float,
        default=0.5,
        metavar="O",
        help="a re-embedded copy: mean A/B search overlap@k (source neighbours vs target "
        "neighbours) below this fails the check and blocks a cutover (default 0.5)",
    )
    add_embed_arguments(parser, for_validate=True)
    add_common(parser)
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> ValidationOptions:
    for flag, value, least in (
        ("--sample", args.sample, 0),
        ("--queries", args.queries, 0),
        ("--k", args.k, 1),
        ("--batch-size", args.batch_size, 1),
    ):
        if value < least:
            raise FerryError(f"{flag} must be at least {least}", fix=f"pass {flag} {max(least, 1)}")
    check_number("--tolerance", args.tolerance, least=0, most=1e6, example="1e-5")
    check_number("--recall-threshold", args.recall_threshold, least=0, most=1, example="0.95")
    check_number("--seed", args.seed, least=0, most=2**32 - 1, example="0")
    check_number("--ab-min-overlap", args.ab_min_overlap, least=0, most=1, example="0.5")
    check_field_name("--id-field", args.id_field)
    check_field_name("--document-field", args.document_field)
    for name in args.collection:
        for part in name.split("=", 1):
            if part:
                check_collection_name(part)
    return ValidationOptions(
        sample=args.sample,
        full=args.full or args.delete_extra,
        queries=args.queries,
        k=args.k,
        tolerance=args.tolerance,
        seed=args.seed,
        batch_size=args.batch_size,
        repair=args.repair,
        delete_extra=args.delete_extra and args.yes,
        recall_threshold=args.recall_threshold,
        embed=embed_settings_from(args),
        ab_min_overlap=args.ab_min_overlap,
    )


def run(args: argparse.Namespace) -> int:
    resolve_profiles(args)  # the layout is the journal's (as migrated), not the profile's
    options = options_from(args)
    if args.delete_extra and not args.yes and (args.json or not sys.stdin.isatty()):
        raise FerryError(
            "--delete-extra needs a typed confirmation, and there is no terminal to ask",
            fix="run it in a terminal, or add --yes if you are sure",
        )
    fields = PayloadFields(args.id_field, args.document_field)
    names, explicit = parse_collection_args(args.collection)
    journal = open_journal(args)
    # Without NAME=TARGET, each collection is compared with where the latest run wrote it.
    target_names = {**journal.runs.latest_pairs(args.source, args.target), **explicit}
    progress = None if args.json or not sys.stderr.isatty() else ProgressLine()
    report = asyncio.run(
        validate(
            args.source,
            args.target,
            names,
            options,
            journal,
            on_progress=progress,
            fields=fields,
            target_names=target_names,
            layout=args.layout,
        )
    )
    if progress:
        progress.clear()
    if args.delete_extra and not args.yes:
        ask_and_delete(args, report, fields)
    if args.json:
        print_json(report.to_json())
    else:
        print(render(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def ask_and_delete(
    args: argparse.Namespace, report: ValidationReport, fields: PayloadFields
) -> None:
    """Show each collection's extras and delete them only after the user types its name."""
    for c in report.collections:
        if not c.extra.total:
            continue
        shown = ", ".join(c.extra.items[:SHOW_IDS])
        more = f" (+{c.extra.total - SHOW_IDS:,} more)" if c.extra.total > SHOW_IDS else ""
        print(
            f"{c.target_name}: {c.extra.total:,} record(s) the source lacks: {shown}{more}",
            file=sys.stderr,
        )
        prompt = f"Type {c.target_name!r} to delete them from {args.target}: "
        if not confirm(prompt, expected=c.target_name):
            print(f"ferry: kept the extras in {c.target_name}", file=sys.stderr)
            continue
        deleted = asyncio.run(
            delete_extras_for(
                args.source,
                args.target,
                c.name,
                c.target_name,
                fields,
                layout=c.layout or args.layout,
            )
        )
        if c.repair is None:
            c.repair = RepairResult()
        c.repair.deleted += deleted


class ProgressLine:
    """One self-rewriting status line on a terminal's stderr, a few times a second."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, p: ValidationProgress) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and p.step != "done":
            return
        self.last = now
        figure = f" {p.done:,}/{p.total:,}" if p.total else ""
        sys.stderr.write(f"\r\x1b[K{p.collection}: {p.step}{figure} {p.message}")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def render(report: ValidationReport) -> str:
    lines: list[str] = []
    for c in report.collections:
        state = "OK" if c.ok else "DIFFERENCES"
        shown = c.name if c.target_name == c.name else f"{c.name} → {c.target_name}"
        if c.skipped_reason:
            lines.append(f"{shown}: OK — skipped by migrate ({c.skipped_reason})")
            continue
        lines.append(
            f"{shown}: {state} — source {c.source_count:,}, target {c.target_count:,}; "
            f"{c.checked:,} record(s) compared ({c.mode})"
        )
        for reason in c.reasons:
            lines.append(f"  ✘ {reason}")
        for kind in ("missing", "extra"):
            items: Any = getattr(c, kind)
            if items.total:
                more = f" (+{items.total - SHOW_IDS:,} more)" if items.total > SHOW_IDS else ""
                lines.append(f"  {kind} {items.total:,}: {', '.join(items.items[:SHOW_IDS])}{more}")
        if c.mismatched.total:
            shown = ", ".join(
                f"{m.id} ({', '.join(m.fields)})" for m in c.mismatched.items[:SHOW_IDS]
            )
            more = (
                f" (+{c.mismatched.total - SHOW_IDS:,} more)"
                if c.mismatched.total > SHOW_IDS
                else ""
            )
            lines.append(f"  mismatched {c.mismatched.total:,}: {shown}{more}")
        for note in c.notes:
            lines.append(f"  note: {note}")
        if c.layout:
            lines.append(f"  layout {c.layout} ({c.layout_reason})")
        for line in c.switch:
            lines.append(f"  switch the app: {line}")
        if c.recall:
            r = c.recall
            tau = "—" if r.rank_agreement is None else f"{r.rank_agreement:.3f}"
            lines.append(
                f"  recall@{r.k} {r.recall_at_k:.3f} target vs source; vs exact: source "
                f"{r.source_vs_exact:.3f}, target {r.target_vs_exact:.3f}; rank tau {tau} "
                f"({r.queries} queries)"
            )
        if c.ab is not None:
            lines += [f"  {line}" for line in c.ab.lines()]
        if c.repair:
            lines.append(
                f"  repair: {c.repair.verified:,} rewritten and verified by reading back"
                + (
                    f", {c.repair.rewritten - c.repair.verified:,} NOT repaired (still differ)"
                    if c.repair.rewritten > c.repair.verified
                    else ""
                )
                + ", "
                f"{c.repair.deleted:,} extra deleted"
                + (
                    f", {c.repair.delete_failed:,} still in the target"
                    if c.repair.delete_failed
                    else ""
                )
                + " — run validate again to confirm"
            )
    lines.append("all checks passed" if report.ok else "differences found")
    return "\n".join(lines)
