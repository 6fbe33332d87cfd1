"""The bad-input table: every command, ≥ 60 inputs a user (or an attacker) could type.

Each must end in one line saying what, where and how to fix it, exit code 2, and nothing
written: the target directory, the source directory, the router state and the journal's
rows are compared before and after. Shared by the test and by the report script.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LONG = "c" * 300


@dataclass
class World:
    """What the table runs against: a migrated Edge target, its journal, and traps."""

    root: Path
    source: Path
    nan_source: Path
    malformed: Path
    target: Path
    narrow_target: Path  # holds "docs" with another dimension
    journal: Path
    not_sqlite: Path
    router_state: Path

    @property
    def s(self) -> str:
        return f"chroma+file://{self.source}"

    @property
    def t(self) -> str:
        return f"qdrant+edge://{self.target}"

    @property
    def crafted(self) -> Path:
        """Hand-edited JSONL exports, one folder per fault (see `_crafted_exports`)."""
        return self.root / "crafted"


def build_world(root: Path) -> World:
    from ferry.cli import main
    from tests.conftest import make_chroma

    source = make_chroma(root / "source", {"docs": {"n": 30, "dim": 8, "metric": "l2"}})
    narrow_source = make_chroma(root / "narrow-src", {"docs": {"n": 5, "dim": 4, "metric": "l2"}})
    nan_source = _nan_source(root / "nan-source")
    malformed = root / "malformed"
    malformed.mkdir()
    (malformed / "chroma.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    world = World(
        root=root,
        source=source,
        nan_source=nan_source,
        malformed=malformed,
        target=root / "target",
        narrow_target=root / "narrow-target",
        journal=root / "journal.sqlite3",
        not_sqlite=root / "notes.txt",
        router_state=root / "router.json",
    )
    world.not_sqlite.write_text("this is not a journal\n" * 20)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        for src, dst in ((source, world.target), (narrow_source, world.narrow_target)):
            code = main(
                [
                    "migrate",
                    "--from",
                    f"chroma+file://{src}",
                    "--to",
                    f"qdrant+edge://{dst}",
                    "--yes",
                    "--json",
                    "--state",
                    str(world.journal),
                ]
            )
            assert code == 0, quiet.getvalue()
        export = root / "crafted" / "good"
        code = main(
            ["migrate", "--from", f"chroma+file://{narrow_source}", "--to",
             f"jsonl+file://{export}", "--yes", "--json", "--state", str(root / "export.sqlite3")]
        )  # fmt: skip
        assert code == 0, quiet.getvalue()
        _crafted_exports(root / "crafted", export)
        (root / "export.sqlite3").unlink()
        for leftover in root.glob("export.sqlite3-*"):
            leftover.unlink()
        (root / "a-file").write_text("not a folder\n")
        from ferry.core.journal import Journal

        Journal(root / "damaged-journal.sqlite3").close()
        with sqlite3.connect(root / "damaged-journal.sqlite3") as db:
            db.execute("PRAGMA foreign_keys=OFF")
            db.execute("DROP TABLE runs")
        code = main(
            [
                "router",
                "set",
                "dual-write",
                "--state-file",
                str(world.router_state),
                "--state",
                str(world.journal),
                "--json",
            ]
        )
        assert code == 0, quiet.getvalue()
    return world


def _nan_source(path: Path) -> Path:
    """A Chroma directory whose record 'bad-3' has NaN and 'bad-7' inf in their vectors.

    chromadb 1.x refuses such vectors at `add`, older releases (and other writers) did not:
    the values are put in the write-ahead log's float32 bytes directly.
    """
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("docs", configuration={"hnsw": {"space": "l2"}})
    collection.add(ids=[f"bad-{i}" for i in range(10)], embeddings=np.ones((10, 4), np.float32))
    del client
    with sqlite3.connect(path / "chroma.sqlite3") as db:
        for record, value in (("bad-3", np.nan), ("bad-7", np.inf)):
            vector = np.ones(4, dtype=np.float32)
            vector[1] = value
            db.execute(
                "UPDATE embeddings_queue SET vector = ? WHERE id = ?", (vector.tobytes(), record)
            )
    return path


# (folder, what to change): records no target holds exactly, and manifests that lie.
CRAFTED_RECORDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "int-beyond-i64": lambda r: r["metadata"].update(big=2**64),
    "int-below-i64": lambda r: r["metadata"].update(big=-(2**63) - 1),
    "nan-metadata": lambda r: r["metadata"].update(score=float("nan")),
    "inf-metadata": lambda r: r["metadata"].update(score=float("inf")),
    "nan-in-a-list": lambda r: r["metadata"].update(floats=[1.0, float("nan")]),
    "empty-key": lambda r: r["metadata"].update({"": 1}),
    "document-number": lambda r: r.update(document=42),
    "document-list": lambda r: r.update(document=["a"]),
    "metadata-a-list": lambda r: r.update(metadata=[1, 2]),
    "empty-id": lambda r: r.update(id=""),
    "nan-vector": lambda r: r.update(embedding=[float("nan")] * len(r["embedding"])),
}
CRAFTED_MANIFESTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "dimension-0": lambda m: m.update(dimension=0),
    "dimension-minus-4": lambda m: m.update(dimension=-4),
    "dimension-four": lambda m: m.update(dimension="four"),
    "dimension-true": lambda m: m.update(dimension=True),
    "metric-hamming": lambda m: m.update(metric="hamming"),
    "metric-missing": lambda m: m.pop("metric"),
}


def _crafted_exports(root: Path, good: Path) -> None:
    """One JSONL export per fault, edited as an attacker (or a broken tool) would, with the
    manifest's counts and checksums kept true so only the fault itself is wrong."""
    import json
    import shutil

    def edit(name: str, records: Callable[[list[dict[str, Any]]], None] | None = None,
             manifest: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        folder = root / name
        shutil.copytree(good, folder)
        meta_path = folder / "docs" / "manifest.json"
        meta = json.loads(meta_path.read_text())
        part = next((folder / "docs" / "data").glob("*.jsonl"))
        if records is not None:
            lines = [json.loads(line) for line in part.read_text().splitlines() if line]
            records(lines)
            data = "".join(json.dumps(r) + "\n" for r in lines).encode()
            part.write_bytes(data)
            meta["count"] = len(lines)
            for entry in meta.get("parts", []):
                entry["sha256"] = hashlib.sha256(data).hexdigest()
                entry["rows"] = len(lines)
        if manifest is not None:
            manifest(meta)
        meta_path.write_text(json.dumps(meta))

    for name, change in CRAFTED_RECORDS.items():
        edit(name, records=lambda lines, change=change: change(lines[0]))
    edit("same-id-twice", records=lambda lines: lines.append(dict(lines[0])))
    for name, change in CRAFTED_MANIFESTS.items():
        edit(name, manifest=change)
    edit("manifest-missing")
    (root / "manifest-missing" / "docs" / "manifest.json").unlink()
    edit("manifest-not-json")
    (root / "manifest-not-json" / "docs" / "manifest.json").write_text("{not json")
    edit("manifest-a-list")
    (root / "manifest-a-list" / "docs" / "manifest.json").write_text("[1, 2]")


def rows(w: World) -> list[tuple[str, list[str]]]:
    """(what is wrong, argv). Every argv must be refused with exit 2 and change nothing."""
    j = ["--state", str(w.journal)]
    m = ["migrate", "--from", w.s, "--to", w.t, "--yes", "--json", *j]
    v = ["validate", "--from", w.s, "--to", w.t, "--json", *j]
    cut = ["cutover", "--to", w.t, "--collection", "docs", "--yes", "--json", *j]
    r = ["router", "set", "--state-file", str(w.router_state), *j]
    inside = f"qdrant+edge://{w.source}/inside"
    return [
        ("migrate --rate nan", [*m, "--rate", "nan"]),
        ("migrate --rate inf", [*m, "--rate", "inf"]),
        ("migrate --rate -1", [*m, "--rate", "-1"]),
        ("migrate --rate 0", [*m, "--rate", "0"]),
        ("migrate --batch-size 0", [*m, "--batch-size", "0"]),
        ("migrate --batch-size -5", [*m, "--batch-size", "-5"]),
        ("migrate --batch-size abc", [*m, "--batch-size", "abc"]),
        ("migrate --workers 0", [*m, "--workers", "0"]),
        ("migrate --workers 100000", [*m, "--workers", "100000"]),
        ("migrate --id-field ''", [*m, "--id-field", ""]),
        ("migrate --document-field ''", [*m, "--document-field", ""]),
        ("migrate --id-field with a newline", [*m, "--id-field", "a\nb"]),
        ("migrate same id and document field", [*m, "--id-field", "x", "--document-field", "x"]),
        ("migrate --give-up-after nan", [*m, "--give-up-after", "nan"]),
        ("migrate --give-up-after -1", [*m, "--give-up-after", "-1"]),
        ("migrate --mode bogus", [*m, "--mode", "bogus"]),
        ("migrate 300-char collection name", [*m, "--collection", LONG]),
        ("migrate collection name with /", [*m, "--collection", "a/b"]),
        ("migrate collection name with a newline", [*m, "--collection", "do\ncs"]),
        ("migrate unknown collection", [*m, "--collection", "nosuch"]),
        (
            "migrate relative source path",
            ["migrate", "--from", "chroma+file://rel/dir", "--to", w.t, "--yes", *j],
        ),
        ("migrate unknown scheme", ["migrate", "--from", "foo://x", "--to", w.t, "--yes", *j]),
        (
            "migrate missing source dir",
            ["migrate", "--from", "chroma+file:///nonexistent/x", "--to", w.t, "--yes", *j],
        ),
        (
            "migrate unknown source option",
            ["migrate", "--from", w.s + "?grpc=yes", "--to", w.t, "--yes", *j],
        ),
        (
            "migrate misspelt option",
            ["migrate", "--from", w.s, "--to", w.t + "?api_kye_env=X", "--yes", *j],
        ),
        (
            "migrate key in the URI",
            ["migrate", "--from", w.s, "--to", "qdrant+http://h:6333?api_key=s3cret", "--yes", *j],
        ),
        (
            "migrate bad port",
            ["migrate", "--from", w.s, "--to", "qdrant+http://h:port", "--yes", *j],
        ),
        (
            "migrate bad ?timeout",
            ["migrate", "--from", w.s, "--to", "qdrant+http://h:6333?timeout=abc", "--yes", *j],
        ),
        (
            "migrate ?timeout=nan",
            ["migrate", "--from", w.s, "--to", "qdrant+http://h:6333?timeout=nan", "--yes", *j],
        ),
        (
            "migrate key variable unset",
            [
                "migrate",
                "--from",
                w.s,
                "--to",
                "qdrant+http://127.0.0.1:9?api_key_env=FERRY_UNSET_X",
                "--yes",
                *j,
            ],
        ),
        (
            "migrate into a read-only source type",
            ["migrate", "--from", w.s, "--to", f"chroma+file://{w.root}/x", "--yes", *j],
        ),
        (
            "migrate target inside the source",
            ["migrate", "--from", w.s, "--to", inside, "--yes", *j],
        ),
        (
            "migrate target containing the source",
            ["migrate", "--from", w.s, "--to", f"qdrant+edge://{w.root}", "--yes", *j],
        ),
        (
            "migrate target is the source",
            ["migrate", "--from", w.s, "--to", f"qdrant+edge://{w.source}", "--yes", *j],
        ),
        (
            "migrate dimension mismatch",
            ["migrate", "--from", w.s, "--to", f"qdrant+edge://{w.narrow_target}", "--yes", *j],
        ),
        (
            "migrate malformed chroma.sqlite3",
            [
                "migrate",
                "--from",
                f"chroma+file://{w.malformed}",
                "--to",
                f"qdrant+edge://{w.root}/t2",
                "--yes",
                *j,
            ],
        ),
        ("migrate --state unwritable", [*m[:-2], "--state", "/proc/ferry/j.sqlite3"]),
        ("migrate --state not SQLite", [*m[:-2], "--state", str(w.not_sqlite)]),
        ("migrate --state a directory", [*m[:-2], "--state", str(w.root)]),
        ("validate --tolerance nan", [*v, "--tolerance", "nan"]),
        ("validate --tolerance inf", [*v, "--tolerance", "inf"]),
        ("validate --tolerance -1", [*v, "--tolerance", "-1"]),
        ("validate --recall-threshold 5", [*v, "--recall-threshold", "5"]),
        ("validate --recall-threshold -1", [*v, "--recall-threshold", "-1"]),
        ("validate --recall-threshold nan", [*v, "--recall-threshold", "nan"]),
        ("validate --seed -5", [*v, "--seed", "-5"]),
        ("validate --k 0", [*v, "--k", "0"]),
        ("validate --sample -1", [*v, "--sample", "-1"]),
        ("validate --queries -1", [*v, "--queries", "-1"]),
        ("validate --batch-size 0", [*v, "--batch-size", "0"]),
        ("validate --id-field ''", [*v, "--id-field", ""]),
        ("validate --collection =x", [*v, "--collection", "=x"]),
        ("validate 300-char collection", [*v, "--collection", LONG]),
        ("validate --delete-extra with no terminal", [*v, "--delete-extra"]),
        (
            "validate --repair into the source",
            ["validate", "--from", w.s, "--to", inside, "--repair", *j],
        ),
        ("validate --state not SQLite", [*v[:-2], "--state", str(w.not_sqlite)]),
        ("cutover alias with /", [*cut, "--alias", "a/b"]),
        ("cutover alias with a newline", [*cut, "--alias", "li\nve"]),
        ("cutover empty alias", [*cut, "--alias", ""]),
        (
            "cutover 300-char collection",
            ["cutover", "--to", w.t, "--collection", LONG, "--alias", "live", "--yes", *j],
        ),
        ("cutover --reason without --force", [*cut, "--alias", "live", "--reason", "why"]),
        (
            "cutover without --yes and no terminal",
            ["cutover", "--to", w.t, "--collection", "docs", "--alias", "live", *j],
        ),
        (
            "cutover unknown collection",
            ["cutover", "--to", w.t, "--collection", "nosuch", "--alias", "live", "--yes", *j],
        ),
        (
            "cutover bad URI",
            [
                "cutover",
                "--to",
                "qdrant+edge://rel",
                "--collection",
                "docs",
                "--alias",
                "live",
                "--yes",
                *j,
            ],
        ),
        ("rollback alias with /", ["rollback", "--to", w.t, "--alias", "x/y", "--yes", *j]),
        ("rollback empty alias", ["rollback", "--to", w.t, "--alias", "", "--yes", *j]),
        (
            "rollback alias never cut over",
            ["rollback", "--to", w.t, "--alias", "never", "--yes", *j],
        ),
        ("router set --max-p99-ms -5", [*r, "shadow", "--max-p99-ms", "-5"]),
        ("router set --max-p99-ms nan", [*r, "shadow", "--max-p99-ms", "nan"]),
        ("router set --max-error-rate 2", [*r, "shadow", "--max-error-rate", "2"]),
        ("router set --max-error-rate nan", [*r, "shadow", "--max-error-rate", "nan"]),
        ("router set unknown mode", [*r, "sideways"]),
        ("status unknown run", ["status", "nosuchrun", *j]),
        ("status --state not SQLite", ["status", "--state", str(w.not_sqlite)]),
        ("inventory unknown scheme", ["inventory", "foo://x"]),
        ("inventory missing directory", ["inventory", "chroma+file:///nonexistent/dir"]),
        ("inventory malformed chroma.sqlite3", ["inventory", f"chroma+file://{w.malformed}"]),
        (
            "backup collection with /",
            ["backup", w.s, "--collection", "a/b", "--to", str(w.root / "bk")],
        ),
        (
            "backup 300-char collection",
            ["backup", w.s, "--collection", LONG, "--to", str(w.root / "bk")],
        ),
        (
            "backup into the source",
            ["backup", w.s, "--collection", "docs", "--to", str(w.source / "bk")],
        ),
        (
            "backup unknown collection",
            ["backup", w.s, "--collection", "nosuch", "--to", str(w.root / "bk")],
        ),
        (
            "backup unknown scheme",
            ["backup", "foo://x", "--collection", "docs", "--to", str(w.root / "bk")],
        ),
        ("demo --records -1", ["demo", "--records", "-1", "--dir", str(w.root / "demo")]),
        ("demo --records 0", ["demo", "--records", "0", "--dir", str(w.root / "demo")]),
        ("demo --rate nan", ["demo", "--rate", "nan", "--dir", str(w.root / "demo")]),
        ("migrate --rate 1e-300", [*m, "--rate", "1e-300"]),
        ("migrate --batch-size 10^9", [*m, "--batch-size", "1000000000"]),
        ("migrate --give-up-after 1e9", [*m, "--give-up-after", "1e9"]),
        ("validate --k 10^8", [*v, "--k", "100000000"]),
        (
            "migrate password in the source URI",
            ["migrate", "--from", "chroma+http://admin:S3CRET@127.0.0.1:9", "--to", w.t, *j],
        ),
        (
            "migrate user name in the target URI",
            ["migrate", "--from", w.s, "--to", "qdrant+https://me@127.0.0.1:6333", "--yes", *j],
        ),
        *[
            (
                f"migrate crafted export: {name}",
                [
                    "migrate",
                    "--from",
                    f"jsonl+file://{w.crafted / name}",
                    "--to",
                    f"qdrant+edge://{w.root}/t-crafted",
                    "--yes",
                    "--json",
                    *j,
                ],
            )  # fmt: skip
            for name in [
                *CRAFTED_RECORDS,
                "same-id-twice",
                *CRAFTED_MANIFESTS,
                "manifest-missing",
                "manifest-not-json",
                "manifest-a-list",
            ]
        ],
        (
            "migrate --from jsonl+file:// a file",
            ["migrate", "--from", f"jsonl+file://{w.root}/a-file", "--to", w.t, "--yes", *j],
        ),
        (
            "migrate --to jsonl+file:// a file",
            ["migrate", "--from", w.s, "--to", f"jsonl+file://{w.root}/a-file", "--yes", *j],
        ),
        (
            "migrate --to parquet+file:// a collection folder",
            ["migrate", "--from", w.s, "--to", f"parquet+file://{w.crafted}/good/docs", *j],
        ),
        ("migrate --state /dev/null", [*m[:-2], "--state", "/dev/null"]),
        (
            "status journal without its runs table",
            ["status", "--state", f"{w.root}/damaged-journal.sqlite3"],
        ),
        (
            "router set --state-file a directory",
            ["router", "set", "shadow", "--state-file", str(w.root), *j],
        ),
        (
            "router set --state-file /dev/null",
            ["router", "set", "shadow", "--state-file", "/dev/null", *j],
        ),
    ]


def journal_rows(path: Path) -> str:
    """The journal's content as text (not its bytes: opening a WAL database touches files)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = [
            f"{t}: {db.execute(f'SELECT * FROM {t} ORDER BY rowid').fetchall()}"
            for t in sorted(tables)
        ]
    return hashlib.sha256("\n".join(dump).encode()).hexdigest()


def tree_signature(root: Path) -> str:
    """Every file's relative path, size and modification time (ns): any write moves one.

    Not the bytes: the Edge targets hold large preallocated segment files, and hashing them
    twice for each of the table's rows cost two minutes of the suite."""
    entries = sorted(
        f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}"
        for p in root.rglob("*")
        if p.is_file() and (st := p.stat())
    )
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def world_state(w: World) -> tuple[str, ...]:
    files = [w.source, w.target, w.narrow_target, w.malformed, w.nan_source, w.crafted]
    extra = [
        p
        for p in w.root.iterdir()
        if p.name not in {f.name for f in files}
        and not p.name.startswith(("journal.sqlite3", "damaged-journal.sqlite3"))
    ]
    return (
        *(tree_signature(f) for f in files),
        journal_rows(w.journal),
        hashlib.sha256(w.router_state.read_bytes()).hexdigest(),
        hashlib.sha256(w.not_sqlite.read_bytes()).hexdigest(),
        ",".join(sorted(p.name for p in extra)),
    )


