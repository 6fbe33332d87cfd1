"""What the installed `ferry migrate` accepts, read from its declared options.

The run dialog offers a field only when the command it launches knows the flag behind it
(`--target-name`, `--layout`), and builds its preview from the same parser and the same
`options_from` as the command, so the dialog cannot show a plan the run would not follow.
"""

from __future__ import annotations

import argparse
from functools import cache

from ferry.cli.migrate import options_from, register
from ferry.core.engine import MigrationOptions
from ferry.core.options import by_flag
from ferry.core.options import migrate_options as declared_options
from ferry.core.run_choices import RunChoices


@cache
def migrate_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ferry", exit_on_error=False)
    register(root.add_subparsers(dest="command"))
    return root


def supported_flags() -> frozenset[str]:
    """Every option string `ferry migrate` knows (`--layout`, `--target-name`, …), read from
    the declared options (core/options.py), not from argparse's internals."""
    return frozenset(option.flag for option in declared_options())


def layout_choices() -> list[str]:
    """The payload layouts `ferry migrate --layout` offers; [] when it has no such flag."""
    option = by_flag("--layout")
    return list(option.choices or []) if option else []


def migrate_options(
    source_uri: str, target_uri: str, names: list[str], choices: RunChoices
) -> tuple[argparse.Namespace, MigrationOptions]:
    """The arguments and engine options `ferry migrate` would use for these choices."""
    argv = ["migrate", "--from", source_uri, "--to", target_uri]
    for name in names:
        argv += ["--collection", name]
    argv += choices.to_argv(supported_flags())
    args = migrate_parser().parse_args(argv)
    return args, options_from(args)
