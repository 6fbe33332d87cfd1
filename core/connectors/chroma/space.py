"""Which distance (and HNSW settings) a Chroma collection is really searched with.

Chroma has stored the space in five places over its releases, and only some of them are read
at query time. Trusting the wrong one turns a cosine collection into a Euclid one without a
word, so this module reproduces what each release does when it opens the index (read from
chroma-core/chroma at each tag, and checked by running the releases themselves):

* **0.4.x – 0.6.x** (Python segments): ``PersistentLocalHnswSegment`` builds
  ``PersistentHnswParams(segment["metadata"])``, i.e. the ``hnsw:*`` keys of the *vector
  segment's* ``segment_metadata``, copied once from the collection metadata at creation
  (``chromadb/segment/impl/manager/local.py`` ``_segment``). ``collection_metadata`` is never
  read at query time (0.4 ``modify(metadata=…)`` can even drop ``hnsw:space`` from it while the
  index stays cosine). 0.5.4 – 0.6.3 also write ``collections.config_json_str`` as
  ``{"hnsw_configuration": {"space": "l2", …}}`` — a *default* that no segment code reads, so a
  cosine collection shows ``"space": "l2"`` there.
* **1.0 – 1.2** (Rust): metadata ``hnsw:*`` is folded into ``config_json_str`` as
  ``{"vector_index": {"hnsw": {"space": …, "max_neighbors": …}}}``; the query path calls
  ``get_hnsw_config_with_legacy_fallback(segment)``
  (``rust/types/src/collection_configuration.rs``): use the config, unless it equals the
  all-default config and the segment metadata says otherwise. The 0.5/0.6 JSON (no
  ``vector_index`` key) and NULL both parse as the all-default config.
* **1.3 – 1.5**: creation writes ``config_json_str = "{}"`` and the space to ``schema_str``
  (``keys["#embedding"].float_list.vector_index.config.space``, else ``defaults…``); the same
  fallback rule is applied to the schema (``collection_schema.rs``
  ``get_internal_hnsw_config_with_legacy_fallback``). A NULL ``schema_str`` is built in memory
  from the config, so the 1.0 rule applies unchanged.
* A 1.x ``modify(configuration=…)`` of a 0.x collection rewrites the config with
  ``"space": "l2"`` while the index was built with the segment's space: chroma itself then
  searches a cosine-built index with l2. That cannot be migrated faithfully: refused.

The rule gives the same space whichever release last opened the directory; only the default
``ef_search`` differs (10 up to 0.6.2, 100 from 0.6.3 and in every 1.x).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ferry.core.connectors.chroma.shared_sqlite import SharedConnection
from ferry.core.errors import FerryError
from ferry.core.model import Metric

# chroma 1.x InternalHnswConfiguration defaults (num_threads left out on purpose: chroma
# compares it with the reading machine's core count).
DEFAULTS: dict[str, Any] = {
    "space": "l2",
    "ef_construction": 100,
    "ef_search": 100,
    "M": 16,
    "resize_factor": 1.2,
    "sync_threshold": 1000,
    "batch_size": 100,
}
_LEGACY_KEYS = {
    "hnsw:space": "space",
    "hnsw:construction_ef": "ef_construction",
    "hnsw:search_ef": "ef_search",
    "hnsw:M": "M",
    "hnsw:num_threads": "num_threads",
    "hnsw:resize_factor": "resize_factor",
    "hnsw:batch_size": "batch_size",
    "hnsw:sync_threshold": "sync_threshold",
}
_NEW_KEYS = {  # config JSON / schema key → our name
    "ef_construction": "ef_construction",
    "ef_search": "ef_search",
    "max_neighbors": "M",
    "resize_factor": "resize_factor",
    "sync_threshold": "sync_threshold",
    "batch_size": "batch_size",
}


@dataclass
class HnswSettings:
    """The settings Chroma searches this collection with, and where they came from."""

    metric: Metric
    m: int
    ef_construction: int
    ef_search: int
    source: str  # "segment metadata", "configuration", "schema", "defaults"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.metric.value,
            "M": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "source": self.source,
        }


def _refuse(what: str, where: str, fix: str) -> FerryError:
    return FerryError(what, where=where, fix=fix)


def legacy_settings(segment_md: dict[str, Any], where: str) -> dict[str, Any]:
    """chroma's ``HnswParams`` / 1.x ``from_legacy_segment_metadata`` over ``hnsw:*`` keys."""
    hnsw = {k: v for k, v in segment_md.items() if k.startswith("hnsw:")}
    unknown = sorted(set(hnsw) - set(_LEGACY_KEYS))
    if unknown:
        raise _refuse(
            f"unknown HNSW setting(s) {', '.join(unknown)} in the vector segment's metadata",
            where,
            "open the directory with the chromadb release that wrote it and check the collection",
        )
    out: dict[str, Any] = {"space": "l2", "ef_search": None}
    for key, value in hnsw.items():
        name = _LEGACY_KEYS[key]
        try:
            if name == "space":
                out[name] = str(value)
            elif name == "resize_factor":
                out[name] = float(value)
            else:
                out[name] = int(value)
        except (TypeError, ValueError) as exc:
            raise _refuse(f"HNSW setting {key}={value!r} is not valid", where, "") from exc
    for name in ("ef_construction", "M", "resize_factor", "sync_threshold", "batch_size"):
        out.setdefault(name, DEFAULTS[name])
    return out


