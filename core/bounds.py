"""The range of every numeric flag, in one table.

A number outside its range is refused before anything is created or written: `--rate 1e-300`
would otherwise create the target collection and then wait for centuries; `--batch-size 10**9`
would try to hold a billion records. `cli/` checks every parsed flag against this table right
after parsing (cli/__init__.py), the TUI's run dialog checks its fields against the same rows,
and a test makes sure no numeric flag is left out. (A later options schema takes these rows.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ferry.core.errors import FerryError


@dataclass(frozen=True)
class Bound:
    """`least <= value <= most`; `zero` also allows exactly 0 (a flag whose 0 means "off")."""

    least: float
    most: float
    example: str
    zero: bool = False


# (command, flag) -> its range. Every `type=int|float` flag of every command has a row.
FLAG_BOUNDS: dict[tuple[str, str], Bound] = {
    ("migrate", "--batch-size"): Bound(1, 100_000, "1000"),
    ("migrate", "--workers"): Bound(1, 64, "2"),
    ("migrate", "--batch-mb"): Bound(0.1, 4096, "32"),
    ("migrate", "--rate"): Bound(1, 10_000_000, "5000 (or omit it: no limit)"),
    ("migrate", "--give-up-after"): Bound(1, 86_400, "120"),
    ("migrate", "--hnsw-m"): Bound(1, 1024, "16"),
    ("migrate", "--hnsw-ef-construct"): Bound(1, 100_000, "100"),
    ("migrate", "--follow-interval"): Bound(0.05, 3600, "1"),
    ("migrate", "--embed-dimensions"): Bound(1, 65_536, "256"),
    ("migrate", "--embed-batch"): Bound(1, 2048, "256"),
    ("migrate", "--embed-concurrency"): Bound(1, 64, "4"),
    ("migrate", "--embed-rpm"): Bound(0.01, 10_000_000, "3000"),
    ("migrate", "--embed-tpm"): Bound(1, 10_000_000_000, "1000000"),
    ("migrate", "--embed-price"): Bound(0, 1_000_000, "0.02"),
    ("validate", "--sample"): Bound(0, 100_000_000, "1000"),
    ("validate", "--queries"): Bound(0, 100_000, "20"),
    ("validate", "--k"): Bound(1, 10_000, "10"),
    ("validate", "--tolerance"): Bound(0, 1e6, "1e-5"),
    ("validate", "--seed"): Bound(0, 2**32 - 1, "0"),
    ("validate", "--batch-size"): Bound(1, 100_000, "500"),
    ("validate", "--recall-threshold"): Bound(0, 1, "0.95"),
    ("validate", "--ab-min-overlap"): Bound(0, 1, "0.5"),
    ("validate", "--embed-dimensions"): Bound(1, 65_536, "256"),
    ("cutover", "--max-error-rate"): Bound(0, 1, "0.05"),
    ("cutover", "--max-p99-ms"): Bound(0.001, 3_600_000, "250"),
    ("demo", "--records"): Bound(1, 10_000_000, "3000"),
    ("demo", "--rate"): Bound(1, 10_000_000, "1000 (0: no cap)", zero=True),
}


def check_bound(command: str, flag: str, value: float | int | None) -> None:
    """Refuse `value` for `flag` of `command` when it is not finite or out of its range."""
    bound = FLAG_BOUNDS.get((command, flag))
    if value is None or bound is None:
        return
    hint = f"pass e.g. {flag} {bound.example}"
    if isinstance(value, float) and not math.isfinite(value):
        raise FerryError(f"{flag} {value} is not a finite number", where=flag, fix=hint)
    if bound.zero and value == 0:
        return
    if not bound.least <= value <= bound.most:
        raise FerryError(
            f"{flag} must be between {bound.least:g} and {bound.most:g} (got {value:g})",
            where=flag,
            fix=hint,
        )


def check_flags(command: str | None, values: dict[str, object]) -> None:
    """Check every numeric flag `command` was given (argparse's dest names) against the table."""
    for (table_command, flag), _bound in FLAG_BOUNDS.items():
        if table_command != command:
            continue
        value = values.get(flag.lstrip("-").replace("-", "_"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            check_bound(command, flag, value)
