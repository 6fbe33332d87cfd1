"""The router library apps embed during a cutover (importable without the TUI or the CLI).

    from ferry.core.router import Router, ChromaStore, QdrantStore
    store = Router(ChromaStore(chroma_collection), QdrantStore(qdrant_client, "docs"),
                   state_path="/srv/app/ferry-router.json", journal=True)
    store.upsert(ids, embeddings, metadatas, documents)
    hits = store.query(query_embeddings, k=10, key=user_id)

`ferry router set shadow --state-file /srv/app/ferry-router.json` switches the running app
to shadow reads at its next call; `ferry router set canary --percent 5` serves 5 % of users
(by `key`) from the target. See docs/router.md.
"""

from ferry.core.router.router import ReplayResult, Router, overlap_at_k
from ferry.core.router.state import (
    MODES,
    STATE_ENV,
    Mode,
    Thresholds,
    evaluate,
    parse_mode,
    read_state,
    read_stats,
    resolve_state_path,
    set_mode,
    summarize_stats,
    write_json_atomic,
)
from ferry.core.router.stores import (
    ChromaStore,
    EdgeStore,
    QdrantStore,
    QueryResult,
    Records,
    VectorStore,
    edge_alias_target,
)

__all__ = [
    "MODES",
    "STATE_ENV",
    "ChromaStore",
    "EdgeStore",
    "Mode",
    "QdrantStore",
    "QueryResult",
    "Records",
    "ReplayResult",
    "Router",
    "Thresholds",
    "VectorStore",
    "edge_alias_target",
    "evaluate",
    "overlap_at_k",
    "parse_mode",
    "read_state",
    "read_stats",
    "resolve_state_path",
    "set_mode",
    "summarize_stats",
    "write_json_atomic",
]
