"""The plan says what happens: a one-record directory is low complexity and read from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.cli import main
from tests.conftest import make_chroma


def test_a_one_record_directory_is_low_and_read_from_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 1, "dim": 4}})
    code = main(["inventory", f"chroma+file://{src}", "--json"])
    text = capsys.readouterr().out
    assert code == 0
    # ids like "rec-0" need mapping (an app change: medium at most); nothing else is hard
    assert '"complexity": "high"' not in text and '"complexity"' in text
    assert "read via an upgraded copy" not in text
