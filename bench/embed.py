"""The embed stage's throughput against what bounds it (issue 21).

Two ceilings, each measured in the same run as Ferry's figure, as a ratio:

1. **The model's own rate** (local wordllama, bundled): the model alone embeds every
   document in chunks of `--embed-batch`, in one thread, nothing else (`encode_now`). Then
   the embed stage embeds the same documents as the engine feeds it - batches of 1,000 from
   two writers, hashing, the SQLite cache (fresh: every document paid), request splitting,
   the thread hop. Ratio = stage texts/s ÷ model texts/s.
2. **The endpoint's allowed rate**: tests/embed_server.py serving the same model with a rate
   limit of R texts/s (a token bucket; 429 with an exact `Retry-After` when over). The stage
   embeds N documents through it, honouring Retry-After, no client-side limit configured.
   Ratio = stage texts/s ÷ R (the bucket's initial burst is subtracted from what was served
   before dividing, so a short run cannot beat the limit by spending the burst).

Each figure is the best of `--repeats` runs (the machine is shared). Writes
bench/embed_results.json and bench/embed_results.md.

    python bench/embed.py [--documents 20000] [--rate 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferry.core.embed import EmbedSettings, EmbedStage, open_embedder  # noqa: E402
from ferry.core.embed.cache import EmbeddingCache  # noqa: E402
from ferry.core.model import Batch  # noqa: E402
from tests.embed_fixtures import embed_server, server_stats  # noqa: E402

OUT = Path(__file__).resolve().parent
WORDS = [
    "vector",
    "database",
    "migration",
    "embedding",
    "index",
    "query",
    "shard",
    "payload",
    "metadata",
    "cosine",
    "distance",
    "nearest",
    "neighbour",
    "recall",
    "latency",
    "throughput",
    "batch",
    "cursor",
    "checkpoint",
    "journal",
    "resume",
    "upsert",
    "collection",
    "document",
    "chunk",
    "token",
    "model",
    "retrieval",
    "search",
    "ranking",
    "filter",
    "cluster",
    "replica",
]


def documents(n: int, seed: int = 7) -> list[str]:
    """Distinct documents of 20–60 words (a RAG chunk's order of size)."""
    rng = np.random.default_rng(seed)
    return [
        f"doc {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(20, 60)))) for i in range(n)
    ]


def batches(texts: list[str], size: int = 1000) -> list[Batch]:
    out = []
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        out.append(
            Batch(
                [f"id-{start + i}" for i in range(len(chunk))],
                np.zeros((len(chunk), 4), np.float32),
                [None] * len(chunk),
                list(chunk),
            )
        )
    return out


async def run_stage(settings: EmbedSettings, texts: list[str], workers: int = 2) -> float:
    """Seconds for the embed stage to embed `texts` as the engine feeds it (fresh cache)."""
    embedder = await open_embedder(settings)
    with tempfile.TemporaryDirectory() as folder:
        stage = EmbedStage(embedder, EmbeddingCache(Path(folder) / "cache.sqlite3"), settings)
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=workers)

        async def reader() -> None:
            for batch in batches(texts):
                await queue.put(batch)
            for _ in range(workers):
                await queue.put(None)

        async def writer() -> None:
            while (batch := await queue.get()) is not None:
                done = await stage.embed_batch("bench", batch)
                assert done.vectors.shape[0] == len(batch)

        started = time.perf_counter()
        await asyncio.gather(reader(), *(writer() for _ in range(workers)))
        seconds = time.perf_counter() - started
        assert stage.counters.embedded == len(set(texts))
        await stage.aclose()
    return seconds


async def model_alone(settings: EmbedSettings, texts: list[str]) -> float:
    embedder = await open_embedder(settings)
    started = time.perf_counter()
    for start in range(0, len(texts), settings.batch_texts):
        embedder.encode_now(texts[start : start + settings.batch_texts])  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    await embedder.aclose()
    return seconds


