"""What the release fixture builds: the releases, how each is pinned, and its collections.

Standard library only: ``writer.py`` imports this file by path from inside each release's
own venv (any chromadb, any numpy), and the tests import it to parametrise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    """One chromadb release and what it needs to install on Python 3.11.

    ``exclude_newer``: uv resolves every dependency as of that day (a few weeks after the
    release), so the venv holds what a user of that release had, and a dependency released
    later (a numpy 2, a posthog 6) can never break the build. ``pins`` are what the release
    needs regardless; pip (the fallback when uv is missing) cannot exclude by date, so they
    also carry the one pin that matters there (numpy 2 removed ``np.float_``, which 0.4
    uses; 0.5 declares no upper bound but was written against numpy 1).
    """

    version: str
    exclude_newer: str
    pins: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    def requirements(self) -> list[str]:
        return [f"chromadb=={self.version}", *self.pins]


RELEASES = {
    r.version: r
    for r in (
        Release("0.4.24", "2024-03-20", ("numpy<2",)),
        Release("0.5.5", "2024-08-15", ("numpy<2",)),
        Release("0.5.23", "2024-12-31", ("numpy<2",)),
        Release("0.6.3", "2025-02-10"),
        Release("1.0.12", "2025-06-20"),
        Release("1.1.1", "2025-10-20"),
        Release("1.2.2", "2025-11-15"),
        Release("1.3.7", "2026-01-05"),
        Release("1.5.9", "2026-05-25"),
    )
}
DEFAULT = ("0.4.24", "0.5.23", "0.6.3", "1.0.12")
# A data set that is not a release of its own: 0.6.3's directory opened once by the chromadb
# installed next to Ferry (which migrates it in place, as happens to users who upgrade).
UPGRADED = "0.6.3-upgraded"
UPGRADED_FROM = "0.6.3"

SPACES = ("l2", "cosine", "ip")
# Records of the big collections: FIRST added, then MORE (fewer than sync_threshold=1000
# writes after the last HNSW persist, so part of every collection lives only in the WAL).
FIRST, MORE = 1200, 300
SMALL_FIRST, SMALL_MORE = 1050, 60
DIM = 12
QUERIES = 5


def selected_datasets(value: str | None = None) -> list[str]:
    """The data sets to build: ``FERRY_RELEASES`` = unset (DEFAULT), ``all`` or a comma list.

    The 0.6.3-upgraded set comes along whenever 0.6.3 is built (it is made from its files).
    """
    value = os.environ.get("FERRY_RELEASES", "") if value is None else value
    value = value.strip()
    if not value or value == "default":
        versions = list(DEFAULT)
    elif value == "all":
        versions = list(RELEASES)
    else:
        versions = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in versions if v not in RELEASES and v != UPGRADED]
    if unknown:
        raise ValueError(
            f"FERRY_RELEASES names unknown releases {unknown}; known: {list(RELEASES)}"
        )
    out = [v for v in versions if v != UPGRADED]
    if UPGRADED_FROM in out or UPGRADED in versions:
        if UPGRADED_FROM not in out:
            out.append(UPGRADED_FROM)
        out.append(UPGRADED)
    return out


def release_of(dataset: str) -> Release:
    return RELEASES[UPGRADED_FROM if dataset == UPGRADED else dataset]


def ways(release: Release) -> list[str]:
    """The ways a user of this release could set the distance space.

    * ``meta``: collection metadata ``{"hnsw:space": ...}`` (every release);
    * ``cfg``: 1.x's ``configuration={"hnsw": {"space": ...}}``. 0.5 and 0.6 export
      ``CollectionConfiguration(hnsw_configuration=HNSWConfiguration(space=...))`` too, but
      on a PersistentClient ``create_collection`` raises ``ValueError: Trying to instantiate
      configuration of type CollectionConfigurationInternal from JSON with type
      CollectionConfigurationInterface`` before anything is written (checked on 0.5.5,
      0.5.23 and 0.6.3; writer.py probes it again on every build), so no 0.5/0.6 directory
      can hold a user-set configuration;
    * ``schema``: 1.3's ``Schema().create_index(config=VectorIndexConfig(space=...))``.
    """
    out = ["meta"]
    if release.key >= (1, 0):
        out.append("cfg")
    if release.key >= (1, 3):
        out.append("schema")
    return out


@dataclass(frozen=True)
class Plan:
    """One collection the writer makes: its final name, how its space is set, its story."""

    name: str
    way: str
    space: str
    story: str  # full | small | renamed | recreated | empty


def collections(dataset: str) -> list[Plan]:
    release = release_of(dataset)
    plans: list[Plan] = []
    for way in ways(release):
        for space in SPACES:
            plans.append(Plan(f"{way}-{space}", way, space, "full" if way == "meta" else "small"))
    plans.append(Plan("renamed", "meta", "ip", "renamed"))
    plans.append(Plan("recreated", "meta", "ip", "recreated"))  # was cosine before deletion
    plans.append(Plan("empty", "meta", "cosine", "empty"))
    return plans
