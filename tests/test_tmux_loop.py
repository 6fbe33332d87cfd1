"""The whole loop in a real terminal (tmux) at 80×24 with keys only: scripts/tmux_loop.sh.

demo → run dialog → migrate → log → validate → cut over (twice) → roll back → quit. Skipped
where tmux is not installed; each step of the script waits for what the screen says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_whole_loop_with_keys_only_at_80x24() -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tmux_loop.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: rollback done: docs → stdlib-classes" in done.stdout
    assert done.stdout.rstrip().endswith("the whole loop ran with keys only at 80x24")
