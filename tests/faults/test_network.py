"""Resets, a silent server, slow bytes and refusals, with Chroma as source and as target:
retried, or given up within a stated time in one resumable line; never a hang, never a lost,
duplicated or wrong record."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tests.faults.network import run_network


def test_network_faults_lose_nothing_and_never_hang(tmp_path: Path, chroma_server: str) -> None:
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    for outcome in run_network(port, tmp_path):
        assert outcome.kills >= 4, outcome  # the faults were really injected
        assert (outcome.lost, outcome.duplicated, outcome.wrong) == (0, 0, 0), outcome.notes
        assert outcome.hangs == 0, outcome.notes
        assert outcome.clean_errors == outcome.errors, outcome.notes