def _vector_index_of_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    keys = schema.get("keys") or schema.get("key_overrides") or {}
    for holder in (keys.get("#embedding") or {}, schema.get("defaults") or {}):
        float_list = holder.get("float_list") or holder.get("#float_list") or {}
        index = float_list.get("vector_index") or float_list.get("$vector_index")
        if index is not None:
            return index
    return None


def configured_settings(
    config_str: str | None, schema_str: str | None, where: str
) -> tuple[dict[str, Any], Any, str] | None:
    """The 1.x configuration (schema first), or None where chroma 1.x sees the default one.

    Returns (settings, num_threads as stored, "schema" | "configuration").
    """
    if schema_str not in (None, "", "null"):
        try:
            schema = json.loads(schema_str)
        except ValueError as exc:
            raise _refuse("collections.schema_str is not JSON", where, "") from exc
        index = _vector_index_of_schema(schema) if isinstance(schema, dict) else None
        if index is None:
            return None
        config = index.get("config") or {}
        if config.get("spann") is not None:
            raise _refuse(
                "a SPANN index in a local directory (chroma only builds HNSW locally)",
                where,
                "read this collection from the Chroma server that owns it",
            )
        hnsw = config.get("hnsw") or {}
        out = {"space": config.get("space", "l2")}
        out.update({ours: hnsw.get(theirs, DEFAULTS[ours]) for theirs, ours in _NEW_KEYS.items()})
        return out, hnsw.get("num_threads"), "schema"
    if config_str in (None, "", "null"):
        return None
    try:
        config = json.loads(config_str)
    except ValueError as exc:
        raise _refuse("collections.config_json_str is not JSON", where, "") from exc
    index = config.get("vector_index") if isinstance(config, dict) else None
    if index is None:
        # "{}" or the 0.5/0.6 {"hnsw_configuration": …} shape: 1.x parses both as the default
        return None
    if "spann" in index and index.get("spann") is not None:
        raise _refuse(
            "a SPANN configuration in a local directory",
            where,
            "read this collection from the Chroma server that owns it",
        )
    hnsw = index.get("hnsw") or {}
    out = {"space": hnsw.get("space", "l2")}
    out.update({ours: hnsw.get(theirs, DEFAULTS[ours]) for theirs, ours in _NEW_KEYS.items()})
    return out, hnsw.get("num_threads"), "configuration"


def _metric(space: Any, where: str) -> Metric:
    try:
        return Metric(str(space))
    except ValueError as exc:
        raise _refuse(
            f"unknown distance space {space!r}", where, "expected one of l2, cosine, ip"
        ) from exc


