"""Adding a migrate option is one declaration (core/options.py): it shows in `ferry migrate
--help`, the run dialog and profiles, and rides RunChoices' argv and the remembered file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, Input, Label

from ferry.cli import build_parser, main
from ferry.core import options
from ferry.core.bounds import check_bound
from ferry.core.errors import FerryError
from ferry.core.option_layers import layered_choices
from ferry.core.options import Option, Range
from ferry.core.profiles import Profile, load_profiles, save_profiles
from ferry.core.run_choices import RunChoices
from ferry.tui.app import FerryApp
from ferry.tui.migrate_flags import migrate_parser
from tests.tui_helpers import make_source, wait_for, wait_for_text


@pytest.fixture
def extra_option(monkeypatch: pytest.MonkeyPatch) -> Option:
    option = Option(
        "--chunk-overlap", "chunk_overlap", int, 0, Range(0, 512, "32"), metavar="N",
        help="tokens two chunks share", in_dialog=True, in_profile=True,
    )  # fmt: skip
    monkeypatch.setattr(options, "MIGRATE_OPTIONS", [*options.MIGRATE_OPTIONS, option])
    return option


def test_a_declared_option_appears_in_migrate_help(
    extra_option: Option, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["migrate", "--help"])
    text = capsys.readouterr().out
    assert "--chunk-overlap N" in text and "tokens two chunks share" in text
    parser = build_parser()
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


def test_a_declared_option_round_trips_through_a_profile_and_layers_under_choices(
    extra_option: Option, tmp_path: Path
) -> None:
    path = tmp_path / "profiles.toml"
    saved = Profile("src", "chroma+file:///tmp/x", options=(("chunk_overlap", 48),))
    save_profiles([saved], path)
    assert "chunk_overlap = 48" in path.read_text(encoding="utf-8")
    (loaded,) = load_profiles(path)
    assert loaded == saved and loaded.option("chunk_overlap") == 48

    profiles = (loaded, None)
    assert layered_choices(None, [], profiles).value("chunk_overlap") == 48  # profile
    remembered = RunChoices(extras={"chunk_overlap": 16})
    assert layered_choices(remembered, [], profiles).value("chunk_overlap") == 16  # remembered
    explicit = ["--chunk-overlap", "8"]
    assert layered_choices(remembered, explicit, profiles).value("chunk_overlap") == 8
    assert layered_choices(None, [], (None, None)).value("chunk_overlap") == 0  # the default


async def test_a_declared_option_gets_a_field_in_the_run_dialog(
    extra_option: Option, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = Option("--keep-going", "keep_going", bool, help="do not stop", in_dialog=True)
    monkeypatch.setattr(options, "MIGRATE_OPTIONS", [*options.MIGRATE_OPTIONS, switch])
    migrate_parser.cache_clear()  # the preview parses with the declared options
    source = make_source(tmp_path / "data" / "chroma")
    target = f"qdrant+edge://{tmp_path / 'data' / 'qdrant'}"
    app = FerryApp(tmp_path / "state" / "j.sqlite3", source, target, start="inventory",
                   select_all=True)  # fmt: skip
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for_text(pilot, "press m to migrate")
            await pilot.press("m")
            await wait_for_text(pilot, "enter starts")
            field = await wait_for(
                pilot, lambda: app.screen.query("#run-opt-chunk-overlap").first(Input), 30,
                "the declared option's field",
            )  # fmt: skip
            labels = [str(label.render()) for label in app.screen.query(Label)]
            assert field.value == "0" and "Chunk overlap" in labels
            assert isinstance(app.screen.query_one("#run-opt-keep-going"), Checkbox)
            field.value = "32"
            await wait_for(
                pilot, lambda: app.screen.choices().value("chunk_overlap") == 32, 30, "read back"
            )
            field.value = "4096"  # out of its declared range: Start is refused, the flag named
            await wait_for_text(pilot, "--chunk-overlap")
            assert app.screen.query_one("#run-start", Button).disabled
    finally:
        migrate_parser.cache_clear()


async def test_a_declared_profile_option_gets_a_field_in_the_profile_form(
    extra_option: Option, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form shows the declared option under More, saves it, and keeps what it does not
    show by hand (a profile's re-embedding settings survived no edit before)."""
    path = tmp_path / "profiles.toml"
    monkeypatch.setenv("FERRY_CONFIG", str(path))
    kept = Profile("dst", "qdrant+edge:///tmp/q", embed="wordllama/l2_supercat",
                   options=(("chunk_overlap", 48),))  # fmt: skip
    save_profiles([kept], path)
    app = FerryApp(tmp_path / "state" / "j.sqlite3", start="connections")
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for_text(pilot, "dst")
        await pilot.press("e")
        field = await wait_for(
            pilot, lambda: app.screen.query("#profile-opt-chunk-overlap").first(Input), 30,
            "the declared option's field in the profile form",
        )  # fmt: skip
        assert field.value == "48"
        embed = app.screen.query_one("#profile-opt-embed", Input)
        assert embed.value == "wordllama/l2_supercat"
        field.value = "4096"  # outside its declared range: refused in the form, nothing saved
        app.screen.action_save()
        await wait_for_text(pilot, "--chunk-overlap")
        assert load_profiles(path) == [kept]
        field.value = "64"
        app.screen.query_one("#uri", Input).value = "qdrant+edge:///tmp/q2"
        app.screen.action_save()
        await wait_for(pilot, lambda: load_profiles(path)[0].uri.endswith("q2"), 30, "saved")
    (saved,) = load_profiles(path)
    assert saved.option("chunk_overlap") == 64 and saved.embed == "wordllama/l2_supercat"
