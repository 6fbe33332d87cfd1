"""What a validation found, as data, JSON and Markdown.

Memory stays bounded on a million records: each kind of difference keeps the first `cap`
entries and a total count beside them. Every id is the *source's original* id (the
connectors decode the payload's ``source_id``), never a mapped Qdrant point id. Reports carry
URIs only in the form the user typed them; credentials live in environment variables and are
never part of a URI, so an exported report holds no secrets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ferry.core.validate.compare import ROUNDING_NOTE, VectorDiff
from ferry.core.validate.recall import RecallResult

DEFAULT_CAP = 1000
DEFAULT_RECALL_THRESHOLD = 0.95


@dataclass
class CappedList:
    """The first `cap` items and how many there were in all."""

    cap: int = DEFAULT_CAP
    items: list[Any] = field(default_factory=list)
    total: int = 0

    def add(self, item: Any) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(item)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.items)


@dataclass
class Mismatch:
    id: str
    fields: list[str]
    vector: VectorDiff | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "fields": self.fields}
        if self.vector is not None:
            data["vector"] = self.vector.to_json()
        return data


@dataclass
class Rounded:
    """A record whose only change in `fields` is the target engine's float rounding."""

    id: str
    fields: list[str]
    ulps: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "fields": self.fields, "ulps": self.ulps}


@dataclass
class RepairResult:
    rewritten: int = 0  # missing + mismatched records copied again
    verified: int = 0  # of those, read back from the target and found equal
    deleted: int = 0  # extras the target confirms gone (only with --delete-extra)
    delete_failed: int = 0  # extras asked to go that the target still holds

    def to_json(self) -> dict[str, Any]:
        return {
            "rewritten": self.rewritten,
            "verified": self.verified,
            "deleted": self.deleted,
            "delete_failed": self.delete_failed,
        }


