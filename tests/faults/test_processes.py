"""Processes and file systems around a run: nothing left behind in the process group, a
read-only source, a full disk, many empty collections. Readers use no Ferry code."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_chroma


def ferry(*argv: str) -> subprocess.CompletedProcess[str]:
    """`ferry ARGV` as a user runs it: its own process and process group."""
    return subprocess.run(
        [sys.executable, "-m", "ferry.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )


def group_members(pgid: int) -> list[str]:
    """Every process (zombies too) still in process group `pgid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # after ")": state, ppid, pgrp
                found.append(stat.parent.name + " " + (stat.parent / "cmdline").read_text())
    return found


def test_no_edge_worker_outlives_ferry_migrate(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 40, "dim": 8}})
    process = subprocess.Popen(
        [sys.executable, "-m", "ferry.cli", "migrate", "--from", f"chroma+file://{src}", "--to",
         f"qdrant+edge://{tmp_path / 'q'}", "--yes", "--state", str(tmp_path / "j.sqlite3")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert group_members(process.pid) == []  # reaped before the command returned


@contextlib.contextmanager
def mounted(*argv: str) -> Iterator[None]:
    done = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or 'not root'})")
    try:
        yield
    finally:
        subprocess.run(["umount", argv[-1]], check=False)


def test_a_source_on_a_read_only_bind_mount_migrates_and_stays_unchanged(tmp_path: Path) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 60, "dim": 8}})
    before = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    view = tmp_path / "ro"
    view.mkdir()
    with mounted("--bind", str(src), str(view)):
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=False)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only here")
        target = tmp_path / "q"
        done = ferry("migrate", "--from", f"chroma+file://{view}", "--to",
                     f"qdrant+edge://{target}", "--yes", "--json",
                     "--state", str(tmp_path / "j.sqlite3"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["collections"][0]["records_written"] == 60
    after = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.xfail(
    strict=False,
    reason="known: on a busy machine the export sometimes dies with no line at all (exit "
    "status without stderr, likely SIGBUS from a memory-mapped write on a full tmpfs); "
    "issue 16 leftover",
)
def test_a_parquet_export_onto_a_full_tmpfs_fails_in_one_line_and_never_looks_complete(
    tmp_path: Path,
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 3000, "dim": 128}})
    disk = tmp_path / "small"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)):
        done = ferry("migrate", "--from", f"chroma+file://{src}", "--to",
                     f"parquet+file://{disk / 'export'}", "--yes",
                     "--state", str(tmp_path / "j.sqlite3"))  # fmt: skip
        assert done.returncode != 0
        for manifest in (disk / "export").rglob("manifest.json"):  # never complete, even then
            assert json.loads(manifest.read_text()).get("state") != "complete"
        assert done.stderr.strip(), f"exit {done.returncode} with nothing said"
        last = done.stderr.strip().splitlines()[-1]
        assert "Traceback" not in done.stderr and "unexpected error" not in last
        assert "disk" in last.lower() or "space" in last.lower(), last
        for manifest in (disk / "export").rglob("manifest.json"):
            assert json.loads(manifest.read_text()).get("state") != "complete"
