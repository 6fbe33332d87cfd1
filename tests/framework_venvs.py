"""Pinned venvs for the frameworks whose pins clash with Ferry's (tests/test_framework_crewai.py,
tests/test_framework_embedchain.py): built once with uv, cached, run as subprocesses.

CrewAI pins pydantic < 2.13, rich 14, portalocker 2.7 …; Embedchain pins chromadb < 0.6 and
langchain 0.3: installed next to Ferry they would change what Ferry itself runs on. So each
gets a venv of its own under ``$FERRY_FRAMEWORKS_CACHE`` (default
``~/.cache/ferry-tests/frameworks``), keyed by its requirements; the framework's side of a test
(write with its Chroma store, read with its Qdrant store) runs there as a script printing
JSON, and Ferry runs in the test's own process. Installing reuses the chroma-releases
machinery (uv, one builder at a time, the installer's last line as the skip reason).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chroma_releases.build import (
    base_python,
    child_env,
    find_uv,
    last_line,
    locked,
    venv_python,
)
from tests.framework_serve import REPLY

INSTALL_TIMEOUT = 900
HERE = Path(__file__).resolve().parent


def cache_root() -> Path:
    env = os.environ.get("FERRY_FRAMEWORKS_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ferry-tests" / "frameworks"


def framework_python(name: str, requirements: list[str]) -> Path:
    """The python of `name`'s venv with `requirements` installed (built on first use); the
    test skips, saying why, when the registry cannot give them."""
    root = cache_root()
    key = hashlib.sha256(json.dumps(requirements).encode()).hexdigest()[:12]
    home = root / f"{name}-{key}"
    venv, marker = home / "venv", home / "venv.json"
    if marker.is_file() and venv_python(venv).exists():
        return venv_python(venv)
    uv = find_uv()
    if uv is None:
        pytest.skip(f"{name}: uv is needed to build its pinned venv (the test extra has it)")
    with locked(home / ".lock"):
        if marker.is_file() and venv_python(venv).exists():
            return venv_python(venv)
        shutil.rmtree(venv, ignore_errors=True)
        env = child_env(root)
        started = time.monotonic()
        steps = [
            [uv, "venv", "--quiet", "--python", base_python(), str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv_python(venv)), *requirements],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(venv, ignore_errors=True)
                pytest.skip(f"{name} cannot be installed: {exc}")
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                log = home / "install-error.log"
                log.write_text(done.stdout + done.stderr)
                pytest.skip(f"{name} cannot be installed: {last_line(done.stderr)} ({log})")
        seconds = round(time.monotonic() - started, 1)
        marker.write_text(json.dumps({"requirements": requirements, "seconds": seconds}))
    return venv_python(venv)


class ScriptSession:
    """One long-lived run of tests/<script> in a framework venv, asked one command after
    another (`ask`): the framework is imported once (CrewAI's import alone takes ~10 s)."""

    def __init__(self, python: Path, script: str, log: Path) -> None:
        env = child_env(cache_root())
        env["PYTHONPATH"] = str(HERE)
        self.log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen(
            [str(python), str(HERE / script), "serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def ask(self, *args: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(list(args)) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:  # blocks until the answer (the run_timeout bounds it)
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY) :])
        raise AssertionError(f"{args}: the script ended:\n{self.log.read_text()[-4000:]}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()