def resolve(
    migrations: dict[str, int],
    config_str: str | None,
    schema_str: str | None,
    segment_md: dict[str, Any],
    collection_md: dict[str, Any],
    where: str,
) -> HnswSettings:
    """The space and HNSW settings chroma searches with (see the module docstring)."""
    legacy = legacy_settings(segment_md, where)
    configured = configured_settings(config_str, schema_str, where)
    notes: list[str] = []
    has_legacy = any(k.startswith("hnsw:") for k in segment_md)
    if configured is None:
        chosen, source = dict(legacy), "segment metadata" if has_legacy else "defaults"
    else:
        config, threads, place = configured
        legacy_cmp = {**legacy, "ef_search": legacy["ef_search"] or DEFAULTS["ef_search"]}
        legacy_cmp = {k: legacy_cmp[k] for k in DEFAULTS}
        config_is_default = all(config[k] == DEFAULTS[k] for k in DEFAULTS)
        if not config_is_default or legacy_cmp == {k: config[k] for k in DEFAULTS}:
            chosen, source = dict(config), place
        elif threads is not None and has_legacy:
            # A default config that stores num_threads (chroma 1.0.0–1.0.5): chroma's equality
            # test then depends on the reading machine's core count.
            if (legacy["space"], legacy["M"]) != (config["space"], config["M"]):
                raise _refuse(
                    f"the space is {config['space']} or {legacy['space']} depending on the "
                    "core count of the machine chroma runs on",
                    where,
                    "open the collection with the chromadb that searches it and re-create it "
                    "with an explicit configuration",
                )
            chosen, source = dict(config), place
        else:
            chosen, source = dict(legacy), "segment metadata"
        if source == place and has_legacy and legacy["space"] != config["space"]:
            raise _refuse(
                f"the index was built as {legacy['space']} but chroma now searches it as "
                f"{config['space']} (its configuration was rewritten by a chromadb 1.x "
                "modify(configuration=…))",
                where,
                "re-create the collection in chroma with the space it should have, then migrate",
            )
    if chosen.get("ef_search") is None:
        if migrations.get("metadb", 0) >= 5:  # a 1.x release opened the directory
            chosen["ef_search"] = 100
        elif migrations.get("sysdb", 0) <= 7:  # written and last opened by ≤ 0.5.5
            chosen["ef_search"] = 10
        else:  # 0.5.6 – 0.6.3: 0.6.3 uses 100, earlier ones 10; the files cannot tell
            chosen["ef_search"] = 10
            notes.append("ef_search assumed 10 (chromadb 0.5.6–0.6.2; 0.6.3 used 100)")
    said = collection_md.get("hnsw:space")
    if said is not None and str(said) != chosen["space"]:
        notes.append(
            f"collection metadata says hnsw:space={said}, but chroma searches with "
            f"{chosen['space']} ({source})"
        )
    return HnswSettings(
        metric=_metric(chosen["space"], where),
        m=int(chosen["M"]),
        ef_construction=int(chosen["ef_construction"]),
        ef_search=int(chosen["ef_search"]),
        source=source,
        notes=notes,
    )


def _key_values(
    db: sqlite3.Connection | SharedConnection, table: str, column: str, owner: str
) -> dict[str, Any]:
    cols = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
    if not cols:
        return {}
    picks = [c for c in ("str_value", "int_value", "float_value", "bool_value") if c in cols]
    rows = db.execute(
        f"SELECT key, {', '.join(picks)} FROM {table} WHERE {column} = ?", (owner,)
    ).fetchall()
    out: dict[str, Any] = {}
    for key, *values in rows:
        out[key] = next((v for v in values if v is not None), None)
    return out


