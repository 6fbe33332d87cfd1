"""A payload layout in a connection profile (issue 10): saved and loaded with the profile,
refused by name when unknown, used by `ferry migrate` between profiles unless `--layout` is
given, and offered first by the TUI's run dialog and edited in the profile form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select

from ferry.cli import main
from ferry.core.errors import FerryError
from ferry.core.profile_defaults import (
    ProfileLayout,
    profile_layout,
    profiles_for_uris,
    resolve_endpoint,
)
from ferry.core.profiles import Profile, load_profiles, profiles_path, upsert_profile
from ferry.tui.app import FerryApp
from tests.conftest import make_chroma
from tests.tui_helpers import screen_text, wait_for, wait_for_text


@pytest.fixture
def source(tmp_path: Path) -> str:
    return f"chroma+file://{make_chroma(tmp_path / 'src', {'docs': {'n': 20, 'metric': 'l2'}})}"


@pytest.fixture
def target(tmp_path: Path) -> str:
    return f"qdrant+edge://{tmp_path / 'edge'}"


# -- the profile file -----------------------------------------------------------------------
def test_layout_round_trips_and_an_old_file_without_it_still_loads() -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text(  # written before profiles had a layout
        '[profiles.old]\nuri = "chroma+file:///data/chroma"\napi_key_env = "K"\n'
    )
    assert load_profiles() == [Profile("old", "chroma+file:///data/chroma", "K", "")]
    upsert_profile(Profile("app", "chroma+file:///data/app", layout="langchain"))
    upsert_profile(Profile("old", "chroma+file:///data/chroma", "K", "haystack"), "old")
    assert load_profiles() == [
        Profile("old", "chroma+file:///data/chroma", "K", "haystack"),
        Profile("app", "chroma+file:///data/app", "", "langchain"),
    ]
    upsert_profile(Profile("app", "chroma+file:///data/app"), "app")  # back to "detect"
    assert "layout" not in path.read_text().split("[profiles.app]")[1]
    assert load_profiles()[1].layout == ""


def test_an_unknown_layout_is_one_line_naming_the_profile_and_the_fix() -> None:
    with pytest.raises(FerryError) as refused:
        upsert_profile(Profile("app", "chroma+file:///data/app", layout="django"))
    line = refused.value.one_line()
    assert "\n" not in line
    assert "unknown layout 'django'" in line and "profile app" in line
    assert "langchain" in line and "leave it empty" in line
    assert not profiles_path().exists()  # nothing written


def test_a_hand_edited_bad_layout_is_refused_when_the_cli_uses_the_profile(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'[profiles.app]\nuri = "{source}"\nlayout = "langchian"\n')
    code = main(["migrate", "--from", "app", "--to", "qdrant+memory:", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("ferry: error: unknown layout 'langchian'")
    assert "profile app" in err and "use one of flat" in err


def test_which_profile_names_the_layout() -> None:
    app = Profile("app", "chroma+file:///a", layout="llamaindex")
    prod = Profile("prod", "qdrant+http://q:6333", "KEY", layout="langchain")
    plain = Profile("plain", "qdrant+memory:")
    assert profile_layout(app, prod) == ProfileLayout("llamaindex", "app")  # the source's first
    assert profile_layout(None, prod).origin == "profile prod"
    assert profile_layout(app, None).layout == "llamaindex"
    assert profile_layout(None, plain) == ProfileLayout()
    # The TUI knows only URIs: a profile is found by the URI it connects to (its key name too).
    profiles = [app, prod, plain]
    assert profiles_for_uris("chroma+file:///a", prod.connect_uri(), profiles) == (app, prod)
    assert profiles_for_uris("chroma+file:///b", "qdrant+http://q:6333", profiles) == (None, None)
    assert resolve_endpoint("chroma+file:///x", "--from", profiles) == ("chroma+file:///x", None)
    assert resolve_endpoint("prod", "--to", profiles) == (prod.connect_uri(), prod)
    with pytest.raises(FerryError, match="neither a URI nor a profile name"):
        resolve_endpoint("nope", "--from", profiles)


# -- ferry migrate ----------------------------------------------------------------------------
def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["migrate", *argv, "--dry-run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_migrate_between_profiles_uses_their_layout_unless_layout_is_given(
    tmp_path: Path, source: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upsert_profile(Profile("app", source, layout="langchain"))
    upsert_profile(Profile("edge", target))
    plan = dry_run(capsys, "--from", "app", "--to", "edge")
    assert plan["source"] == source and plan["target"] == target
    assert plan["options"]["layout"] == "langchain"
    row = plan["collections"][0]
    assert row["layout"] == "langchain"
    assert row["layout_reason"] == "profile app: layout langchain"

    plan = dry_run(capsys, "--from", "app", "--to", "edge", "--layout", "haystack")
    assert plan["collections"][0]["layout"] == "haystack"  # an explicit --layout wins
    assert plan["collections"][0]["layout_reason"] == "--layout haystack"

    # URIs name no profile: nothing but detection (these records carry no framework marks).
    plan = dry_run(capsys, "--from", source, "--to", target)
    assert plan["collections"][0]["layout"] == "flat"
    assert not (tmp_path / "edge").exists()  # a dry run writes nothing


def test_migrate_from_a_profile_that_does_not_exist_is_one_line(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upsert_profile(Profile("app", "chroma+file:///data/app"))
    assert main(["migrate", "--from", "appp", "--to", target, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'appp' is neither a URI nor a profile name (profiles: app)" in err


# -- the TUI ----------------------------------------------------------------------------------
async def test_run_dialog_offers_the_profile_layout_first(
    tmp_path: Path, source: str, target: str
) -> None:
    upsert_profile(Profile("app", source, layout="llamaindex"))
    upsert_profile(Profile("edge", target))
    app = FerryApp(tmp_path / "state" / "j.db", source, target, start="inventory", select_all=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "press m to migrate")
        await pilot.press("m")
        await wait_for_text(pilot, "enter starts")
        dialog = app.screen
        assert dialog.query_one("#run-layout", Select).value == "llamaindex"
        plan = dialog.query_one("#run-plan")
        await wait_for(
            pilot, lambda: "llamaindex" in str(plan.get_row("docs")[2]), what="planned layout"
        )
        assert dialog.choices().layout == "llamaindex"  # what Start would pass as --layout


async def test_profile_form_shows_and_saves_the_layout(tmp_path: Path) -> None:
    upsert_profile(Profile("app", "chroma+file:///data/app", layout="haystack"))
    app = FerryApp(tmp_path / "state" / "j.db", start="connections")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "app")
        await pilot.press("e")
        form = await wait_for(
            pilot, lambda: app.screen.query("#layout") and app.screen, what="the form"
        )
        text = screen_text(app)
        assert "Layout" in text and "haystack" in text  # shown, and fits 80×24
        assert "Save" in text and "Cancel" in text
        select = form.query_one("#layout", Select)
        assert select.value == "haystack"
        select.focus()
        await pilot.press("enter")  # open the list, move to the next entry, pick it
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: select.value != "haystack", what="another layout picked")
        picked = select.value
        form.query_one("#name", Input).focus()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, what="the form closed")
    assert picked == "llamaindex"
    assert load_profiles() == [Profile("app", "chroma+file:///data/app", "", "llamaindex")]
