"""Scenarios of two things at once, a kill into a Chroma server, many empty collections and
records too large for whole batches — each a real `ferry` process or two, each read back by
tests/faults/verify.py (no Ferry code). Each returns an `Outcome`, the reliability table's
row; tests/faults/test_together.py asserts on it and `python -m tests.faults.report` prints it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from tests.conftest import make_chroma, unique_name
from tests.faults import verify
from tests.faults.kills import COMMAND_TIMEOUT, Outcome, _damage, ferry
from tests.names import KEEP_NAMES

L2 = {"metric": "l2", "dim": 8}  # l2: every engine keeps the vectors as given
HANG = -999  # what `ferry()` returns for a command past COMMAND_TIMEOUT


def launch(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ferry.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = process.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return subprocess.CompletedProcess(process.args, HANG, out, "hang")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def count(
    outcome: Outcome, result: subprocess.CompletedProcess[str], verdict: bool = False
) -> None:
    """One command's exit: a hang, a clean error (one `ferry: error:` line), or a dirty one.
    `verdict`: exit 1 is a finding (validate), not an error."""
    outcome.runs += 1
    if result.returncode == HANG:
        outcome.hangs += 1
        outcome.notes.append(f"hang: {result.args}")
    elif result.returncode != 0 and not (verdict and result.returncode == 1):
        outcome.errors += 1
        if "Traceback" not in result.stderr and "ferry: error:" in result.stderr:
            outcome.clean_errors += 1
        else:
            outcome.notes.append(f"{result.returncode}: {result.stderr[-500:]}")


def two_repairs_at_once(root: Path) -> Outcome:
    """Two `validate --full --repair` on one damaged Edge target at the same time."""
    outcome = Outcome("two validate --repair on one target at once")
    src = make_chroma(root / "src", {"docs": {"n": 400, **L2}})
    target = root / "target"
    env = {"FERRY_STATE": str(root / "journal.sqlite3")}
    uris = ["--from", f"chroma+file://{src}", "--to", f"qdrant+edge://{target}"]
    count(outcome, ferry(["migrate", *KEEP_NAMES, *uris, "--yes", "--json"], env))
    _damage(target)  # 30 points gone behind Ferry's back
    repair = ["validate", *uris, "--full", "--repair", "--queries", "0", "--json"]
    for result in [finish(p) for p in (launch(repair, env), launch(repair, env))]:
        count(outcome, result, verdict=True)
        if result.returncode == 1:  # it found the damage: it must say it put it back
            report = json.loads(result.stdout)["collections"][0]
            if report["repair"]["verified"] != report["missing_total"]:
                outcome.wrong += 1
                outcome.notes.append(f"repair not verified: {report['repair']}")
    outcome.add(
        verify.compare(verify.source_records(src, "docs"), verify.edge_records(target, "docs"))
    )
    again = ferry(["validate", *uris, "--full", "--queries", "0", "--json"], env)
    count(outcome, again, verdict=True)
    if again.returncode != 0:
        outcome.wrong += 1
        outcome.notes.append("a validation after both repairs still found differences")
    return outcome


def backup_during_migrate(root: Path) -> Outcome:
    """`ferry backup` of an Edge collection that a `ferry migrate` is writing."""
    outcome = Outcome("ferry backup while a migration writes the same target")
    src = make_chroma(root / "src", {"docs": {"n": 3000, **L2}})
    target = root / "target"
    env = {"FERRY_STATE": str(root / "journal.sqlite3")}
    migrate = launch(
        ["migrate", *KEEP_NAMES, "--from", f"chroma+file://{src}",
         "--to", f"qdrant+edge://{target}", "--rate", "1000", "--batch-size", "100",
         "--yes", "--json"], env,
    )  # fmt: skip
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while not (target / "docs").exists() and migrate.poll() is None:  # the copy has begun
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    backup = ferry(
        ["backup", f"qdrant+edge://{target}", "--collection", "docs",
         "--to", str(root / "backups"), "--json"], env,
    )  # fmt: skip
    count(outcome, finish(migrate))
    count(outcome, backup)
    expected = verify.source_records(src, "docs")
    if backup.returncode == 0:  # whole and right for what it says it holds, never half a write
        made = Path(json.loads(backup.stdout)["path"])
        points = json.loads((made / "ferry-backup.json").read_text())["counts"]["points"]
        held = verify.edge_records(made / "data", "docs")
        kept = verify.compare(expected, held)
        outcome.duplicated += kept.duplicated + kept.extra
        outcome.wrong += kept.wrong + (len(held) != points or not 0 < points <= len(expected))
    outcome.add(verify.compare(expected, verify.edge_records(target, "docs")))
    return outcome


def kill_into_chroma_server(root: Path, chroma_uri: str, kills: int = 3) -> Outcome:
    """kill -9 at the nth batch write into a Chroma server target, then the same command."""
    outcome = Outcome("kill -9 during migrate into a Chroma server target")
    src = make_chroma(root / "src", {"docs": {"n": 1200, **L2}})
    expected = verify.source_records(src, "docs")
    server = urlsplit(chroma_uri.replace("chroma+http", "http"))
    for nth in range(1, kills + 1):
        name = unique_name("killed")
        env = {"FERRY_STATE": str(root / f"journal-{nth}.sqlite3")}
        args = ["migrate", "--from", f"chroma+file://{src}", "--to", chroma_uri,
                "--collection", f"docs={name}", "--batch-size", "100", "--yes", "--json"]  # fmt: skip
        killed = ferry(args, {**env, "FERRY_KILL_AT": f"write:{nth * 3}"})
        outcome.runs += 1
        outcome.kills += killed.returncode == -9
        count(outcome, ferry(args, env))
        copied = verify.server_records(server.hostname or "127.0.0.1", server.port or 8000, name)
        outcome.add(verify.compare(expected, list(copied.items())))
    return outcome


def many_empty_collections(root: Path, empties: int = 1000) -> Outcome:
    """A source directory of `empties` empty collections beside one with records."""
    outcome = Outcome(f"{empties:,} empty collections in one directory")
    names = {f"empty-{i:05d}": {"n": 0, **L2} for i in range(empties)}
    src = make_chroma(root / "src", {**names, "docs": {"n": 50, **L2}})
    target = root / "target"
    result = ferry(
        ["migrate", *KEEP_NAMES, "--from", f"chroma+file://{src}",
         "--to", f"qdrant+edge://{target}", "--yes", "--json"],
        {"FERRY_STATE": str(root / "journal.sqlite3")},
    )  # fmt: skip
    count(outcome, result)
    if result.returncode == 0:
        by_name = {c["name"]: c for c in json.loads(result.stdout)["collections"]}
        for name in names:  # each accounted for by name: created, or skipped saying why
            reported = by_name.get(name)
            said = reported is not None and (
                (target / reported["target_name"]).exists()
                or "unknown dimension" in (reported["skipped_reason"] or "")
            )
            if not said:
                outcome.lost += 1
                outcome.notes.append(f"{name}: {reported}")
    outcome.add(
        verify.compare(verify.source_records(src, "docs"), verify.edge_records(target, "docs"))
    )
    return outcome


def heavy_source(path: Path, records: int, document_bytes: int, dimension: int) -> Path:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("heavy", configuration={"hnsw": {"space": "l2"}})
    rng = np.random.default_rng(7)
    for start in range(0, records, 8):
        ids = [f"doc-{i}" for i in range(start, min(start + 8, records))]
        collection.add(
            ids=ids,
            embeddings=rng.normal(size=(len(ids), dimension)).astype(np.float32),
            metadatas=[{"n": i} for i in range(start, start + len(ids))],
            # Few distinct words: Chroma's full-text index stays small and quick to build.
            documents=[(f"{i} " + "lorem ipsum " * (document_bytes // 12)) for i in ids],
        )
    del client
    return path


def peak_rss_mb(argv: list[str], env: dict[str, str]) -> tuple[int, float]:
    """(exit code, peak resident MB) of one child process, as the kernel measured it."""
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss / 1024  # Linux: KiB


def large_records(root: Path, records: int = 48) -> tuple[Outcome, dict[str, float]]:
    """~1 MB documents and 3,072-d vectors in 1,000-record batches: `--batch-mb 4` against
    the bound raised out of the way, peak RSS of each `ferry migrate` (the engine process)."""
    outcome = Outcome("1 MB documents × 3,072-d vectors, batches bounded by bytes")
    src = heavy_source(root / "src", records, 1_000_000, 3072)
    env = {**os.environ, "FERRY_STATE": str(root / "journal.sqlite3")}
    expected = verify.source_records(src, "heavy")
    peaks = {}
    for label, batch_mb in (("bounded", "4"), ("unbounded", "4096")):
        target = root / f"edge-{label}"
        argv = [sys.executable, "-m", "ferry.cli", "migrate", "--from", f"chroma+file://{src}",
                "--to", f"qdrant+edge://{target}", "--collection", "heavy=heavy",
                "--batch-size", "1000", "--workers", "2", "--batch-mb", batch_mb,
                "--no-index", "--yes"]  # fmt: skip
        code, peaks[label] = peak_rss_mb(argv, env)
        outcome.runs += 1
        if code != 0:
            outcome.errors += 1
            outcome.notes.append(f"{label}: exit {code}")
            continue
        outcome.add(verify.compare(expected, verify.edge_records(target, "heavy")))
    return outcome, peaks


def tui_and_cli_resume_at_once(root: Path) -> Outcome:
    """An interrupted run resumed at the same moment by the TUI's path (core.launcher.resume,
    a detached `ferry migrate`) and by a person typing the same command."""
    from ferry.core.journal import Journal
    from ferry.core.launcher import resume
    from ferry.core.runs import RunState, RunView

    outcome = Outcome("the TUI and a CLI resuming the same run at once")
    src = make_chroma(root / "src", {"docs": {"n": 2000, **L2}})
    target = root / "target"
    state = root / "journal.sqlite3"
    env = {"FERRY_STATE": str(state)}
    args = ["migrate", *KEEP_NAMES, "--from", f"chroma+file://{src}",
            "--to", f"qdrant+edge://{target}", "--batch-size", "100", "--yes", "--json"]  # fmt: skip
    killed = ferry(args, {**env, "FERRY_KILL_AT": "write:6"})
    outcome.runs += 1
    outcome.kills += killed.returncode == -9
    journal = Journal(state)
    run_id = journal.runs.recent(1)[0].run_id
    view = RunView.load(journal, run_id)
    assert view is not None
    from_tui = resume(view, state)  # what `r` on the Monitor does
    from_cli = launch(args, env)
    count(outcome, finish(from_cli))
    try:
        code = from_tui.process.wait(COMMAND_TIMEOUT) if from_tui.process else 0
    except subprocess.TimeoutExpired:
        code = HANG
    log = from_tui.log_path.read_text(encoding="utf-8", errors="replace")
    count(outcome, subprocess.CompletedProcess(from_tui.argv, code, "", log))
    final = RunView.load(journal, run_id)
    runs = journal.runs.recent(10)
    journal.close()
    if final is None or final.state is not RunState.COMPLETED or len(runs) != 1:
        outcome.wrong += 1  # one run, finished: never a second run or a stuck one
        outcome.notes.append(f"run {final.state if final else None}, {len(runs)} run(s)")
    outcome.add(
        verify.compare(verify.source_records(src, "docs"), verify.edge_records(target, "docs"))
    )
    return outcome
