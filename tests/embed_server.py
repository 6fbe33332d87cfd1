"""An OpenAI-compatible `/v1/embeddings` server for the tests and the benchmark.

A real HTTP server (stdlib, threaded) in its own process, serving the embeddings of the
wordllama model bundled in its wheel - the same model `--embed wordllama/l2_supercat` runs
locally, so a test can check every vector the target holds against the model itself. It
injects the faults a hosted endpoint has: 429 with `Retry-After` (seconds, or an HTTP date),
500s and slow answers; with `--texts-per-second` it enforces a rate limit (429 when over).

It counts what it served (`GET /stats`): requests, texts embedded, and how many times each
distinct text was embedded, so a test can prove nothing was paid twice.

    python tests/embed_server.py --port 0 --key-env VAR [--throttle-every N] ...
prints `PORT <n>` on its first line once it listens.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import hashlib
import json
import os
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np


class Model:
    def __init__(self) -> None:
        import wordllama
        from wordllama import WordLlama

        self._lock = threading.Lock()
        self._folder = Path(wordllama.__file__).parent
        self._models: dict[int, object] = {}
        self._load = WordLlama.load

    def embed(self, texts: list[str], dimensions: int | None) -> np.ndarray:
        dim = dimensions or 256
        with self._lock:
            model = self._models.get(dim)
            if model is None:
                model = self._load(
                    "l2_supercat",
                    dim=256,
                    trunc_dim=None if dim == 256 else dim,
                    cache_dir=self._folder,
                    disable_download=True,
                )
                self._models[dim] = model
            return np.asarray(model.embed(texts, norm=True, batch_size=256), dtype=np.float32)


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.texts = 0
        self.throttled = 0
        self.errors = 0
        self.per_text: Counter[str] = Counter()
        self.model = Model()
        # --texts-per-second: a token bucket of texts, capacity --burst (default: 1 s worth)
        self.capacity = float(args.burst or args.texts_per_second or 0)
        self.allowance = self.capacity
        self.last = time.monotonic()

    def take(self, count: int) -> float | None:
        """None when `count` texts may be served now; else seconds until they may."""
        rate = self.args.texts_per_second
        if not rate:
            return None
        now = time.monotonic()
        self.allowance = min(self.capacity, self.allowance + (now - self.last) * rate)
        self.last = now
        if self.allowance >= count:
            self.allowance -= count
            return None
        return (count - self.allowance) / rate


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, *args: object) -> None:
        return

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        state = self.state
        with state.lock:
            stats = {
                "requests": state.requests,
                "texts": state.texts,
                "throttled": state.throttled,
                "errors": state.errors,
                "distinct": len(state.per_text),
                "twice": sum(1 for c in state.per_text.values() if c > 1),
                "auth_seen": getattr(state, "auth_seen", 0),
            }
        self._send(200, stats)

    def do_POST(self) -> None:  # noqa: N802
        state, args = self.state, self.state.args
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/embeddings"):
            self._send(404, {"error": {"message": "not found"}})
            return
        if args.key_env:
            if self.headers.get("Authorization") != f"Bearer {os.environ.get(args.key_env)}":
                self._send(401, {"error": {"message": "invalid api key"}})
                return
            with state.lock:
                state.auth_seen = getattr(state, "auth_seen", 0) + 1
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        with state.lock:
            state.requests += 1
            number = state.requests
            if args.throttle_every and number % args.throttle_every == 0:
                state.throttled += 1
                # Alternate both forms of Retry-After (RFC 9110): seconds and an HTTP date.
                if (number // args.throttle_every) % 2:
                    after = str(args.retry_after)
                else:
                    after = email.utils.formatdate(time.time() + args.retry_after, usegmt=True)
                throttle: float | None = -1.0
            else:
                after = ""
                throttle = state.take(len(texts))
                if throttle is not None:
                    state.throttled += 1
                    after = f"{max(throttle, 0.01):.3f}"
            fail = bool(args.error_every and not after and number % args.error_every == 0)
            if fail:
                state.errors += 1
        if after:
            self._send(429, {"error": {"message": "rate limit"}}, {"Retry-After": after})
            return
        if fail:
            self._send(500, {"error": {"message": "internal error"}})
            return
        if args.slow_every and number % args.slow_every == 0:
            time.sleep(args.slow_seconds)
        if args.delay_per_text:
            time.sleep(args.delay_per_text * len(texts))
        vectors = state.model.embed(texts, body.get("dimensions"))
        with state.lock:
            state.texts += len(texts)
            for text in texts:
                state.per_text[hashlib.sha256(text.encode()).hexdigest()] += 1
        self._send(
            200,
            {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": encode(v, body)}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            },
        )


def encode(vector: np.ndarray, body: dict) -> object:
    """As OpenAI answers: base64 of little-endian float32 when asked, else a float list."""
    if body.get("encoding_format") == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key-env", default=None)
    parser.add_argument("--throttle-every", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1)
    parser.add_argument("--error-every", type=int, default=0)
    parser.add_argument("--slow-every", type=int, default=0)
    parser.add_argument("--slow-seconds", type=float, default=0.5)
    parser.add_argument("--delay-per-text", type=float, default=0.0)
    parser.add_argument("--texts-per-second", type=float, default=0.0)
    parser.add_argument("--burst", type=float, default=0.0, help="bucket size in texts")
    args = parser.parse_args()
    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
