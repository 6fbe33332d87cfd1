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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ferry.core.connectors.base import WriteMode
from ferry.core.errors import FerryError
from ferry.core.options import by_dest, dialog_options

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

    # Values of declared dialog options that have no field above (core/options.py), by dest.
    extras: dict[str, Any] = field(default_factory=dict)

    def value(self, dest: str) -> Any:
        """The chosen value of the dialog option `dest` (a field, else an extra, else default)."""
        if dest in _FIELDS:
            return getattr(self, dest)
        option = by_dest(dest)
        return self.extras.get(dest, option.shown_default() if option else None)

    def check(self) -> RunChoices:
        """Refuse what `ferry migrate` would refuse, with the field to fix."""
        from ferry.core.bounds import check_bound  # the ranges `ferry migrate` checks

        for option in dialog_options():
            value = self.value(option.dest)
            if option.bounds is not None:
                check_bound("migrate", option.flag, value)
            if option.choices and value and value not in option.choices:
                raise FerryError(
                    f"unknown {option.label.lower()} {value!r}",
                    where=option.flag,
                    fix=" or ".join(option.choices),
                )
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
        """The `ferry migrate` flags for these choices, from the declared dialog options.

        An option marked `dialog_always` is always passed; any other only when it differs
        from the dialog's default, `supported` lists it (the installed `ferry migrate` knows
        it) and the option it `needs` is set.
        """
        argv: list[str] = []
        for option in dialog_options():
            value = self.value(option.dest)
            if not option.dialog_always:
                if value in (None, "", False) or value == option.shown_default():
                    continue
                if option.flag not in supported:
                    continue
                if option.needs and not self.value(option.needs):
                    continue
            if option.type is bool:
                argv.append(option.flag)
            else:
                argv += [option.flag, option.to_text(value)]
        return argv

    @classmethod
    def from_argv(cls, argv: list[str], base: RunChoices | None = None) -> RunChoices:
        """Choices from `ferry migrate` flags (e.g. `ferry demo`'s `--rate`); others kept."""
        choices = base or cls()
        options = {o.flag: o for o in dialog_options()}
        changes: dict[str, Any] = {}
        extras = dict(choices.extras)
        for index, flag in enumerate(argv):
            option = options.get(flag)
            if option is None:
                continue
            if option.type is bool:
                value: Any = True
            elif index + 1 < len(argv):
                value = option.parse(argv[index + 1])
            else:
                continue
            if option.dest in _FIELDS:
                changes[option.dest] = value
            else:
                extras[option.dest] = value
        return replace(choices, **changes, extras=extras)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunChoices:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# RunChoices' own fields (the hand-made dialog fields); other dialog options go in `extras`.
_FIELDS = frozenset(f.name for f in fields(RunChoices)) - {"extras"}


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
