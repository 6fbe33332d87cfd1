"""Cutover and rollback against real engines: Qdrant Edge (Ferry's alias file), qdrant-client
local mode (real aliases) and a Qdrant server (aliases + snapshots): QDRANT_URL, else the Qdrant
test server (tests/qdrant_server).

Collections are made with the connectors the migration uses; the CLI is driven through
`ferry.cli.main`, the way a user runs it, and the journal is read back to see what was recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from ferry import cli
from ferry.core.connectors import open_connector
from ferry.core.connectors.base import WriteMode
from ferry.core.cutover import alias_overview, execute, open_alias_backend, plan_cutover
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.router import EdgeStore, read_state

DIM = 8


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_collections(uri: str, names: dict[str, int]) -> None:
    """Create each collection with `n` records whose ids say which collection holds them."""

    async def build() -> None:
        connector = open_connector(uri)
        try:
            for name, n in names.items():
                await connector.prepare(
                    CollectionInfo(name, n, DIM, Metric.COSINE), WriteMode.CREATE
                )
                rng = np.random.default_rng(len(name))
                vectors = rng.normal(size=(n, DIM)).astype(np.float32)
                ids = [f"{name}-{i}" for i in range(n)]
                await connector.write(
                    name, Batch(ids, vectors, [{"i": i} for i in range(n)], [None] * n)
                )
        finally:
            await connector.close()

    asyncio.run(build())


def validate(journal: Journal, target: str, collection: str, ok: bool = True) -> int:
    return journal.validations.record(
        "chroma+file:///src",
        target,
        collection.split("__")[0],
        collection,
        ok,
        {"count_match": ok, "recall_at_10": 1.0 if ok else 0.4},
    )


def ferry(*argv: str) -> int:
    return cli.main(list(argv))


@pytest.fixture
def edge(tmp_path: Path) -> tuple[str, Path]:
    root = tmp_path / "edge"
    make_collections(f"qdrant+edge://{root}", {"docs__a": 5, "docs__b": 7})
    return f"qdrant+edge://{root}", tmp_path / "journal.sqlite3"


def test_gate_refuses_without_a_passing_validation(edge, capsys) -> None:
    target, state = edge
    code = ferry(
        "cutover",
        "--to",
        target,
        "--collection",
        "docs__b",
        "--alias",
        "docs",
        "--yes",
        "--state",
        str(state),
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "ferry validate" in err and "no validation" in err
    assert len(err.strip().splitlines()) == 1
    validate(Journal(state), target, "docs__b", ok=False)
    code = ferry(
        "cutover",
        "--to",
        target,
        "--collection",
        "docs__b",
        "--alias",
        "docs",
        "--yes",
        "--state",
        str(state),
    )
    assert code == 2
    assert "failed" in capsys.readouterr().err
    assert Journal(state).cutovers.history(target) == []
    assert not (Path(target.removeprefix("qdrant+edge://")) / ".ferry-aliases.json").exists()


def test_force_needs_a_reason_and_is_journaled(edge, capsys) -> None:
    target, state = edge
    validate(Journal(state), target, "docs__b", ok=False)
    code = ferry(
        "cutover",
        "--to",
        target,
        "--collection",
        "docs__b",
        "--alias",
        "docs",
        "--force",
        "--yes",
        "--state",
        str(state),
    )
    assert code == 2
    assert "reason" in capsys.readouterr().err
    code = ferry(
        "cutover",
        "--to",
        target,
        "--collection",
        "docs__b",
        "--alias",
        "docs",
        "--force",
        "--reason",
        "recall dip is the known HNSW tail",
        "--yes",
        "--json",
        "--state",
        str(state),
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["forced"] is True and out["validation"]["ok"] is False
    row = Journal(state).cutovers.history(target, "docs")[0]
    assert row.forced == 1 and row.reason == "recall dip is the known HNSW tail"
    assert row.validation["ok"] is False


def test_edge_cutover_and_rollback_move_the_alias_file(edge, capsys) -> None:
    target, state = edge
    root = Path(target.removeprefix("qdrant+edge://"))
    journal = Journal(state)
    validate(journal, target, "docs__a")
    validate(journal, target, "docs__b")
    assert (
        ferry(
            "cutover",
            "--to",
            target,
            "--collection",
            "docs__a",
            "--alias",
            "docs",
            "--yes",
            "--state",
            str(state),
        )
        == 0
    )
    assert "done: alias docs → docs__a" in capsys.readouterr().out
    store = EdgeStore(root, "docs")
    try:
        assert store.collection == "docs__a" and store.count() == 5

        assert (
            ferry(
                "cutover",
                "--to",
                target,
                "--collection",
                "docs__b",
                "--alias",
                "docs",
                "--yes",
                "--json",
                "--state",
                str(state),
            )
            == 0
        )
        out = json.loads(capsys.readouterr().out)
        assert (out["from"], out["to"]) == ("docs__a", "docs__b")
        backup = Path(out["snapshot"]["path"])
        assert backup.parent == root / ".ferry-snapshots"
        # A verified backup (core/backup_store.py): the shard under data/, and a manifest
        # whose sha256 the journal's cutover record names.
        assert (backup / "data" / "docs__b" / "edge_config.json").is_file()
        assert out["snapshot"]["manifest_sha256"] == sha256_of(backup / "ferry-backup.json")
        # The app's store follows the alias at its next call, without being rebuilt.
        assert store.collection == "docs__b" and store.count() == 7
        assert store.get(["docs__b-3"]).ids == ["docs__b-3"]

        assert (
            ferry(
                "rollback",
                "--to",
                target,
                "--alias",
                "docs",
                "--yes",
                "--json",
                "--state",
                str(state),
            )
            == 0
        )
        out = json.loads(capsys.readouterr().out)
        assert (out["from"], out["to"]) == ("docs__b", "docs__a")
        assert store.collection == "docs__a" and store.count() == 5
    finally:
        store.close()
    # Nothing was deleted: both physical collections are still there.
    assert (root / "docs__a" / "edge_config.json").is_file()
    assert (root / "docs__b" / "edge_config.json").is_file()
    rows = journal.cutovers.history(target, "docs")
    assert [r.action for r in rows] == ["rollback", "cutover", "cutover"]
    latest_cutover = rows[1]
    assert (latest_cutover.from_collection, latest_cutover.to_collection) == (
        "docs__a",
        "docs__b",
    )
    assert latest_cutover.user and latest_cutover.host == os.uname().nodename
    assert latest_cutover.validation["ok"] is True
    detail = latest_cutover.detail
    assert detail["snapshot"]["path"] == str(backup)
    assert detail["backup"]["path"] == str(backup)
    assert detail["backup"]["manifest_sha256"] == sha256_of(backup / "ferry-backup.json")
    # A second rollback has nothing to go back to: the alias is already there.
    assert ferry("rollback", "--to", target, "--alias", "docs", "--yes", "--state", str(state)) == 2
    assert "already points at" in capsys.readouterr().err


def test_local_mode_uses_real_qdrant_aliases(tmp_path: Path, capsys) -> None:
    root = tmp_path / "qlocal"
    target = f"qdrant+file://{root}"
    state = tmp_path / "j.sqlite3"
    make_collections(target, {"docs__a": 3, "docs__b": 4})
    journal = Journal(state)
    validate(journal, target, "docs__a")
    validate(journal, target, "docs__b")
    for physical in ("docs__a", "docs__b"):
        assert (
            ferry(
                "cutover",
                "--to",
                target,
                "--collection",
                physical,
                "--alias",
                "docs",
                "--yes",
                "--json",
                "--state",
                str(state),
            )
            == 0
        )
    assert '"to": "docs__b"' in capsys.readouterr().out

    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(root))
    try:
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases == {"docs": "docs__b"}
        assert client.count("docs").count == 4  # the app's name reads the new collection
    finally:
        client.close()
    row = journal.cutovers.history(target, "docs")[0]
    backup = row.detail["backup"]  # local mode: a verified copy of the collection
    assert Path(backup["path"]).parent == root / ".ferry-snapshots"
    assert backup["manifest_sha256"] == sha256_of(Path(backup["path"]) / "ferry-backup.json")
    assert ferry("rollback", "--to", target, "--alias", "docs", "--yes", "--state", str(state)) == 0
    client = QdrantClient(path=str(root))
    try:
        assert client.count("docs").count == 3
        assert {c.name for c in client.get_collections().collections} == {"docs__a", "docs__b"}
    finally:
        client.close()


def test_without_yes_and_without_a_terminal_nothing_changes(edge, capsys) -> None:
    target, state = edge
    validate(Journal(state), target, "docs__a")
    code = ferry(
        "cutover",
        "--to",
        target,
        "--collection",
        "docs__a",
        "--alias",
        "docs",
        "--state",
        str(state),
    )
    assert code == 2
    assert "--yes" in capsys.readouterr().err
    assert Journal(state).cutovers.history(target) == []


def test_rollback_without_a_cutover_is_refused(edge, capsys) -> None:
    target, state = edge
    assert ferry("rollback", "--to", target, "--alias", "docs", "--yes", "--state", str(state)) == 2
    assert "no cutover" in capsys.readouterr().err


def test_alias_that_is_a_collection_and_chroma_targets_are_refused(edge, capsys) -> None:
    target, state = edge
    validate(Journal(state), target, "docs__a")
    assert (
        ferry(
            "cutover",
            "--to",
            target,
            "--collection",
            "docs__a",
            "--alias",
            "docs__b",
            "--yes",
            "--state",
            str(state),
        )
        == 2
    )
    assert "is a collection" in capsys.readouterr().err
    assert (
        ferry(
            "cutover",
            "--to",
            "chroma+http://localhost:1",
            "--collection",
            "x",
            "--alias",
            "y",
            "--yes",
            "--state",
            str(state),
        )
        == 2
    )
    assert "ferry router set" in capsys.readouterr().err


def test_cutover_moves_the_router_mode_too(edge, tmp_path: Path, capsys) -> None:
    target, state = edge
    router_state = tmp_path / "router.json"
    validate(Journal(state), target, "docs__a")
    assert (
        ferry(
            "cutover",
            "--to",
            target,
            "--collection",
            "docs__a",
            "--alias",
            "docs",
            "--router-state",
            str(router_state),
            "--yes",
            "--state",
            str(state),
        )
        == 0
    )
    assert read_state(router_state)["mode"] == "flipped"
    assert read_state(router_state)["alias"] == "docs"
    validate(Journal(state), target, "docs__b")
    assert (
        ferry(
            "cutover",
            "--to",
            target,
            "--collection",
            "docs__b",
            "--alias",
            "docs",
            "--yes",
            "--state",
            str(state),
        )
        == 0
    )
    assert (
        ferry(
            "rollback",
            "--to",
            target,
            "--alias",
            "docs",
            "--router-state",
            str(router_state),
            "--yes",
            "--state",
            str(state),
        )
        == 0
    )
    assert read_state(router_state)["mode"] == "dual-write"


async def test_execute_refuses_when_the_alias_moved_after_the_plan(edge) -> None:
    target, state = edge
    journal = Journal(state)
    validate(journal, target, "docs__a")
    validate(journal, target, "docs__b")
    async with open_alias_backend(target) as backend:
        plan = await plan_cutover(backend, journal, "docs__b", "docs")
        await backend.switch("docs", "docs__a")  # someone else, meanwhile
        with pytest.raises(FerryError, match="moved since the plan"):
            await execute(backend, journal, plan)
        assert await backend.current("docs") == "docs__a"
    assert journal.cutovers.history(target) == []


async def test_overview_shows_alias_candidate_and_validation(edge) -> None:
    target, state = edge
    journal = Journal(state)
    validate(journal, target, "docs__a")
    async with open_alias_backend(target) as backend:
        await execute(backend, journal, await plan_cutover(backend, journal, "docs__a", "docs"))
    validate(journal, target, "docs__b")
    views = await alias_overview(target, journal)
    assert [v.alias for v in views] == ["docs"]
    view = views[0]
    assert (view.current, view.candidate) == ("docs__a", "docs__b")
    assert view.validation is not None and view.validation["ok"] is True
    assert view.rollback_to is None  # the alias did not exist before its first cutover
    assert view.can_remove  # so rolling back removes it


@pytest.mark.server
def test_server_alias_swap_with_snapshot(tmp_path: Path, capsys, qdrant_url: str) -> None:
    """A real alias on a server (QDRANT_URL, else the Qdrant test server) moves and back."""
    from tests.test_qdrant_server import server_uri

    target = server_uri(qdrant_url)
    suffix = uuid.uuid4().hex[:8]
    a, b, alias = f"ft_{suffix}__a", f"ft_{suffix}__b", f"ft_{suffix}"
    make_collections(target, {a: 3, b: 4})
    state = tmp_path / "j.sqlite3"
    journal = Journal(state)
    validate(journal, target, a)
    validate(journal, target, b)
    from qdrant_client import QdrantClient

    client = QdrantClient(
        url=qdrant_url, api_key=os.environ.get("QDRANT_API_KEY"), check_compatibility=False
    )
    try:
        for physical in (a, b):
            assert (
                ferry(
                    "cutover",
                    "--to",
                    target,
                    "--collection",
                    physical,
                    "--alias",
                    alias,
                    "--yes",
                    "--json",
                    "--state",
                    str(state),
                )
                == 0
            )
        assert client.count(alias).count == 4
        snapshot = journal.cutovers.history(target, alias)[0].detail["snapshot"]
        assert snapshot["kind"] == "qdrant-snapshot" and snapshot["name"]
        assert snapshot["name"] in {s.name for s in client.list_snapshots(b)}
        assert (
            ferry("rollback", "--to", target, "--alias", alias, "--yes", "--state", str(state)) == 0
        )
        assert client.count(alias).count == 3
    finally:
        for name in (a, b):
            client.delete_collection(name)
        client.close()


async def test_edge_switch_checks_the_expected_alias_under_its_lock(edge) -> None:
    target, _state = edge
    async with open_alias_backend(target) as backend:
        await backend.switch("docs", "docs__a", expected=None)
        with pytest.raises(FerryError, match="moved meanwhile"):
            await backend.switch("docs", "docs__b", expected=None)
        assert await backend.current("docs") == "docs__a"
        await backend.switch("docs", "docs__b", expected="docs__a")
        assert await backend.current("docs") == "docs__b"
