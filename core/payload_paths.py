"""Qdrant payload paths for metadata keys that are data, not identifiers.

Qdrant reads a payload index's field name as a JSON path (`lib/segment/src/json_path/
parse.rs`): a bare key is letters, digits, `_` and `-`; anything else must be quoted (`"a.b"`,
`"Department:"`), and a quoted key cannot hold `"` or `\\` (there is no escape). Unquoted,
`a.b` means a nested field and `Department:` is "invalid JSON path", which failed a whole
migration on Qdrant Edge. Keys are data (DESIGN.md): each is quoted when it must be, and the
few that cannot be written as a path are not indexed, which the plan says.
"""

from __future__ import annotations

import re

BARE_KEY = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*")


def path_segment(key: str) -> str | None:
    """`key` as one segment of a Qdrant JSON path, or None when no path can name it."""
    if BARE_KEY.fullmatch(key):
        return key
    if not key or '"' in key or "\\" in key:
        return None
    return f'"{key}"'


def unindexable(key: str) -> bool:
    return path_segment(key) is None
