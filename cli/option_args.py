"""Render the declared options (`core/options.py`) as argparse arguments.

The declaration is the schema; argparse is one of its renderings, so `--help`, the parser and
the run dialog cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from ferry.core.options import Option


def argparse_kwargs(option: Option) -> dict[str, Any]:
    """What `add_argument` needs to behave exactly as the option says."""
    kwargs: dict[str, Any] = {"dest": option.dest}
    if option.type is bool:
        kwargs["action"] = "store_true"
    else:
        if option.repeatable:
            kwargs["action"] = "append"
        if option.type in (int, float):
            kwargs["type"] = option.type
        kwargs["default"] = option.default
        if option.choices is not None:
            kwargs["choices"] = list(option.choices)
        if option.metavar is not None:
            kwargs["metavar"] = option.metavar
    if option.required:
        kwargs["required"] = True
    if option.help is not None:
        kwargs["help"] = option.help
    return kwargs


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: Iterable[Option]
) -> None:
    for option in options:
        parser.add_argument(option.flag, **argparse_kwargs(option))
