"""Open the model a run names: the one place that knows every provider module.

Why apart from provider.py: the providers (local.py, openai_compat.py) build on provider.py's
interface, so the factory that picks among them sits above all three (no import circle).
"""

from __future__ import annotations

from ferry.core.embed import local
from ferry.core.embed.openai_compat import OpenAICompatible
from ferry.core.embed.provider import Embedder, OnEmbedRetry
from ferry.core.embed.settings import EmbedSettings


async def open_embedder(settings: EmbedSettings, on_retry: OnEmbedRetry | None = None) -> Embedder:
    """The model `settings` names, ready (its dimension known). Refused in one line when its
    package is missing, its weights are not on this machine, or the endpoint cannot be used."""
    settings.check()
    provider = settings.provider
    if provider == "openai":
        embedder = OpenAICompatible(settings, on_retry)
        try:
            await embedder.probe()
        except BaseException:
            await embedder.aclose()
            raise
        return embedder
    opener = {
        "wordllama": local.open_wordllama,
        "sentence-transformers": local.open_sentence_transformers,
        "fastembed": local.open_fastembed,
    }[provider]
    return opener(settings)
