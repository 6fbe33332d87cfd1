"""Validating a re-embedded copy (`--embed`): the vectors are *meant* to differ.

What is checked instead of vector equality:

* documents and metadata, exactly (the record-by-record compare skips only the vector);
* model determinism: a sample of documents is embedded again (the model itself, no cache)
  and must match what the target holds, within a tolerance;
* an A/B search report: for sampled records, the neighbours the source finds with its own
  vector against the neighbours the target finds with the record's new vector. Overlap@k per
  query (the record itself left out of both lists), its distribution, and the worst queries
  with their documents. Two models never agree perfectly; the user's threshold on the mean
  overlap (`--ab-min-overlap`) decides whether the new search is close enough for a cutover.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferry.core.connectors.base import Connector
from ferry.core.embed import Embedder, EmbedSettings

DEFAULT_AB_MIN_OVERLAP = 0.5
DEFAULT_DETERMINISM_TOLERANCE = 1e-3
DETERMINISM_SAMPLE = 200
WORST_SHOWN = 5
HISTOGRAM_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class ABQuery:
    id: str
    document: str | None
    overlap: float
    source_neighbours: list[str]
    target_neighbours: list[str]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ABReport:
    """Source neighbours (old vectors) vs target neighbours (new vectors), per sampled record."""

    model: str
    k: int
    threshold: float
    overlaps: list[float] = field(default_factory=list)
    worst: list[ABQuery] = field(default_factory=list)
    # determinism: documents embedded again vs what the target holds
    determinism_checked: int = 0
    determinism_max_diff: float = 0.0
    determinism_failed: list[str] = field(default_factory=list)
    determinism_tolerance: float = DEFAULT_DETERMINISM_TOLERANCE

    @property
    def queries(self) -> int:
        return len(self.overlaps)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.overlaps) if self.overlaps else 0.0

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.overlaps, q)) if self.overlaps else 0.0

    def histogram(self) -> list[int]:
        """Queries per overlap bucket [0, .2), [.2, .4), … [.8, 1.0]."""
        counts, _ = np.histogram(self.overlaps, bins=HISTOGRAM_EDGES)
        return [int(c) for c in counts]

    def failures(self) -> list[str]:
        out = []
        if self.determinism_failed:
            out.append(
                f"{len(self.determinism_failed)} of {self.determinism_checked} documents "
                f"embedded again differ from the target's vectors by more than "
                f"{self.determinism_tolerance:g} (max {self.determinism_max_diff:.3g}): "
                + ", ".join(self.determinism_failed[:5])
            )
        if self.overlaps and self.mean < self.threshold:
            out.append(
                f"A/B search: mean overlap@{self.k} {self.mean:.3f} is below the threshold "
                f"{self.threshold:.3f} (--ab-min-overlap)"
            )
        return out

    def lines(self) -> list[str]:
        if not self.overlaps:
            return [f"A/B search with {self.model}: no query (nothing sampled)"]
        hist = " ".join(
            f"{HISTOGRAM_EDGES[i]:.1f}–{HISTOGRAM_EDGES[i + 1]:.1f}:{n}"
            for i, n in enumerate(self.histogram())
        )
        out = [
            f"A/B search with {self.model}: overlap@{self.k} mean {self.mean:.3f}, p10 "
            f"{self.quantile(0.1):.3f}, median {self.quantile(0.5):.3f}, min "
            f"{min(self.overlaps):.3f} over {self.queries} queries (threshold "
            f"{self.threshold:.3f})",
            f"overlap distribution: {hist}",
            f"model determinism: {self.determinism_checked} documents embedded again, max "
            f"difference {self.determinism_max_diff:.2e}",
        ]
        for q in self.worst:
            document = (q.document or "")[:60].replace("\n", " ")
            out.append(f"worst: {q.id} overlap {q.overlap:.2f} — {document!r}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "k": self.k,
            "threshold": self.threshold,
            "queries": self.queries,
            "mean_overlap": round(self.mean, 6),
            "p10_overlap": round(self.quantile(0.1), 6),
            "median_overlap": round(self.quantile(0.5), 6),
            "min_overlap": round(min(self.overlaps), 6) if self.overlaps else None,
            "overlaps": [round(o, 6) for o in self.overlaps],
            "histogram": {"edges": list(HISTOGRAM_EDGES), "counts": self.histogram()},
            "worst": [q.to_json() for q in self.worst],
            "determinism": {
                "checked": self.determinism_checked,
                "max_diff": self.determinism_max_diff,
                "tolerance": self.determinism_tolerance,
                "failed": self.determinism_failed,
            },
            "ok": not self.failures(),
        }


async def ab_search(
    source: Connector,
    target: Connector,
    name: str,
    target_name: str,
    ids: list[str],
    k: int,
    report: ABReport,
) -> None:
    """Each sampled record's neighbours on both sides (itself left out): overlap@k."""
    if not ids:
        return
    mine = await source.fetch(name, ids)
    theirs = await target.fetch(target_name, ids)
    new_vectors = dict(zip(theirs.ids, theirs.vectors, strict=True))
    results: list[ABQuery] = []
    for i, record_id in enumerate(mine.ids):
        new = new_vectors.get(record_id)
        if new is None or mine.documents[i] in (None, ""):
            continue  # not in the target (a count check says so), or skipped: no document
        old_hits = (await source.query(name, mine.vectors[i][None, :], k + 1))[0]
        new_hits = (await target.query(target_name, np.asarray(new)[None, :], k + 1))[0]
        old_ids = [h for h, _ in old_hits if h != record_id][:k]
        new_ids = [h for h, _ in new_hits if h != record_id][:k]
        overlap = len(set(old_ids) & set(new_ids)) / max(min(k, len(old_ids)), 1)
        results.append(ABQuery(record_id, mine.documents[i], overlap, old_ids, new_ids))
    report.overlaps = [q.overlap for q in results]
    report.worst = sorted(results, key=lambda q: (q.overlap, q.id))[:WORST_SHOWN]


async def check_determinism(
    embedder: Embedder,
    target: Connector,
    target_name: str,
    ids: list[str],
    report: ABReport,
) -> None:
    """Embed the sampled documents again with the model itself and compare with the target."""
    ids = ids[:DETERMINISM_SAMPLE]
    if not ids:
        return
    theirs = await target.fetch(target_name, ids)
    rows = [(i, d) for i, d in enumerate(theirs.documents) if d not in (None, "")]
    if not rows:
        return
    again = await embedder.embed([d for _, d in rows])  # type: ignore[misc]
    held = np.stack([theirs.vectors[i] for i, _ in rows]).astype(np.float32)
    norms = np.linalg.norm(held, axis=1, keepdims=True)
    held = held / np.where(norms == 0, 1, norms)  # the target may store them normalised
    diffs = np.abs(held - again).max(axis=1)
    report.determinism_checked = len(rows)
    report.determinism_max_diff = float(diffs.max())
    report.determinism_failed = [
        str(theirs.ids[rows[j][0]]) for j in np.flatnonzero(diffs > report.determinism_tolerance)
    ]


def recorded_embed(journal: Any, target_uri: str, target_name: str) -> EmbedSettings | None:
    """The model the newest run writing `target_name` re-embedded with (its options)."""
    if journal is None:
        return None
    for run in journal.runs.recent(200):
        if run.target_uri != target_uri:
            continue
        if not any(c.target_name == target_name for c in journal.runs.collections(run.run_id)):
            continue
        embed = run.options.get("embed")
        return EmbedSettings.from_json(embed) if embed else None
    return None
