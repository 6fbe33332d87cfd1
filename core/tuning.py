"""How a target collection is indexed and searched, carried over from the source.

A copy is not finished when the last upsert returns: the application must get answers as
good and as fast as the source gave. Two things decide that and both are the source's:

* **HNSW settings.** Chroma keeps `M`, `ef_construction` and `ef_search` per collection (1.x
  configuration JSON, or the legacy ``hnsw:*`` metadata); the Chroma connectors resolve them
  into ``CollectionInfo.facts["hnsw"]``. Qdrant's `m` / `ef_construct` are the same knobs, and
  Qdrant's search-time `hnsw_ef` is Chroma's `ef_search` — but Qdrant has no per-collection
  search default (it searches with `ef_construct`), so the app must pass `hnsw_ef` itself: the
  figure is recorded (journal, validation report, cutover text) for that.
* **Payload indexes.** Chroma indexes every metadata key; Qdrant indexes only what it is told,
  and a filtered query on an unindexed key scans everything. So each metadata key seen in the
  plan's sample gets an index of its observed type (keyword, integer, float, bool; a list by
  its elements' type); a key whose values disagree (a string here, a number there) gets none,
  and the plan says so.

The user may know better: `TuningOptions` overrides each figure (`--hnsw-m`,
`--hnsw-ef-construct`, `--on-disk-vectors`, `--payload-index KEY:TYPE`,
`--no-payload-indexes`). Nothing here talks to a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.core.errors import FerryError

PAYLOAD_TYPES = ("keyword", "integer", "float", "bool")


@dataclass(frozen=True)
class TuningOptions:
    """What the user asked for on the command line (None: take it from the source)."""

    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None
    on_disk_vectors: bool = False
    payload_indexes: tuple[tuple[str, str], ...] = ()  # (key, type) overrides
    no_payload_indexes: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "on_disk_vectors": self.on_disk_vectors,
            "payload_indexes": [f"{k}:{t}" for k, t in self.payload_indexes],
            "no_payload_indexes": self.no_payload_indexes,
        }


@dataclass(frozen=True)
class IndexTuning:
    """How one target collection is created and searched. None: the target's default."""

    m: int | None = None
    ef_construct: int | None = None
    hnsw_ef: int | None = None  # what the application should search with
    on_disk_vectors: bool = False
    payload_indexes: dict[str, str] = field(default_factory=dict)  # key → keyword|integer|…
    source: str = "target defaults"  # where m / ef came from, for the plan
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "ef_construct": self.ef_construct,
            "hnsw_ef": self.hnsw_ef,
            "on_disk_vectors": self.on_disk_vectors,
            "payload_indexes": dict(self.payload_indexes),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> IndexTuning:
        data = data or {}
        return cls(
            m=data.get("m"),
            ef_construct=data.get("ef_construct"),
            hnsw_ef=data.get("hnsw_ef"),
            on_disk_vectors=bool(data.get("on_disk_vectors")),
            payload_indexes=dict(data.get("payload_indexes") or {}),
            source=str(data.get("source") or "target defaults"),
        )

    def words(self) -> str:
        """One line for the plan."""
        hnsw = (
            f"HNSW m={self.m if self.m is not None else 'default'} "
            f"ef_construct={self.ef_construct if self.ef_construct is not None else 'default'}"
            f" ({self.source})"
        )
        if self.hnsw_ef is not None:
            hnsw += f"; search with hnsw_ef={self.hnsw_ef}"
        if self.on_disk_vectors:
            hnsw += "; vectors on disk"
        indexes = ", ".join(f"{k}:{t}" for k, t in sorted(self.payload_indexes.items()))
        return f"{hnsw}; payload indexes: {indexes or 'none'}"


def parse_payload_index(text: str) -> tuple[str, str]:
    """`KEY:TYPE` from the command line; a bad one is a one-line error."""
    key, sep, kind = text.rpartition(":")
    kind = kind.strip().lower()
    if not sep or not key or kind not in PAYLOAD_TYPES:
        raise FerryError(
            f"--payload-index {text!r} is not KEY:TYPE",
            fix=f"TYPE is one of {', '.join(PAYLOAD_TYPES)}, e.g. --payload-index year:integer",
        )
    return key, kind


def value_type(value: Any) -> str | None:
    """The payload index type a metadata value asks for (None: none fits)."""
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "keyword"
    if isinstance(value, list | tuple) and value:
        kinds = {value_type(v) for v in value}
        return _merge(kinds)
    return None


def _merge(kinds: set[str | None]) -> str | None:
    kinds.discard(None)
    if kinds == {"integer", "float"}:
        return "float"  # a float index answers range filters on integers too
    return kinds.pop() if len(kinds) == 1 else None


def observed_types(
    metadatas: Iterable[Mapping[str, Any] | None],
) -> tuple[dict[str, str], list[str]]:
    """Index type per metadata key, and notes for keys that get none (mixed types)."""
    seen: dict[str, set[str | None]] = {}
    for metadata in metadatas:
        for key, value in (metadata or {}).items():
            if value is None:
                continue
            seen.setdefault(key, set()).add(value_type(value))
    types: dict[str, str] = {}
    notes: list[str] = []
    for key in sorted(seen):
        kinds = set(seen[key])
        merged = _merge(set(kinds))
        if merged is None:
            shown = sorted(k or "other" for k in kinds)
            notes.append(
                f"no payload index for {key!r}: values of mixed types ({', '.join(shown)})"
            )
        else:
            types[key] = merged
    return types, notes


def plan_tuning(
    facts: Mapping[str, Any],
    metadatas: Iterable[Mapping[str, Any] | None],
    options: TuningOptions | None = None,
    reserved: Iterable[str] = (),
) -> IndexTuning:
    """The tuning of one target collection: the source's HNSW facts, the sample's metadata
    types, then the user's overrides. `reserved` keys (Ferry's own payload fields) are left
    to the connector, which indexes the source id itself."""
    options = options or TuningOptions()
    hnsw = facts.get("hnsw") or {}
    m = _int(hnsw.get("M"))
    ef_construct = _int(hnsw.get("ef_construction"))
    hnsw_ef = _int(hnsw.get("ef_search"))
    source = f"source {hnsw.get('source', 'settings')}" if hnsw else "target defaults"
    if options.hnsw_m is not None or options.hnsw_ef_construct is not None:
        source = "--hnsw-* flags" if not hnsw else f"{source}, overridden by --hnsw-* flags"
    if options.hnsw_m is not None:
        m = options.hnsw_m
    if options.hnsw_ef_construct is not None:
        ef_construct = options.hnsw_ef_construct
    notes: list[str] = []
    indexes: dict[str, str] = {}
    if not options.no_payload_indexes:
        indexes, notes = observed_types(metadatas)
    for key, kind in options.payload_indexes:
        indexes[key] = kind
    for key in reserved:
        indexes.pop(key, None)
    from ferry.core.payload_paths import unindexable

    for key in [k for k in indexes if unindexable(k)]:
        del indexes[key]  # a `"` or `\` in it: no Qdrant JSON path names it
        notes.append(f"no payload index for {key!r}: Qdrant cannot name that key in a path")
    return IndexTuning(
        m=m,
        ef_construct=ef_construct,
        hnsw_ef=hnsw_ef,
        on_disk_vectors=options.on_disk_vectors,
        payload_indexes=indexes,
        source=source,
        notes=tuple(notes),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
