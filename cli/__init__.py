"""`ferry`: the TUI with no arguments, a headless command with one.

Each command lives in its own module with `register(subparsers)`; every failure the user
can act on is one line on stderr and a meaningful exit code (see cli/common.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from ferry.core import __version__
from ferry.core.bounds import check_flags
from ferry.core.errors import FerryError, ResourceError, classify, in_words
from ferry.core.secrets import redact

COMMAND_MODULES = [
    "ferry.cli.inventory",
    "ferry.cli.migrate",
    "ferry.cli.status",
    "ferry.cli.demo",
    "ferry.cli.validate",
    "ferry.cli.cutover",
    "ferry.cli.backup",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Move vector collections between databases while you watch.",
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    parser.add_argument("--state", metavar="PATH", help="journal file for the TUI")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:  # a missing or renamed module fails here, loudly
        importlib.import_module(module_name).register(commands)
    return parser


def quiet_library_warnings(debug: bool) -> None:
    """Python warnings of the database clients (qdrant-client's "Api key is used with an
    insecure connection", local mode's size advice…) never reach stderr, where they would
    break a JSON document or the TUI's screen: Ferry says what matters in its own words
    (plan warnings). `--debug` shows them."""
    logging.captureWarnings(True)
    logger = logging.getLogger("py.warnings")
    logger.propagate = debug
    if not debug and not logger.handlers:
        logger.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    quiet_library_warnings(debug)
    try:
        if args.command is None:
            from ferry.tui.app import run_tui

            return run_tui(state=args.state)
        check_flags(args.command, vars(args))  # every number in range, before any write
        return int(args.handler(args) or 0)
    except FerryError as exc:
        if debug:
            print_traceback()
        print(f"ferry: error: {redact(exc.one_line())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ferry: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ferry status --follow | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            print_traceback()
        error = classify(exc, f"ferry {args.command or ''}".strip())
        if not isinstance(error, ResourceError):
            print(
                redact(f"ferry: unexpected error: {in_words(exc, 300)} (re-run with --debug)"),
                file=sys.stderr,
            )
            return 1
        print(f"ferry: error: {error.one_line()}", file=sys.stderr)
        return error.exit_code


def print_traceback() -> None:
    """`--debug`: the traceback, with every known secret masked (a server may echo one)."""
    sys.stderr.write(redact(traceback.format_exc()))


def entry_point() -> None:
    code = main()
    from ferry.core.connectors.qdrant.edge import reap_children

    reap_children()  # no Edge worker (or its helpers) outlives the command
    sys.exit(code)