@dataclass
class CollectionValidation:
    """One collection's checks. `ok` is what the cutover gate reads from the journal."""

    name: str
    target_name: str
    metric: str | None = None
    mode: str = "counts"  # counts | sample | full
    source_count: int = 0
    target_count: int = 0
    checked: int = 0  # records compared field by field
    missing: CappedList = field(default_factory=CappedList)
    extra: CappedList = field(default_factory=CappedList)
    mismatched: CappedList = field(default_factory=CappedList)
    # Not differences: floats the target engine gives back rounded (Qdrant Edge); see compare.py
    rounded: CappedList = field(default_factory=CappedList)
    rounded_ulps: int = 0
    recall: RecallResult | None = None
    k: int = 0
    repair: RepairResult | None = None
    target_count_after: int | None = None
    recall_threshold: float = DEFAULT_RECALL_THRESHOLD
    error: str | None = None
    # Facts that make the target wrong as a whole (distance, dimension), in words.
    problems: list[str] = field(default_factory=list)
    skipped_reason: str | None = None  # nothing to compare, as migrate agreed (empty source)
    # Why recall was not judged (the target still indexing, or not indexed at all): a reason
    # to fail, since recall on a brute-force or half-built target measures no real index.
    recall_refused: str | None = None
    index: dict[str, Any] | None = None  # the target's IndexState when recall was asked for
    # The payload layout the target was read in (core/layouts/), why, and the lines the app
    # changes to read it; None where records are native (a Chroma target).
    layout: str | None = None
    layout_reason: str = ""
    switch: list[str] = field(default_factory=list)
    seconds: float = 0.0
    finished_at: float = field(default_factory=time.time)
    # A re-embedded copy: determinism and the A/B search report (core.validate.reembed)
    ab: Any = None
    embed_skipped: int = 0  # source records without a document, left out (--embed-missing skip)

    @property
    def differences(self) -> int:
        return self.missing.total + self.extra.total + self.mismatched.total

    @property
    def ok(self) -> bool:
        """Counts match, nothing missing, extra or different in what was checked, and recall
        is acceptable when it was measured (see RecallResult.acceptable)."""
        return not self.reasons

    @property
    def reasons(self) -> list[str]:
        """Why this collection is not ok, one phrase each; empty when it is."""
        out: list[str] = []
        if self.error is not None:
            out.append(self.error)
        out.extend(self.problems)
        expected = self.source_count - self.embed_skipped
        if expected != self.target_count and self.skipped_reason is None:
            out.append(f"counts differ: source {self.source_count:,}, target {self.target_count:,}")
        for kind in ("missing", "extra", "mismatched"):
            total = getattr(self, kind).total
            if total:
                out.append(f"{total:,} {kind}")
        if self.recall_refused is not None:
            out.append(self.recall_refused)
        if self.recall is not None:
            out.extend(self.recall.failures(self.recall_threshold))
        if self.ab is not None:
            out.extend(self.ab.failures())
        return out

    @property
    def notes(self) -> list[str]:
        out: list[str] = []
        if self.rounded.total:
            out.append(
                f"{ROUNDING_NOTE}: ≤ {self.rounded_ulps} ulp in {self.rounded.total:,} record(s) "
                "(the target's float reader; not a mismatch, and no rewrite changes it)"
            )
        if self.recall is not None and self.recall.acceptable(self.recall_threshold):
            out.append(self.recall.verdict(self.recall_threshold))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target_name": self.target_name,
            "ok": self.ok,
            "mode": self.mode,
            "metric": self.metric,
            "source_count": self.source_count,
            "target_count": self.target_count,
            "checked": self.checked,
            "missing": list(self.missing.items),
            "missing_total": self.missing.total,
            "extra": list(self.extra.items),
            "extra_total": self.extra.total,
            "mismatched": [m.to_json() for m in self.mismatched.items],
            "mismatched_total": self.mismatched.total,
            "rounded": [r.to_json() for r in self.rounded.items],
            "rounded_total": self.rounded.total,
            "rounded_max_ulps": self.rounded_ulps,
            "notes": self.notes,
            "recall_at_k": None if self.recall is None else round(self.recall.recall_at_k, 6),
            "k": self.k,
            "recall": None if self.recall is None else self.recall.to_json(),
            "recall_threshold": self.recall_threshold,
            "repair": None if self.repair is None else self.repair.to_json(),
            "target_count_after": self.target_count_after,
            "error": self.error,
            "problems": list(self.problems),
            "reasons": self.reasons,
            "recall_refused": self.recall_refused,
            "index": self.index,
            "hnsw_ef": None if self.recall is None else self.recall.hnsw_ef,
            "skipped_reason": self.skipped_reason,
            "layout": self.layout,
            "layout_reason": self.layout_reason,
            "switch": list(self.switch),
            "seconds": round(self.seconds, 3),
            "finished_at": self.finished_at,
        } | (
            {"ab": self.ab.to_json(), "embed_skipped": self.embed_skipped}
            if self.ab is not None
            else {}
        )


@dataclass
class ValidationReport:
    source_uri: str
    target_uri: str
    collections: list[CollectionValidation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.collections)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source_uri,
            "target": self.target_uri,
            "collections": [c.to_json() for c in self.collections],
        }

    def to_markdown(self) -> str:
        return report_markdown(self.to_json())


