"""What every command shares: the error contract, JSON output, the journal location."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.profile_defaults import resolve_endpoint
from ferry.core.profiles import Profile
from ferry.core.secrets import redact

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


def resolve_profiles(args: argparse.Namespace) -> tuple[Profile | None, Profile | None]:
    """`--from` / `--to` take a profile name where a URI goes: replace it by the profile's
    URI (with its `?api_key_env=`) and return the profiles named (None for a URI)."""
    args.source, source = resolve_endpoint(args.source, "--from")
    args.target, target = resolve_endpoint(args.target, "--to")
    return source, target


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


def check_number(
    flag: str,
    value: float | int | None,
    least: float | None = None,
    most: float | None = None,
    positive: bool = False,
    example: str = "",
) -> None:
    """A numeric flag must be finite and in range: NaN compares false with everything, so a
    plain `value < least` lets `nan` (and `inf`) through."""
    if value is None:
        return
    hint = f"pass e.g. {flag} {example}" if example else ""
    if not math.isfinite(value):
        raise FerryError(f"{flag} {value} is not a finite number", where=flag, fix=hint)
    if positive and value <= 0:
        raise FerryError(f"{flag} must be positive (got {value})", where=flag, fix=hint)
    if least is not None and value < least:
        raise FerryError(f"{flag} must be at least {least} (got {value})", where=flag, fix=hint)
    if most is not None and value > most:
        raise FerryError(f"{flag} must be at most {most} (got {value})", where=flag, fix=hint)


def check_field_name(flag: str, value: str) -> None:
    """A payload field name: not empty, no control characters, no dots (Qdrant paths)."""
    if not value.strip() or any(ord(c) < 32 for c in value):
        raise FerryError(
            f"{flag} must be a field name (got {value!r})", where=flag, fix=f"pass e.g. {flag} id"
        )


MAX_NAME_LENGTH = 255  # Qdrant's limit, and a file name's (an Edge collection is a directory)


def check_collection_name(name: str, what: str = "collection name") -> None:
    """A collection or alias name every engine accepts and no path can escape from."""
    problem = ""
    if not name.strip():
        problem = "is empty"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    elif any(ord(c) < 32 or c == "\x7f" for c in name):
        problem = "contains a control character (a newline?)"
    elif "/" in name or "\\" in name or name in {".", ".."}:
        problem = "contains a path separator"
    if problem:
        shown = name[:40] + ("…" if len(name) > 40 else "")
        raise FerryError(
            f"the {what} {shown!r} {problem}",
            where=what,
            fix="use letters, digits, '-', '_' or '.'",
        )
