"""Starting the OpenAI-compatible test server (tests/embed_server.py) as a real process."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("embed_server.py")


@contextlib.contextmanager
def embed_server(*flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The server on 127.0.0.1 with a free port; yields its `/v1` base URL."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # blocks until it listens (or exits)
        if not first.startswith("PORT "):
            raise RuntimeError(f"embed server did not start: {first!r}")
        yield f"http://127.0.0.1:{int(first.split()[1])}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/stats", timeout=10) as r:
        return dict(json.loads(r.read()))


def wordllama_vectors(texts: list[str], dimensions: int = 256) -> Any:
    """The model's own embedding of `texts` (what every re-embedded vector must be)."""
    from pathlib import Path as _Path

    import numpy as np
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(
        "l2_supercat",
        dim=256,
        trunc_dim=None if dimensions == 256 else dimensions,
        cache_dir=_Path(wordllama.__file__).parent,
        disable_download=True,
    )
    return np.asarray(model.embed(texts, norm=True), dtype=np.float32)
