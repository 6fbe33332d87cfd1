"""Whether an existing target collection can take a source collection, decided before writing.

One rule for every target engine, used twice: by the plan's preflight (nothing touched yet)
and again by `prepare` right before the first write.
"""

from __future__ import annotations

from ferry.core.errors import PreflightError
from ferry.core.model import CollectionInfo, WriteMode


def check_target(
    uri: str, source: CollectionInfo, existing: CollectionInfo, mode: WriteMode, owned: bool
) -> list[str]:
    """Raise PreflightError if writing would be wrong; return warnings if merely notable.

    A dimension mismatch is always refused. Another metric, or a non-empty collection that
    Ferry did not create, is refused unless the user said `--mode append`.
    """
    warnings = check_shape(uri, source, existing, mode)
    name = source.name
    if existing.count and not owned:
        if mode is not WriteMode.APPEND:
            raise PreflightError(
                f"target collection {name!r} already exists with {existing.count} records",
                where=uri,
                fix="pass --mode append to upsert into it, or choose another target",
            )
        warnings.append(f"{name}: upserting into an existing collection of {existing.count}")
    return warnings


def check_shape(
    uri: str, source: CollectionInfo, existing: CollectionInfo, mode: WriteMode
) -> list[str]:
    """The dimension and metric rules alone: they need no count, so a target can answer them
    without opening the collection (opening a Qdrant Edge shard rewrites its config file, and
    a refused target must be left exactly as it was)."""
    name = source.name
    if existing.dimension is not None and existing.dimension != source.dimension:
        raise PreflightError(
            f"target collection {name!r} has dimension {existing.dimension}, "
            f"source has {source.dimension}",
            where=uri,
            fix="choose another target, or delete the target collection",
        )
    warnings: list[str] = []
    if existing.metric != source.metric:
        theirs = existing.metric.value if existing.metric else "?"
        ours = source.metric.value if source.metric else "?"
        if mode is not WriteMode.APPEND:
            raise PreflightError(
                f"target collection {name!r} uses metric {theirs}, source uses {ours}",
                where=uri,
                fix="pass --mode append to write anyway, or use another target",
            )
        warnings.append(f"{name}: target metric {theirs} differs from source {ours}")
    return warnings
