"""Exact nearest neighbours by brute force, streamed: the yardstick for every index.

Used by validation (how close is each side to the exact answer?) and by a source that cannot
answer a query itself. Scores are on one scale, higher is better (see validate/recall.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferry.core.model import Metric


def exact_scores(queries: np.ndarray, vectors: np.ndarray, metric: Metric | None) -> np.ndarray:
    """(Q, n) scores, higher is better, with the metric's own formula (float64)."""
    q = np.asarray(queries, dtype=np.float64)
    x = np.asarray(vectors, dtype=np.float64)
    if metric == Metric.COSINE:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
        return q @ x.T
    if metric == Metric.IP:
        return q @ x.T
    # l2 (and unknown): negative squared distance, expanded to stay one matrix product.
    return -((q * q).sum(axis=1, keepdims=True) - 2.0 * (q @ x.T) + (x * x).sum(axis=1)[None, :])


class ExactTopK:
    """Running top-k per query over streamed batches (argpartition keeps it O(k) per query)."""

    def __init__(self, queries: np.ndarray, metric: Metric | None, k: int) -> None:
        self.queries = np.asarray(queries, dtype=np.float32)
        self.metric = metric
        self.k = k
        self.scores = np.full((len(self.queries), 0), -np.inf)
        self.ids = np.empty((len(self.queries), 0), dtype=object)

    def update(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if not len(ids) or not len(self.queries):
            return
        batch_ids = np.empty(len(ids), dtype=object)
        batch_ids[:] = list(ids)
        scores = np.concatenate([self.scores, exact_scores(self.queries, vectors, self.metric)], 1)
        all_ids = np.concatenate(
            [self.ids, np.broadcast_to(batch_ids, (len(self.queries), len(ids)))], 1
        )
        if scores.shape[1] > self.k:
            keep = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
            scores = np.take_along_axis(scores, keep, 1)
            all_ids = np.take_along_axis(all_ids, keep, 1)
        self.scores, self.ids = scores, all_ids

    def result(self) -> list[list[tuple[str, float]]]:
        """Per query, (id, exact score) best first."""
        order = np.argsort(-self.scores, axis=1, kind="stable")
        return [
            [(str(self.ids[q, j]), float(self.scores[q, j])) for j in order[q]]
            for q in range(len(self.queries))
        ]
