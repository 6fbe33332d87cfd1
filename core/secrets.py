"""Known secret values, and the one function that removes them from any text.

A server may echo our request headers in an error reply (a 400 that quotes the request, a
500 with a debug page), and that text travels on: into a FerryError, the journal, stderr,
`status --json`, the TUI and `--debug` tracebacks. Keys never live in URIs, so Ferry knows
every secret it holds: the values of the environment variables that `?api_key_env=` names
(and profiles name). Each is remembered when its variable is named, and `redact` replaces
it everywhere it could be shown or stored: FerryError texts, journal rows, CLI output.
"""

from __future__ import annotations

import os
import re
import threading

MASK = "«redacted»"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember(value: str | None) -> None:
    """Add a secret value (and its common encodings) to what `redact` removes."""
    global _pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    import base64
    from urllib.parse import quote

    forms = {value, quote(value, safe=""), base64.b64encode(value.encode()).decode()}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(f for f in forms if len(f) >= MIN_SECRET_LENGTH)
        alternatives = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in alternatives))


def remember_env(variable: str | None) -> None:
    """Remember the value of the environment variable a URI or profile names."""
    if variable:
        remember(os.environ.get(variable))


# `scheme://user:password@host`: user-info is refused in Ferry's URIs (core/uri.py), but a URI
# typed with it still travels in the refusal, argparse's messages and library errors; it is
# masked wherever `redact` runs. Not starting with "/" keeps `file:///dir/a@b` paths intact.
USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@'\"][^\s@'\"]*)@"
)


def has_userinfo(uri: str) -> bool:
    """Whether `uri` carries `user@` or `user:password@` before its host."""
    return USERINFO.match(uri.strip()) is not None


def mask_userinfo(text: str) -> str:
    """`text` with the user-info of every URI in it replaced by a mask."""
    if "@" not in text:
        return text
    return USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def redact(text: str) -> str:
    """`text` with every known secret, and every URI's user-info, replaced by a mask."""
    if not isinstance(text, str):
        return text
    text = mask_userinfo(text)
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


def redact_value(value: object) -> object:
    """Redact strings inside JSON-like values (dicts, lists) for journal rows and --json."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value
