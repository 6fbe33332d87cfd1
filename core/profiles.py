"""Named connection profiles: a small TOML file in the XDG config dir.

A profile is a name, a URI and, when the database wants a key, the *name* of the environment
variable that holds it; optionally the payload layout (core.layouts) runs from or to it write
by default (the framework its application uses; "" lets each run detect it). The key itself is never read here, never stored and never shown: it is
looked up at connect time by `ConnectionSpec.api_key()`. The file is written atomically (a
temporary file renamed over the old one) with mode 0600, so a crash never leaves half a
config and other users cannot read which databases you use.

``$FERRY_CONFIG`` overrides the path, so tests never read the developer's own profiles.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tomli_w

from ferry.core.connectors import PingResult, open_connector
from ferry.core.errors import FerryError, in_words
from ferry.core.layouts import LAYOUT_NAMES
from ferry.core.options import profile_options
from ferry.core.uri import parse_uri

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def looks_like_a_key(text: str) -> bool:
    """Long, mixed-case-or-digits tokens are keys, not variable names: refuse to store them."""
    has_digit = any(c.isdigit() for c in text)
    has_lower = any(c.islower() for c in text)
    return len(text) >= 20 and has_digit and has_lower


def profiles_path() -> Path:
    """Where profiles live: $FERRY_CONFIG, else <user config dir>/ferry/profiles.toml."""
    override = os.environ.get("FERRY_CONFIG")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("ferry")) / "profiles.toml"


@dataclass(frozen=True)
class Profile:
    """One named connection. `api_key_env` is a variable *name*, never a key."""

    name: str
    uri: str
    api_key_env: str = ""
    layout: str = ""  # one of core.layouts.LAYOUT_NAMES; "": detect per collection
    # Runs to or from it re-embed with this model (`--embed`; docs/re-embedding.md): its
    # endpoint and the *name* of the variable holding the endpoint's key. "": copy vectors.
    embed: str = ""
    embed_base_url: str = ""
    embed_api_key_env: str = ""
    # Declared migrate options marked `in_profile` that have no field above (core/options.py),
    # as (dest, value) pairs: written to and read from the file under their dest.
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, dest: str) -> Any:
        """The value this profile gives the declared option `dest`, or None."""
        return dict(self.options).get(dest)

    @property
    def kind(self) -> str:
        """What the user sees in the Type column: "chroma file", "qdrant http", …"""
        spec = parse_uri(self.uri)
        return f"{spec.engine} {spec.transport}"

    def connect_uri(self) -> str:
        """The URI to open: the profile's, with ?api_key_env=VAR added when one is named."""
        if not self.api_key_env:
            return self.uri
        parts = urlsplit(self.uri)
        params = dict(parse_qsl(parts.query))
        params["api_key_env"] = self.api_key_env
        return urlunsplit(parts._replace(query=urlencode(params)))

    def check(self) -> Profile:
        """Refuse what would be unsafe or unusable, with a one-line fix."""
        if not PROFILE_NAME.match(self.name):
            raise FerryError(
                f"bad profile name {self.name!r}",
                fix="use letters, digits, '-', '_' or '.' (up to 64)",
            )
        parse_uri(self.uri)  # also refuses secrets in the URI
        if self.api_key_env and (
            not ENV_NAME.match(self.api_key_env) or looks_like_a_key(self.api_key_env)
        ):
            raise FerryError(
                "the API key field takes the NAME of an environment variable, not the key",
                where=f"profile {self.name}",
                fix="export MY_KEY=<key> in your shell and enter MY_KEY here",
            )
        if self.embed_api_key_env and (
            not ENV_NAME.match(self.embed_api_key_env) or looks_like_a_key(self.embed_api_key_env)
        ):
            raise FerryError(
                "embed_api_key_env takes the NAME of an environment variable, not the key",
                where=f"profile {self.name}",
                fix='export MY_KEY=<key> in your shell and write embed_api_key_env = "MY_KEY"',
            )
        if self.layout and self.layout not in LAYOUT_NAMES:
            raise FerryError(
                f"unknown layout {self.layout!r}",
                where=f"profile {self.name}",
                fix=f"use one of {', '.join(LAYOUT_NAMES)}, or leave it empty to detect",
            )
        return self


