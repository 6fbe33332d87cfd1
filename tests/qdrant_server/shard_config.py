"""A collection's settings (plain JSON) as a Qdrant Edge shard config.

Its own module, importing only `qdrant_edge`, because the optimizer's process builds the same
config and should not pay for importing qdrant-client's models.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as qe

DEFAULT_M = 16
DEFAULT_EF_CONSTRUCT = 100
DEFAULT_FULL_SCAN_KB = 10_000
DEFAULT_INDEXING_KB = 10_000  # Qdrant's optimizers.indexing_threshold_kb default


def edge_config(settings: dict[str, Any]) -> qe.EdgeConfig:
    """An Edge shard config from the collection's settings (kept as plain JSON so the
    optimizer's process can build the same one)."""
    hnsw = qe.HnswIndexConfig(
        m=int(settings["m"]),
        ef_construct=int(settings["ef_construct"]),
        full_scan_threshold=int(settings["full_scan_threshold"]),
    )

    def params(spec: dict[str, Any]) -> qe.EdgeVectorParams:
        return qe.EdgeVectorParams(
            size=int(spec["size"]), distance=getattr(qe.Distance, spec["distance"])
        )

    vectors = settings["vectors"]
    return qe.EdgeConfig(
        vectors=params(vectors)
        if "size" in vectors
        else {k: params(v) for k, v in vectors.items()},
        hnsw_config=hnsw,
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=int(settings["indexing_kb"])),
    )
