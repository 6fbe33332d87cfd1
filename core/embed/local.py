"""Models that run on this machine: wordllama (its weights ship inside its wheel), and
sentence-transformers / fastembed models already in their local cache.

Why no downloads: a migration must not fetch hundreds of megabytes from a model hub in the
middle of a run (nor need the network at all for a local model); a model that is not on the
machine is refused in one line saying how to get it. All of them embed in a worker thread so
the engine's loop never blocks, and return unit vectors (cosine is their metric).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.embed.provider import Embedder, estimate_tokens, require_package
from ferry.core.embed.settings import EmbedSettings
from ferry.core.errors import FerryError
from ferry.core.model import Metric

WORDLLAMA_DIMENSIONS = (64, 128, 256)  # Matryoshka cuts of the bundled 256-dimension weights
WORDLLAMA_BUNDLED_DIM = 256


class LocalModel:
    """Any local model: a blocking `encode(texts) -> float32 rows`, run in a thread."""

    metric = Metric.COSINE

    def __init__(self, settings: EmbedSettings, encode: Any, dimension: int) -> None:
        self.settings = settings
        self.name = settings.model
        self._encode = encode
        self.dimension = dimension
        # One encode at a time: these models already use every core for one call, and
        # their tokenizers are not all safe to call from two threads at once.
        self._lock = threading.Lock()

    def settings_fingerprint(self) -> str:
        return self.settings.fingerprint()

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def encode_now(self, texts: list[str]) -> np.ndarray:
        """The blocking call (benchmarks compare the stage with it)."""
        with self._lock:
            vectors = np.asarray(self._encode(texts), dtype=np.float32)
        return np.ascontiguousarray(vectors.reshape(len(texts), self.dimension))

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode_now, texts)

    async def aclose(self) -> None:
        return None


def import_wordllama() -> Any:
    """`import wordllama` without its side effect: its modules call
    `logging.basicConfig(level=INFO)` at import, which would make every library's INFO lines
    (httpx's request log among them) appear on Ferry's stderr. A handler already on the root
    logger makes basicConfig do nothing; it is removed again at once."""
    root = logging.getLogger()
    guard = logging.NullHandler()
    if not root.handlers:
        root.addHandler(guard)
    try:
        import wordllama
        import wordllama.inference  # noqa: F401  (its basicConfig runs under the guard too)

        return wordllama
    finally:
        root.removeHandler(guard)


def wordllama_folder() -> Path:
    return Path(import_wordllama().__file__).parent


def open_wordllama(settings: EmbedSettings) -> Embedder:
    """`wordllama/<config>` from the weights in the wheel, with downloads disabled.

    wordllama looks for its bundled tokenizer in `<package>/tokenizer/` but ships it in
    `<package>/tokenizers/`, then falls back to the cache dir and the network. With the
    cache dir set to the package folder its cache lookup (`<cache>/tokenizers/`) finds the
    bundled file, and `disable_download` turns anything missing into an error, not a fetch.
    """
    require_package("wordllama", "wordllama", "wordllama")
    WordLlama = import_wordllama().WordLlama  # noqa: N806

    config = settings.model_name
    dimension = settings.dimensions or WORDLLAMA_BUNDLED_DIM
    if dimension not in WORDLLAMA_DIMENSIONS:
        raise FerryError(
            f"--embed-dimensions {dimension} is not offered by wordllama/{config}",
            where="--embed-dimensions",
            fix=f"one of {', '.join(map(str, WORDLLAMA_DIMENSIONS))}",
        )
    configs = WordLlama.list_configs()["wordllama"]
    if config not in configs:
        raise FerryError(
            f"wordllama has no config {config!r}",
            where="--embed",
            fix=f"one of: {', '.join('wordllama/' + c for c in configs)}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = WordLlama.load(
                config,
                dim=WORDLLAMA_BUNDLED_DIM,
                trunc_dim=dimension if dimension != WORDLLAMA_BUNDLED_DIM else None,
                cache_dir=wordllama_folder(),
                disable_download=True,
            )
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise FerryError(
            f"wordllama/{config}: its weights are not on this machine ({exc})",
            where="--embed",
            fix="wordllama/l2_supercat ships in the wheel; other configs must be downloaded "
            "into the wordllama package folder first",
        ) from None

    def encode(texts: list[str]) -> np.ndarray:
        return model.embed(texts, norm=True, batch_size=256)

    return LocalModel(settings, encode, dimension)


def open_sentence_transformers(settings: EmbedSettings) -> Embedder:
    """`sentence-transformers/<model>` from the Hugging Face cache only (no download)."""
    require_package("sentence_transformers", "sentence-transformers", "sentence-transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            model = SentenceTransformer(
                settings.model_name,
                local_files_only=True,
                truncate_dim=settings.dimensions,
            )
    except Exception as exc:
        raise FerryError(
            f"sentence-transformers/{settings.model_name} is not in the local cache ({exc})",
            where="--embed",
            fix="download it once (e.g. `huggingface-cli download "
            f"{settings.model_name}`), then run again",
        ) from None
    dimension = int(model.get_sentence_embedding_dimension())

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    return LocalModel(settings, encode, dimension)


def open_fastembed(settings: EmbedSettings) -> Embedder:
    """`fastembed/<model>` from fastembed's cache only (no download)."""
    require_package("fastembed", "fastembed", "fastembed")
    from fastembed import TextEmbedding

    try:
        model = TextEmbedding(model_name=settings.model_name, local_files_only=True)
        probe = np.asarray(list(model.embed(["dimension probe"])), dtype=np.float32)
    except Exception as exc:
        raise FerryError(
            f"fastembed/{settings.model_name} is not in the local cache ({exc})",
            where="--embed",
            fix="download it once with fastembed, then run again",
        ) from None

    def encode(texts: list[str]) -> np.ndarray:
        rows = np.asarray(list(model.embed(texts)), dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms == 0, 1, norms)

    return LocalModel(settings, encode, int(probe.shape[1]))
