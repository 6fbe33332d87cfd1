"""End to end through the engine: every record exactly once, exact types, all metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.cli import main
from ferry.core.connectors import open_connector
from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.runner import migrate
from tests.conftest import TRAP_IDS, dir_checksum, make_chroma, trap_metadata
from tests.names import KEEP_NAMES

TARGETS = ["edge", "local"]


def target_uri(kind: str, tmp_path: Path) -> str:
    return {
        "edge": f"qdrant+edge://{tmp_path / 'edge'}",
        "local": f"qdrant+file://{tmp_path / 'qlocal'}",
    }[kind]


async def read_all(uri: str, name: str) -> dict[str, tuple[Any, Any, np.ndarray]]:
    connector = open_connector(uri)
    records: dict[str, tuple[Any, Any, np.ndarray]] = {}
    try:
        async for batch in connector.read(name, None, 97):
            for i, sid in enumerate(batch.ids):
                assert sid not in records, f"duplicate {sid!r}"
                records[sid] = (batch.metadatas[i], batch.documents[i], batch.vectors[i])
    finally:
        await connector.close()
    return records


def assert_same_types(a: Any, b: Any) -> None:
    assert a == b
    if isinstance(a, dict):
        for key in a:
            assert_same_types(a[key], b[key])
    elif isinstance(a, list):
        for x, y in zip(a, b, strict=True):
            assert_same_types(x, y)
    else:
        assert type(a) is type(b), (a, b)


@pytest.mark.parametrize("target_kind", TARGETS)
async def test_every_metric_and_every_trap_survives(tmp_path: Path, target_kind: str) -> None:
    n = len(TRAP_IDS) + 40
    ids = TRAP_IDS + [f"id-{i}" for i in range(40)]
    src = make_chroma(
        tmp_path / "src",
        {
            "cos-col": {"metric": "cosine", "n": n, "ids": ids, "dim": 6, "seed": 1},
            "l2-col": {"metric": "l2", "n": 50, "dim": 5, "seed": 2},
            "ip-col": {"metric": "ip", "n": 50, "dim": 4, "seed": 3},
            "empty-col": {"metric": "l2", "n": 0},
        },
    )
    before = dir_checksum(src)
    source_uri = f"chroma+file://{src}"
    target = target_uri(target_kind, tmp_path)
    journal = Journal(tmp_path / "j.sqlite3")
    outcome = await migrate(source_uri, target, [], MigrationOptions(batch_size=16), journal)
    assert outcome.status == "completed", outcome.to_json()
    by_name = {c.name: c for c in outcome.collections}
    assert by_name["empty-col"].status == "completed"  # done, nothing to copy
    reason = by_name["empty-col"].skipped_reason or ""
    assert reason.startswith("empty collection with unknown dimension: not created")
    assert by_name["cos-col"].records_written == n

    copied = await read_all(target, "cos-col")
    assert sorted(copied) == sorted(ids)
    original = await read_all(source_uri, "cos-col")
    for sid, (meta, doc, vector) in original.items():
        got_meta, got_doc, got_vector = copied[sid]
        assert_same_types(meta, got_meta)
        assert got_doc == doc
        # Qdrant normalises cosine vectors on store (local mode keeps them): compare directions
        unit = vector / np.linalg.norm(vector)
        assert np.allclose(got_vector / np.linalg.norm(got_vector), unit, atol=1e-5)
    for name, metric in (("l2-col", "Euclid"), ("ip-col", "Dot")):
        target_records = await read_all(target, name)
        source_records = await read_all(source_uri, name)
        assert target_records.keys() == source_records.keys()
        for sid in source_records:
            assert np.allclose(target_records[sid][2], source_records[sid][2], atol=1e-6)
        info = await open_connector(target).describe(name)
        assert (
            info.metric is not None and info.metric.value == {"Euclid": "l2", "Dot": "ip"}[metric]
        )
    assert dir_checksum(src) == before, "the source directory changed"


async def test_metadata_types_are_exact_in_the_target(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"typed": {"metric": "l2", "n": 10, "dim": 3}})
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    outcome = await migrate(
        f"chroma+file://{src}",
        target,
        ["typed"],
        MigrationOptions(),
        Journal(tmp_path / "j.sqlite3"),
    )
    assert outcome.status == "completed"
    copied = await read_all(target, "typed")
    for i in range(10):
        expected = trap_metadata(i)
        assert_same_types(expected, copied[f"rec-{i}"][0])
        assert copied[f"rec-{i}"][1] == (None if i % 7 == 3 else f"document {i} of typed")


def run_cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    data = json.loads(captured.out) if captured.out.strip().startswith("{") else None
    return code, data, captured.err


def test_dimension_mismatch_is_a_preflight_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_chroma(tmp_path / "a", {"docs": {"metric": "cosine", "n": 20, "dim": 8}})
    b = make_chroma(tmp_path / "b", {"docs": {"metric": "cosine", "n": 20, "dim": 4, "seed": 9}})
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    state = str(tmp_path / "j.sqlite3")
    code, data, _ = run_cli(
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{b}",
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        state,
        capsys=capsys,
    )
    assert code == 0 and data["status"] == "completed"
    code, data, err = run_cli(
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{a}",
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        state,
        "--mode",
        "append",
        capsys=capsys,
    )
    assert code == 2
    assert "dimension 4" in err and "source has 8" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    copied = asyncio_run(read_all(target, "docs"))
    assert len(copied) == 20 and all(v[2].shape == (4,) for v in copied.values())


def test_existing_target_with_other_settings_needs_append(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_chroma(tmp_path / "a", {"docs": {"metric": "cosine", "n": 20, "dim": 8}})
    b = make_chroma(
        tmp_path / "b",
        {
            "docs": {
                "metric": "l2",
                "n": 5,
                "dim": 8,
                "seed": 4,
                "ids": [f"other-{i}" for i in range(5)],
            }
        },
    )
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    state = str(tmp_path / "j.sqlite3")
    assert (
        run_cli(
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{b}",
            "--to",
            target,
            "--yes",
            "--json",
            "--state",
            state,
            capsys=capsys,
        )[0]
        == 0
    )
    code, _, err = run_cli(
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{a}",
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        state,
        capsys=capsys,
    )
    assert code == 2 and "--mode append" in err
    assert len(asyncio_run(read_all(target, "docs"))) == 5  # nothing written
    code, data, _ = run_cli(
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{a}",
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        state,
        "--mode",
        "append",
        capsys=capsys,
    )
    assert code == 0, data
    assert len(asyncio_run(read_all(target, "docs"))) == 25


def test_rerunning_a_completed_migration_keeps_counts_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "ip", "n": 30, "dim": 8}})
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    args = (
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{src}",
        "--to",
        target,
        "--yes",
        "--json",
        "--state",
        str(tmp_path / "j.sqlite3"),
    )
    first = run_cli(*args, capsys=capsys)
    second = run_cli(*args, capsys=capsys)
    assert first[0] == second[0] == 0
    # The same command after it completed catches up with the source's cut (core/live):
    # the same run, nothing changed, nothing copied again.
    assert first[1]["run_id"] == second[1]["run_id"]
    assert second[1]["catch_up"][0]["upserted"] == second[1]["catch_up"][0]["deleted"] == 0
    assert len(asyncio_run(read_all(target, "docs"))) == 30
    third = run_cli(*args, "--restart", capsys=capsys)  # a second full copy, when asked
    assert third[0] == 0 and third[1]["run_id"] != first[1]["run_id"]
    assert len(asyncio_run(read_all(target, "docs"))) == 30


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["migrate", *KEEP_NAMES, "--from", "chroma:///x", "--to", "qdrant+memory:", "--yes"],
            "unknown connection URI",
        ),
        (
            [
                "migrate",
                *KEEP_NAMES,
                "--from",
                "chroma+file://relative/dir",
                "--to",
                "qdrant+memory:",
                "--yes",
            ],
            "absolute path",
        ),
        (["inventory", "chroma+file:///nonexistent/dir"], "not a Chroma directory"),
        (
            [
                "migrate",
                *KEEP_NAMES,
                "--from",
                "chroma+file:///tmp",
                "--to",
                "qdrant+memory:",
                "--yes",
                "--batch-size",
                "0",
            ],
            "--batch-size",
        ),
        (["inventory", "qdrant+http://127.0.0.1:6333?api_key=abc"], "secrets are not accepted"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_collection_names_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 3}})
    code, _, err = run_cli(
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{src}",
        "--to",
        "qdrant+memory:",
        "--collection",
        "nope",
        "--yes",
        "--json",
        capsys=capsys,
    )
    assert code == 2 and "'nope'" in err and "docs" in err


def asyncio_run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


async def test_an_empty_target_left_by_a_killed_run_is_adopted(tmp_path: Path) -> None:
    """Killed between creating the target and journaling it: the next runs still own it."""
    from ferry.core.connectors import WriteMode

    src = make_chroma(tmp_path / "src", {"docs": {"metric": "cosine", "n": 40, "dim": 8}})
    source, target = f"chroma+file://{src}", f"qdrant+edge://{tmp_path / 'edge'}"
    info = await open_connector(source).describe("docs")
    orphan = open_connector(target)
    await orphan.prepare(info, WriteMode.CREATE)  # created, never journaled
    await orphan.close()
    journal = Journal(tmp_path / "j.sqlite3")
    first = await migrate(source, target, [], MigrationOptions(), journal)
    # A second full copy (--restart: without it the same command is a catch-up, core/live)
    again = await migrate(source, target, [], MigrationOptions(), journal, restart=True)
    assert (first.status, again.status) == ("completed", "completed")
    assert again.run_id != first.run_id
    assert len(await read_all(target, "docs")) == 40
