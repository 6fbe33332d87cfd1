"""A server that echoes our API key in its error replies: the key is found nowhere Ferry
wrote (journal, XDG dirs, stdout, stderr, status --json, --debug tracebacks)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tests.faults.canary import run_canary


def test_echoed_key_never_leaks(tmp_path: Path, chroma_server: str) -> None:
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    searched, leaks, where = run_canary(port, tmp_path)
    assert searched > 10
    assert leaks == 0, where
