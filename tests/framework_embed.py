"""The deterministic embedder the app-framework tests share across processes and venvs
(numpy and hashlib only: it is imported by scripts running in the frameworks' own venvs)."""

from __future__ import annotations

import hashlib

import numpy as np

DIM = 16


def embed(text: str) -> list[float]:
    """Deterministic and of unit length, like the frameworks' default models (MiniLM,
    bge-small, OpenAI's): the same in every process and venv."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return [float(x) for x in v / np.linalg.norm(v)]
