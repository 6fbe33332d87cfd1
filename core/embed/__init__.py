"""Re-embedding during a migration (`--embed provider/model`): providers behind one small
interface, the token budget and rate limits, the embedding cache, the embed stage the engine
calls between map and write, and what the plan says about it."""

from ferry.core.embed.cache import EmbeddingCache, cache_path_for
from ferry.core.embed.factory import open_embedder
from ferry.core.embed.provider import Embedder, EmbedRetry
from ferry.core.embed.settings import EmbedSettings
from ferry.core.embed.stage import EmbedCounters, EmbedStage

__all__ = [
    "EmbedCounters",
    "EmbedRetry",
    "EmbedSettings",
    "EmbedStage",
    "Embedder",
    "EmbeddingCache",
    "cache_path_for",
    "open_embedder",
]
