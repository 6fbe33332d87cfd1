"""API keys come from the environment and never reach the screen, the logs or the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
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
