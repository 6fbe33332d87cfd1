"""A seeded schedule of `kill -9`s during migrate, validate --repair and cutover.

Each kill is exact (core/faultpoints.py: `FERRY_KILL_AT=point:N` makes the process SIGKILL
itself the Nth time it passes `point`), so a seed reproduces the schedule. A *chain* runs the
same command again and again, each time killed at the next scheduled point, then once
without a kill; the target is then verified record by record (verify.py) and the source's
checksum compared. Every command has a time limit: exceeding it counts as a hang.

`FERRY_FAULT_KILLS` sets how many kills (default 20, what CI runs), `FERRY_FAULT_SEED` the
seed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults import verify
from tests.names import KEEP_NAMES

COMMAND_TIMEOUT = 180  # seconds: a command that takes longer is a hang
RECORDS = 900
BATCH = 100
MIGRATE_POINTS = ("read", "write", "checkpoint", "committed", "index")
KILLS_PER_CHAIN = 6


@dataclass
class Outcome:
    """Totals over a schedule: what the reliability table shows."""

    scenario: str
    kills: int = 0
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    hangs: int = 0
    clean_errors: int = 0
    errors: int = 0
    source_changed: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, tally: verify.Tally) -> None:
        self.lost += tally.lost
        self.duplicated += tally.duplicated + tally.extra
        self.wrong += tally.wrong

    def merge(self, other: Outcome) -> None:
        """Add another part of the same scenario (run apart, e.g. in another thread)."""
        for name in (
            "kills",
            "runs",
            "lost",
            "duplicated",
            "wrong",
            "hangs",
            "clean_errors",
            "errors",
            "source_changed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.notes += other.notes

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.duplicated or self.wrong or self.hangs or self.source_changed)
            and self.clean_errors == self.errors
        )


def ferry(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ferry.cli ARGS` in a fresh process (so a SIGKILL kills only it)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("FERRY_KILL_AT", None)
    full_env.update(env or {})
    try:
        return subprocess.run(
            [sys.executable, "-m", "ferry.cli", *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=full_env,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(args, -999, str(exc.stdout or ""), "hang")


def build_source(root: Path, seed: int) -> Path:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    from tests.conftest import trap_metadata

    path = root / "source"
    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("docs", configuration={"hnsw": {"space": "l2"}})
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(RECORDS, 16)).astype(np.float32)
    ids = [f"doc-{i}" if i % 3 else str(i) for i in range(RECORDS)]  # kept ints and uuid5 ids
    for start in range(0, RECORDS, 500):
        end = min(start + 500, RECORDS)
        collection.add(
            ids=ids[start:end],
            embeddings=vectors[start:end],
            metadatas=[trap_metadata(i) for i in range(start, end)],
            documents=[f"document {i}" for i in range(start, end)],
        )
    del client
    return path


def _killed(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == -signal.SIGKILL


def _clean_error(result: subprocess.CompletedProcess[str]) -> bool:
    """A failure is clean when stderr ends in one `ferry: error:` line and no traceback."""
    return "Traceback" not in result.stderr and "ferry: error:" in result.stderr


def run_schedule(kills: int, seed: int, workdir: Path | None = None) -> list[Outcome]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="ferry-kills-") as tmp:
        root = Path(workdir or tmp)
        source = build_source(root, seed)
        expected = verify.source_records(source, "docs")
        checksum = verify.tree_checksum(source)
        outcomes = [
            Outcome("kill -9 during migrate"),
            Outcome("kill -9 during validate --repair"),
            Outcome("kill -9 during cutover"),
        ]
        migrate, repair, cut = outcomes
        chain = 0
        done = 0
        while done < kills and chain < kills * 2:  # a chain always kills at least once or twice
            chain += 1
            target = root / f"target-{chain}"
            state = root / f"journal-{chain}.sqlite3"
            env = {"FERRY_STATE": str(state), "XDG_STATE_HOME": str(root / "xdg")}
            base = [
                "migrate",
                *KEEP_NAMES,
                "--from",
                f"chroma+file://{source}",
                "--to",
                f"qdrant+edge://{target}",
                "--batch-size",
                str(BATCH),
                "--yes",
                "--json",
            ]
            for _ in range(min(KILLS_PER_CHAIN, kills - done)):
                point = rng.choice(MIGRATE_POINTS)
                # Checkpoints are spaced in time (0.5 s): a small run passes them a few times.
                # One collection: the index phase starts once per run.
                most = {"read": RECORDS // BATCH, "write": RECORDS // BATCH, "index": 1}.get(
                    point, 2
                )
                nth = rng.randint(1, most)
                result = ferry(base, {**env, "FERRY_KILL_AT": f"{point}:{nth}"})
                migrate.runs += 1
                migrate.kills += _killed(result)
                done += _killed(result)
                _note_failure(migrate, result, f"{point}:{nth}")
            final = ferry(base, env)
            migrate.runs += 1
            _note_failure(migrate, final, "resume")
            migrate.add(verify.compare(expected, verify.edge_records(target, "docs")))
            _check_search_ready(migrate, state, target)
            if done < kills:  # a repair killed mid-way, then repaired again
                _damage(target)
                validate = [
                    "validate",
                    "--from",
                    f"chroma+file://{source}",
                    "--to",
                    f"qdrant+edge://{target}",
                    "--full",
                    "--repair",
                    "--queries",
                    "0",
                    "--json",
                ]
                result = ferry(validate, {**env, "FERRY_KILL_AT": "repair:1"})
                repair.runs += 1
                repair.kills += _killed(result)
                done += _killed(result)
                again = ferry(validate, env)
                repair.runs += 1
                _note_failure(repair, again, "repair again")
                repair.add(verify.compare(expected, verify.edge_records(target, "docs")))
            if done < kills:  # a cutover killed between its steps, then run again
                point = rng.choice(("cutover-snapshot", "cutover-switch"))
                cutover = [
                    "cutover",
                    "--to",
                    f"qdrant+edge://{target}",
                    "--collection",
                    "docs",
                    "--alias",
                    "live",
                    "--yes",
                    "--json",
                ]
                result = ferry(cutover, {**env, "FERRY_KILL_AT": f"{point}:1"})
                cut.runs += 1
                cut.kills += _killed(result)
                done += _killed(result)
                again = ferry(cutover, env)
                cut.runs += 1
                _note_failure(cut, again, "cutover again")
                aliases = json.loads((target / ".ferry-aliases.json").read_text())
                journaled = _journaled_alias(state, "live")
                if aliases.get("aliases", {}).get("live") != "docs" or journaled != "docs":
                    cut.wrong += 1
                    cut.notes.append(f"alias file {aliases}, journal says {journaled!r}")
                cut.add(verify.compare(expected, verify.edge_records(target, "docs")))
        if verify.tree_checksum(source) != checksum:
            for outcome in outcomes:
                outcome.source_changed += 1
        return outcomes


def _note_failure(outcome: Outcome, result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode == -999:
        outcome.hangs += 1
        outcome.notes.append(f"{what}: hang")
    elif result.returncode not in (0, -signal.SIGKILL):
        outcome.errors += 1
        outcome.clean_errors += _clean_error(result)
        outcome.notes.append(f"{what}: exit {result.returncode}: {result.stderr.strip()[-300:]}")


def _check_search_ready(outcome: Outcome, state: Path, target: Path) -> None:
    """After the final run: `completed` and search-ready in the journal, and the shard's
    vectors all indexed (read with qdrant_edge): a run killed while indexing must resume
    into the index phase, never skip it. A failure counts as *wrong*."""
    import sqlite3

    with sqlite3.connect(state) as db:
        row = db.execute(
            "SELECT c.status, c.search_ready FROM run_collections c JOIN runs r USING (run_id) "
            "WHERE c.name = 'docs' ORDER BY r.created_at DESC LIMIT 1"
        ).fetchone()
    points, indexed = verify.edge_index_counts(target, "docs")
    if row is None or row[0] != "completed" or not row[1] or indexed < points:
        outcome.wrong += 1
        outcome.notes.append(f"after the final run: journal {row}, {indexed} of {points} indexed")


def _journaled_alias(state: Path, alias: str) -> str | None:
    """Where the journal's last cutover record says the alias points (sqlite3 directly)."""
    import sqlite3

    with sqlite3.connect(state) as db:
        row = db.execute(
            "SELECT to_collection FROM cutovers WHERE alias = ? ORDER BY id DESC LIMIT 1",
            (alias,),
        ).fetchone()
    return row[0] if row else None


def _damage(target: Path) -> None:
    """Delete a few points behind Ferry's back (what repair must put back)."""
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(target / "docs"))
    try:
        found, _ = shard.scroll(qe.ScrollRequest(limit=30, with_payload=False, with_vector=False))
        shard.update(qe.UpdateOperation.delete_points([p.id for p in found]))
        shard.flush()
    finally:
        shard.close()


def main() -> None:
    kills = int(os.environ.get("FERRY_FAULT_KILLS", "20"))
    seed = int(os.environ.get("FERRY_FAULT_SEED", "13"))
    for outcome in run_schedule(kills, seed):
        print(json.dumps(outcome.__dict__))


if __name__ == "__main__":
    main()
