"""Where the embed stage meets a run: its plan per collection, its events, its lifetime.

Kept out of the engine and the runner so both change by a line or two: the runner opens the
model once (`open_stage`), the plan gains an `EmbedPlan` per collection (`add_embed_plans`,
refusing records without documents by id), and the engine calls `stage.embed_batch`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ferry.core.connectors.base import SourceConnector
from ferry.core.embed.cache import EmbeddingCache, cache_path_for
from ferry.core.embed.factory import open_embedder
from ferry.core.embed.plan import EmbedPlan, plan_embedding
from ferry.core.embed.provider import Embedder, EmbedRetry
from ferry.core.embed.settings import EmbedSettings
from ferry.core.embed.stage import EmbedStage
from ferry.core.errors import PreflightError
from ferry.core.events import EmbedRetried, RunEvent
from ferry.core.model import Metric


async def open_stage(settings: EmbedSettings, journal_path: Path | None) -> EmbedStage:
    """The model, opened once for the run (its dimension known), and the cache beside the
    journal. Retries are counted by the stage and published once `stage.on_retry` is set."""
    holder: list[EmbedStage] = []

    def on_retry(retry: EmbedRetry) -> None:
        if holder:
            holder[0].notice_retry(retry)

    embedder = await open_embedder(settings, on_retry)
    cache = EmbeddingCache(cache_path_for(journal_path)) if journal_path else None
    stage = EmbedStage(embedder, cache, settings)
    holder.append(stage)
    return stage


def publish_retries(stage: EmbedStage, run_id: str, publish: Callable[[RunEvent], None]) -> None:
    """Throttling and failed requests as events on the run's bus (Monitor, status, log)."""

    def on_retry(collection: str | None, retry: EmbedRetry) -> None:
        publish(
            EmbedRetried(
                run_id=run_id,
                collection=collection,
                what="embed",
                attempt=retry.attempt,
                error=retry.reason if retry.status is None else f"HTTP {retry.status}",
                delay=retry.delay,
                throttled=retry.throttled,
            )
        )

    stage.on_retry = on_retry


def target_shape(embedder: Embedder) -> tuple[int, Metric]:
    return embedder.dimension, embedder.metric


async def add_embed_plans(
    plan: object,
    source: SourceConnector,
    settings: EmbedSettings,
    embedder: Embedder,
    cache: EmbeddingCache | None,
) -> None:
    """Every collection of `plan` (a MigrationPlan) gains its EmbedPlan; records without a
    document make the collection's error (by id) unless `--embed-missing skip`."""
    for item in plan.collections:  # type: ignore[attr-defined]
        if item.error or item.skip_reason:
            continue
        embed: EmbedPlan = await plan_embedding(source, item.source, settings, embedder, cache)
        item.embed = embed
        item.notes += embed.lines()
        if embed.same_model:
            item.warnings.append(embed.lines()[2])
        if embed.missing and settings.missing != "skip":
            shown = ", ".join(repr(i) for i in embed.missing_ids)
            more = embed.missing - len(embed.missing_ids)
            item.error = PreflightError(
                f"{item.source.name}: {embed.missing:,} record(s) have no document to embed: "
                f"{shown}" + (f" (+{more} more)" if more > 0 else ""),
                where=source.uri,
                fix="add their documents in the source, or pass --embed-missing skip",
            ).one_line()
