"""Chroma directories written by REAL older chromadb releases, for tests/test_chroma_releases.py.

Per release, a pinned venv is built once and reused, then that release's PersistentClient
writes a directory (``writer.py``, run by the venv's own python) and dumps what its own
``get()``/``query()`` return as ground truth.

Cache (``$FERRY_RELEASES_CACHE``, default ``~/.cache/ferry-tests/chroma-releases``)::

    <version>/venv/            the release's venv (uv when installed, else venv + pip)
    <version>/venv.json        written only after a successful install: the marker
    <set>/data-<key>/          one built data set; <key> hashes writer.py + spec.py
        pristine/              what the release wrote, reopened by it for the truth dump
        ferry/                 a copy taken right after the writer's process ended: exactly
                               what the release left on disk. Tests give Ferry this one.
        truth.json             the release's own view of every collection (see writer.py)
        manifest.json          sha256 of every file of ferry/ when it was copied
        facts.json             where each release put the space: config_json_str,
                               collection_metadata, segment_metadata, schema_str, migrations
    uv-cache/                  uv's wheel cache (unless UV_CACHE_DIR is set)

Environment:

* ``FERRY_RELEASES``: unset = 0.4.24, 0.5.23, 0.6.3, 1.0.12; ``all`` = every release in
  spec.RELEASES; or a comma list. "0.6.3-upgraded" (0.6.3's files opened once by the
  chromadb installed next to Ferry) comes with 0.6.3.
* ``FERRY_RELEASES_CACHE``: the cache root above.
* ``FERRY_RELEASES_PYTHON``: the interpreter the venvs are made from (default: a 3.11).
* ``FERRY_RELEASES_JOBS``: how many releases build at once (default 3).

A release that cannot be installed (no network, a registry hiccup) is reported with the
installer's last error line, and its tests skip with that reason; a writer that fails is a
bug and its tests error. Delete the cache root to rebuild everything.

    python -m tests.chroma_releases.build [--releases all] [--facts]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from tests.chroma_releases import spec

HERE = Path(__file__).resolve().parent
WRITER = HERE / "writer.py"
INSTALL_TIMEOUT = 900
WRITE_TIMEOUT = 900


def cache_root() -> Path:
    env = os.environ.get("FERRY_RELEASES_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ferry-tests" / "chroma-releases"


def base_python() -> str:
    env = os.environ.get("FERRY_RELEASES_PYTHON")
    if env:
        return env
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return shutil.which("python3.11") or sys.executable


@functools.cache
def find_uv() -> str | None:
    """uv's binary (from the `uv` package of the test extra, or PATH); None: use pip.

    Cached and first called from the main thread: `uv.find_uv_bin` reads sysconfig, which
    is not safe to initialise from several threads at once.
    """
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def child_env(root: Path) -> dict[str, str]:
    """The environment of installer and writer processes: nothing of Ferry's on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["UV_PYTHON_DOWNLOADS"] = "never"  # no interpreter downloads: registries only
    env["UV_NO_PROGRESS"] = "1"
    env.setdefault("UV_CACHE_DIR", str(root / "uv-cache"))
    return env


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder per release across processes (parallel pytest sessions, xdist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class InstallError(Exception):
    """The release could not be installed: its tests skip with this reason."""


class WriterError(Exception):
    """The writer failed in a release that installed: a bug, its tests error."""


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def install(release: spec.Release, root: Path) -> dict[str, Any]:
    """The release's venv, built once: returns what the marker records."""
    home = root / release.version
    venv, marker = home / "venv", home / "venv.json"
    if marker.is_file() and venv_python(venv).exists():
        return {**json.loads(marker.read_text()), "cached": True}
    with locked(home / ".lock"):
        if marker.is_file() and venv_python(venv).exists():
            return {**json.loads(marker.read_text()), "cached": True}
        shutil.rmtree(venv, ignore_errors=True)
        env = child_env(root)
        python = base_python()
        uv = find_uv()
        started = time.monotonic()
        if uv:
            steps = [
                [uv, "venv", "--quiet", "--python", python, str(venv)],
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(venv_python(venv)),
                    "--exclude-newer",
                    release.exclude_newer,
                    *release.requirements(),
                ],
            ]
        else:
            steps = [
                [python, "-m", "venv", str(venv)],
                [
                    str(venv_python(venv)),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    *release.requirements(),
                ],
            ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(venv, ignore_errors=True)
                raise InstallError(f"chromadb {release.version}: {exc}") from exc
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                log = home / "install-error.log"
                log.write_text(done.stdout + done.stderr)
                raise InstallError(
                    f"chromadb {release.version} cannot be installed: "
                    f"{last_line(done.stderr)} (full output: {log})"
                )
        info = {
            "version": release.version,
            "installer": "uv" if uv else "pip",
            "exclude_newer": release.exclude_newer if uv else None,
            "requirements": release.requirements(),
            "python": python,
            "seconds": round(time.monotonic() - started, 1),
        }
        marker.write_text(json.dumps(info, indent=1))
        return {**info, "cached": False}


def run_writer(python: str | Path, root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            [str(python), str(WRITER), *args],
            env=child_env(root),
            capture_output=True,
            text=True,
            timeout=WRITE_TIMEOUT,
            cwd=str(HERE),
        )
    except subprocess.TimeoutExpired as exc:
        raise WriterError(f"writer.py {args[0]} timed out") from exc
    if done.returncode != 0:
        raise WriterError(f"writer.py {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def checksums(path: Path) -> dict[str, str]:
    """sha256 of every file below `path` (the proof that nobody wrote to it)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def data_key(dataset: str) -> str:
    digest = hashlib.sha256()
    for file in (WRITER, HERE / "spec.py"):
        digest.update(file.read_bytes())
    digest.update(dataset.encode())
    release = spec.release_of(dataset)
    digest.update(f"{release.exclude_newer}{release.pins}".encode())
    if dataset == spec.UPGRADED:
        import chromadb

        digest.update(chromadb.__version__.encode())
    return digest.hexdigest()[:12]


@dataclass
class DataSet:
    """One built directory and its truth; `error` set when it could not be built."""

    name: str
    path: Path | None = None
    skip: str | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ferry_dir(self) -> Path:
        assert self.path is not None
        return self.path / "ferry"

    def truth(self) -> dict[str, Any]:
        assert self.path is not None
        return json.loads((self.path / "truth.json").read_text())

    def manifest(self) -> dict[str, str]:
        assert self.path is not None
        return json.loads((self.path / "manifest.json").read_text())

    def facts(self) -> dict[str, Any]:
        assert self.path is not None
        return json.loads((self.path / "facts.json").read_text())


def build_data(dataset: str, root: Path, python: str | Path, source: Path | None) -> DataSet:
    """Write (or, for the upgraded set, open) a directory, copy it for Ferry, dump truth."""
    home = root / dataset
    final = home / f"data-{data_key(dataset)}"
    if (final / "build.json").is_file():
        return DataSet(dataset, final, info={**json.loads((final / "build.json").read_text())})
    with locked(home / ".lock"):
        if (final / "build.json").is_file():
            return DataSet(dataset, final, info=json.loads((final / "build.json").read_text()))
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        pristine = partial / "pristine"
        started = time.monotonic()
        if source is None:
            out = run_writer(python, root, "write", str(pristine), dataset)
        else:
            shutil.copytree(source, pristine)
            out = run_writer(python, root, "upgrade", str(pristine))
        written = time.monotonic()
        # The writer's process has ended: this is what the release left on disk.
        shutil.copytree(pristine, partial / "ferry")
        manifest = checksums(partial / "ferry")
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if source is None:
            run_writer(python, root, "truth", str(pristine), str(partial / "truth.json"))
        else:
            # One process per collection: when chromadb 1.x panics on one collection its
            # compactor thread dies and every later call in that process fails too.
            merged: dict[str, Any] = {}
            for name in json.loads(out.strip().splitlines()[-1])["collections"]:
                part = partial / f"truth-{len(merged.get('collections', {}))}.json"
                run_writer(python, root, "truth", str(pristine), str(part), name)
                one = json.loads(part.read_text())
                part.unlink()
                merged.setdefault("collections", {}).update(one.pop("collections"))
                merged.update(one)
            (partial / "truth.json").write_text(json.dumps(merged, ensure_ascii=False))
        reopened = checksums(pristine)

        facts = disk_facts(partial / "ferry")
        facts["truth_reopen_changed"] = sorted(
            k for k in set(manifest) | set(reopened) if manifest.get(k) != reopened.get(k)
        )
        (partial / "facts.json").write_text(json.dumps(facts, indent=1, ensure_ascii=False))
        info = {
            "dataset": dataset,
            "writer": json.loads(out.strip().splitlines()[-1]) if out.strip() else {},
            "write_seconds": round(written - started, 1),
            "truth_seconds": round(time.monotonic() - written, 1),
        }
        (partial / "build.json").write_text(json.dumps(info, indent=1))
        partial.rename(final)
        for old in home.glob("data-*"):  # earlier writer versions
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return DataSet(dataset, final, info=info)


def build_one(dataset: str, root: Path, built: dict[str, DataSet]) -> DataSet:
    started = time.monotonic()
    try:
        if dataset == spec.UPGRADED:
            base = built.get(spec.UPGRADED_FROM)
            if base is None or base.path is None:
                reason = base.skip or base.error if base else "0.6.3 was not built"
                return DataSet(dataset, skip=f"needs 0.6.3: {reason}")
            result = build_data(dataset, root, sys.executable, base.ferry_dir)
            result.info["install"] = {"installer": "installed chromadb", "cached": True}
        else:
            release = spec.RELEASES[dataset]
            venv = install(release, root)
            result = build_data(dataset, root, venv_python(root / release.version / "venv"), None)
            result.info["install"] = venv
    except InstallError as exc:
        return DataSet(dataset, skip=str(exc))
    except Exception as exc:  # reported on every test of the set, not a crashed session
        return DataSet(dataset, error=f"{type(exc).__name__}: {exc}")
    result.info["seconds"] = round(time.monotonic() - started, 1)
    return result


def build_all(datasets: list[str], jobs: int | None = None) -> dict[str, DataSet]:
    """Build every data set (releases in parallel, then the upgraded one): name -> DataSet."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    jobs = jobs or int(os.environ.get("FERRY_RELEASES_JOBS", "3"))
    releases = [d for d in datasets if d != spec.UPGRADED]
    built: dict[str, DataSet] = {}
    find_uv()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for result in pool.map(lambda d: build_one(d, root, built), releases):
            built[result.name] = result
    if spec.UPGRADED in datasets:
        built[spec.UPGRADED] = build_one(spec.UPGRADED, root, built)
    return built


# -- evidence -------------------------------------------------------------------------------


def vectors_of(entry: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(entry["embeddings"])
    dim = entry["dim"] or spec.DIM
    return np.frombuffer(raw, dtype="<f4").reshape(-1, dim)


def searched_metric(truth: dict[str, Any], name: str) -> str | None:
    """The space the release really searched with, from its own query() distances.

    Chroma reports squared L2, ``1 - cos`` and ``1 - dot``; the metric whose formula gives
    back every reported distance (float32 precision) is the one its index used. None when
    the collection is empty (no evidence).
    """
    entry = truth["collections"][name]
    if not entry["queries"]:
        return None
    vecs = vectors_of(entry).astype(np.float64)
    row = {rid: k for k, rid in enumerate(entry["ids"])}
    queries = np.frombuffer(base64.b64decode(truth["queries"]), dtype="<f4").reshape(-1, spec.DIM)
    matches = []
    for metric in spec.SPACES:
        ok = True
        for q, hit in zip(queries.astype(np.float64), entry["queries"], strict=True):
            keep = [k for k, i in enumerate(hit["ids"]) if not np.isnan(vecs[row[i]]).any()]
            v = vecs[[row[hit["ids"][k]] for k in keep]]
            if metric == "l2":
                want = ((v - q) ** 2).sum(axis=1)
            elif metric == "ip":
                want = 1.0 - v @ q
            else:
                want = 1.0 - (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
            got = np.asarray(hit["distances"])[keep]
            if not np.allclose(got, want, rtol=1e-3, atol=1e-3):
                ok = False
                break
        if ok:
            matches.append(metric)
    if len(matches) != 1:
        raise AssertionError(f"{name}: query distances fit {matches or 'no metric'}")
    return matches[0]


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def spaces_in(value: Any, path: str = "") -> dict[str, Any]:
    """Every ``space`` / ``hnsw:space`` inside a JSON value, by its path."""
    found: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key in ("space", "hnsw:space"):
                found[here] = inner
            else:
                found.update(spaces_in(inner, here))
    elif isinstance(value, list):
        for k, inner in enumerate(value):
            found.update(spaces_in(inner, f"{path}[{k}]"))
    return found


def disk_facts(path: Path) -> dict[str, Any]:
    """What is on disk, read-only: where each collection's distance space was stored."""
    uri = f"file:{quote(str((path / 'chroma.sqlite3').resolve()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        migrations = dict(db.execute("SELECT dir, max(version) FROM migrations GROUP BY dir"))
        cols = {r[1] for r in db.execute("PRAGMA table_info(collections)")}
        extra = ", ".join(c if c in cols else "NULL" for c in ("config_json_str", "schema_str"))
        out: dict[str, Any] = {
            "migrations": migrations,
            "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0],
            "tables": sorted(tables),
            "files": sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()),
            "collections": {},
        }

        def kv(table: str, key_col: str, ident: str) -> dict[str, Any]:
            if table not in tables:
                return {}
            tcols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            values = [
                c for c in ("str_value", "int_value", "float_value", "bool_value") if c in tcols
            ]
            rows = db.execute(
                f"SELECT key, {', '.join(values)} FROM {table} WHERE {key_col} = ?", (ident,)
            )
            return {r[0]: next((v for v in r[1:] if v is not None), None) for r in rows}

        for cid, name, dim, config, schema in db.execute(
            f"SELECT id, name, dimension, {extra} FROM collections ORDER BY name"
        ):
            segments = {}
            for sid, stype, scope in db.execute(
                "SELECT id, type, scope FROM segments WHERE collection = ?", (cid,)
            ):
                segments[scope] = {
                    "id": sid,
                    "type": stype,
                    "metadata": kv("segment_metadata", "segment_id", sid),
                }
                folder = path / sid
                if folder.is_dir():
                    segments[scope]["files"] = sorted(p.name for p in folder.iterdir())
            out["collections"][name] = {
                "id": cid,
                "dimension": dim,
                "config_json_str": _json(config),
                "schema_str": _json(schema),
                "collection_metadata": kv("collection_metadata", "collection_id", cid),
                "segments": segments,
            }
        return out
    finally:
        db.close()


def space_report(ds: DataSet) -> list[str]:
    """One line per collection: every place a space is stored, and what the release searched."""
    facts, truth = ds.facts(), ds.truth()
    lines = [f"== {ds.name}  migrations={facts['migrations']}"]
    for name, col in facts["collections"].items():
        places = {
            "config_json_str": spaces_in(col["config_json_str"]),
            "schema_str": spaces_in(col["schema_str"]),
            "collection_metadata": {
                k: v for k, v in col["collection_metadata"].items() if "space" in k
            },
            "segment_metadata": {
                scope: {k: v for k, v in seg["metadata"].items() if "space" in k}
                for scope, seg in col["segments"].items()
                if any("space" in k for k in seg["metadata"])
            },
        }
        places = {k: v for k, v in places.items() if v}
        entry = truth["collections"].get(name, {"error": "not in truth"})
        searched = f"<{entry['error'][:90]}>" if "error" in entry else searched_metric(truth, name)
        lines.append(f"  {name:<12} searched={searched}  {json.dumps(places, ensure_ascii=False)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", default=None, help="default | all | comma list")
    parser.add_argument("--facts", action="store_true", help="print where each space is stored")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    datasets = spec.selected_datasets(args.releases)
    started = time.monotonic()
    built = build_all(datasets, args.jobs)
    failed = False
    for name, ds in built.items():
        install_info = ds.info.get("install", {})
        status = (
            "ok" if ds.path else ("SKIP " + str(ds.skip) if ds.skip else "ERROR " + str(ds.error))
        )
        print(
            f"{name:<16} {status}  install={install_info.get('installer', '-')}"
            f"{' (cached)' if install_info.get('cached') else ''}"
            f" {install_info.get('seconds', '-')}s  data: write {ds.info.get('write_seconds', '-')}s"
            f" truth {ds.info.get('truth_seconds', '-')}s  {ds.path or ''}"
        )
        failed = failed or ds.error is not None
    print(f"total {time.monotonic() - started:.1f}s")
    if args.facts:
        for ds in built.values():
            if ds.path:
                print("\n".join(space_report(ds)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
