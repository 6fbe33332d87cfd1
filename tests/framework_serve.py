"""The script side of `tests.framework_venvs.ScriptSession` (standard library only: it runs in
the frameworks' own venvs): one JSON command a line in, one marked JSON reply a line out."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

REPLY = "FERRY-REPLY "  # marks the script's answers among whatever the libraries print


def serve(handle: Callable[..., Any]) -> None:
    for line in sys.stdin:
        reply = handle(*json.loads(line))
        sys.stdout.write(REPLY + json.dumps(reply) + "\n")
        sys.stdout.flush()


def main(handle: Callable[..., Any]) -> None:
    """`script.py serve` answers commands; `script.py ARGS…` answers once (by hand)."""
    if sys.argv[1:] == ["serve"]:
        serve(handle)
    else:
        print(REPLY + json.dumps(handle(*sys.argv[1:])))
