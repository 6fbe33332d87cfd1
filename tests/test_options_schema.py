"""Adding a migrate option is one declaration: it shows in `--help` and rides RunChoices' argv."""

from __future__ import annotations

import pytest

from ferry.cli import build_parser
from ferry.core import options
from ferry.core.bounds import check_bound
from ferry.core.errors import FerryError
from ferry.core.options import Option, Range
from ferry.core.run_choices import RunChoices


@pytest.fixture
def extra_option(monkeypatch: pytest.MonkeyPatch) -> Option:
    option = Option(
        "--chunk-overlap", "chunk_overlap", int, 0, Range(0, 512, "32"), metavar="N",
        help="tokens two chunks share", in_dialog=True, in_profile=True,
    )  # fmt: skip
    monkeypatch.setattr(options, "MIGRATE_OPTIONS", [*options.MIGRATE_OPTIONS, option])
    return option


def test_a_declared_option_appears_in_migrate_help(extra_option: Option) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    text = sub.choices["migrate"].format_help()
    assert "--chunk-overlap N" in text and "tokens two chunks share" in text
    args = parser.parse_args(["migrate", "--from", "a", "--to", "b", "--chunk-overlap", "7"])
    assert args.chunk_overlap == 7


def test_a_declared_option_round_trips_through_run_choices_argv(extra_option: Option) -> None:
    choices = RunChoices.from_argv(["--chunk-overlap", "64", "--workers", "3"])
    assert choices.value("chunk_overlap") == 64 and choices.workers == 3
    argv = choices.to_argv({"--chunk-overlap"})
    assert argv[-2:] == ["--chunk-overlap", "64"]
    assert RunChoices.from_argv(argv) == choices
    assert RunChoices.from_json({"extras": {"chunk_overlap": 64}}).value("chunk_overlap") == 64
    with pytest.raises(FerryError, match="--chunk-overlap"):
        check_bound("migrate", "--chunk-overlap", 9999)
    with pytest.raises(FerryError, match="--chunk-overlap"):
        RunChoices(extras={"chunk_overlap": 9999}).check()


def test_defaults_argv_is_unchanged() -> None:
    assert RunChoices().to_argv({"--layout", "--target-name"}) == [
        "--batch-size", "1000", "--workers", "2", "--mode", "create",
    ]  # fmt: skip