def read_settings(
    db: sqlite3.Connection | SharedConnection,
    collection_id: str,
    vector_segment: str | None,
    where: str,
) -> HnswSettings:
    """Resolve from an open (read-only) ``chroma.sqlite3``."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    migrations: dict[str, int] = {}
    if "migrations" in tables:
        migrations = {
            d: int(v)
            for d, v in db.execute("SELECT dir, max(version) FROM migrations GROUP BY dir")
        }
    cols = {r[1] for r in db.execute("PRAGMA table_info(collections)")}
    extra = ", ".join(c if c in cols else "NULL" for c in ("config_json_str", "schema_str"))
    row = db.execute(f"SELECT {extra} FROM collections WHERE id = ?", (collection_id,)).fetchone()
    config_str, schema_str = row if row else (None, None)
    segment_md = (
        _key_values(db, "segment_metadata", "segment_id", vector_segment)
        if vector_segment and "segment_metadata" in tables
        else {}
    )
    collection_md = _key_values(db, "collection_metadata", "collection_id", collection_id)
    return resolve(migrations, config_str, schema_str, segment_md, collection_md, where)


def settings_for_directory(
    path: Any, name: str, database: str = "default_database"
) -> HnswSettings:
    """Resolve for a collection of a Chroma directory by name, opening it read-only.

    For the API reader on a private copy: chromadb 1.x's ``configuration_json`` reports the
    raw configuration (l2 for every 0.x collection), not the space it searches with.
    """
    from pathlib import Path
    from urllib.parse import quote

    file = Path(path) / "chroma.sqlite3"
    where = f"{path}:{name}"
    try:
        db = sqlite3.connect(f"file:{quote(str(file.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise FerryError(f"cannot open chroma.sqlite3 read-only: {exc}", where=str(file)) from exc
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "databases" in tables:
            row = db.execute(
                "SELECT c.id FROM collections c JOIN databases d ON d.id = c.database_id "
                "WHERE c.name = ? AND d.name = ?",
                (name, database),
            ).fetchone()
        else:
            row = db.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise FerryError(f"no collection named {name!r}", where=str(path))
        segment = db.execute(
            "SELECT id FROM segments WHERE collection = ? AND scope = 'VECTOR'", (row[0],)
        ).fetchone()
        return read_settings(db, row[0], segment[0] if segment else None, where)
    except sqlite3.Error as exc:
        raise FerryError(f"cannot read chroma.sqlite3: {exc}", where=str(file)) from exc
    finally:
        db.close()


def server_metric(configuration: dict[str, Any] | None, metadata: dict[str, Any] | None) -> Metric:
    """The space of a collection seen only through chromadb's API (a server).

    The API reports the raw configuration, which is all-default (l2) for a collection that
    came from 0.x; chroma then searches with the legacy ``hnsw:*`` segment metadata, which the
    API does not show — the collection metadata it was copied from is the best witness.
    """
    configuration = configuration or {}
    hnsw = configuration.get("hnsw") or {}
    space = hnsw.get("space") or (configuration.get("spann") or {}).get("space")
    legacy = (metadata or {}).get("hnsw:space")
    default = all(
        hnsw.get(theirs, DEFAULTS[ours]) == DEFAULTS[ours] for theirs, ours in _NEW_KEYS.items()
    ) and (space in (None, "l2"))
    if legacy is not None and (space is None or default):
        space = legacy
    return _metric(space or "l2", "collection configuration")


def server_hnsw(
    configuration: dict[str, Any] | None, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """The HNSW settings of a collection seen through chromadb's API, in the shape of
    `HnswSettings.to_json()` (what the file reader puts in ``facts["hnsw"]``).

    1.x reports them in its configuration (``hnsw``: ``max_neighbors``, ``ef_construction``,
    ``ef_search``); a collection from 0.x keeps them in ``hnsw:*`` metadata, which then wins
    where the configuration only shows defaults (as for the space, `server_metric`).
    """
    configuration = configuration or {}
    metadata = metadata or {}
    hnsw = configuration.get("hnsw") or {}
    out: dict[str, Any] = {"space": server_metric(configuration, metadata).value}
    source = "configuration" if hnsw else "defaults"
    for theirs, ours in (
        ("max_neighbors", "M"),
        ("ef_construction", "ef_construction"),
        ("ef_search", "ef_search"),
    ):
        out[ours] = hnsw.get(theirs, DEFAULTS[ours])
    legacy = {ours: metadata.get(key) for key, ours in _LEGACY_KEYS.items() if key in metadata}
    for ours in ("M", "ef_construction", "ef_search"):
        if legacy.get(ours) is not None and out[ours] == DEFAULTS[ours]:
            out[ours] = int(legacy[ours])
            source = "collection metadata"
    out["source"] = source
    return out


def embedding_function_name(configuration: dict[str, Any] | None) -> str | None:
    """The embedding function Chroma recorded for a collection, with its model when its
    config names one ("openai (text-embedding-3-small)"): what a re-embedding plan shows."""
    ef = (configuration or {}).get("embedding_function")
    if not isinstance(ef, dict) or not ef.get("name"):
        return None
    config = ef.get("config") if isinstance(ef.get("config"), dict) else {}
    model = config.get("model_name") or config.get("model")
    return f"{ef['name']} ({model})" if isinstance(model, str) and model else ef["name"]
