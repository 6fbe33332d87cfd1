"""The core is headless: importing all of it loads neither Textual nor the views."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import ROOT

CORE_MODULES = [
    "ferry.core.engine",
    "ferry.core.runner",
    "ferry.core.plan",
    "ferry.core.journal",
    "ferry.core.connectors.chroma.embedded",
    "ferry.core.connectors.chroma.files",
    "ferry.core.connectors.qdrant.edge",
    "ferry.core.connectors.qdrant.api",
    "ferry.core.demo",
]


def test_core_imports_no_ui() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'ferry.tui', 'ferry.cli'})\n"
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


def test_installed_under_one_name_and_every_package_listed() -> None:
    """pip installs Ferry as `ferry.core`, `ferry.tui`, `ferry.cli`: never a bare top-level
    `core`/`cli`/`tui` another distribution could collide with; and no package is left out
    of pyproject's list (a missing one would be missing from a non-editable install)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        "ferry." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("core", "tui", "cli")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == found
    assert all(name.startswith("ferry.") for name in listed)
    assert config["package-dir"] == {"ferry.core": "core", "ferry.tui": "tui", "ferry.cli": "cli"}