def local_case(n: int, repeats: int) -> dict[str, float]:
    texts = documents(n)
    settings = EmbedSettings("wordllama/l2_supercat", batch_texts=256)
    model, stage = [], []
    for _ in range(repeats):  # interleaved: both see the same machine
        model.append(asyncio.run(model_alone(settings, texts)))
        stage.append(asyncio.run(run_stage(settings, texts)))
    model_rate, stage_rate = n / min(model), n / min(stage)
    return {
        "documents": n,
        "model_texts_per_second": round(model_rate, 1),
        "stage_texts_per_second": round(stage_rate, 1),
        "ratio": round(stage_rate / model_rate, 3),
    }


def endpoint_case(n: int, rate: float, burst: float, repeats: int) -> dict[str, float]:
    texts = documents(n, seed=11)
    ratios, rates, throttled = [], [], []
    for attempt in range(repeats):
        flags = ["--texts-per-second", str(rate), "--burst", str(burst)]
        with embed_server(*flags) as base_url:
            settings = EmbedSettings(
                "openai/wordllama-l2", base_url=base_url, batch_texts=256, concurrency=4
            )
            os.environ.pop("OPENAI_API_KEY", None)
            seconds = asyncio.run(run_stage(settings, [f"{attempt} {t}" for t in texts]))
            stats = server_stats(base_url)
        achieved = (n - burst) / seconds  # the burst is free: only what the limit paced
        rates.append(achieved)
        ratios.append(achieved / rate)
        throttled.append(stats["throttled"])
    best = int(np.argmax(ratios))
    return {
        "documents": n,
        "allowed_texts_per_second": rate,
        "burst": burst,
        "stage_texts_per_second": round(rates[best], 1),
        "ratio": round(ratios[best], 3),
        "throttled_answers": throttled[best],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--endpoint-documents", type=int, default=12_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="endpoint texts/s allowed")
    parser.add_argument("--burst", type=float, default=512.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    local = local_case(args.documents, args.repeats)
    print("local", local, flush=True)
    endpoint = endpoint_case(args.endpoint_documents, args.rate, args.burst, args.repeats)
    print("endpoint", endpoint, flush=True)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "local": local,
        "endpoint": endpoint,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (OUT / "embed_results.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "embed_results.md").write_text(markdown(results))


def markdown(r: dict) -> str:
    local, endpoint = r["local"], r["endpoint"]
    return f"""# Embed stage throughput (bench/embed.py)

Measured {r["measured_at"]} on {r["machine"]} (a shared machine: best of the repeats).

| ceiling | ceiling texts/s | Ferry's embed stage texts/s | Ferry ÷ ceiling |
|---|---:|---:|---:|
| the model alone (wordllama/l2_supercat, local, {local["documents"]:,} documents) | {local["model_texts_per_second"]:,.0f} | {local["stage_texts_per_second"]:,.0f} | **{local["ratio"]:.2f}** |
| the endpoint's allowed rate (OpenAI-compatible server, {endpoint["documents"]:,} documents, 429 + Retry-After when over) | {endpoint["allowed_texts_per_second"]:,.0f} | {endpoint["stage_texts_per_second"]:,.0f} | **{endpoint["ratio"]:.2f}** |

- The model alone: `encode_now` over every document in chunks of 256, one thread, nothing
  else. The stage: batches of 1,000 from two writers, as the engine feeds it: SHA-256 of
  each document, the SQLite cache looked up and written (fresh, so every document is paid
  for), requests cut by count and tokens, the model in a worker thread.
- The endpoint: tests/embed_server.py limits to {endpoint["allowed_texts_per_second"]:,.0f}
  texts/s (token bucket of {endpoint["burst"]:,.0f}); Ferry has no client-side limit and
  paces itself by the 429s' `Retry-After` ({endpoint["throttled_answers"]:,} throttled
  answers). The bucket's initial burst is subtracted before dividing.
"""


if __name__ == "__main__":
    main()
