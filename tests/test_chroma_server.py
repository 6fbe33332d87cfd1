"""A real `chroma run` server as the target (embedded → server) and as the source."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from ferry.cli import main
from ferry.core.connectors import open_connector
from tests.conftest import make_chroma, unique_name
from tests.names import KEEP_NAMES


async def snapshot(uri: str, name: str) -> dict[str, tuple]:
    connector = open_connector(uri)
    try:
        out: dict[str, tuple] = {}
        async for batch in connector.read(name, None, 64):
            for i, sid in enumerate(batch.ids):
                out[sid] = (batch.metadatas[i], batch.documents[i], batch.vectors[i].copy())
        return out
    finally:
        await connector.close()


def migrate_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["migrate", *KEEP_NAMES, "--yes", "--json", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_embedded_to_chroma_server_and_back_to_qdrant(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_name("srv")
    src = make_chroma(tmp_path / "src", {name: {"metric": "ip", "n": 230, "dim": 12, "seed": 7}})
    state = str(tmp_path / "j.sqlite3")
    code, report = migrate_json(
        capsys,
        "--from",
        f"chroma+file://{src}",
        "--to",
        chroma_server,
        "--collection",
        name,
        "--batch-size",
        "50",
        "--state",
        state,
    )
    assert code == 0, report
    original = asyncio.run(snapshot(f"chroma+file://{src}", name))
    on_server = asyncio.run(snapshot(chroma_server, name))
    assert original.keys() == on_server.keys()
    for sid, (meta, doc, vec) in original.items():
        assert on_server[sid][0] == meta and on_server[sid][1] == doc
        assert np.allclose(on_server[sid][2], vec, atol=1e-6)
    info = asyncio.run(open_connector(chroma_server).describe(name))
    assert info.metric is not None and info.metric.value == "ip" and info.dimension == 12

    # The server as a source, into Qdrant Edge.
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    code, report = migrate_json(
        capsys, "--from", chroma_server, "--to", target, "--collection", name, "--state", state
    )
    assert code == 0, report
    assert report["collections"][0]["records_written"] == 230
    assert asyncio.run(snapshot(target, name)).keys() == original.keys()


def test_unreachable_server_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["inventory", "chroma+http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach Chroma" in err and err.count("\n") == 1


async def test_api_reader_on_a_copy_equals_the_file_reader(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "cosine", "n": 1500, "dim": 8}})
    fast = await snapshot(f"chroma+file://{src}", "docs")
    via_api = await snapshot(f"chroma+file://{src}?api=1", "docs")
    assert fast.keys() == via_api.keys() and len(fast) == 1500
    for sid in fast:
        assert fast[sid][:2] == via_api[sid][:2]
        assert np.allclose(fast[sid][2], via_api[sid][2], atol=1e-6)


def test_pending_schema_migrations_apply_to_a_private_copy_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    src = make_chroma(tmp_path / "src", {"docs": {"n": 5}})
    with sqlite3.connect(src / "chroma.sqlite3") as db:  # pretend an older chromadb wrote it
        db.execute("DELETE FROM migrations WHERE dir = 'sysdb' AND version = 10")
    before = (src / "chroma.sqlite3").read_bytes()
    # The forged gap cannot really be migrated (the column exists): chromadb fails on the
    # private copy, and says so in one line; the source is untouched either way.
    code = main(["inventory", f"chroma+file://{src}?api=1", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot open a copy of this directory" in err and err.count("\n") == 1
    assert (src / "chroma.sqlite3").read_bytes() == before
    code = main(["inventory", f"chroma+file://{src}", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["schema"]["pending"] == [
        ["sysdb", 10, "00010-collection-schema.sqlite.sql"]
    ]


def test_delete_extra_on_a_chroma_server_target_deletes_what_an_app_added(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import chromadb

    from ferry.core.validate import ValidationOptions, validate

    name = unique_name("xtra")
    src = make_chroma(tmp_path / "src", {name: {"metric": "cosine", "n": 120, "dim": 8, "seed": 3}})
    source_uri = f"chroma+file://{src}"
    code, report = migrate_json(
        capsys,
        "--from",
        source_uri,
        "--to",
        chroma_server,
        "--collection",
        name,
        "--state",
        str(tmp_path / "j.sqlite3"),
    )
    assert code == 0, report
    host, port = chroma_server.removeprefix("chroma+http://").split(":")
    app = chromadb.HttpClient(host=host, port=int(port)).get_collection(name)
    app.add(ids=[f"app-{i}" for i in range(40)], embeddings=np.ones((40, 8), np.float32))

    options = ValidationOptions(full=True, delete_extra=True, queries=0, batch_size=32)
    result = asyncio.run(validate(source_uri, chroma_server, [name], options)).collections[0]
    assert result.extra.total == 40
    assert result.repair is not None and (result.repair.deleted, result.repair.delete_failed) == (
        40,
        0,
    )
    assert app.count() == 120
    again = asyncio.run(validate(source_uri, chroma_server, [name], ValidationOptions(full=True)))
    assert again.ok, again.to_json()


def test_repair_and_append_replace_records_whole_on_a_chroma_server_target(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Chroma's upsert merges metadata: a stale key (or metadata on a record whose source
    has none) must not survive `validate --repair` nor `--mode append`; the repair counts
    only what it read back equal. Checked with chromadb's own client, not Ferry's reader."""
    import chromadb

    name = unique_name("whole")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 30, "dim": 8, "seed": 4}})
    source_uri, state = f"chroma+file://{src}", str(tmp_path / "j.sqlite3")
    base = ["--from", source_uri, "--to", chroma_server, "--collection", name, "--state", state]
    code, report = migrate_json(capsys, *base)
    assert code == 0, report
    host, port = chroma_server.removeprefix("chroma+http://").split(":")
    app = chromadb.HttpClient(host=host, port=int(port)).get_collection(name)
    ours = chromadb.PersistentClient(str(src)).get_collection(name)
    truth = ours.get(ids=["rec-1", "rec-2"], include=["metadatas"])["metadatas"]

    def spoil() -> None:  # an app (or an older run) left keys the source does not have
        app.update(ids=["rec-1", "rec-2"], metadatas=[{"stale": 1}, {"stale": 2}])
        assert app.get(ids=["rec-1"], include=["metadatas"])["metadatas"][0]["stale"] == 1

    def clean() -> bool:
        got = app.get(ids=["rec-1", "rec-2"], include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"], strict=True)) == dict(
            zip(["rec-1", "rec-2"], truth, strict=True)
        )

    spoil()
    argv = ["validate", "--from", source_uri, "--to", chroma_server, "--collection", name]
    code = main([*argv, "--full", "--repair", "--state", state, "--queries", "0"])
    out = capsys.readouterr().out
    assert clean(), app.get(ids=["rec-1", "rec-2"], include=["metadatas"])
    assert "2 rewritten and verified" in out and "NOT repaired" not in out
    assert main([*argv, "--full", "--state", state, "--queries", "0"]) == 0
    capsys.readouterr()

    spoil()
    code, report = migrate_json(capsys, *base, "--mode", "append", "--restart")
    assert code == 0, report
    assert clean()
