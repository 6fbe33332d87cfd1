"""The range of every numeric flag, in one table.

A number outside its range is refused before anything is created or written: `--rate 1e-300`
would otherwise create the target collection and then wait for centuries; `--batch-size 10**9`
would try to hold a billion records. `cli/` checks every parsed flag against this table right
after parsing (cli/__init__.py), the TUI's run dialog checks its fields against the same rows,
and a test makes sure no numeric flag is left out. (`migrate`'s rows are read from its options schema, core/options.py.)
"""

from __future__ import annotations

import math

from ferry.core.errors import FerryError
from ferry.core.options import Range, migrate_options

Bound = Range  # the range type is declared with the options (core/options.py)


# (command, flag) -> its range. Every `type=int|float` flag of every command has a row.
# `migrate`'s rows come from its declared options; the other commands' are written here.
FLAG_BOUNDS: dict[tuple[str, str], Bound] = {
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


def _migrate_rows() -> dict[tuple[str, str], Bound]:
    return {("migrate", o.flag): o.bounds for o in migrate_options() if o.bounds is not None}


FLAG_BOUNDS.update(_migrate_rows())


def check_bound(command: str, flag: str, value: float | int | None) -> None:
    """Refuse `value` for `flag` of `command` when it is not finite or out of its range."""
    bound = FLAG_BOUNDS.get((command, flag))
    if bound is None and command == "migrate":  # an option declared after import
        bound = _migrate_rows().get((command, flag))
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
    for (table_command, flag), _bound in {**FLAG_BOUNDS, **_migrate_rows()}.items():
        if table_command != command:
            continue
        value = values.get(flag.lstrip("-").replace("-", "_"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            check_bound(command, flag, value)
