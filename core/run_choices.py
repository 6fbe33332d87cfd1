"""How a person wants runs between one source and one target to go, remembered.

The run dialog (TUI) asks for batch size, workers, rate, write mode, target name and payload
layout; what was chosen last time for the same source → target pair is offered again. The
choices live beside the journal (`run-choices.json` in the state dir, mode 0600, written
atomically), keyed by the pair of URIs (which never hold credentials: a key is named by
`?api_key_env=VAR`). They reach the run as the `ferry migrate` flags a user could type
(`to_argv`), so the detached process and its journal show exactly what was chosen.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ferry.core.connectors.base import WriteMode
from ferry.core.errors import FerryError

FILE_NAME = "run-choices.json"
SAME_NAME = "{name}"  # the target-name template meaning "the source collection's name"


@dataclass(frozen=True)
class RunChoices:
    """The options of one run, as the dialog shows them."""

    batch_size: int = 1000
    workers: int = 2
    rate: float | None = None  # records per second; None: no cap
    mode: str = WriteMode.CREATE.value
    target_name: str = SAME_NAME  # a template: {name} is the source collection's name
    layout: str = ""  # "" : the default layout of `ferry migrate`
    # Re-embedding (`--embed`): "" copies the vectors. The endpoint and the *name* of the
    # variable holding its key come from the flags' defaults or a profile.
    embed: str = ""
    embed_base_url: str = ""
    embed_api_key_env: str = ""

    def check(self) -> RunChoices:
        """Refuse what `ferry migrate` would refuse, with the field to fix."""
        from ferry.core.bounds import check_bound  # the ranges `ferry migrate` checks

        check_bound("migrate", "--batch-size", self.batch_size)
        check_bound("migrate", "--workers", self.workers)
        check_bound("migrate", "--rate", self.rate)
        if self.mode not in {m.value for m in WriteMode}:
            raise FerryError(f"unknown write mode {self.mode!r}", fix="create or append")
        if not self.target_name.strip():
            raise FerryError("target name is empty", where="run options", fix="use {name}")
        provider, _, model = self.embed.partition("/")
        if self.embed and (not provider or not model or " " in self.embed):
            raise FerryError(
                f"embed {self.embed!r} is not PROVIDER/MODEL",
                where="run options",
                fix="e.g. wordllama/l2_supercat or openai/text-embedding-3-small; empty: copy",
            )
        return self

    def to_argv(self, supported: Collection[str] = ()) -> list[str]:
        """The `ferry migrate` flags for these choices.

        `--target-name` and `--layout` are passed only when `supported` lists them (the
        installed `ferry migrate` knows them) and they differ from the default.
        """
        argv = ["--batch-size", str(self.batch_size), "--workers", str(self.workers)]
        if self.rate:
            argv += ["--rate", f"{self.rate:g}"]
        argv += ["--mode", self.mode]
        if "--target-name" in supported and self.target_name != SAME_NAME:
            argv += ["--target-name", self.target_name]
        if "--layout" in supported and self.layout:
            argv += ["--layout", self.layout]
        if "--embed" in supported and self.embed:
            argv += ["--embed", self.embed]
            if self.embed_base_url:
                argv += ["--embed-base-url", self.embed_base_url]
            if self.embed_api_key_env:
                argv += ["--embed-api-key-env", self.embed_api_key_env]
        return argv

    @classmethod
    def from_argv(cls, argv: list[str], base: RunChoices | None = None) -> RunChoices:
        """Choices from `ferry migrate` flags (e.g. `ferry demo`'s `--rate`); others kept."""
        choices = base or cls()
        flags = {"--batch-size": "batch_size", "--workers": "workers", "--rate": "rate",
                 "--mode": "mode", "--target-name": "target_name", "--layout": "layout",
                 "--embed": "embed", "--embed-base-url": "embed_base_url",
                 "--embed-api-key-env": "embed_api_key_env"}  # fmt: skip
        changes: dict[str, Any] = {}
        for flag, value in zip(argv, argv[1:], strict=False):
            name = flags.get(flag)
            if name in {"batch_size", "workers"}:
                changes[name] = int(value)
            elif name == "rate":
                changes[name] = float(value) or None
            elif name:
                changes[name] = value
        return replace(choices, **changes)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunChoices:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def pair_key(source_uri: str, target_uri: str) -> str:
    return f"{source_uri} → {target_uri}"


def choices_path(state_path: Path) -> Path:
    """Beside the journal: the state dir holds what Ferry remembers."""
    return Path(state_path).parent / FILE_NAME


def load_choices(state_path: Path, source_uri: str, target_uri: str) -> RunChoices | None:
    """The choices last used from this source to this target, or None."""
    try:
        data = json.loads(choices_path(state_path).read_text(encoding="utf-8"))
        entry = data.get(pair_key(source_uri, target_uri))
        return RunChoices.from_json(entry).check() if isinstance(entry, dict) else None
    except (OSError, ValueError, TypeError, FerryError):
        return None  # unreadable or stale: offer the defaults, the next run rewrites it


def save_choices(state_path: Path, source_uri: str, target_uri: str, choices: RunChoices) -> Path:
    """Remember `choices` for this pair (atomic replace, mode 0600)."""
    path = choices_path(state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[pair_key(source_uri, target_uri)] = asdict(choices)
    fd, temporary = tempfile.mkstemp(prefix=".run-choices-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
