"""`ferry cutover`, `ferry rollback` and `ferry router status|set`.

Cutover and rollback show exactly what will change, then ask for the alias name to be typed
(or take `--yes`); without a terminal and without `--yes` they refuse rather than guess.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ferry.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    add_common,
    check_collection_name,
    check_number,
    confirm,
    open_journal,
    print_json,
)
from ferry.core.cutover import (
    CutoverOutcome,
    CutoverPlan,
    cutover_candidates,
    describe_validation,
    execute,
    format_age,
    open_alias_backend,
    plan_alias_delete,
    plan_cutover,
    plan_rollback,
)
from ferry.core.cutover_pick import pick_validated_copy
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.router.canary import check_percent
from ferry.core.router.state import (
    MODES,
    parse_mode,
    read_state,
    read_stats,
    resolve_state_path,
    set_mode,
    summarize_stats,
)


def register(commands: argparse._SubParsersAction) -> None:
    cut = commands.add_parser("cutover", help="point an alias at a validated collection")
    cut.add_argument("--to", dest="target", required=True, metavar="URI", help="the target")
    cut.add_argument(
        "--collection",
        metavar="PHYSICAL",
        help="the collection Ferry migrated into (default: the newest validated copy of --alias)",
    )
    cut.add_argument("--alias", metavar="NAME", help="the name the app uses")
    cut.add_argument(
        "--list",
        action="store_true",
        help="list the candidates: collections runs migrated here (migrated, validated, age)",
    )
    cut.add_argument("--force", action="store_true", help="skip the validation gate")
    cut.add_argument("--reason", metavar="TEXT", help="why --force is safe (journaled)")
    _shared(cut)
    cut.set_defaults(handler=run_cutover)

    back = commands.add_parser("rollback", help="point an alias back where it was")
    back.add_argument("--to", dest="target", required=True, metavar="URI", help="the target")
    back.add_argument("--alias", required=True, metavar="NAME")
    _shared(back)
    back.set_defaults(handler=run_rollback)

    alias = commands.add_parser("alias", help="list or delete aliases on a target")
    alias_actions = alias.add_subparsers(dest="alias_command", metavar="ACTION", required=True)
    listing = alias_actions.add_parser("list", help="alias → collection on the target")
    listing.add_argument("--to", dest="target", required=True, metavar="URI", help="the target")
    add_common(listing, state=False)
    listing.set_defaults(handler=run_alias_list)
    delete = alias_actions.add_parser(
        "delete", help="remove an alias (the collection stays); asks for the alias name"
    )
    delete.add_argument("--to", dest="target", required=True, metavar="URI", help="the target")
    delete.add_argument("--alias", required=True, metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask for the alias name")
    add_common(delete)
    delete.set_defaults(handler=run_alias_delete)

    router = commands.add_parser("router", help="show or change the router mode apps follow")
    actions = router.add_subparsers(dest="router_command", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="mode and the figures apps reported")
    _state_file(status)
    add_common(status)
    status.set_defaults(handler=run_router_status)
    change = actions.add_parser("set", help="change the mode (apps pick it up at their next call)")
    change.add_argument("mode", choices=MODES)
    change.add_argument("--reason", metavar="TEXT", help="journaled with the change")
    change.add_argument(
        "--auto-rollback",
        dest="auto_rollback",
        action="store_true",
        default=None,
        help="let apps roll back by themselves on bad figures",
    )
    change.add_argument("--no-auto-rollback", dest="auto_rollback", action="store_false")
    change.add_argument(
        "--max-error-rate", type=float, metavar="F", help="rollback threshold, e.g. 0.05"
    )
    change.add_argument("--max-p99-ms", type=float, metavar="MS", help="rollback threshold")
    change.add_argument(
        "--min-overlap",
        type=float,
        metavar="F",
        help="rollback threshold: shadow overlap@k, judged against exact search (e.g. 0.9)",
    )
    change.add_argument(
        "--percent",
        type=float,
        metavar="N",
        help="canary: share of keyed reads the target serves, 0-100 (e.g. 1, 5, 25, 50, 100)",
    )
    change.add_argument(
        "--shadow",
        dest="canary_shadow",
        action="store_true",
        default=None,
        help="canary: also compare every read with the other side",
    )
    change.add_argument("--no-shadow", dest="canary_shadow", action="store_false")
    _state_file(change)
    add_common(change)
    change.set_defaults(handler=run_router_set)


def _shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--router-state", metavar="PATH", help="also switch the router mode in this state file"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for the alias name")
    add_common(parser)


def _state_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-file", metavar="PATH", help="router state file (default: $FERRY_ROUTER_STATE)"
    )


# -- cutover / rollback ----------------------------------------------------------------------
def run_cutover(args: argparse.Namespace) -> int:
    if args.list:
        return run_candidates(args)
    if not args.alias:
        raise FerryError(
            "cutover needs --alias (the name the application reads)",
            fix=f"see the candidates with `ferry cutover --to {args.target} --list`",
        )
    if not args.collection:
        check_collection_name(args.alias, "alias")
        candidates = asyncio.run(cutover_candidates(args.target, open_journal(args)))
        args.collection = pick_validated_copy(candidates, args.alias, args.target)
    if args.reason and not args.force:
        raise FerryError("--reason goes with --force", fix="add --force or drop --reason")
    check_collection_name(args.collection)
    check_collection_name(args.alias, "alias")
    journal = open_journal(args)

    async def make_plan() -> CutoverPlan:
        async with open_alias_backend(args.target) as backend:
            return await plan_cutover(
                backend,
                journal,
                args.collection,
                args.alias,
                args.force,
                args.reason,
                args.router_state,
            )

    return _confirm_and_execute(args, journal, asyncio.run(make_plan()))


def run_rollback(args: argparse.Namespace) -> int:
    check_collection_name(args.alias, "alias")
    journal = open_journal(args)

    async def make_plan() -> CutoverPlan:
        async with open_alias_backend(args.target) as backend:
            return await plan_rollback(backend, journal, args.alias, args.router_state)

    return _confirm_and_execute(args, journal, asyncio.run(make_plan()))


def run_candidates(args: argparse.Namespace) -> int:
    """`ferry cutover --list`: what runs migrated into this target, and how far each got."""
    candidates = asyncio.run(cutover_candidates(args.target, open_journal(args)))
    if args.json:
        print_json({"target": args.target, "candidates": [c.to_json() for c in candidates]})
        return EXIT_OK
    if not candidates:
        print(f"no completed migration into {args.target} in the journal")
        return EXIT_OK
    for c in candidates:
        validation = describe_validation(c.validation)
        live = f"; alias {', '.join(c.pointed_by)} points at it" if c.pointed_by else ""
        print(
            f"{c.collection:<24} from {c.alias} ({c.records:,} records, migrated "
            f"{format_age(c.age_seconds)} ago; validation {validation}){live}"
        )
        if c.alias_is_collection and not c.pointed_by:
            print(
                f"  alias {c.alias!r} is taken by a collection: migrate with "
                f"--target-name '{{name}}_v2' for blue-green"
            )
        elif not c.pointed_by:
            print(
                f"  ferry cutover --to {args.target} --collection {c.collection} --alias {c.alias}"
            )
    return EXIT_OK


def run_alias_list(args: argparse.Namespace) -> int:
    async def read() -> dict[str, str]:
        async with open_alias_backend(args.target) as backend:
            return await backend.aliases()

    aliases = asyncio.run(read())
    if args.json:
        print_json({"target": args.target, "aliases": aliases})
    else:
        for name, collection in sorted(aliases.items()):
            print(f"{name} → {collection}")
        if not aliases:
            print("no aliases")
    return EXIT_OK


def run_alias_delete(args: argparse.Namespace) -> int:
    journal = open_journal(args)

    async def make_plan() -> CutoverPlan:
        async with open_alias_backend(args.target) as backend:
            return await plan_alias_delete(backend, args.alias)

    return _confirm_and_execute(args, journal, asyncio.run(make_plan()))


def _confirm_and_execute(args: argparse.Namespace, journal: Journal, plan: CutoverPlan) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise FerryError(
                f"{plan.action} needs confirmation and there is no terminal",
                fix="pass --yes to confirm non-interactively",
            )
        print("\n".join(plan.changes()), file=sys.stderr)
        if not confirm(f"Type the alias name ({plan.alias}) to confirm: ", expected=plan.alias):
            print("ferry: nothing done", file=sys.stderr)
            return EXIT_BAD_INPUT

    async def do() -> CutoverOutcome:
        # Reopened: the plan's check of where the alias points is repeated right before it moves.
        async with open_alias_backend(plan.target_uri) as backend:
            return await execute(backend, journal, plan)

    outcome = asyncio.run(do())
    if args.json:
        print_json(outcome.to_json())
    else:
        if args.yes:
            print("\n".join(plan.changes()))
        where = _snapshot_line(outcome.snapshot)
        now = plan.to_collection or "(removed)"
        print(
            f"done: alias {plan.alias} → {now} "
            f"(was {plan.from_collection or 'unset'}; journal #{outcome.journal_id}){where}"
        )
    return EXIT_OK


def _snapshot_line(snapshot: dict[str, Any] | None) -> str:
    if not snapshot:
        return ""
    if snapshot.get("path"):
        reused = "reused verified backup" if snapshot.get("reused") else "backup"
        return f"; {reused} at {snapshot['path']}"
    if snapshot.get("name"):
        return f"; snapshot {snapshot['name']}"
    return f"; {snapshot.get('note', 'no backup')}"


# -- router ----------------------------------------------------------------------------------
def router_view(path: Any) -> dict[str, Any]:
    state = read_state(path)
    return {
        "state_file": str(path),
        "exists": path.exists(),
        "mode": state["mode"],
        "changed_at": state.get("changed_at"),
        "changed_by": state.get("changed_by"),
        "reason": state.get("reason"),
        "target_uri": state.get("target_uri"),
        "alias": state.get("alias"),
        "thresholds": state.get("thresholds"),
        "percent": state.get("percent") if state["mode"] == "canary" else None,
        "shadow": bool(state.get("shadow")) if state["mode"] == "canary" else None,
        "rolled_back": state.get("rolled_back"),
        "history": (state.get("history") or [])[-10:],
        "stats": summarize_stats(read_stats(path)),
    }


def run_router_status(args: argparse.Namespace) -> int:
    view = router_view(resolve_state_path(args.state_file))
    if args.json:
        print_json(view)
        return EXIT_OK
    dial = (
        f" {view['percent']:g} % of keyed reads on the target"
        if view["percent"] is not None
        else ""
    )
    dial += ", every read shadow-compared" if view["shadow"] else ""
    print(f"router {view['mode']}{dial}  ({view['state_file']})")
    if view["changed_at"]:
        print(f"  changed by {view['changed_by']}: {view['reason'] or 'no reason given'}")
    if view["rolled_back"]:
        back = view["rolled_back"]
        print(f"  last automatic rollback: {'; '.join(back.get('reasons') or [])}")
    stats = view["stats"]
    if not stats:
        print("  no app has reported figures yet")
        return EXIT_OK
    shadow = stats["shadow"]
    print(
        f"  {stats['processes']} app process(es): {stats['reads']} reads, "
        f"{stats['writes']} writes, {stats['mirror_failures']} mirror failures, "
        f"{stats['replay_backlog']} waiting for replay"
    )
    if shadow["compared"]:
        print(
            f"  shadow reads: overlap@{shadow['k']} {shadow['overlap_at_k']:.3f}, "
            f"latency difference {shadow['latency_diff_ms']:+.1f} ms, "
            f"{shadow['errors']} errors"
        )
    canary = stats.get("canary") or {}
    if canary.get("target_share") is not None:
        print(
            f"  canary: {canary['target_reads']} keyed reads on the target "
            f"({canary['target_share']:.1%}), {canary['primary_reads']} on the primary, "
            f"{canary['fallbacks']} served by the primary after a target failure, "
            f"{canary['unkeyed']} without a key"
        )
    for side, figures in stats["stores"].items():
        rate = figures["error_rate"]
        p99 = figures["p99_ms"]
        print(
            f"  {side:<9} {figures['calls']} calls, error rate "
            f"{'-' if rate is None else f'{rate:.1%}'}, p99 "
            f"{'-' if p99 is None else f'{p99:.1f} ms'}"
        )
    if stats.get("recommendation"):
        advice = stats["recommendation"]
        print(
            f"  RECOMMENDED: {advice['action']} to {advice['to']}: " + "; ".join(advice["reasons"])
        )
    updated = stats.get("updated_at")
    if updated:
        import time

        print(f"  figures from {format_age(time.time() - updated)} ago")
    return EXIT_OK


def run_router_set(args: argparse.Namespace) -> int:
    check_number("--max-error-rate", args.max_error_rate, least=0, most=1, example="0.05")
    check_number("--max-p99-ms", args.max_p99_ms, positive=True, most=3_600_000, example="250")
    check_number("--min-overlap", args.min_overlap, least=0, most=1, example="0.9")
    path = resolve_state_path(args.state_file)
    mode = parse_mode(args.mode)
    if mode.value == "canary":
        percent = check_percent(args.percent)
    elif args.percent is not None or args.canary_shadow is not None:
        raise FerryError(
            "--percent and --shadow belong to the canary mode",
            fix="ferry router set canary --percent 5",
        )
    journal = open_journal(args)  # before the state file changes: both or neither
    thresholds = dict(read_state(path).get("thresholds") or {})
    if args.auto_rollback is not None:
        thresholds["auto_rollback"] = args.auto_rollback
    if args.max_error_rate is not None:
        if not 0 <= args.max_error_rate <= 1:
            raise FerryError("--max-error-rate is a fraction", fix="e.g. 0.05 for 5 %")
        thresholds["max_error_rate"] = args.max_error_rate
    if args.max_p99_ms is not None:
        thresholds["max_p99_ms"] = args.max_p99_ms
    if args.min_overlap is not None:
        thresholds["min_overlap"] = args.min_overlap
    before = read_state(path)
    dial: dict[str, Any] = {}
    if mode.value == "canary":
        dial = {"percent": percent}
        if args.canary_shadow is not None:
            dial["shadow"] = args.canary_shadow
    state, previous = set_mode(
        path, mode, reason=args.reason, thresholds=thresholds or None, **dial
    )
    from_label = _dial_label(previous, before.get("percent"))
    to_label = _dial_label(mode.value, dial.get("percent"))
    journal_id = journal.cutovers.record(
        action="router",
        target_uri=str(state.get("target_uri") or f"router:{path}"),
        alias=str(state.get("alias") or path.stem),
        from_collection=from_label,
        to_collection=to_label,
        reason=args.reason,
        detail={"state_file": str(path), "thresholds": thresholds or None, **dial},
    )
    if args.json:
        print_json(
            {
                "state_file": str(path),
                "from": previous,
                "to": mode.value,
                **({"from_percent": before.get("percent")} if previous == "canary" else {}),
                **dial,
                "journal_id": journal_id,
            }
        )
    else:
        print(f"router {from_label} → {to_label} ({path}); running apps switch at their next call")
    return EXIT_OK


def _dial_label(mode: str, percent: Any) -> str:
    """`canary 25%` for the dial (what the journal and the screen show), else the mode."""
    return f"{mode} {float(percent):g}%" if mode == "canary" and percent is not None else mode
