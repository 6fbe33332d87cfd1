"""What every command shares: the error contract, JSON output, the journal location."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.journal import Journal
from core.secrets import redact

EXIT_OK = 0
EXIT_FAILED = 1  # the run or check ran and found failures/differences
EXIT_BAD_INPUT = 2  # bad input or a failed preflight: nothing was changed


def add_common(parser: argparse.ArgumentParser, state: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    if state:
        parser.add_argument(
            "--state", metavar="PATH", help="journal file (default: XDG state dir, or $FERRY_STATE)"
        )


def open_journal(args: argparse.Namespace) -> Journal:
    return Journal(getattr(args, "state", None))


def print_json(data: Any) -> None:
    sys.stdout.write(redact(json.dumps(data, indent=2, default=str)) + "\n")
    sys.stdout.flush()


def confirm(prompt: str, expected: str | None = None) -> bool:
    """Ask on the terminal; with `expected`, the user must type that exact text."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(prompt)
    except EOFError:
        return False
    if expected is not None:
        return answer.strip() == expected
    return answer.strip().lower() in {"y", "yes"}
