"""Small stores and faults for router tests: an app's store kept in numpy, so 10,000 keyed
reads cost well under a second, and the faults a real store cannot produce on demand (an
error burst, a slow stretch) wrapped around a real one."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ferry.core.router import QueryResult, Records


class MemoryStore:
    """An exact (brute-force, squared L2) store; `visible` < 1 makes it an "approximate
    index" that only ever finds a fixed share of the records, as a weak HNSW graph would."""

    def __init__(self, label: str, visible: float = 1.0, seed: int = 0) -> None:
        self.label = label
        self.rows: dict[str, np.ndarray] = {}
        self.queries = 0
        self.visible = visible
        self._rng = np.random.default_rng(seed)
        self._hidden: set[str] = set()
        self._lock = threading.Lock()
        self._index: tuple[list[str], np.ndarray] | None = None  # rebuilt after a write

    def upsert(self, ids, embeddings, metadatas=None, documents=None) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            self._index = None
            for sid, row in zip(ids, np.asarray(embeddings, np.float32), strict=True):
                self.rows[sid] = row
                if self._rng.random() >= self.visible:
                    self._hidden.add(sid)

    def query(self, embeddings: np.ndarray, k: int) -> QueryResult:
        with self._lock:
            self.queries += 1
            if self._index is None:
                ids = [sid for sid in self.rows if sid not in self._hidden]
                matrix = np.stack([self.rows[s] for s in ids]) if ids else np.zeros((0, 1))
                self._index = (ids, matrix)
            ids, matrix = self._index
        result = QueryResult([], [], [], [])
        for q in np.asarray(embeddings, np.float32):
            dist = ((matrix - q) ** 2).sum(axis=1) if ids else np.zeros(0)
            order = np.argsort(dist, kind="stable")[:k]
            result.ids.append([ids[i] for i in order])
            result.distances.append([float(dist[i]) for i in order])
            result.metadatas.append([None] * len(order))
            result.documents.append([None] * len(order))
        return result

    def get(self, ids: list[str]) -> Records:
        with self._lock:
            found = [s for s in ids if s in self.rows]
            matrix = np.stack([self.rows[s] for s in found]) if found else np.zeros((0, 0))
        return Records(found, matrix, [None] * len(found), [None] * len(found))

    def delete(self, ids: list[str]) -> None:
        with self._lock:
            self._index = None
            for sid in ids:
                self.rows.pop(sid, None)

    def count(self) -> int:
        return len(self.rows)


class Faulty:
    """A store whose calls fail (`failing`) or take `delay` seconds more while switched on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.label = inner.label
        self.failing = False
        self.delay = 0.0
        self.failures = 0

    def _gate(self) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.failing:
            self.failures += 1
            raise ConnectionError("injected: target unavailable")

    def upsert(self, *args: Any, **kwargs: Any) -> None:
        self._gate()
        self.inner.upsert(*args, **kwargs)

    def query(self, embeddings: np.ndarray, k: int) -> QueryResult:
        self._gate()
        return self.inner.query(embeddings, k)

    def get(self, ids: list[str]) -> Records:
        self._gate()
        return self.inner.get(ids)

    def delete(self, ids: list[str]) -> None:
        self._gate()
        self.inner.delete(ids)

    def count(self) -> int:
        self._gate()
        return self.inner.count()
