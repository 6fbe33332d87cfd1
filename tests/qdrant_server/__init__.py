"""A Qdrant REST server for tests, on the real engine (Qdrant Edge, one shard per collection).

What LocalStack is to AWS: the subset of Qdrant's REST API that Ferry and the frameworks'
Qdrant stores call, served by a real HTTP server in a process of its own, so the real
`QdrantClient`/`AsyncQdrantClient` (REST) talk to it unmodified. Its limits and where it
differs from Qdrant: docs/qdrant-test-server.md. The tests' own control API lives under
`/__emulator/` (faults, an API key, the request log); a real server answers 404 there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class EmulatorControl:
    """The tests' handle on a running emulator: its URL and its control API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])

    def _call(self, method: str, what: str, data: Any = None) -> dict[str, Any]:
        import httpx

        answer = httpx.request(method, f"{self.url}/__emulator/{what}", json=data, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def faults(self, *rules: dict[str, Any]) -> None:
        """Replace the fault rules (see tests/qdrant_server/faults.py)."""
        self._call("PUT", "faults", list(rules))

    def fault_hits(self) -> list[int]:
        return [f["hits"] for f in self._call("GET", "state")["faults"]]

    def require_key(self, key: str | None) -> None:
        self._call("PUT", "key", {"key": key})

    def indexing_threshold_kb(self, kb: int) -> None:
        self._call("PUT", "settings", {"indexing_threshold_kb": kb})

    def optimizer_min_seconds(self, seconds: float) -> None:
        """Every optimizer run takes at least this long (yellow stays observable)."""
        self._call("PUT", "settings", {"optimizer_min_seconds": seconds})

    def log(self) -> list[dict[str, Any]]:
        return self._call("GET", "state")["log"]

    def reset(self, indexing_kb: int) -> None:
        self._call("POST", "reset")
        self.indexing_threshold_kb(indexing_kb)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_emulator(data: Path, indexing_kb: int | None = None) -> Iterator[EmulatorControl]:
    """Start the emulator on 127.0.0.1 with a free port; stop it on exit."""
    import httpx  # here: the optimizer's process imports this package and needs none of it

    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "tests.qdrant_server",
        "--port",
        str(port),
        "--data",
        str(data),
    ]
    if indexing_kb is not None:
        command += ["--indexing-threshold-kb", str(indexing_kb)]
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((data / "server.log").read_text()[-2000:])
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Qdrant emulator did not start within 60 s")
            time.sleep(0.05)
        yield EmulatorControl(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
