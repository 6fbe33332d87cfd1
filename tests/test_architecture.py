"""The core is headless: importing all of it loads neither Textual nor the views."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import ROOT

CORE_MODULES = [
    "core.engine",
    "core.runner",
    "core.plan",
    "core.journal",
    "core.connectors.chroma_embedded",
    "core.connectors.chroma_files",
    "core.connectors.qdrant_edge",
    "core.connectors.qdrant_api",
    "core.demo",
]


def test_core_imports_no_ui() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'tui', 'cli'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_import_linter_contract_holds() -> None:
    lint = shutil.which("lint-imports") or str(ROOT / ".venv" / "bin" / "lint-imports")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout
