"""The one small interface every embedding model sits behind, and how a `--embed` opens one.

Why so small: the stage (core.embed.stage) batches, caches and bounds what is in flight for
any model; a provider only turns texts into float32 vectors and says what it makes (its
dimension and metric, for the target collection, and its settings fingerprint, for the cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ferry.core.errors import FerryError
from ferry.core.model import Metric


@dataclass(frozen=True)
class EmbedRetry:
    """A request the provider will send again: why, after how long, and whether the
    endpoint throttled us (429) or failed (5xx, timeout, reset)."""

    attempt: int
    status: int | None  # HTTP status; None for a timeout or a dropped connection
    delay: float
    reason: str

    @property
    def throttled(self) -> bool:
        return self.status == 429


OnEmbedRetry = Callable[[EmbedRetry], None]


class Embedder(Protocol):
    """A model that embeds documents. `embed` returns one float32 row per text."""

    name: str  # "provider/model"
    dimension: int
    metric: Metric

    def settings_fingerprint(self) -> str: ...

    def estimate_tokens(self, text: str) -> int: ...

    async def embed(self, texts: list[str]) -> np.ndarray: ...

    async def aclose(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """About four bytes of text per token (what OpenAI's guide states for English); the
    budget needs an upper-side estimate, not an exact count."""
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


def require_package(module: str, provider: str, pip_name: str) -> None:
    """A local provider whose package is not installed: one line saying what to install."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise FerryError(
            f"--embed {provider}/… needs the {pip_name} package, which is not installed",
            where="--embed",
            fix=f"pip install {pip_name} (or 'ferry-migrate[embed]' for wordllama)",
        )
