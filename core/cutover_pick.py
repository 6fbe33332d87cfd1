"""Which copy `ferry cutover --alias NAME` means when no `--collection` is given.

The application's name is the source collection's name; the journal knows which target
collections runs copied it into. The newest copy that validated clean is the one a person
would choose on the Cutover screen, so the CLI picks the same one instead of asking for a
physical name the user never typed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ferry.core.cutover import Candidate
from ferry.core.errors import FerryError


def pick_validated_copy(candidates: Sequence[Candidate], alias: str, target: str) -> str:
    """The physical collection to point `alias` at, or a one-line refusal with the way on."""
    copies = [c for c in candidates if c.alias == alias and c.collection != alias]
    good = [c for c in copies if c.validation is not None and c.validation.get("ok")]
    if good:
        return max(good, key=lambda c: c.migrated_at).collection
    if copies:
        newest = max(copies, key=lambda c: c.migrated_at)
        raise FerryError(
            f"no validated copy of {alias!r} in {target}: {newest.collection!r} is {newest.state}",
            fix=f"ferry validate --to {target} --collection {alias}={newest.collection}, "
            "or name it with --collection",
        )
    if any(c.alias == alias for c in candidates):
        raise FerryError(
            f"the copy of {alias!r} in {target} was written under the app's own name, "
            "so no alias can carry that name",
            fix=f"migrate again with --target-name '{{name}}_v1' --collection {alias}, "
            "then cut over",
        )
    raise FerryError(
        f"the journal knows no copy of {alias!r} migrated into {target}",
        fix=f"see the candidates with `ferry cutover --to {target} --list`",
    )
