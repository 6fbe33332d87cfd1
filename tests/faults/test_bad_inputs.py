"""≥ 60 bad inputs across every command: one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.bad_inputs import build_world, nan_verdict, run_table


def test_every_bad_input_is_one_clean_line_exit_2_and_changes_nothing(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    verdicts = run_table(world)
    assert len(verdicts) >= 60
    failures = [v for v in verdicts if v.code != 2 or not v.clean or not v.unchanged]
    assert not failures, "\n".join(map(str, failures))


def test_nan_and_inf_vectors_are_refused_by_id(tmp_path: Path) -> None:
    verdict = nan_verdict(build_world(tmp_path))
    assert verdict.code == 2 and verdict.clean, verdict  # refused in preflight, by id
    assert not (tmp_path / "nan-target").exists()


@pytest.mark.parametrize("n", [1])
def test_table_rows_are_distinct(tmp_path: Path, n: int) -> None:
    from tests.faults.bad_inputs import World, rows

    world = World(*(tmp_path for _ in range(9)))
    labels = [what for what, _ in rows(world)]
    assert len(labels) == len(set(labels)) >= 60 * n