def load_profiles(path: Path | None = None) -> list[Profile]:
    """Every profile in the file, in file order; a missing file means none."""
    path = path or profiles_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FerryError(
            f"cannot read the profiles file: {exc}", where=str(path), fix="fix or remove the file"
        ) from exc
    table = data.get("profiles") or {}
    if not isinstance(table, dict):  # `profiles = "x"` or a list: not [profiles.NAME] tables
        raise FerryError(
            f"`profiles` in the profiles file is a {type(table).__name__}, not a table",
            where=str(path),
            fix='write each profile as [profiles.NAME] with uri = "..." (or remove the file)',
        )
    profiles = []
    for name, entry in table.items():
        if isinstance(entry, dict) and isinstance(entry.get("uri"), str):
            # Files written before profiles had a layout load with "" (detect).
            profiles.append(
                Profile(
                    name,
                    entry["uri"],
                    str(entry.get("api_key_env") or ""),
                    str(entry.get("layout") or ""),
                    str(entry.get("embed") or ""),
                    str(entry.get("embed_base_url") or ""),
                    str(entry.get("embed_api_key_env") or ""),
                    _declared_options(entry),
                )
            )
    return profiles


def _declared_options(entry: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The `in_profile` options without a Profile field that this file entry sets."""
    own = set(Profile.__dataclass_fields__)
    found = []
    for option in profile_options():
        if option.dest in own or option.dest not in entry:
            continue
        value = entry[option.dest]
        if option.type in (int, float) and isinstance(value, int | float):
            value = option.type(value)
        found.append((option.dest, value))
    return tuple(found)


def save_profiles(profiles: list[Profile], path: Path | None = None) -> Path:
    """Write all profiles atomically, mode 0600."""
    path = path or profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, dict[str, dict[str, Any]]] = {"profiles": {}}
    for profile in profiles:
        entry: dict[str, Any] = {"uri": profile.uri}
        if profile.api_key_env:
            entry["api_key_env"] = profile.api_key_env
        if profile.layout:
            entry["layout"] = profile.layout
        for key in ("embed", "embed_base_url", "embed_api_key_env"):
            if getattr(profile, key):
                entry[key] = getattr(profile, key)
        entry.update(dict(profile.options))
        document["profiles"][profile.name] = entry
    fd, temporary = tempfile.mkstemp(prefix=".profiles-", suffix=".toml", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def upsert_profile(
    profile: Profile, replacing: str | None = None, path: Path | None = None
) -> None:
    """Add a profile, or replace the one named `replacing` (an edit may rename it)."""
    profile.check()
    profiles = load_profiles(path)
    old = replacing or profile.name
    if profile.name != old and any(p.name == profile.name for p in profiles):
        raise FerryError(f"a profile named {profile.name!r} exists", fix="choose another name")
    if replacing is None and any(p.name == profile.name for p in profiles):
        raise FerryError(f"a profile named {profile.name!r} exists", fix="edit it instead")
    replaced = [profile if p.name == old else p for p in profiles]
    if not any(p.name == old for p in profiles):
        replaced.append(profile)
    save_profiles(replaced, path)


def delete_profile(name: str, path: Path | None = None) -> bool:
    """Remove a profile; False when there was none of that name."""
    profiles = load_profiles(path)
    kept = [p for p in profiles if p.name != name]
    if len(kept) == len(profiles):
        return False
    save_profiles(kept, path)
    return True


async def ping_profile(profile: Profile, timeout: float = 15.0) -> PingResult:
    """Connect and ping: server version, latency and auth, or the one-line error."""
    started = time.perf_counter()
    try:
        connector = open_connector(profile.connect_uri())
    except FerryError as exc:
        return PingResult(ok=False, auth="n/a", detail=exc.one_line())
    try:
        result = await asyncio.wait_for(connector.ping(), timeout)
    except FerryError as exc:
        return PingResult(ok=False, detail=exc.one_line())
    except TimeoutError:
        return PingResult(ok=False, detail=f"no answer within {timeout:.0f}s")
    except Exception as exc:  # a driver's own exception: still one line, never a traceback
        return PingResult(ok=False, detail=in_words(exc))
    finally:
        try:
            await connector.close()
        except Exception:
            pass
    if result.latency_ms is None:
        result.latency_ms = (time.perf_counter() - started) * 1000
    return result
