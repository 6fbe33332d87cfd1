"""A bad Qdrant server: the Qdrant test server (tests/qdrant_server) as target, with faults.

The emulator injects them per endpoint: answers cut short, answers slower than the request
timeout, 429 with `Retry-After`, bursts of 503 (during the copy and while the index builds),
and a server that throttles past the give-up time; and a kill -9 in the index phase (HNSW
still deferred with m=0). Each scenario runs `ferry migrate` in a
process of its own; if it gave up, it must say so in one resumable line, and the same
command, with the faults healed, finishes. The result is read back with qdrant-client alone
(no Ferry code) and compared record by record with the source read by chromadb.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.faults import verify
from tests.faults.kills import Outcome, ferry
from tests.faults.network import _json
from tests.names import KEEP_NAMES

TIMEOUT = "2"  # ?timeout= seconds per request
GIVE_UP = "6"  # --give-up-after seconds
# (scenario, fault rules with {name} for the target collection, resumed after a give-up?)
POINTS = "/collections/{name}/points"
SCENARIOS: list[tuple[str, list[dict[str, Any]]]] = [
    (  # every transient fault in one run, in this order on the upserts (first rule first)
        "cut and slow answers, 429 with Retry-After, 503 copying and indexing",
        [
            {"method": "PUT", "path": POINTS, "cut": True, "times": 1},
            {"method": "PUT", "path": POINTS, "delay": 3.0, "times": 1},  # > ?timeout=2
            {"method": "PUT", "path": POINTS, "status": 429, "retry_after": "1", "times": 2},
            {"method": "PUT", "path": POINTS, "status": 503, "times": 2},
            {"method": "GET", "path": "/collections/{name}", "status": 503, "times": 3},
        ],
    ),
    (
        "throttled past the give-up time",
        [{"method": "PUT", "path": POINTS, "status": 429, "retry_after": "2"}],
    ),
]


def server_records(url: str, collection: str) -> list[tuple[str, verify.Record]]:
    """(source id, record) per point, read with qdrant-client alone (flat layout)."""
    from qdrant_client import QdrantClient

    client = QdrantClient(url=url, check_compatibility=False)
    out: list[tuple[str, verify.Record]] = []
    try:
        offset = None
        while True:
            points, offset = client.scroll(
                collection, limit=500, offset=offset, with_payload=True, with_vectors=True
            )
            for p in points:
                payload = dict(p.payload or {})
                source_id = str(payload.pop("source_id", p.id))
                document = payload.pop("document", None)
                vector = np.asarray(p.vector, dtype=np.float32)
                out.append((source_id, (vector, payload or None, document)))
            if offset is None:
                return out
    finally:
        client.close()


def search_ready(url: str, collection: str) -> bool:
    from qdrant_client import QdrantClient

    client = QdrantClient(url=url, check_compatibility=False)
    try:
        info = client.get_collection(collection)
        return info.status.value == "green" and bool(info.config.hnsw_config.m)
    finally:
        client.close()


def run_qdrant_server(control: Any, workdir: Path) -> Outcome:
    """Every scenario against the emulator behind `control` (tests.qdrant_server)."""
    from tests.faults.kills import build_source

    source_dir = build_source(workdir, seed=7)  # 1,200 records, collection "docs"
    expected = verify.source_records(source_dir, "docs")
    outcome = Outcome("network faults, Qdrant server as target (test server)")
    for scenario, rules in SCENARIOS:
        name = f"qnet-{scenario.split()[0]}-{time.monotonic_ns() % 10**9}"
        control.faults(*[{**r, "path": r["path"].format(name=name)} for r in rules])
        args = [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{source_dir}",
            "--to",
            f"qdrant+http://127.0.0.1:{control.port}?timeout={TIMEOUT}",
            "--collection",
            f"docs={name}",
            "--batch-size",
            "200",
            "--give-up-after",
            GIVE_UP,
            "--yes",
            "--json",
            "--state",
            str(workdir / f"{name}.sqlite3"),
        ]
        result = ferry(args)
        outcome.runs += 1
        injected = sum(control.fault_hits())
        outcome.kills += injected
        if not injected:
            outcome.notes.append(f"{scenario}: no fault was injected")
            outcome.wrong += 1
        if result.returncode == -999:
            outcome.hangs += 1
            outcome.notes.append(f"{scenario}: hang")
        elif result.returncode != 0:
            outcome.errors += 1
            report = _json(result.stdout)
            message = " ".join(c.get("error") or "" for c in report.get("collections", []))
            message += result.stderr
            if "Traceback" not in result.stderr and "resum" in message:
                outcome.clean_errors += 1
            else:
                outcome.notes.append(f"{scenario}: exit {result.returncode}: {message[-300:]}")
            if "throttled" in scenario and "throttled" not in message:
                outcome.notes.append(f"{scenario}: not reported as throttled: {message[-300:]}")
                outcome.wrong += 1
            control.faults()  # healed: the same command finishes the run
            again = ferry(args)
            outcome.runs += 1
            if again.returncode != 0:
                outcome.errors += 1
                outcome.notes.append(f"{scenario} resume: exit {again.returncode}: {again.stderr}")
        elif _json(result.stdout).get("retries", 0) < 1:
            outcome.notes.append(f"{scenario}: no retry counted in the final --json")
            outcome.wrong += 1
        control.faults()
        outcome.add(verify.compare(expected, server_records(control.url, name)))
        if not search_ready(control.url, name):
            outcome.notes.append(f"{scenario}: not search-ready after the final run")
            outcome.wrong += 1
    _killed_while_indexing(control, workdir, source_dir, expected, outcome)
    return outcome


def _killed_while_indexing(
    control: Any, workdir: Path, source_dir: Path, expected: Any, outcome: Outcome
) -> None:
    """kill -9 once the copy is durable and the collection is left with HNSW deferred
    (m=0): the same command must take it back into the index phase and finish search-ready."""
    name = f"qkill-index-{time.monotonic_ns() % 10**9}"
    args = [
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{source_dir}",
        "--to",
        f"qdrant+http://127.0.0.1:{control.port}",
        "--collection",
        f"docs={name}",
        "--yes",
        "--json",
        "--state",
        str(workdir / f"{name}.sqlite3"),
    ]
    killed = ferry(args, {"FERRY_KILL_AT": "index:1"})
    outcome.runs += 1
    if killed.returncode != -9:
        outcome.notes.append(f"kill at index: exit {killed.returncode}, not killed")
        outcome.wrong += 1
    else:
        outcome.kills += 1
    again = ferry(args)
    outcome.runs += 1
    if again.returncode != 0:
        outcome.errors += 1
        outcome.notes.append(f"resume after a kill at index: exit {again.returncode}")
    outcome.add(verify.compare(expected, server_records(control.url, name)))
    if not search_ready(control.url, name):
        outcome.notes.append("killed while indexing: not search-ready after the resume")
        outcome.wrong += 1
