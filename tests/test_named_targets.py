"""Named targets and the blue-green loop, end to end through `ferry.cli.main` the way a user runs it:
real Chroma → real Qdrant Edge with `--collection NAME=TARGET`, then validate (which finds
the pair in the journal), list cutover candidates, cut an alias named like the source over,
roll that first cutover back (the alias is removed) and delete an alias.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ferry.cli import main
from ferry.core.connectors.qdrant.edge_layout import EdgeLayout
from ferry.core.connectors.traits import CHROMA, QDRANT
from ferry.core.engine import MigrationOptions
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.runner import migrate
from ferry.core.targets import TargetNames, parse_collection_args
from tests.conftest import make_chroma


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    make_chroma(tmp_path / "src", {"docs": {"n": 120, "dim": 8}, "notes": {"n": 40, "dim": 8}})
    return {
        "source": f"chroma+file://{tmp_path / 'src'}",
        "target": f"qdrant+edge://{tmp_path / 'edge'}",
        "root": tmp_path / "edge",
        "state": str(tmp_path / "journal.sqlite3"),
    }


def ferry(env: dict[str, Any], capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:  # fmt: skip
    """Run one command with the env's journal; (exit code, parsed JSON or text, stderr)."""
    capsys.readouterr()
    code = main([*argv, "--state", env["state"]])
    out = capsys.readouterr()
    try:
        data: Any = json.loads(out.out)
    except json.JSONDecodeError:
        data = out.out
    return code, data, out.err


def migrate_cli(env: dict[str, Any], capsys: Any, *extra: str) -> tuple[int, Any, str]:
    return ferry(
        env, capsys, "migrate", "--from", env["source"], "--to", env["target"], "--yes", "--json",
        *extra,
    )  # fmt: skip


def test_collection_args_template_and_name_rules() -> None:
    assert parse_collection_args(["docs", "docs=docs_v2", "notes"]) == (
        ["docs", "notes"],
        {"docs": "docs_v2"},
    )
    with pytest.raises(FerryError, match="two targets"):
        parse_collection_args(["docs=a", "docs=b"])
    with pytest.raises(FerryError, match="NAME=TARGET"):
        parse_collection_args(["docs="])
    targets = TargetNames({"notes": "notes_blue"}, "{name}_v2")
    assert [targets.resolve(n) for n in ("docs", "notes")] == ["docs_v2", "notes_blue"]
    for bad in ("v2", "{}", "{name!r}", "{other}_v2", "{name"):
        with pytest.raises(FerryError, match="--target-name"):
            TargetNames(template=bad)
    # The same resolved pairs are the same run identity, however they were spelled.
    assert TargetNames({"docs": "docs_v2"}).identity(["docs"]) == TargetNames(
        template="{name}_v2"
    ).identity(["docs"])
    assert TargetNames({"docs": "docs"}).identity(["docs"]) is None  # as before: no pairs
    assert QDRANT.name_problem("docs_v2") is None
    assert "cannot contain '/'" in (QDRANT.name_problem("a/b") or "")
    assert "255 bytes" in (QDRANT.name_problem("x" * 256) or "")
    assert CHROMA.name_problem("docs_v2") is None
    for bad in ("ab", "_docs", "a..b", "10.0.0.1", "docs v2"):
        assert CHROMA.name_problem(bad), bad


