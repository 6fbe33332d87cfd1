"""An application that keeps writing to an embedded Chroma directory (a real process).

Run as ``python -m tests.live_writer DIR COLLECTION SECONDS MAX_CHANGES OUT.json [SERVER]``: it
seeds SEED records, writes ``DIR.ready``, then adds, upserts and deletes in batches through
``chromadb.PersistentClient`` (over 1,000 changes/s on a quiet machine) until SECONDS pass
or MAX_CHANGES are made, or the file ``DIR.stop`` appears. Every record carries its version
(metadata ``v``, the document ``id:v``, and the vector's first component), so a copy can be
checked record by record. At the end it writes its own account of the final state —
id → version — to OUT.json, which tests compare the target with (not Ferry's reader).

With SERVER (``host:port`` of a Chroma server) the application writes through Ferry's
router in dual-write: the embedded directory is the primary, the server's collection of the
same name (created if missing) the secondary — the order docs/live-migration.md prescribes.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

DIMENSION = 8
SEED = 600
BATCH = 300


def vector(rid: str, version: int) -> list[float]:
    rng = random.Random(rid)
    return [float(version)] + [rng.uniform(-1, 1) for _ in range(DIMENSION - 1)]


def open_store(directory: Path, name: str, server: str | None) -> tuple[Any, Any]:
    """(what the app writes through, what to close): the collection, or the router."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    client = chromadb.PersistentClient(str(directory), settings=settings)
    collection = client.get_or_create_collection(name, metadata={"hnsw:space": "l2"})
    if server is None:
        return collection, None
    from ferry.core.router import ChromaStore, Router

    host, port = server.rsplit(":", 1)
    remote = chromadb.HttpClient(host=host, port=int(port), settings=settings)
    mirror = remote.get_or_create_collection(name, metadata={"hnsw:space": "l2"})
    state = directory.with_name(directory.name + ".router.json")
    router = Router(ChromaStore(collection), ChromaStore(mirror), state, mode="dual-write")
    return router, router


def write(
    directory: Path,
    name: str,
    seconds: float,
    max_changes: int,
    out: Path,
    server: str | None = None,
    seed: int = SEED,
) -> None:
    collection, router = open_store(directory, name, server)
    versions: dict[str, int] = {}
    next_id = 0
    rng = random.Random(7)

    def put(ids: list[str], adding: bool) -> None:
        batch = {
            "ids": ids,
            "embeddings": [vector(i, versions[i]) for i in ids],
            "metadatas": [{"v": versions[i], "n": int(i[1:])} for i in ids],
            "documents": [f"{i}:{versions[i]}" for i in ids],
        }
        if router is not None:
            router.upsert(**batch)
        else:
            (collection.add if adding else collection.upsert)(**batch)

    for start in range(0, seed, 500):
        ids = [f"r{k}" for k in range(start, min(seed, start + 500))]
        versions.update(dict.fromkeys(ids, 0))
        put(ids, adding=True)
    next_id = seed
    Path(f"{directory}.ready").write_text("ready")
    stop = Path(f"{directory}.stop")
    changes = 0
    deleted: list[str] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds and changes < max_changes and not stop.exists():
        added = [f"r{k}" for k in range(next_id, next_id + BATCH)]
        next_id += BATCH
        versions.update(dict.fromkeys(added, 0))
        put(added, adding=True)
        live = list(versions)
        touched = rng.sample(live, min(BATCH, len(live)))
        # Some deleted ids come back (a newer version after a delete: never the old one).
        revived = deleted[: BATCH // 10]
        deleted = deleted[BATCH // 10 :]
        for rid in touched + revived:
            versions[rid] = versions.get(rid, 0) + 1
        put(touched + revived, adding=False)
        gone = rng.sample(list(versions), min(BATCH // 3, len(versions)))
        if router is not None:
            router.delete(gone)
        else:
            collection.delete(ids=gone)
        for rid in gone:
            deleted.append(rid)
            del versions[rid]
        changes += len(added) + len(touched) + len(revived) + len(gone)
    elapsed = time.monotonic() - started
    if router is not None:
        router.close()
    out.write_text(
        json.dumps({"versions": versions, "changes": changes, "seconds": elapsed}, sort_keys=True)
    )


if __name__ == "__main__":
    folder, collection_name, secs, most, result = sys.argv[1:6]
    mirror_server = sys.argv[6] if len(sys.argv) > 6 else None
    write(Path(folder), collection_name, float(secs), int(most), Path(result), mirror_server)
