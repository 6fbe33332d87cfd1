"""How a Chroma folder's schema compares with the installed chromadb's, without writing.

Why it matters: ``chromadb.PersistentClient`` applies any missing migration to
``chroma.sqlite3`` in place the moment it opens a folder, so a folder written by an older
chromadb is upgraded (and can then no longer be opened by that older version). Ferry looks
first: the user's folder is read with SQLite ``mode=ro`` only, and the installed chromadb's
own migration set is learned once from a throwaway folder in a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ferry.core.errors import FerryError

Migration = tuple[str, int, str]  # (dir, version, filename)

# Keyed by chromadb.__version__: creating a client costs about a second, once per process.
_INSTALLED: dict[str, dict[tuple[str, int], tuple[str, str]]] = {}
_ORDER = ("sysdb", "metadb", "embeddings_queue")


@dataclass
class SchemaState:
    """Applied versus installed migrations, and a one-line verdict for the plan view."""

    applied: list[Migration] = field(default_factory=list)
    installed: list[Migration] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)  # opening with chromadb applies
    newer: list[Migration] = field(default_factory=list)  # unknown to installed chromadb
    hash_mismatch: list[Migration] = field(default_factory=list)
    chromadb_version: str | None = None
    summary: str = ""

    @property
    def up_to_date(self) -> bool:
        return not (self.pending or self.newer or self.hash_mismatch)


def _read_migrations(db_file: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """(dir, version) -> (filename, hash) from a migrations table, opened read-only."""
    uri = f"file:{quote(str(db_file.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise FerryError(
            f"cannot open chroma.sqlite3 read-only: {exc}", where=str(db_file)
        ) from exc
    try:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
        ).fetchone()
        if has is None:
            return {}
        rows = conn.execute("SELECT dir, version, filename, hash FROM migrations")
        return {(d, int(v)): (f, h) for d, v, f, h in rows}
    except sqlite3.Error as exc:
        raise FerryError(f"cannot read chroma.sqlite3: {exc}", where=str(db_file)) from exc
    finally:
        conn.close()


def installed_migrations() -> tuple[str | None, dict[tuple[str, int], tuple[str, str]]]:
    """The installed chromadb's version and the migrations it applies to a new folder.

    Learning them costs a throwaway PersistentClient (~0.7 s), so the answer is cached on
    disk per chromadb version: it cannot change without the version changing.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        version = package_version("chromadb")
    except PackageNotFoundError:
        return None, {}
    if version in _INSTALLED:
        return version, _INSTALLED[version]
    from platformdirs import user_cache_dir

    cache = Path(user_cache_dir("ferry")) / f"chroma-migrations-{version}.json"
    try:
        rows = json.loads(cache.read_text())
        _INSTALLED[version] = {(d, int(v)): (f, h) for d, v, f, h in rows}
        return version, _INSTALLED[version]
    except (OSError, ValueError, TypeError):
        pass
    import chromadb

    tmp = Path(tempfile.mkdtemp(prefix="ferry-chroma-schema-"))
    try:
        client = chromadb.PersistentClient(path=str(tmp))
        client.heartbeat()
        _INSTALLED[version] = _read_migrations(tmp / "chroma.sqlite3")
        del client
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        rows = [[d, v, f, h] for (d, v), (f, h) in sorted(_INSTALLED[version].items())]
        cache.write_text(json.dumps(rows))
    except OSError:
        pass  # a read-only cache dir only costs the next run 0.7 s
    return version, _INSTALLED[version]


def _sort_key(m: Migration) -> tuple[int, str, int]:
    kind = _ORDER.index(m[0]) if m[0] in _ORDER else len(_ORDER)
    return kind, m[0], m[1]


def _levels(migrations: list[Migration]) -> str:
    top: dict[str, int] = {}
    for d, v, _ in migrations:
        top[d] = max(v, top.get(d, 0))
    return ", ".join(f"{d} {top[d]}" for d in sorted(top, key=lambda d: _sort_key((d, 0, ""))))


def inspect_schema(path: str | Path) -> SchemaState:
    """Compare the folder's applied migrations with the installed chromadb's."""
    folder = Path(path)
    db_file = folder / "chroma.sqlite3"
    if not db_file.is_file():
        raise FerryError(
            "not a Chroma directory",
            where=str(folder),
            fix="point chroma+file:// at the folder that holds chroma.sqlite3",
        )
    applied = _read_migrations(db_file)
    version, installed = installed_migrations()

    def as_list(keys: Iterable[tuple[str, int]]) -> list[Migration]:
        items = [(d, v, (applied.get((d, v)) or installed[(d, v)])[0]) for d, v in keys]
        return sorted(items, key=_sort_key)

    state = SchemaState(
        applied=as_list(applied),
        installed=as_list(installed),
        pending=as_list(k for k in installed if k not in applied),
        newer=as_list(k for k in applied if k not in installed) if installed else [],
        hash_mismatch=as_list(
            k for k in applied if k in installed and applied[k][1] != installed[k][1]
        ),
        chromadb_version=version,
    )
    levels = _levels(state.applied) or "no migrations recorded"
    if version is None:
        state.summary = f"{levels} (chromadb not installed: cannot compare)"
    elif state.newer:
        state.summary = (
            f"written by a newer chromadb than {version}: unknown migrations "
            f"{_levels(state.newer)} ({levels})"
        )
    elif state.pending:
        state.summary = (
            f"older than chromadb {version}: opening it would upgrade it in place "
            f"({len(state.pending)} migration{'s' if len(state.pending) != 1 else ''} "
            f"to {_levels(state.pending)}; now {levels})"
        )
    elif state.hash_mismatch:
        names = ", ".join(f"{d} {v}" for d, v, _ in state.hash_mismatch)
        state.summary = f"migration hashes differ from chromadb {version} ({names}); {levels}"
    else:
        state.summary = f"up to date ({levels})"
    return state
