"""`openai/<model>`: any OpenAI-compatible `/v1/embeddings` endpoint, over httpx.

Why httpx and not the `openai` package: the request is one POST, and Ferry must own what the
SDK would hide - its own retries sleep without telling anyone, while a migration must count
every retry, show throttling in the Monitor, honour `Retry-After` in both its forms (seconds
or an HTTP date) and hold *every* request in flight when the endpoint says "slow down", not
only the one that was told.

Limits: `--embed-rpm` and `--embed-tpm` are token buckets (aiolimiter) taken before each
attempt, so a retry costs from the same budget as the endpoint counts it. The key's value is
read from its environment variable for each request's header and never kept or logged.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import random
import time

import httpx
import numpy as np
from aiolimiter import AsyncLimiter

from ferry.core.embed.provider import EmbedRetry, OnEmbedRetry, estimate_tokens
from ferry.core.embed.settings import EmbedSettings
from ferry.core.errors import FerryError, PermanentError, TransientError
from ferry.core.model import Metric
from ferry.core.secrets import redact

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 20.0
PROBE_TEXT = "dimension probe"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait: a number of seconds, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def decode_embedding(value: object) -> np.ndarray:
    """One embedding as the endpoint sent it: base64 of little-endian float32, or floats."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)
    return np.asarray(value, dtype=np.float32)


class OpenAICompatible:
    """One endpoint, one model; `embed` sends one request (retried) for a list of texts."""

    metric = Metric.COSINE  # OpenAI's embeddings are unit length

    def __init__(self, settings: EmbedSettings, on_retry: OnEmbedRetry | None = None) -> None:
        self.settings = settings
        self.name = settings.model
        self.dimension = 0
        self.on_retry = on_retry
        base = (settings.resolved_base_url() or "").rstrip("/")
        self.url = f"{base}/embeddings"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            limits=httpx.Limits(max_connections=max(settings.concurrency, 1) * 2),
        )
        self._rpm = AsyncLimiter(settings.rpm, 60.0) if settings.rpm else None
        self._tpm = AsyncLimiter(settings.tpm, 60.0) if settings.tpm else None
        self._hold_until = 0.0  # a 429's Retry-After holds every request, not only its own
        self.requests = 0  # attempts sent (what the endpoint bills and rate-limits)
        self.retries = 0
        self.throttled = 0  # 429 answers

    def settings_fingerprint(self) -> str:
        return self.settings.fingerprint()

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def probe(self) -> None:
        """One tiny request: the model's dimension, and any auth or name problem, now."""
        vectors = await self.embed([PROBE_TEXT])
        self.dimension = int(vectors.shape[1])

    async def embed(self, texts: list[str]) -> np.ndarray:
        tokens = sum(estimate_tokens(t) for t in texts)
        deadline = time.monotonic() + self.settings.give_up_after
        attempt = 0
        while True:
            attempt += 1
            await self._take_budget(tokens)
            status, reason, delay = await self._attempt(texts)
            if status == 200:
                return reason  # type: ignore[return-value]  # the vectors
            delay = delay if delay is not None else self._backoff(attempt)
            if status == 429:
                self.throttled += 1
                self._hold_until = max(self._hold_until, time.monotonic() + delay)
            if time.monotonic() + delay > deadline:
                raise TransientError(
                    f"the embedding endpoint kept failing ({reason}); gave up after "
                    f"{attempt} attempts in {self.settings.give_up_after:.0f}s",
                    where=self.url,
                    fix="re-run the same command to resume (embedded documents are cached)",
                )
            self.retries += 1
            if self.on_retry is not None:
                self.on_retry(EmbedRetry(attempt, status, delay, str(reason)))
            await asyncio.sleep(delay)

    async def _take_budget(self, tokens: int) -> None:
        wait = self._hold_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._rpm is not None:
            await self._rpm.acquire(1)
        if self._tpm is not None:
            await self._tpm.acquire(min(tokens, self._tpm.max_rate))

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)

    async def _attempt(self, texts: list[str]) -> tuple[int | None, object, float | None]:
        """(status, vectors or the reason it failed, Retry-After seconds); raises only on
        what retrying cannot fix."""
        body: dict[str, object] = {
            "model": self.settings.model_name,
            "input": texts,
            # base64: a quarter of the bytes of JSON floats and no float parsing (what the
            # openai SDK asks for by default); a server answering floats anyway is read too
            "encoding_format": "base64",
        }
        if self.settings.dimensions:
            body["dimensions"] = self.settings.dimensions
        headers = {}
        key = self.settings.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.requests += 1
        try:
            response = await self._client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            return None, "timed out", None
        except httpx.TransportError as exc:
            return None, f"connection failed: {type(exc).__name__}", None
        if response.status_code == 200:
            return 200, self._vectors(response, len(texts)), None
        detail = redact(response.text[:200].replace("\n", " "))
        if response.status_code in RETRYABLE:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            return response.status_code, f"HTTP {response.status_code}", wait
        fix = (
            f"check the key in ${self.settings.key_env}"
            if response.status_code in {401, 403}
            else "check --embed (the model's name) and --embed-dimensions"
        )
        raise PermanentError(
            f"the embedding endpoint refused the request: HTTP {response.status_code} {detail}",
            where=self.url,
            fix=fix,
        )

    def _vectors(self, response: httpx.Response, count: int) -> np.ndarray:
        try:
            data = response.json()["data"]
            rows = sorted(data, key=lambda row: row.get("index", 0))
            vectors = np.stack([decode_embedding(row["embedding"]) for row in rows])
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                f"the embedding endpoint's answer is not an embeddings list ({exc})",
                where=self.url,
                fix="check --embed-base-url points at an OpenAI-compatible /v1",
            ) from None
        if vectors.ndim != 2 or len(vectors) != count:
            raise PermanentError(
                f"the embedding endpoint answered {len(vectors)} vectors for {count} texts",
                where=self.url,
            )
        if self.dimension and vectors.shape[1] != self.dimension:
            raise PermanentError(
                f"the endpoint's vectors changed dimension ({vectors.shape[1]}, was "
                f"{self.dimension})",
                where=self.url,
            )
        return vectors

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = ["FerryError", "OpenAICompatible", "retry_after_seconds"]
