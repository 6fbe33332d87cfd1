"""Connection profiles: TOML in $FERRY_CONFIG, 0600, atomic, and never a secret in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ferry.core.errors import FerryError
from ferry.core.profiles import (
    Profile,
    delete_profile,
    load_profiles,
    ping_profile,
    profiles_path,
    upsert_profile,
)
from tests.conftest import make_chroma


def test_path_follows_ferry_config(tmp_path: Path) -> None:
    assert profiles_path() == tmp_path / "config" / "profiles.toml"


def test_add_edit_delete_round_trip_with_mode_0600() -> None:
    upsert_profile(Profile("local", "chroma+file:///data/chroma"))
    upsert_profile(Profile("cloud", "qdrant+https://q.example:6333", "QDRANT_KEY"))
    path = profiles_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_profiles() == [
        Profile("local", "chroma+file:///data/chroma"),
        Profile("cloud", "qdrant+https://q.example:6333", "QDRANT_KEY"),
    ]
    upsert_profile(Profile("cloud-eu", "qdrant+https://eu.example:6333", "QDRANT_KEY"), "cloud")
    assert [p.name for p in load_profiles()] == ["local", "cloud-eu"]
    assert delete_profile("local") is True
    assert delete_profile("local") is False
    assert [p.name for p in load_profiles()] == ["cloud-eu"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".profiles-")]


def test_duplicate_names_are_refused() -> None:
    upsert_profile(Profile("a", "qdrant+memory:"))
    with pytest.raises(FerryError, match="exists"):
        upsert_profile(Profile("a", "qdrant+memory:"))


@pytest.mark.parametrize(
    "profile",
    [
        Profile("k", "qdrant+http://h:6333?api_key=sk-123"),  # a secret in the URI
        Profile("k", "qdrant+http://h:6333", "sk-live-abcdef"),  # a key where a name goes
        Profile("k", "qdrant+http://h:6333", "a1b2c3d4e5f6a7b8c9d0e1f2"),  # looks like a key
        Profile("bad name!", "qdrant+memory:"),
        Profile("x", "mysql://h"),
    ],
)
def test_unsafe_or_unusable_profiles_are_refused_and_not_written(profile: Profile) -> None:
    with pytest.raises(FerryError):
        upsert_profile(profile)
    assert not profiles_path().exists()


def test_the_file_holds_the_variable_name_never_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_TEST_KEY", "super-secret-value-42")
    profile = Profile("cloud", "qdrant+http://127.0.0.1:6333", "FERRY_TEST_KEY")
    upsert_profile(profile)
    text = profiles_path().read_text()
    assert "FERRY_TEST_KEY" in text and "super-secret-value-42" not in text
    assert profile.connect_uri() == "qdrant+http://127.0.0.1:6333?api_key_env=FERRY_TEST_KEY"


async def test_ping_a_real_embedded_chroma(tmp_path: Path) -> None:
    make_chroma(tmp_path / "src", {"notes-a": {"n": 10, "dim": 4}})
    result = await ping_profile(Profile("src", f"chroma+file://{tmp_path / 'src'}"))
    assert result.ok, result.detail
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert "1 collection" in result.detail


async def test_ping_failure_is_one_line_and_names_the_variable_not_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FERRY_UNSET_KEY", raising=False)
    result = await ping_profile(Profile("cloud", "qdrant+http://127.0.0.1:9", "FERRY_UNSET_KEY"))
    assert not result.ok
    assert "\n" not in result.detail and result.detail
    os.environ.pop("FERRY_UNSET_KEY", None)


@pytest.mark.parametrize("text", ['profiles = "x"\n', "profiles = [1, 2]\n", "profiles = 3\n"])
def test_a_profiles_file_whose_profiles_is_not_a_table_is_one_line_exit_2(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ferry.cli import main

    path = profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(FerryError, match="not a table"):
        load_profiles()
    assert main(["migrate", "--from", "local", "--to", "qdrant+memory:", "--yes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[profiles.NAME]" in err[0] and "unexpected" not in err[0]
    assert path.read_text() == text
