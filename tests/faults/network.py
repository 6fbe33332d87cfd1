"""A bad network between Ferry and a real `chroma run` server, as source and as target.

The fault proxy (tests/tcp_proxy.py) sits in front of the server and injects, by request
number: resets, a silent server (accepts, never answers), slow bytes, and refusals (the
listener closes for a second). Each scenario runs `ferry migrate` in a process of its own,
then — if it gave up — heals the network and runs the same command again; the result is
verified record by record with chromadb's own client (verify.py).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.faults import verify
from tests.faults.kills import Outcome, ferry
from tests.names import KEEP_NAMES
from tests.tcp_proxy import FaultProxy

RECORDS = 400
BATCH = 40
# (scenario, fault, from which request on or only these) — requests counted per direction.
FAULTS: list[tuple[str, str, dict[str, Any]]] = [
    ("resets", "reset", {"schedule": {2: "reset", 3: "reset", 4: "reset", 6: "reset"}}),
    ("silent server", "silent", {"from_request": (3, "silent")}),
    ("slow bytes", "slow", {"from_request": (1, "slow")}),
    ("refusals", "refuse", {"schedule": {3: "refuse", 7: "refuse"}}),
]
TIMEOUT = "2"  # ?timeout= seconds per request
GIVE_UP = "4"  # --give-up-after seconds


def make_server_collection(server_port: int, name: str, seed: int = 0) -> None:
    """A source collection on the server, written with chromadb's own client."""
    import chromadb
    import numpy as np

    from tests.conftest import trap_metadata

    client = chromadb.HttpClient(host="127.0.0.1", port=server_port)
    collection = client.create_collection(name, configuration={"hnsw": {"space": "l2"}})
    rng = np.random.default_rng(seed)
    collection.add(
        ids=[f"n-{i}" for i in range(RECORDS)],
        embeddings=rng.normal(size=(RECORDS, 8)).astype(np.float32),
        metadatas=[trap_metadata(i) for i in range(RECORDS)],
        documents=[f"doc {i}" for i in range(RECORDS)],
    )


def run_network(server_port: int, workdir: Path, label: str = "") -> list[Outcome]:
    """Every fault, with the server as target and as source."""
    from tests.faults.kills import build_source

    source_dir = build_source(workdir, seed=5)  # 1,200 records, collection "docs"
    expected_file = verify.source_records(source_dir, "docs")

    def one(scenario: str, setup: dict[str, Any]) -> tuple[Outcome, Outcome]:
        return _scenario(server_port, workdir, label, source_dir, expected_file, scenario, setup)

    # Two scenarios at a time: each proxy, collection and journal is its own, and most of a
    # scenario is waiting on timeouts (the suite's time, not the faults', halves).
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda fault: one(fault[0], fault[2]), FAULTS))
    as_target = Outcome("network faults, Chroma server as target")
    as_source = Outcome("network faults, Chroma server as source")
    for target_part, source_part in done:
        as_target.merge(target_part)
        as_source.merge(source_part)
    return [as_target, as_source]


def _scenario(
    server_port: int,
    workdir: Path,
    label: str,
    source_dir: Path,
    expected_file: Any,
    scenario: str,
    setup: dict[str, Any],
) -> tuple[Outcome, Outcome]:
    """One fault with the server as target, then as source: two outcomes of its own."""
    as_target = Outcome("network faults, Chroma server as target")
    as_source = Outcome("network faults, Chroma server as source")
    name = f"net-{label}{scenario.replace(' ', '-')}-{time.monotonic_ns() % 10**9}"
    # -- target ----------------------------------------------------------------------
    with FaultProxy(server_port, only=b"/upsert") as proxy:
        for key, value in setup.items():
            setattr(proxy, key, value)
        state = workdir / f"{name}-t.sqlite3"
        args = [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{source_dir}",
            "--to",
            f"chroma+http://127.0.0.1:{proxy.port}?timeout={TIMEOUT}",
            "--collection",
            f"docs={name}",  # its own name on the shared server
            "--batch-size",
            str(BATCH * 3),
            "--give-up-after",
            GIVE_UP,
            "--yes",
            "--json",
            "--state",
            str(state),
        ]
        _drive(as_target, proxy, args, scenario)
    tally = verify.compare(
        expected_file, list(verify.server_records("127.0.0.1", server_port, name).items())
    )
    as_target.add(tally)
    _drop(server_port, name)
    # -- source ----------------------------------------------------------------------
    name = name + "-src"
    make_server_collection(server_port, name)
    expected = verify.server_records("127.0.0.1", server_port, name)
    with FaultProxy(server_port, only=b"/get") as proxy:
        for key, value in setup.items():
            setattr(proxy, key, value)
        target = workdir / f"{name}-edge"
        args = [
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+http://127.0.0.1:{proxy.port}?timeout={TIMEOUT}",
            "--to",
            f"qdrant+edge://{target}",
            "--collection",
            name,
            "--batch-size",
            str(BATCH),
            "--give-up-after",
            GIVE_UP,
            "--yes",
            "--json",
            "--state",
            str(workdir / f"{name}-s.sqlite3"),
        ]
        _drive(as_source, proxy, args, scenario)
    as_source.add(verify.compare(expected, verify.edge_records(target, name)))
    _drop(server_port, name)
    return as_target, as_source


def _drive(outcome: Outcome, proxy: FaultProxy, args: list[str], scenario: str) -> None:
    """Run; if Ferry gave up, it must say so in one resumable line; heal; run again."""
    result = ferry(args)
    outcome.runs += 1
    outcome.kills += sum(proxy.injected.values())  # faults injected
    if result.returncode == -999:
        outcome.hangs += 1
        outcome.notes.append(f"{scenario}: hang")
    elif result.returncode != 0:
        outcome.errors += 1
        report = _json(result.stdout)
        errors = [c.get("error") or "" for c in report.get("collections", [])]
        message = " ".join(errors) + result.stderr
        if "Traceback" not in result.stderr and "resum" in message:
            outcome.clean_errors += 1
        else:
            outcome.notes.append(f"{scenario}: exit {result.returncode}: {message[-300:]}")
    else:
        report = _json(result.stdout)
        if scenario in {"resets", "refusals"} and report.get("retries", 0) < 1:
            outcome.notes.append(f"{scenario}: no retry counted in the final --json")
            outcome.wrong += 1
    proxy.heal()
    if result.returncode != 0:
        again = ferry(args)
        outcome.runs += 1
        if again.returncode != 0:
            outcome.errors += 1
            outcome.notes.append(f"{scenario} resume: exit {again.returncode}: {again.stderr}")


def _json(text: str) -> dict[str, Any]:
    try:
        return dict(json.loads(text))
    except ValueError:
        return {}


def _drop(server_port: int, name: str) -> None:
    import chromadb

    chromadb.HttpClient(host="127.0.0.1", port=server_port).delete_collection(name)