@dataclass
class Verdict:
    what: str
    code: int
    line: str
    clean: bool
    unchanged: bool


def run_table(w: World) -> list[Verdict]:
    from ferry.cli import main

    verdicts = []
    for what, argv in rows(w):
        before = world_state(w)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        clean = (
            "Traceback" not in err.getvalue()
            and "unexpected error" not in last
            and "error:" in last
            and (last.startswith("ferry: error:") and len(lines) == 1 or last.startswith("ferry"))
        )
        verdicts.append(Verdict(what, code, last, clean, world_state(w) == before))
    return verdicts


def nan_verdict(w: World) -> Verdict:
    """NaN / inf in source vectors: refused by id, never copied silently."""
    from ferry.cli import main

    target = w.root / "nan-target"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(
            [
                "migrate",
                "--from",
                f"chroma+file://{w.nan_source}",
                "--to",
                f"qdrant+edge://{target}",
                "--yes",
                "--state",
                str(w.root / "nan.sqlite3"),
            ]
        )
    text = err.getvalue()
    named = "'bad-3'" in text and "'bad-7'" in text
    return Verdict(
        "NaN/inf source vectors",
        code,
        text.strip().splitlines()[-1] if text else "",
        named and "Traceback" not in text,
        True,
    )


if __name__ == "__main__":  # pragma: no cover - a quick look by hand
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("XDG_STATE_HOME", tmp + "/xdg")
        world = build_world(Path(tmp))
        for verdict in run_table(world):
            print(verdict)
