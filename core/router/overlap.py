"""Shadow-read overlap judged the way validation judges recall (core/validate/recall.py).

A raw overlap@k between two approximate indexes punishes the better one: on a healthy copy
the source's own HNSW found 0.59 of the exact top-10 and the target's 0.69, so their mutual
overlap was ~0.64 and a 0.9 threshold would have rolled back the *better* target. So each
side is compared with the exact top-k *over the candidates both sides returned* for that
query: every candidate carries the exact distance its engine computed for it (HNSW is
approximate in which points it visits, not in the distances it reports), both in Chroma's
convention (core/router/stores.py), so the k best of the union are the exact top-k of
those candidates. Overlap with it is tie-aware (`tie_aware_overlap`), and the verdict is
validation's `RecallResult.acceptable`: the secondary passes when it agrees with the primary
(overlap ≥ threshold), or is near exact itself, or is as close to exact as the primary is
within validation's tolerance (three standard errors of the paired per-query difference,
never under 0.05). Limit: only candidates either side found are judged — a true neighbour
both sides missed is invisible here (validation's full exact search sees it).
"""

from __future__ import annotations

import math
from typing import Any

from ferry.core.validate.recall import RecallResult, tie_aware_overlap


class OverlapJudge:
    """Running sums over one window of shadow comparisons (reset on a mode or dial change)."""

    def __init__(self) -> None:
        self.queries = 0
        self.k = 0
        self._mutual = 0.0
        self._primary = 0.0
        self._secondary = 0.0
        self._diff = 0.0
        self._diff_sq = 0.0

    def add(
        self,
        primary: tuple[list[str], list[float]],
        secondary: tuple[list[str], list[float]],
        k: int,
    ) -> float:
        """Judge one query's two answers (ids, distances — lower is better); returns the
        plain overlap@k of the two, as the figures have always shown it."""
        p_ids, s_ids = primary[0][:k], secondary[0][:k]
        distance: dict[str, float] = {}
        for ids, dists in (secondary, primary):  # the primary's figure wins on a tie
            for sid, dist in zip(ids[:k], dists[:k], strict=False):
                distance[sid] = float(dist)
        exact_top = sorted(distance, key=lambda sid: distance[sid])[:k]

        def score(sid: str) -> float:
            return -distance.get(sid, math.inf)

        size = max(len(exact_top), 1)
        p_exact = tie_aware_overlap(p_ids, exact_top, score) / size if exact_top else 1.0
        s_exact = tie_aware_overlap(s_ids, exact_top, score) / size if exact_top else 1.0
        mutual = len(set(p_ids) & set(s_ids)) / len(p_ids) if p_ids else float(not s_ids)
        self.queries += 1
        self.k = k
        self._mutual += mutual
        self._primary += p_exact
        self._secondary += s_exact
        diff = p_exact - s_exact
        self._diff += diff
        self._diff_sq += diff * diff
        return mutual

    def result(self) -> RecallResult | None:
        if not self.queries:
            return None
        n = self.queries
        se = None
        if n >= 2:
            mean = self._diff / n
            variance = max(self._diff_sq / n - mean * mean, 0.0) * n / (n - 1)
            se = math.sqrt(variance / n)
        return RecallResult(
            k=self.k,
            queries=n,
            recall_at_k=self._mutual / n,
            source_vs_exact=self._primary / n,
            target_vs_exact=self._secondary / n,
            rank_agreement=None,
            same_position=0.0,
            difference_se=se,
        )

    def failure(self, threshold: float) -> str | None:
        """Why the secondary's search quality breaks the threshold, or None."""
        result = self.result()
        if result is None or result.acceptable(threshold):
            return None
        return "shadow " + result.verdict(threshold)

    def to_json(self) -> dict[str, Any] | None:
        result = self.result()
        if result is None:
            return None
        return {
            "queries": result.queries,
            "k": result.k,
            "overlap_at_k": round(result.recall_at_k, 6),
            "primary_vs_exact": round(result.source_vs_exact, 6),
            "secondary_vs_exact": round(result.target_vs_exact, 6),
            "tolerance": round(result.tolerance, 6),
        }
