"""Search quality: does the target answer queries the way the source does?

Three rankings per query vector: the source database's top-k, the target's, and the exact
top-k that Ferry computes itself by brute force over the source's vectors (streamed, so
memory is O(queries × k + batch)). Comparing each side with the exact answer keeps an
approximate index (HNSW on either side) from being mistaken for a migration error.

Scores are put on one scale before anything is compared, *higher is better*: the exact
scale below, which is the engines' "similarity" (each connector's `traits` converts what its
database reports; the table of conventions is in core/connectors/traits.py):

=========  =======================
metric     exact (Ferry)
=========  =======================
l2         −‖q − x‖²
ip         q·x
cosine     cos(q, x)
=========  =======================

Fairness: an approximate index misses some true neighbours, on either side. A copy is judged
by whether the *target* answers as close to the exact top-k as the *source* does, within a
stated tolerance — three standard errors of the mean per-query difference between the two
(paired: the same queries on both sides; never under `MIN_TOLERANCE`) — so an identical copy
of a poor source index passes, and a target missing a third of its points does not. Paired
per-query, not `queries × k` independent answers: the ten answers of one query rise and fall
together, and two HNSW builds of the same records differ query by query; three, not two,
because a false ✘ blocks a cutover. The target is queried as the application will
query it: with the recorded search-time `hnsw_ef` (core.tuning), after its index phase.

Ties: with duplicate vectors the k-th place is an arbitrary pick among equals, so overlap is
*tie-aware*: a hit outside the reference top-k still counts when its exact score is at least
the reference's worst exact score (within a relative 1e-5). For target-vs-source this also
forgives a target that finds a better neighbour than an approximate source did; a missing or
corrupted record still scores worse and still lowers recall.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.core.topk import ExactTopK, exact_scores

__all__ = ["ExactTopK", "exact_scores"]

TIE_EPSILON = 1e-5
# A database's reported score, converted, must equal the exact score Ferry computes with the
# metric it believes in, to float32 accuracy. A larger gap means that side searches with
# another distance (a misread space, a target created with the wrong metric).
SCORE_REL_TOLERANCE = 1e-3
SCORE_ABS_TOLERANCE = 1e-4
# The smallest shortfall against the source forgiven: two HNSW graphs built from the same
# records differ by a few points of recall (measured: Chroma embedded vs its server copy).
MIN_TOLERANCE = 0.05
TOLERANCE_ERRORS = 3.0  # standard errors of the paired difference forgiven


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(milliseconds: Sequence[float]) -> dict[str, float | None]:
    """p50 / p99 of per-query latencies, in ms."""
    p50, p99 = percentile(milliseconds, 50), percentile(milliseconds, 99)
    return {
        "p50": None if p50 is None else round(p50, 3),
        "p99": None if p99 is None else round(p99, 3),
    }


@dataclass
class RecallResult:
    """What the Validation screen's bar and `--json` show for one collection."""

    k: int
    queries: int
    recall_at_k: float  # target vs source, tie-aware
    source_vs_exact: float
    target_vs_exact: float
    rank_agreement: float | None  # mean Kendall tau on the shared hits
    same_position: float  # fraction of ranks where both sides return the same id
    score_max_abs_diff: dict[str, float | None] = field(default_factory=dict)
    # max |reported − exact| / max(1, |exact|) per side: the distance-agreement evidence.
    score_max_rel_diff: dict[str, float | None] = field(default_factory=dict)
    # Mean milliseconds per query on each side ("source", "target"), as validation saw it.
    query_ms: dict[str, float] = field(default_factory=dict)
    # Per-query latency on each side ({"source": {"p50", "p99"}, "target": …}, ms), and the
    # `hnsw_ef` the target was searched with (None: its default).
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    hnsw_ef: int | None = None
    # Standard error of the mean per-query (source − target) recall vs exact; None with
    # fewer than two queries (then the binomial bound over queries × k answers stands in).
    difference_se: float | None = None

    @property
    def tolerance(self) -> float:
        """How far below the source the target may be and still be judged as good: three
        standard errors of the paired per-query difference, at least MIN_TOLERANCE."""
        if self.difference_se is not None:
            return max(MIN_TOLERANCE, TOLERANCE_ERRORS * self.difference_se)
        answers = max(self.queries * self.k, 1)
        p = min(max(self.source_vs_exact, 0.0), 1.0)
        return max(MIN_TOLERANCE, TOLERANCE_ERRORS * math.sqrt(p * (1.0 - p) / answers))

    def verdict(self, threshold: float) -> str:
        """The recall judgement in words, passing or not."""
        head = (
            f"recall@{self.k}: target {self.target_vs_exact:.2f} vs exact, "
            f"source {self.source_vs_exact:.2f}"
        )
        if self.recall_at_k >= threshold:
            return (
                f"{head} → the target agrees with the source (target vs source "
                f"{self.recall_at_k:.2f} ≥ {threshold:.2f})"
            )
        if self.target_vs_exact >= threshold:
            return f"{head} → the target is near exact (≥ {threshold:.2f})"
        gap = self.source_vs_exact - self.target_vs_exact
        if gap <= self.tolerance:
            return f"{head} → within tolerance (±{self.tolerance:.2f}) of the source"
        return (
            f"{head} → {gap:.2f} below the source, more than the tolerance "
            f"±{self.tolerance:.2f} (records missing from the index, or a weaker index)"
        )

    def scores_agree(self, side: str) -> bool:
        worst = self.score_max_rel_diff.get(side)
        abs_worst = self.score_max_abs_diff.get(side)
        return (
            worst is None
            or worst <= SCORE_REL_TOLERANCE
            or (abs_worst is not None and abs_worst <= SCORE_ABS_TOLERANCE)
        )

    def failures(self, threshold: float) -> list[str]:
        """Why search quality fails, in words (empty when it passes)."""
        out: list[str] = []
        for side in ("source", "target"):
            if not self.scores_agree(side):
                out.append(
                    f"{side} scores disagree with the metric (max relative diff "
                    f"{self.score_max_rel_diff[side]:.3g}): it searches with another distance"
                )
        if not self.acceptable(threshold):
            out.append(self.verdict(threshold))
        return out

    def acceptable(self, threshold: float) -> bool:
        """Recall good enough to call the copy faithful: the target agrees with the source
        (``recall_at_k ≥ threshold``), or is near exact itself (``target_vs_exact ≥
        threshold``), or is as close to exact as the source is, within `tolerance`. Two
        approximate indexes may disagree with each other and both be fine, and a poor source
        index is no reason to fail its identical copy."""
        return (
            self.recall_at_k >= threshold
            or self.target_vs_exact >= threshold
            or self.target_vs_exact >= self.source_vs_exact - self.tolerance
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "queries": self.queries,
            "recall_at_k": round(self.recall_at_k, 6),
            "source_vs_exact": round(self.source_vs_exact, 6),
            "target_vs_exact": round(self.target_vs_exact, 6),
            "rank_agreement": None
            if self.rank_agreement is None
            else round(self.rank_agreement, 6),
            "same_position": round(self.same_position, 6),
            "score_max_abs_diff": self.score_max_abs_diff,
            "score_max_rel_diff": self.score_max_rel_diff,
            "tolerance": round(self.tolerance, 6),
            "difference_se": None if self.difference_se is None else round(self.difference_se, 6),
            "latency_ms": self.latency_ms,
            "hnsw_ef": self.hnsw_ef,
            "query_ms": {side: round(ms, 3) for side, ms in self.query_ms.items()},
        }


