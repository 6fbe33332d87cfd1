"""Exact top-k over a source's own records, scored the way Chroma reports distances.

For when the database cannot answer a query itself: chromadb may be unable to open a copy of
an old directory (e.g. 1.5.x panics on 0.x write-ahead-log rows with a null document), yet
validation still needs the source's answer. Exact search is the best answer an index could
give, so recall against it stays meaningful; memory is O(queries × k + one batch).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from ferry.core.connectors.traits import CHROMA
from ferry.core.model import Batch, Metric
from ferry.core.topk import ExactTopK


async def exact_query(
    batches: AsyncIterator[Batch], queries: np.ndarray, metric: Metric | None, k: int
) -> list[list[tuple[str, float]]]:
    """Per query, (id, Chroma-style distance) best first: squared L2, 1 − cos or 1 − ip."""
    top = ExactTopK(np.asarray(queries, dtype=np.float32), metric, k)
    async for batch in batches:
        top.update(batch.ids, batch.vectors)
    return [
        [(sid, CHROMA.raw_score(metric, score)) for sid, score in hits] for hits in top.result()
    ]
