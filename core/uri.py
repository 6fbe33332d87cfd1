"""Connection URIs: one string says which database, where, and how to authenticate.

Credentials never live in a URI. ``?api_key_env=VAR`` names the environment variable that
holds the key; the key is read at connect time and never stored, printed or journaled.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ferry.core.errors import FerryError
from ferry.core.secrets import has_userinfo, remember, remember_env

# What each scheme means, filled by the backends as they register (core/connectors/registry.py):
# scheme -> (engine, transport); the query options each understands (anything else is a typo
# that would be ignored); the port of a host given without one; the examples an error shows.
SCHEMES: dict[str, tuple[str, str]] = {}
OPTIONS: dict[str, set[str]] = {}
DEFAULT_PORTS: dict[str, int] = {}
EXAMPLES: list[str] = []
FLAG_OPTIONS = {"api", "upgrade_copy", "grpc"}
FLAG_WORDS = {"1", "true", "yes", "on", "0", "false", "no", "off"}


def add_scheme(
    scheme: str,
    engine: str,
    transport: str,
    options: Iterable[str] = (),
    example: str | None = None,
    default_port: int | None = None,
) -> None:
    """Make `scheme` a valid URI; called by `connectors.registry.register`, not by hand."""
    SCHEMES[scheme] = (engine, transport)
    OPTIONS[scheme] = set(options)
    if default_port is not None:
        DEFAULT_PORTS[scheme] = default_port
    if example and example not in EXAMPLES:
        EXAMPLES.append(example)


def known_schemes() -> dict[str, tuple[str, str]]:
    """Every registered scheme, the built-in backends loaded first.

    Why by name: the connectors take a `ConnectionSpec`, so they sit above this module and an
    import of them here would be a circle; the schemes are theirs, registered when
    `ferry.core.connectors` is imported. Loading that package by name, once, is what a plugin
    host does (dlt resolves a destination reference the same way)."""
    importlib.import_module("ferry.core.connectors")
    return SCHEMES


@dataclass(frozen=True)
class ConnectionSpec:
    """A parsed URI. Safe to show anywhere: a URI never holds a secret, only a variable name."""

    uri: str
    engine: str  # chroma | qdrant | parquet | jsonl | memory
    transport: str  # file | edge | memory | http | https
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_embedded(self) -> bool:
        return self.transport in {"file", "edge", "memory"}

    def api_key(self) -> str | None:
        """The key from the environment variable the URI names, or None when none is named."""
        var = self.params.get("api_key_env")
        if not var:
            return None
        value = os.environ.get(var)
        if not value:
            raise FerryError(
                f"environment variable {var} is not set",
                where=self.uri,
                fix=f"export {var}=<your API key> before running ferry",
            )
        remember(value)
        return value

    def flag(self, name: str) -> bool:
        return self.params.get(name, "").lower() in {"1", "true", "yes", "on"}


def parse_uri(uri: str) -> ConnectionSpec:
    """Parse and check a connection URI; a bad one is a one-line error saying what to type."""
    uri = uri.strip()
    scheme, sep, _rest = uri.partition(":")
    if has_userinfo(uri):  # before anything else: the refusal must not repeat the password
        raise FerryError(
            "a user name or password in a URI is not accepted",
            where=(scheme if sep else "uri") + "://«redacted»@…",
            fix="drop the `user:password@` part; save the connection as a profile and pass "
            "the key by name with ?api_key_env=VAR",
        )
    schemes = known_schemes()
    if not sep or scheme not in schemes:
        raise FerryError(
            f"unknown connection URI {uri!r}",
            fix=f"use one of: {', '.join(EXAMPLES)}",
        )
    engine, transport = schemes[scheme]
    parts = urlsplit(uri)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key in params:
        if key.lower() in {"api_key", "apikey", "key", "token", "password"}:
            raise FerryError(
                "secrets are not accepted in URIs",
                where=scheme + "://…",
                fix="put the key in an environment variable and pass ?api_key_env=VAR",
            )
    check_options(scheme, params, uri)
    remember_env(params.get("api_key_env"))  # its value is masked in every error text
    if transport in {"file", "edge"}:
        raw_path = parts.path
        if parts.netloc:
            raise FerryError(
                f"{scheme} URIs need an absolute path with three slashes",
                where=uri,
                fix=f"write {scheme}:///abs/path",
            )
        if not raw_path.startswith("/"):
            raise FerryError(
                f"{scheme} URIs need an absolute path",
                where=uri,
                fix=f"write {scheme}:///abs/path",
            )
        return ConnectionSpec(uri, engine, transport, path=Path(raw_path), params=params)
    if engine == "memory":  # memory://NAME: NAME picks the process-local store
        name = parts.netloc or parts.path.strip("/") or "default"
        return ConnectionSpec(uri, engine, transport, host=name, params=params)
    if transport == "memory":
        return ConnectionSpec(uri, engine, transport, params=params)
    if not parts.hostname:
        raise FerryError(f"no host in {uri!r}", fix=f"write {scheme}://host:port")
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError as exc:
        raise FerryError(f"bad port in {uri!r}", fix="use host:port with a number") from exc
    return ConnectionSpec(uri, engine, transport, host=parts.hostname, port=port, params=params)


def check_options(scheme: str, params: dict[str, str], uri: str) -> None:
    """Refuse an option this scheme does not know, or a value it cannot mean."""
    known = OPTIONS.get(scheme)
    if known is None:
        return
    where = uri.split("?", 1)[0]
    for key, value in params.items():
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise FerryError(
                f"unknown option ?{key}= for {scheme}",
                where=where,
                fix=f"options here: {allowed}",
            )
        if key in FLAG_OPTIONS and value.lower() not in FLAG_WORDS:
            raise FerryError(
                f"?{key}={value} is not a yes/no value", where=where, fix=f"write ?{key}=1"
            )
        if key == "timeout":
            try:
                seconds = float(value)
            except ValueError:
                seconds = float("nan")
            if not (0 < seconds < 86_400):
                raise FerryError(
                    f"?timeout={value} is not a number of seconds",
                    where=where,
                    fix="write ?timeout=60",
                )
        if key in {"api_key_env", "tenant", "database"} and not value.strip():
            raise FerryError(f"?{key}= is empty", where=where, fix=f"give ?{key}= a name")


def check_apart(source_uri: str, target_uri: str) -> None:
    """Refuse a target whose directory is inside, contains or is the source's directory.

    The Chroma source directory is read-only to Ferry: a Qdrant Edge (or any file) target
    inside it would write into it, and a target that contains it would mix the two.
    """
    source, target = parse_uri(source_uri), parse_uri(target_uri)
    if source.path is not None and target.path is not None:
        check_paths_apart(source.path, target.path)


def check_paths_apart(source: Path, target: Path, what: str = "target directory") -> None:
    """Refuse a directory Ferry writes (`target`) that is inside, contains or is `source`."""
    a, b = _real(source), _real(target)
    if a == b or a.is_relative_to(b) or b.is_relative_to(a):
        raise FerryError(
            f"the {what} overlaps the source directory",
            where=f"{target} vs {source}",
            fix=f"choose a {what} outside the source (and not containing it)",
        )


def _real(path: Path) -> Path:
    """The resolved path, even when its last parts do not exist yet (a new target)."""
    return Path(os.path.realpath(path))
