"""Where each source collection lands: named targets (`docs=docs_v2`) and a template for
blue-green (`{name}_v2`).

Why a module of its own: the same pair must mean the same thing in the plan, the run's
identity (so the same pairs resume the same run), the journal's collection rows, validation
(which defaults to the pairs the latest run used) and cutover (whose alias is usually the
source name, pointing at the target name). One parser, one resolver, one set of checks.

Precedence: an explicit `NAME=TARGET` wins over the template; without either, a collection
keeps its name on a target without aliases and is copied to `NAME_v1` on one with aliases
(`copy_names`): the application's name stays free for the alias the cutover points at the
copy — the Qdrant way (physical collections under their own names, the app's name an alias).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.core.errors import FerryError

PLACEHOLDER = "name"
COPY_TEMPLATE = "{name}_v1"  # the default physical name on a target with aliases


def parse_collection_args(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """`--collection docs` / `--collection docs=docs_v2` → (names in order, explicit pairs).

    Chroma names cannot hold `=`, so the split is unambiguous. A plain NAME beside
    NAME=TARGET adds nothing (a launcher may pass both); two different targets for one
    source are refused.
    """
    names: list[str] = []
    pairs: dict[str, str] = {}
    for value in values:
        name, eq, target = value.partition("=")
        name, target = name.strip(), target.strip()
        if not name or (eq and not target):
            raise FerryError(f"bad --collection {value!r}", fix="write NAME or NAME=TARGET")
        if target:
            if pairs.get(name, target) != target:
                raise FerryError(
                    f"--collection {name} is given two targets ({pairs[name]!r} and {target!r})",
                    fix=f"keep one --collection {name}=TARGET",
                )
            pairs[name] = target
        if name not in names:
            names.append(name)
    return names, pairs


def check_template(template: str) -> None:
    """A target-name template holds `{name}` (the source name) and nothing else to fill."""
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        raise FerryError(
            f"bad --target-name {template!r}: {exc}", fix="e.g. --target-name '{name}_v2'"
        ) from exc
    fields = [(f, spec, conv) for f, spec, conv in parts if f is not None]
    if not fields or any(f != PLACEHOLDER or spec or conv for f, spec, conv in fields):
        raise FerryError(
            f"bad --target-name {template!r}: it must contain {{name}} and no other field",
            fix="e.g. --target-name '{name}_v2'",
        )


@dataclass(frozen=True)
class TargetNames:
    """Explicit `source → target` pairs and an optional template; resolves any source name."""

    pairs: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None
    # Nothing was asked for on a product surface (`ferry migrate`, the TUI): a target with
    # aliases gets `{name}_v1` (copy_names). The core API keeps names unless told.
    copy_default: bool = False

    def __post_init__(self) -> None:
        if self.template is not None:
            check_template(self.template)

    @classmethod
    def from_args(cls, collections: Sequence[str], template: str | None = None) -> TargetNames:
        """What `ferry migrate` was given; without --target-name, the default copy names."""
        _names, pairs = parse_collection_args(collections)
        return cls(pairs, template or None, copy_default=not template)

    def resolve(self, name: str) -> str:
        if name in self.pairs:
            return self.pairs[name]
        if self.template:
            return self.template.format(name=name)
        return name

    @property
    def trivial(self) -> bool:
        """Every collection keeps its name (the default: nothing to record or show)."""
        return not self.template and all(k == v for k, v in self.pairs.items())

    def identity(self, names: Sequence[str]) -> dict[str, Any] | None:
        """What the run's identity keeps of the targets (None: every name kept).

        With named collections, the resolved pairs: `docs=docs_v2` and
        `--target-name '{name}_v2' --collection docs` are the same run. For "all
        collections", the template (pairs always name their collections).
        """
        if names:
            moved = {n: self.resolve(n) for n in sorted(names) if self.resolve(n) != n}
            return {"pairs": moved} if moved else None
        return {"template": self.template} if self.template else None

    def to_json(self) -> dict[str, Any]:
        return {"pairs": dict(self.pairs), "template": self.template}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TargetNames:
        data = data or {}
        return cls(dict(data.get("pairs") or {}), data.get("template"))

    def argv(self, names: Iterable[str]) -> list[str]:
        """`ferry migrate` flags that mean the same (the TUI's launcher passes these)."""
        args: list[str] = []
        for name in names:
            if name in self.pairs:
                args += ["--collection", f"{name}={self.pairs[name]}"]
        if self.template:
            args += ["--target-name", self.template]
        return args


def clashes(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """target → the sources that would all be written into it (only targets with two+)."""
    by_target: dict[str, list[str]] = {}
    for source, target in pairs:
        by_target.setdefault(target, []).append(source)
    return {t: s for t, s in by_target.items() if len(s) > 1}


def copy_names(
    targets: TargetNames, has_aliases: bool, chosen: Iterable[str], earlier: Mapping[str, str]
) -> TargetNames:
    """The names a run writes under when none was asked for: `{name}_v1` on a target that
    keeps aliases, so the app's own name can become the alias of the validated copy.

    `earlier` (source name → target name, as this pair's runs last wrote each) keeps what
    was done before: a collection already copied under its own name (by an older Ferry, or
    `--collection docs=docs`) keeps that run's names, so re-running the same command still
    resumes or catches up the same run instead of starting a second copy.
    """
    if not targets.copy_default or targets.template is not None or not has_aliases:
        return targets
    unnamed = [name for name in chosen if name not in targets.pairs]
    if not unnamed or any(earlier.get(name) == name for name in unnamed):
        return targets
    return TargetNames(dict(targets.pairs), COPY_TEMPLATE)
