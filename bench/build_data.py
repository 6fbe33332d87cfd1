"""Build the benchmark's embedded Chroma directories once: 20k, 100k, 300k (and 1M) × 384.

Why a script of its own: building with chromadb takes minutes (HNSW inserts), and every
measurement must read the *same* data, so the directories are made once, seeded, and marked
complete; `run.py` only reads them (never through `PersistentClient`: that writes to a dir).

Data shape, meant to look like a real RAG collection: cosine space; clustered vectors (a
mixture of Gaussians, not uniform noise, so the HNSW graph is realistic); 4–6 metadata keys
of mixed types (str, int, float, bool); documents of 200–500 characters; ids "doc-000123".
Record i is the same in both sizes (it depends only on the seed and i).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
DIMENSION = 384
SEED = 20240611
COLLECTION = "bench"
SIZES = {"20k": 20_000, "100k": 100_000, "300k": 300_000, "1m": 1_000_000}  # 20k: --quick
DEFAULT_SIZES = ["20k", "100k", "300k"]  # 1m only for soak.py, on request (~30 min to build)
MARKER = "BUILD_COMPLETE.json"
CHUNK = 10_000  # records generated at a time: memory stays small for 300k

WORD_TEXT = (
    "vector database migration embedding index query shard segment payload metadata cosine "
    "distance nearest neighbour recall latency throughput batch cursor checkpoint journal "
    "resume upsert collection document chunk token model retrieval search ranking filter "
    "cluster replica snapshot alias cutover validation schema version engine stream queue "
    "writer reader memory disk flush durable crash network timeout retry backoff the a of "
    "and to in is for on with as by at from this that it be are was were will can"
)
WORDS = WORD_TEXT.split()
SOURCES = ["wiki", "docs", "forum", "blog", "paper", "ticket", "email", "code"]
LANGS = ["en", "de", "fr", "es", "ja"]


def chroma_dir(size: str) -> Path:
    return DATA_DIR / f"chroma-{size}"


def is_complete(size: str) -> bool:
    return (chroma_dir(size) / MARKER).exists()


def records(start: int, stop: int) -> Iterator[tuple[list[str], np.ndarray, list, list[str]]]:
    """Deterministic records [start, stop) in chunks: each chunk seeded by its index."""
    centers = np.random.default_rng(SEED).normal(size=(64, DIMENSION)).astype(np.float32)
    for chunk_start in range(start, stop, CHUNK):
        chunk_stop = min(chunk_start + CHUNK, stop)
        n = chunk_stop - chunk_start
        rng = np.random.default_rng([SEED, chunk_start])
        labels = rng.integers(0, len(centers), n)
        vectors = centers[labels] + 0.6 * rng.normal(size=(n, DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"doc-{i:06d}" for i in range(chunk_start, chunk_stop)]
        lengths = rng.integers(200, 501, n)
        word_idx = rng.integers(0, len(WORDS), (n, 100))
        documents = []
        for row, length in zip(word_idx, lengths, strict=True):
            text = " ".join(WORDS[w] for w in row)
            while len(text) < length:
                text += " " + text
            documents.append(text[:length])
        metadatas: list[dict[str, Any]] = []
        n_keys = rng.integers(4, 7, n)
        ints = rng.integers(0, 10_000, (n, 2))
        floats = rng.random(n)
        bools = rng.random(n) < 0.5
        for j in range(n):
            meta: dict[str, Any] = {
                "source": SOURCES[int(ints[j, 0]) % len(SOURCES)],
                "page": int(ints[j, 1]),
                "score": round(float(floats[j]), 6),
                "published": bool(bools[j]),
            }
            if n_keys[j] >= 5:
                meta["lang"] = LANGS[int(ints[j, 1]) % len(LANGS)]
            if n_keys[j] >= 6:
                meta["year"] = 1990 + int(ints[j, 0]) % 35
            metadatas.append(meta)
        yield ids, vectors, metadatas, documents


def build(size: str) -> None:
    import chromadb
    from chromadb.config import Settings

    target = chroma_dir(size)
    if is_complete(size):
        print(f"{target}: complete, skipping", flush=True)
        return
    shutil.rmtree(target, ignore_errors=True)  # a half-built dir is not to be trusted
    target.mkdir(parents=True)
    count = SIZES[size]
    client = chromadb.PersistentClient(str(target), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection(COLLECTION, configuration={"hnsw": {"space": "cosine"}})
    max_batch = client.get_max_batch_size()
    started = time.perf_counter()
    for ids, vectors, metadatas, documents in records(0, count):
        for lo in range(0, len(ids), max_batch):
            hi = lo + max_batch
            collection.add(
                ids=ids[lo:hi],
                embeddings=vectors[lo:hi],
                metadatas=metadatas[lo:hi],
                documents=documents[lo:hi],
            )
        done = int(ids[-1][4:]) + 1
        rate = done / (time.perf_counter() - started)
        print(f"{size}: {done:,}/{count:,} ({rate:,.0f} records/s)", flush=True)
    assert collection.count() == count, (collection.count(), count)
    del collection, client
    (target / MARKER).write_text(
        json.dumps(
            {
                "collection": COLLECTION,
                "count": count,
                "dimension": DIMENSION,
                "seed": SEED,
                "chromadb": chromadb.__version__,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    print(f"{target}: built in {time.perf_counter() - started:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", default=DEFAULT_SIZES, choices=list(SIZES))
    args = parser.parse_args(argv)
    for size in args.sizes:
        build(size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