def report_markdown(data: dict[str, Any]) -> str:
    """A human report from the JSON form (so a stored journal result renders the same)."""
    lines = [
        "# Ferry validation report",
        "",
        f"- Source: `{data.get('source', '?')}`",
        f"- Target: `{data.get('target', '?')}`",
        f"- Result: **{'OK' if data.get('ok') else 'DIFFERENCES FOUND'}**",
        "",
        "| collection | mode | source | target | missing | extra | mismatched | recall@k | ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in data.get("collections", []):
        recall = "—" if c.get("recall_at_k") is None else f"{c['recall_at_k']:.3f} (k={c['k']})"
        lines.append(
            f"| {c['name']} | {c['mode']} | {c['source_count']:,} | {c['target_count']:,} | "
            f"{c['missing_total']:,} | {c['extra_total']:,} | {c['mismatched_total']:,} | "
            f"{recall} | {'yes' if c['ok'] else 'no'} |"
        )
    for c in data.get("collections", []):
        lines += ["", f"## {c['name']}"]
        if c.get("error"):
            lines.append(f"- Error: {c['error']}")
        if c.get("layout"):
            lines.append(f"- Layout: {c['layout']} ({c.get('layout_reason') or ''})")
        for line in c.get("switch") or []:
            lines.append(f"- Switch the app: `{line}`")
        for note in c.get("notes") or []:
            lines.append(f"- Note: {note}")
        recall = c.get("recall")
        if recall:
            lines.append(
                f"- Search: recall@{recall['k']} target vs source {recall['recall_at_k']:.3f}, "
                f"source vs exact {recall['source_vs_exact']:.3f}, target vs exact "
                f"{recall['target_vs_exact']:.3f}, rank agreement (Kendall tau) "
                f"{'—' if recall['rank_agreement'] is None else format(recall['rank_agreement'], '.3f')}"
                f" over {recall['queries']} queries"
            )
            latency = recall.get("latency_ms") or {}
            if latency:
                lines.append(
                    "- Query latency p50/p99 (ms): "
                    + ", ".join(
                        f"{side} {v.get('p50')}/{v.get('p99')}" for side, v in latency.items()
                    )
                    + (
                        f"; target searched with hnsw_ef={recall['hnsw_ef']}"
                        if recall.get("hnsw_ef")
                        else ""
                    )
                )
        lines += ab_markdown(c.get("ab"))
        for reason in c.get("reasons") or []:
            lines.append(f"- ✘ {reason}")
        if c.get("repair"):
            r = c["repair"]
            lines.append(
                f"- Repair: {r['rewritten']} rewritten ({r['verified']} verified), "
                f"{r['deleted']} extra deleted"
            )
        for kind in ("missing", "extra"):
            if c[f"{kind}_total"]:
                shown = ", ".join(f"`{i}`" for i in c[kind][:50])
                more = c[f"{kind}_total"] - min(50, len(c[kind]))
                lines.append(
                    f"- {kind.capitalize()}: {shown}" + (f" (+{more:,} more)" if more else "")
                )
        if c["mismatched_total"]:
            lines.append("- Mismatched:")
            for m in c["mismatched"][:50]:
                lines.append(f"  - `{m['id']}`: {', '.join(m['fields'])}")
            more = c["mismatched_total"] - min(50, len(c["mismatched"]))
            if more:
                lines.append(f"  - (+{more:,} more)")
    return "\n".join(lines) + "\n"


def ab_markdown(ab: dict[str, Any] | None) -> list[str]:
    """A re-embedded copy's A/B search report and determinism, as Markdown lines."""
    if not ab:
        return []
    lines = [f"- Re-embedded with `{ab['model']}`: vectors not compared with the source's"]
    d = ab["determinism"]
    lines.append(
        f"- Model determinism: {d['checked']} documents embedded again, max difference "
        f"{d['max_diff']:.2e} (tolerance {d['tolerance']:g})"
    )
    if ab["queries"]:
        counts = ab["histogram"]["counts"]
        edges = ab["histogram"]["edges"]
        lines.append(
            f"- A/B search overlap@{ab['k']}: mean {ab['mean_overlap']:.3f}, p10 "
            f"{ab['p10_overlap']:.3f}, median {ab['median_overlap']:.3f}, min "
            f"{ab['min_overlap']:.3f} over {ab['queries']} queries (threshold "
            f"{ab['threshold']:.3f})"
        )
        lines.append(
            "- Overlap distribution: "
            + ", ".join(f"{edges[i]:.1f}–{edges[i + 1]:.1f}: {n}" for i, n in enumerate(counts))
        )
        lines.append("- Worst queries:")
        for q in ab["worst"]:
            doc = (q.get("document") or "").replace("\n", " ")[:80]
            lines.append(f"  - `{q['id']}` overlap {q['overlap']:.2f}: {doc}")
    return lines