def tie_aware_overlap(
    candidate: Sequence[str], reference: Sequence[str], exact: Callable[[str], float]
) -> int:
    """|candidate ∩ reference| plus candidate hits that tie or beat the reference's worst."""
    ref, cand = set(reference), set(candidate)
    shared = len(cand & ref)
    if not ref:
        return shared
    boundary = min(exact(r) for r in ref)
    slack = TIE_EPSILON * max(1.0, abs(boundary)) if math.isfinite(boundary) else 0.0
    ties = sum(1 for c in cand - ref if exact(c) >= boundary - slack)
    return shared + min(len(ref - cand), ties)


def kendall_tau(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Rank correlation of the ids both lists share; None with fewer than two shared."""
    position = {item: i for i, item in enumerate(second)}
    shared = [position[item] for item in first if item in position]
    n = len(shared)
    if n < 2:
        return None
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if shared[i] < shared[j]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (n * (n - 1) / 2)


FLOAT32_EPSILON = float(2**-23)
ROUNDING_FACTOR = 4.0  # rounding steps an engine's distance takes on each side, generously


def float32_allowance(
    metric: object, query_norm: float, largest_norm: float
) -> Callable[[float], float]:
    """How far an engine computing in float32 may honestly be from the exact score `truth`.

    Each vector an engine holds or receives may be off by ~ε·|x| (one rounding per
    component: a query converted to float32, a normalisation). For l2 (scores are −d²) that
    moves d² by 2·d·δ + δ² with δ = k·ε·(|q|+|v|), and |v| ≤ |q| + d; for ip by k·ε·|q|·|v|;
    cosine scores live in [−1, 1]. A metric mismatch moves a score by its own size: far
    beyond this, so it still fails."""
    from ferry.core.model import Metric

    def allowed(truth: float) -> float:
        if metric == Metric.COSINE:
            return ROUNDING_FACTOR * FLOAT32_EPSILON * 2.0
        if metric == Metric.IP:
            return ROUNDING_FACTOR * FLOAT32_EPSILON * query_norm * largest_norm
        distance = math.sqrt(abs(truth))
        delta = ROUNDING_FACTOR * FLOAT32_EPSILON * (2.0 * query_norm + distance)
        return 2.0 * distance * delta + delta * delta

    return allowed


def measure(
    k: int,
    exact_hits: list[list[tuple[str, float]]],
    source_hits: list[list[tuple[str, float]]],
    target_hits: list[list[tuple[str, float]]],
    exact_score: Callable[[int, str], float],
    converted: tuple[Callable[[float], float | None], Callable[[float], float | None]],
    allowance: Callable[[int, float], float] | None = None,
) -> RecallResult:
    """Recall and rank figures from the three rankings of every query.

    `exact_score(query_index, id)` is the exact score of any id (−inf for an id the source
    lacks); `converted` turns each side's reported score onto the exact scale.
    """
    n = len(exact_hits)
    if n == 0 or k == 0:
        return RecallResult(k, 0, 1.0, 1.0, 1.0, None, 1.0, {})
    recall_ts = recall_se = recall_te = same = 0.0
    taus: list[float] = []
    differences: list[float] = []  # per query: source vs exact − target vs exact
    worst = {"source": 0.0, "target": 0.0}
    worst_rel = {"source": 0.0, "target": 0.0}
    known = {"source": False, "target": False}
    for qi in range(n):
        e_ids = [i for i, _ in exact_hits[qi][:k]]
        s_ids = [i for i, _ in source_hits[qi][:k]]
        t_ids = [i for i, _ in target_hits[qi][:k]]
        kk = max(1, len(e_ids))

        def score(item: str, qi: int = qi) -> float:
            return exact_score(qi, item)

        recall_ts += tie_aware_overlap(t_ids, s_ids, score) / kk
        source_q = tie_aware_overlap(s_ids, e_ids, score) / kk
        target_q = tie_aware_overlap(t_ids, e_ids, score) / kk
        recall_se += source_q
        recall_te += target_q
        differences.append(source_q - target_q)
        same += sum(1 for a, b in zip(s_ids, t_ids, strict=False) if a == b) / kk
        tau = kendall_tau(s_ids, t_ids)
        if tau is not None:
            taus.append(tau)
        for side, hits, convert in (
            ("source", source_hits[qi][:k], converted[0]),
            ("target", target_hits[qi][:k], converted[1]),
        ):
            for item, raw in hits:
                value, truth = convert(raw), score(item)
                if value is not None and math.isfinite(truth):
                    known[side] = True
                    worst[side] = max(worst[side], abs(value - truth))
                    # Beyond what float32 arithmetic at this magnitude explains (an engine
                    # that rounds a 1e6-sized component by one ulp is exact, not wrong).
                    excess = abs(value - truth) - (allowance(qi, truth) if allowance else 0.0)
                    worst_rel[side] = max(worst_rel[side], max(excess, 0.0) / max(1.0, abs(truth)))
    return RecallResult(
        k=k,
        queries=n,
        recall_at_k=recall_ts / n,
        source_vs_exact=recall_se / n,
        target_vs_exact=recall_te / n,
        rank_agreement=sum(taus) / len(taus) if taus else None,
        same_position=same / n,
        score_max_abs_diff={s: (round(worst[s], 9) if known[s] else None) for s in worst},
        score_max_rel_diff={s: (round(worst_rel[s], 9) if known[s] else None) for s in worst},
        difference_se=statistics.stdev(differences) / math.sqrt(n) if n >= 2 else None,
    )
