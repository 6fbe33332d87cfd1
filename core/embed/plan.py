"""What re-embedding a collection will take, said before anything is written.

Per collection: the model, the new dimension and metric, the records without a document
(refused by id, or skipped and counted), how many documents and estimated tokens, how many
the cache already holds (not paid again), the time at the stated rate limit, the cost when a
price is given, and what Chroma itself recorded as the collection's embedding function -
with a note when the new model is the one the source already used.

Counting needs every document: the source is read once, batch by batch (memory bounded),
vectors ignored. The cache is asked which documents are already paid for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ferry.core.connectors.base import SourceConnector
from ferry.core.embed.cache import EmbeddingCache, document_hash
from ferry.core.embed.provider import Embedder
from ferry.core.embed.settings import EmbedSettings
from ferry.core.embed.stage import missing_document
from ferry.core.model import CollectionInfo

PLAN_READ_BATCH = 2000
MISSING_SHOWN = 5

# Chroma's recorded embedding function → the models that are the same weights here.
CHROMA_SAME_MODEL = {
    "default": ("all-minilm-l6-v2",),
    "onnx_mini_lm_l6_v2": ("all-minilm-l6-v2",),
}


@dataclass
class EmbedPlan:
    model: str
    dimension: int
    metric: str
    source_dimension: int | None = None
    source_embedding_function: str | None = None  # what Chroma recorded, as it says it
    same_model: bool = False
    documents: int = 0
    distinct_documents: int = 0
    missing: int = 0
    missing_ids: list[str] = field(default_factory=list)
    missing_policy: str = "refuse"
    tokens: int = 0  # estimated, of the documents still to pay for
    cached: int = 0  # distinct documents the cache already holds for this model
    cache_checked: bool = False  # False: planned without the cache (a dry run writes nothing)
    seconds_at_limit: float | None = None
    limit: str | None = None  # the limit the time is computed at, in words
    cost: float | None = None  # at --embed-price per million tokens

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        """The plan's words for this collection."""
        ef = self.source_embedding_function or "not recorded"
        out = [
            f"re-embed with {self.model}: dimension {self.source_dimension} → {self.dimension}, "
            f"metric {self.metric} (Chroma recorded: {ef})",
            f"{self.documents:,} documents ({self.distinct_documents:,} distinct), "
            f"~{self.tokens:,} tokens to embed"
            + (f"; {self.cached:,} already in the cache" if self.cache_checked else ""),
        ]
        if self.same_model:
            out.append(
                f"the source was embedded with {ef}, the same model: re-embedding changes "
                "nothing but the cost"
            )
        if self.missing:
            shown = ", ".join(repr(i) for i in self.missing_ids)
            more = (
                f" (+{self.missing - len(self.missing_ids)} more)"
                if self.missing > len(self.missing_ids)
                else ""
            )
            verb = "skipped (--embed-missing skip)" if self.missing_policy == "skip" else "refused"
            out.append(f"{self.missing:,} record(s) without a document, {verb}: {shown}{more}")
        if self.seconds_at_limit is not None:
            out.append(f"~{format_seconds(self.seconds_at_limit)} at {self.limit}")
        if self.cost is not None:
            out.append(f"estimated cost {self.cost:,.4f} (at the given price per 1M tokens)")
        return out


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def same_model(recorded: str | None, model: str) -> bool:
    """Whether Chroma's recorded embedding function is the new model (as far as names say)."""
    if not recorded:
        return False
    name, _, rest = recorded.partition(" (")
    recorded_model = rest.rstrip(")").lower()
    provider, _, new = model.lower().partition("/")
    new_tail = new.rsplit("/", 1)[-1]
    if recorded_model and recorded_model.rsplit("/", 1)[-1] == new_tail:
        return True
    return new_tail in CHROMA_SAME_MODEL.get(name.lower(), ())


async def plan_embedding(
    source: SourceConnector,
    info: CollectionInfo,
    settings: EmbedSettings,
    embedder: Embedder,
    cache: EmbeddingCache | None,
) -> EmbedPlan:
    plan = EmbedPlan(
        model=settings.model,
        dimension=embedder.dimension,
        metric=embedder.metric.value,
        source_dimension=info.dimension,
        source_embedding_function=info.embedding_function,
        same_model=same_model(info.embedding_function, settings.model),
        missing_policy=settings.missing,
        cache_checked=cache is not None,
    )
    seen: set[bytes] = set()  # 32 bytes a distinct document: bounded by the collection
    to_pay: dict[bytes, int] = {}
    if info.count:
        async for batch in source.read(info.name, None, PLAN_READ_BATCH):
            for record_id, document in zip(batch.ids, batch.documents, strict=True):
                if missing_document(document):
                    plan.missing += 1
                    if len(plan.missing_ids) < MISSING_SHOWN:
                        plan.missing_ids.append(str(record_id))
                    continue
                plan.documents += 1
                key = document_hash(document)  # type: ignore[arg-type]
                if key not in seen:
                    seen.add(key)
                    to_pay[key] = embedder.estimate_tokens(document)  # type: ignore[arg-type]
            if cache is not None and len(to_pay) >= PLAN_READ_BATCH:
                plan.tokens += _unpaid(cache, settings, embedder, to_pay, plan)
    if cache is not None:
        plan.tokens += _unpaid(cache, settings, embedder, to_pay, plan)
    else:
        plan.tokens += sum(to_pay.values())
    plan.distinct_documents = len(seen)
    requests = math.ceil((plan.distinct_documents - plan.cached) / max(settings.batch_texts, 1))
    times = []
    if settings.rpm:
        times.append((requests / settings.rpm * 60, f"{settings.rpm:g} requests/min"))
    if settings.tpm:
        times.append((plan.tokens / settings.tpm * 60, f"{settings.tpm:g} tokens/min"))
    if times:
        plan.seconds_at_limit, plan.limit = max(times)
    if settings.price is not None:
        plan.cost = plan.tokens / 1e6 * settings.price
    return plan


def _unpaid(
    cache: EmbeddingCache,
    settings: EmbedSettings,
    embedder: Embedder,
    to_pay: dict[bytes, int],
    plan: EmbedPlan,
) -> int:
    """Tokens of the documents in `to_pay` the cache does not hold; empties `to_pay`."""
    held = cache.get_many(embedder.name, embedder.settings_fingerprint(), list(to_pay))
    plan.cached += len(held)
    tokens = sum(cost for key, cost in to_pay.items() if key not in held)
    to_pay.clear()
    return tokens
