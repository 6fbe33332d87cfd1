"""Re-embedding during a migration (`--embed provider/model`): providers behind one small
interface, the token budget and rate limits, the embedding cache, the embed stage the engine
calls between map and write, and what the plan says about it."""

from core.embed.cache import EmbeddingCache, cache_path_for
from core.embed.factory import open_embedder
from core.embed.provider import Embedder, EmbedRetry
from core.embed.settings import EmbedSettings
from core.embed.stage import EmbedCounters, EmbedStage

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
