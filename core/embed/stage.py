"""The embed stage: a batch read from the source leaves with the new model's vectors.

Between map and write (read → map → embed → write → index). For each batch:

1. records without a document are refused by id (`--embed-missing refuse`, the default:
   the plan already refused them; this catches a source that changed since) or dropped and
   counted (`skip`);
2. documents are hashed; what the cache already holds is taken from it (never paid twice);
3. the rest, each distinct document once, is cut into requests by count and estimated
   tokens (`batch_texts`, `batch_tokens`, and never more than the per-minute token budget);
4. the requests run concurrently, at most `concurrency` in flight across the whole run (a
   semaphore shared by every writer), and each answer is cached the moment it arrives;
5. the batch's vectors are replaced; ids, documents and metadata are untouched.

Memory: one batch's documents and vectors per writer, plus the requests in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ferry.core.embed.cache import EmbeddingCache, document_hash
from ferry.core.embed.provider import Embedder, EmbedRetry
from ferry.core.embed.settings import EmbedSettings
from ferry.core.errors import PermanentError
from ferry.core.model import Batch


@dataclass
class EmbedCounters:
    """What the stage did so far: the cost side of a run (shown and journaled)."""

    documents: int = 0  # documents that passed through the stage
    embedded: int = 0  # texts sent to the model (what is paid for)
    cached: int = 0  # documents whose vector came from the cache
    duplicates: int = 0  # documents identical to another in the same batch
    skipped: int = 0  # records without a document, left out (--embed-missing skip)
    tokens: int = 0  # estimated tokens sent
    requests: int = 0
    throttled: int = 0  # 429 answers waited out
    retries: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def missing_document(document: str | None) -> bool:
    return document is None or document == ""


def split_requests(
    texts: list[str], tokens: list[int], max_texts: int, max_tokens: int
) -> list[tuple[int, int]]:
    """[start, end) ranges: consecutive texts under both limits (a text over the token
    limit alone goes in a request by itself)."""
    ranges = []
    start, budget = 0, 0
    for i, cost in enumerate(tokens):
        if i > start and (i - start >= max_texts or budget + cost > max_tokens):
            ranges.append((start, i))
            start, budget = i, 0
        budget += cost
    if start < len(texts):
        ranges.append((start, len(texts)))
    return ranges


class EmbedStage:
    """One model for one run: the engine's embed stage (a `ferry.core.engine.BatchStage`), called
    per batch between map and write."""

    name = "embed"

    def __init__(
        self, embedder: Embedder, cache: EmbeddingCache | None, settings: EmbedSettings
    ) -> None:
        self.embedder = embedder
        self.cache = cache
        self.settings = settings
        self.model = embedder.name
        self.fingerprint = embedder.settings_fingerprint()
        self.counters = EmbedCounters()
        self._in_flight = asyncio.Semaphore(max(settings.concurrency, 1))
        self.max_tokens = settings.batch_tokens
        if settings.tpm:
            self.max_tokens = max(1, min(self.max_tokens, int(settings.tpm)))
        # Who hears about retries and throttling (the engine's bus, via the runner).
        self.on_retry: Callable[[str | None, EmbedRetry], None] | None = None
        self.collection: str | None = None

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def notice_retry(self, retry: EmbedRetry) -> None:
        """The provider's callback: counted here, published by whoever listens."""
        self.counters.retries += 1
        if retry.throttled:
            self.counters.throttled += 1
        if self.on_retry is not None:
            self.on_retry(self.collection, retry)

    async def __call__(self, collection: str, batch: Batch) -> Batch:
        return await self.embed_batch(collection, batch)

    async def embed_batch(self, collection: str, batch: Batch) -> Batch:
        self.collection = collection
        keep = [i for i, d in enumerate(batch.documents) if not missing_document(d)]
        if len(keep) < len(batch):
            if self.settings.missing != "skip":
                kept = set(keep)
                absent = [batch.ids[i] for i in range(len(batch)) if i not in kept]
                raise PermanentError(
                    f"{collection}: {len(absent)} record(s) have no document to embed: "
                    + ", ".join(repr(i) for i in absent[:5])
                    + (f" (+{len(absent) - 5} more)" if len(absent) > 5 else ""),
                    fix="add their documents in the source, or pass --embed-missing skip",
                )
            self.counters.skipped += len(batch) - len(keep)
            batch = take(batch, keep)
        if not len(batch):
            return replace(batch, vectors=np.zeros((0, self.dimension), np.float32))
        documents: list[str] = [d for d in batch.documents if d is not None]
        vectors = await self.vectors_for(documents)
        return replace(batch, vectors=vectors)

    async def vectors_for(self, documents: list[str]) -> np.ndarray:
        """One unit row per document, from the cache or the model (each distinct text once)."""
        self.counters.documents += len(documents)
        hashes = [document_hash(d) for d in documents]
        known = (
            await asyncio.to_thread(self.cache.get_many, self.model, self.fingerprint, hashes)
            if self.cache is not None
            else {}
        )
        todo: dict[bytes, str] = {}
        for key, document in zip(hashes, documents, strict=True):
            if key in known:
                self.counters.cached += 1
            elif key in todo:
                self.counters.duplicates += 1
            else:
                todo[key] = document
        if todo:
            keys = list(todo)
            texts = [todo[k] for k in keys]
            costs = [self.embedder.estimate_tokens(t) for t in texts]
            ranges = split_requests(texts, costs, self.settings.batch_texts, self.max_tokens)
            answers = await asyncio.gather(
                *(self._request(keys[a:b], texts[a:b], sum(costs[a:b])) for a, b in ranges)
            )
            for part in answers:
                known.update(part)
        return np.stack([known[k] for k in hashes]).astype(np.float32, copy=False)

    async def _request(
        self, keys: list[bytes], texts: list[str], tokens: int
    ) -> dict[bytes, np.ndarray]:
        async with self._in_flight:
            vectors = await self.embedder.embed(texts)
        if vectors.shape != (len(texts), self.dimension):
            raise PermanentError(
                f"{self.model} answered vectors of shape {vectors.shape} for {len(texts)} texts "
                f"(expected dimension {self.dimension})"
            )
        self.counters.embedded += len(texts)
        self.counters.tokens += tokens
        self.counters.requests += 1
        pairs = list(zip(keys, vectors, strict=True))
        if self.cache is not None:  # paid for: kept before anything else can fail
            await asyncio.to_thread(self.cache.put_many, self.model, self.fingerprint, pairs)
        return dict(pairs)

    async def aclose(self) -> None:
        await self.embedder.aclose()
        if self.cache is not None:
            self.cache.close()


def take(batch: Batch, rows: list[int]) -> Batch:
    """The batch's records at `rows` (all columns), its cursor unchanged."""
    return replace(
        batch,
        ids=[batch.ids[i] for i in rows],
        vectors=batch.vectors[rows] if len(batch.vectors) else batch.vectors,
        metadatas=[batch.metadatas[i] for i in rows],
        documents=[batch.documents[i] for i in rows],
        native_ids=[batch.native_ids[i] for i in rows] if batch.native_ids else None,
    )
