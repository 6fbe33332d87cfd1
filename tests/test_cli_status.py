"""`ferry inventory` and `ferry status`: the JSON contract scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferry.cli import main
from tests.conftest import make_chroma


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_inventory_json_lists_facts_and_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(
        tmp_path / "src",
        {
            "alpha": {"metric": "ip", "n": 30, "dim": 5, "ids": [f"{i:03d}" for i in range(30)]},
            "empty-one": {"metric": "l2", "n": 0},
        },
    )
    code, data = run(capsys, "inventory", f"chroma+file://{src}", "--json")
    assert code == 0
    by_name = {c["name"]: c for c in data["collections"]}
    alpha = by_name["alpha"]
    assert (alpha["count"], alpha["dimension"], alpha["metric"]) == (30, 5, "ip")
    assert "bools" in alpha["metadata_keys"] and "chroma:document" not in alpha["metadata_keys"]
    assert any("ids need mapping" in note for note in alpha["notes"])
    assert by_name["empty-one"]["count"] == 0 and by_name["empty-one"]["dimension"] is None
    assert data["schema"]["summary"].startswith("up to date")
    assert data["schema"]["pending"] == []


def test_status_reports_runs_and_collections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 25, "dim": 4}})
    state = str(tmp_path / "j.sqlite3")
    code, migrated = run(
        capsys,
        "migrate",
        "--from",
        f"chroma+file://{src}",
        "--to",
        f"qdrant+edge://{tmp_path / 'edge'}",
        "--yes",
        "--json",
        "--state",
        state,
    )
    assert code == 0
    code, listing = run(capsys, "status", "--json", "--state", state)
    assert code == 0 and listing["runs"][0]["run_id"] == migrated["run_id"]
    code, one = run(capsys, "status", migrated["run_id"][:15], "--json", "--state", state)
    assert one["status"] == "completed"
    assert one["collections"][0]["records_written"] == one["collections"][0]["total"] == 25
    code, followed = run(capsys, "status", "--follow", "--json", "--state", state)
    assert followed["status"] == "completed"


def test_status_of_an_unknown_run_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["status", "nope", "--state", str(tmp_path / "j.sqlite3")])
    assert code == 2 and "no run 'nope'" in capsys.readouterr().err


def test_an_empty_collection_left_out_reads_skipped_with_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "completed — not created": a person reads what happened to it in one word."""
    src = make_chroma(tmp_path / "src", {"empty-one": {"n": 0}, "docs": {"n": 5, "dim": 4}})
    code = main(
        ["migrate", "--from", f"chroma+file://{src}", "--to",
         f"qdrant+edge://{tmp_path / 'edge'}", "--yes", "--state", str(tmp_path / "j.sqlite3")]
    )  # fmt: skip
    out = capsys.readouterr().err  # the human report goes to stderr (stdout is for --json)
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.strip().startswith("empty-one"))
    assert ": skipped — empty collection with unknown dimension: not created" in line, line
    assert "docs" in out and ": completed — 5 records" in out
