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
from dataclasses import dataclass
from pathlib import Path

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


def build_world(root: Path) -> World:
    from cli import main
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
    files = [w.source, w.target, w.narrow_target, w.malformed, w.nan_source]
    extra = [
        p
        for p in w.root.iterdir()
        if p.name not in {f.name for f in files} and not p.name.startswith("journal.sqlite3")
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
    from cli import main

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
    from cli import main

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
