"""Every numeric flag has a range, and a number outside it is refused before anything exists."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ferry.cli import build_parser, main
from ferry.core.bounds import FLAG_BOUNDS
from tests.conftest import make_chroma


def numeric_flags() -> set[tuple[str, str]]:
    """(command, flag) of every `type=int|float` option the CLI declares."""
    parser = build_parser()
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                for option in sub._actions:
                    if option.type in (int, float) and option.option_strings:
                        found.add((command, option.option_strings[0]))
    return found


def test_every_numeric_flag_has_a_range() -> None:
    assert numeric_flags() <= set(FLAG_BOUNDS), numeric_flags() - set(FLAG_BOUNDS)


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--rate", "1e-300"),
        ("--rate", "1e300"),
        ("--rate", "nan"),
        ("--rate", "inf"),
        ("--batch-size", "0"),
        ("--batch-size", "1000000000"),
        ("--workers", "100000"),
        ("--give-up-after", "1e-9"),
        ("--hnsw-m", "100000"),
    ],
)
def test_a_number_out_of_range_is_one_line_exit_2_and_nothing_is_created(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"n": 3}})
    target, state = tmp_path / "q", tmp_path / "state" / "j.sqlite3"
    argv = ["migrate", "--from", f"chroma+file://{src}", "--to", f"qdrant+edge://{target}"]
    code = main([*argv, "--yes", "--state", str(state), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flag in err[0] and "pass e.g." in err[0]
    assert not target.exists() and not state.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--k", "100000000"],
        ["validate", "--queries", "-1"],
        ["validate", "--recall-threshold", "2"],
        ["demo", "--rate", "1e-300", "--headless"],
        ["demo", "--records", "0", "--headless"],
    ],
)
def test_other_commands_check_the_same_table(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "j.sqlite3"
    extra = ["--from", "chroma+file:///nowhere", "--to", "qdrant+memory:"]
    extra = extra if argv[0] == "validate" else ["--dir", str(tmp_path / "demo")]
    code = main([*argv, *extra, "--state", str(state)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and argv[1] in err[0]
    assert not state.exists() and not (tmp_path / "demo").exists()
