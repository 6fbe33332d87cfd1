"""`ferry cutover --alias docs` without `--collection`: the CLI picks the newest validated
copy the journal knows for the app's name, and an app reading `docs` with qdrant-client gets
the migrated points; rollback undoes it. Real Chroma → qdrant-client local mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.cli import main
from tests.conftest import make_chroma


def ferry(state: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "--state", str(state)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cutover_by_the_apps_name_picks_the_validated_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_chroma(tmp_path / "src", {"docs": {"n": 60, "dim": 8}})
    source, root = f"chroma+file://{tmp_path / 'src'}", tmp_path / "q"
    target, state = f"qdrant+file://{root}", tmp_path / "j.sqlite3"
    cut = ("cutover", "--to", target, "--alias", "docs", "--yes")

    code, _, err = ferry(state, capsys, *cut)
    assert code == 2 and "no copy of 'docs'" in err and "--list" in err

    migrate = ("migrate", "--from", source, "--to", target, "--yes", "--collection", "docs")
    assert ferry(state, capsys, *migrate, "--target-name", "{name}_v1")[0] == 0
    code, _, err = ferry(state, capsys, *cut)
    assert code == 2 and "no validated copy" in err and "ferry validate" in err

    validate = ("validate", "--from", source, "--to", target, "--collection", "docs")
    assert ferry(state, capsys, *validate)[0] == 0
    code, out, err = ferry(state, capsys, *cut)
    assert code == 0, err
    assert "docs_v1" in out

    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(root))
    try:
        assert client.count("docs").count == 60  # the app's name reads the migrated copy
        hits = client.query_points("docs", query=[0.1] * 8, limit=3).points
        assert len(hits) == 3
    finally:
        client.close()

    code, out, err = ferry(state, capsys, "rollback", "--to", target, "--alias", "docs", "--yes")
    assert code == 0, err
    client = QdrantClient(path=str(root))
    try:
        assert client.get_aliases().aliases == []
        assert {c.name for c in client.get_collections().collections} == {"docs_v1"}
    finally:
        client.close()


def test_by_default_the_copy_leaves_the_apps_name_free_for_the_cutover(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --target-name: a target with aliases gets `docs_v1`, and `docs` becomes the alias."""
    make_chroma(tmp_path / "src", {"docs": {"n": 30, "dim": 8}})
    source, root = f"chroma+file://{tmp_path / 'src'}", tmp_path / "q"
    target, state = f"qdrant+file://{root}", tmp_path / "j.sqlite3"
    code, out, err = ferry(state, capsys, "migrate", "--from", source, "--to", target, "--yes")
    assert code == 0, err
    assert ferry(state, capsys, "validate", "--from", source, "--to", target)[0] == 0
    code, out, err = ferry(state, capsys, "cutover", "--to", target, "--alias", "docs", "--yes")
    assert code == 0, err
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(root))
    try:
        assert {c.name for c in client.get_collections().collections} == {"docs_v1"}
        assert [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases] == [
            ("docs", "docs_v1")
        ]
        assert client.count("docs").count == 30
    finally:
        client.close()


def test_a_copy_under_the_apps_own_name_gets_a_way_forward(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_chroma(tmp_path / "src", {"docs": {"n": 20, "dim": 8}})
    source, target = f"chroma+file://{tmp_path / 'src'}", f"qdrant+file://{tmp_path / 'q'}"
    state = tmp_path / "j.sqlite3"
    migrate = ("migrate", "--from", source, "--to", target, "--yes", "--collection")
    assert ferry(state, capsys, *migrate, "docs=docs")[0] == 0  # into the app's own name
    code, _, err = ferry(state, capsys, "cutover", "--to", target, "--alias", "docs", "--yes")
    assert code == 2 and "app's own name" in err and "--target-name" in err
    # The same command without the pair keeps what was done (the same run, caught up), not
    # a second copy beside it: an older Ferry's in-place copies keep resuming in place.
    code, out, err = ferry(state, capsys, *migrate, "docs", "--json")
    assert code == 0, err
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        assert {c.name for c in client.get_collections().collections} == {"docs"}
    finally:
        client.close()