def test_named_target_migrates_validates_and_cuts_over_an_alias_named_like_the_source(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = migrate_cli(  # notes=notes: in place, as an older Ferry copied it
        env, capsys, "--collection", "docs=docs_v2", "--collection", "notes=notes"
    )
    assert code == 0, err
    assert {c["name"]: c["target_name"] for c in data["collections"]} == {
        "docs": "docs_v2",
        "notes": "notes",
    }
    layout = EdgeLayout(env["root"])
    assert layout.exists("docs_v2") and not layout.exists("docs")

    # The journal's collection rows keep both names; status shows the pair.
    code, status, _ = ferry(env, capsys, "status", "--json")
    pairs = {c["name"]: c["target_name"] for c in status["runs"][0]["collections"]}
    assert pairs == {"docs": "docs_v2", "notes": "notes"}
    assert status["runs"][0]["options"]["targets"] == {
        "pairs": {"docs": "docs_v2", "notes": "notes"},
        "template": None,
    }
    code, text, _ = ferry(env, capsys, "status")
    assert "docs → docs_v2" in text

    # Validate with no NAME=TARGET: the pairs of the latest run are compared.
    code, report, err = ferry(
        env, capsys, "validate", "--from", env["source"], "--to", env["target"], "--json"
    )
    assert code == 0, err
    assert {c["name"]: (c["target_name"], c["ok"]) for c in report["collections"]} == {
        "docs": ("docs_v2", True),
        "notes": ("notes", True),
    }

    # Candidates from the journal: migrated, validated, with the alias the app used.
    code, listed, _ = ferry(env, capsys, "cutover", "--to", env["target"], "--list", "--json")
    assert code == 0
    by_collection = {c["collection"]: c for c in listed["candidates"]}
    docs = by_collection["docs_v2"]
    assert (docs["alias"], docs["state"], docs["records"]) == ("docs", "validated", 120)
    assert docs["validation"]["ok"] is True and docs["validation"]["recall_at_k"] == 1.0
    assert docs["alias_is_collection"] is False
    assert by_collection["notes"]["alias_is_collection"] is True

    # The alias `notes` is taken by the collection `notes`: refused, pointing at blue-green.
    code, _, err = ferry(
        env, capsys, "cutover", "--to", env["target"], "--collection", "notes", "--alias",
        "notes", "--yes",
    )  # fmt: skip
    assert code == 2
    assert "is a collection" in err and "--target-name" in err
    assert len(err.strip().splitlines()) == 1

    # `docs` is free: the app's name now reads the migrated copy.
    code, done, err = ferry(
        env, capsys, "cutover", "--to", env["target"], "--collection", "docs_v2", "--alias",
        "docs", "--yes", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert (done["from"], done["to"]) == (None, "docs_v2")
    assert layout.aliases() == {"docs": "docs_v2"}
    code, listed, _ = ferry(env, capsys, "cutover", "--to", env["target"], "--list", "--json")
    live = next(c for c in listed["candidates"] if c["collection"] == "docs_v2")
    assert (live["state"], live["pointed_by"]) == ("live", ["docs"])


def test_rollback_of_a_first_cutover_removes_the_alias_and_alias_delete(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate_cli(env, capsys, "--collection", "docs", "--target-name", "{name}_v2")[0] == 0
    assert ferry(env, capsys, "validate", "--from", env["source"], "--to", env["target"],
                 "--collection", "docs")[0] == 0  # fmt: skip
    cut = ("cutover", "--to", env["target"], "--collection", "docs_v2", "--alias", "docs", "--yes")
    assert ferry(env, capsys, *cut)[0] == 0
    layout = EdgeLayout(env["root"])
    assert layout.aliases() == {"docs": "docs_v2"}

    code, out, err = ferry(env, capsys, "rollback", "--to", env["target"], "--alias", "docs", "--yes")  # fmt: skip
    assert code == 0, err
    assert "(nothing: the alias is removed)" in out and "docs → (removed)" in out
    assert layout.aliases() == {}
    assert layout.exists("docs_v2")  # the collection stays
    journal = Journal(env["state"])
    latest = journal.cutovers.history(env["target"], "docs")[0]
    assert (latest.action, latest.from_collection, latest.to_collection) == (
        "rollback",
        "docs_v2",
        None,
    )
    code, _, err = ferry(env, capsys, "rollback", "--to", env["target"], "--alias", "docs", "--yes")
    assert code == 2 and "already removed" in err

    # `ferry alias delete`: asks (refused without a terminal), then --yes removes, journaled.
    assert ferry(env, capsys, *cut)[0] == 0
    code, _, err = ferry(env, capsys, "alias", "delete", "--to", env["target"], "--alias", "docs")
    assert code == 2 and "--yes" in err
    assert layout.aliases() == {"docs": "docs_v2"}
    code, _, err = ferry(env, capsys, "alias", "delete", "--to", env["target"], "--alias", "docs", "--yes")  # fmt: skip
    assert code == 0, err
    assert layout.aliases() == {}
    latest = journal.cutovers.history(env["target"], "docs")[0]
    assert (latest.action, latest.from_collection, latest.to_collection) == (
        "alias-delete",
        "docs_v2",
        None,
    )
    code, _, err = ferry(env, capsys, "alias", "delete", "--to", env["target"], "--alias", "docs", "--yes")  # fmt: skip
    assert code == 2 and "no alias 'docs'" in err


def test_preflight_refuses_clashes_and_bad_names_before_any_write(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = migrate_cli(env, capsys, "--collection", "docs=shared", "--collection", "notes=shared")  # fmt: skip
    assert code == 2
    assert "'docs' and 'notes' would all be written into 'shared'" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = migrate_cli(env, capsys, "--collection", "docs=a/b")
    assert code == 2 and "cannot contain '/'" in err and "--target-name" in err
    code, _, err = migrate_cli(env, capsys, "--target-name", "v2")
    assert code == 2 and "must contain {name}" in err
    assert not env["root"].exists() or EdgeLayout(env["root"]).list_collections() == []
    assert Journal(env["state"]).runs.recent() == []


def test_same_pairs_resume_another_pair_is_another_run(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    journal = Journal(env["state"])
    options = MigrationOptions(batch_size=20, targets=TargetNames({"docs": "docs_v2"}))

    # A run cancelled as soon as it starts: unfinished, resumable.
    first = asyncio.run(
        migrate(env["source"], env["target"], ["docs"], options, journal,
                on_engine=lambda engine: engine.cancel())
    )  # fmt: skip
    assert first.status.value == "cancelled"

    # The same pair, spelled as a template: the same run, resumed.
    code, data, err = migrate_cli(env, capsys, "--collection", "docs", "--target-name", "{name}_v2")
    assert code == 0, err
    assert (data["run_id"], data["resumed"]) == (first.run_id, True)
    assert data["collections"][0]["target_name"] == "docs_v2"

    # Another pair for the same source: another run, into another collection.
    cancelled = asyncio.run(
        migrate(env["source"], env["target"], ["docs"],
                MigrationOptions(targets=TargetNames({"docs": "docs_blue"})), journal,
                on_engine=lambda engine: engine.cancel())
    )  # fmt: skip
    assert cancelled.run_id != first.run_id
    code, data, err = migrate_cli(env, capsys, "--collection", "docs=docs_green")
    assert code == 0, err
    assert data["run_id"] not in {first.run_id, cancelled.run_id} and not data["resumed"]
    assert any(
        f"run {cancelled.run_id} (unfinished) writes docs → docs_blue" in w
        for w in data["warnings"]
    )
    rows = {r.name: r.target_name for r in journal.runs.collections(data["run_id"])}
    assert rows == {"docs": "docs_green"}
