"""API keys come from the environment and never reach the screen, the logs or the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.cli import main
from tests.conftest import free_port, make_chroma

SECRET = "sk-ferry-test-0123456789abcdef"


def test_a_key_never_leaks_into_output_or_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_TEST_KEY", SECRET)
    src = make_chroma(tmp_path / "src", {"docs": {"n": 5}})
    state = tmp_path / "j.sqlite3"
    target = f"qdrant+http://127.0.0.1:{free_port()}?api_key_env=FERRY_TEST_KEY&timeout=2"
    code = main(
        [
            "migrate",
            "--from",
            f"chroma+file://{src}",
            "--to",
            target,
            "--yes",
            "--json",
            "--state",
            str(state),
        ]
    )
    captured = capsys.readouterr()
    assert code in (1, 2)
    assert "FERRY_TEST_KEY" in captured.err or "Qdrant" in captured.err
    assert SECRET not in captured.out + captured.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_missing_key_variable_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["inventory", "qdrant+http://127.0.0.1:1?api_key_env=FERRY_UNSET_KEY_VAR"])
    err = capsys.readouterr().err
    assert code == 2
    assert "FERRY_UNSET_KEY_VAR is not set" in err and "export FERRY_UNSET_KEY_VAR" in err


PASSWORD = "S3CRETpassw0rd"


@pytest.mark.parametrize(
    "uri",
    [
        f"chroma+http://admin:{PASSWORD}@127.0.0.1:9",
        f"qdrant+https://{PASSWORD}@127.0.0.1:6333",
        f"qdrant+http://user:{PASSWORD}@localhost",
        f"jsonl+file://x:{PASSWORD}@/tmp/out",
        f"nosuch://admin:{PASSWORD}@host",
    ],
)
def test_user_info_in_a_uri_is_refused_in_one_line_and_never_shown_or_stored(
    uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`user:password@` in any URI: one line, exit 2, the fix named, nothing written; the
    password is in no output and no file (read as bytes, with no Ferry code)."""
    src = make_chroma(tmp_path / "src", {"docs": {"n": 3}})
    state = tmp_path / "state" / "j.sqlite3"
    for source, target in ((uri, f"qdrant+edge://{tmp_path / 'q'}"), (f"chroma+file://{src}", uri)):
        for extra in ([], ["--json"]):
            argv = ["migrate", "--from", source, "--to", target, "--yes", "--state", str(state)]
            code = main(argv + extra)
            captured = capsys.readouterr()
            assert code == 2, captured.err
            lines = captured.err.strip().splitlines()
            assert len(lines) == 1 and "api_key_env" in lines[0] and "profile" in lines[0]
            assert PASSWORD not in captured.out + captured.err
    assert main(["status", "--state", str(state)]) in (0, 1, 2)
    assert main(["status", "--json", "--state", str(state)]) in (0, 1, 2)
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert not (tmp_path / "q").exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_uri_with_user_info_already_in_a_journal_is_masked_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal written before the refusal existed: status (text and --json) masks it."""
    import sqlite3

    from ferry.core.journal import Journal

    state = tmp_path / "j.sqlite3"
    journal = Journal(state)
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", ["docs"], {}, {})
    journal.close()
    db = sqlite3.connect(state)
    with db:
        db.execute(
            "UPDATE runs SET source_uri = ? WHERE run_id = ?",
            (f"chroma+http://admin:{PASSWORD}@127.0.0.1:9", run_id),
        )
    db.close()
    for extra in ([], ["--json"]):
        main(["status", "--state", str(state), *extra])
        captured = capsys.readouterr()
        assert PASSWORD not in captured.out + captured.err
        assert "«redacted»@127.0.0.1" in captured.out
