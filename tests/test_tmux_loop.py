"""The whole loop in a real terminal (tmux) with keys only: scripts/tmux_loop.sh, at 80×24
and at 60×20.

demo → run dialog → pause → resume → complete → the demo's app changes its source → full
validation → the differences → repair → delete the extra → clean → cutover of the app's name
→ switch-the-app lines through the alias → rollback → quit. Skipped where tmux is not
installed; each step of the script waits for what the screen says.
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
@pytest.mark.parametrize("size", ["80x24", "60x20"])
def test_the_whole_loop_with_keys_only(size: str) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tmux_loop.sh"), size],
        env=env,
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("ok: p or r resumes", "ok: missing 3 · extra 1", "ok: everything matches"):
        assert step in done.stdout
    assert 'ok: query_points("stdlib-classes"' in done.stdout  # the app reads the alias
    assert "ok: rollback done" in done.stdout
    assert done.stdout.rstrip().endswith(f"the whole loop ran with keys only at {size}")
