"""A chromadb HTTP client whose every request has a timeout.

chromadb's `HttpClient` builds its httpx session with `timeout=None`: a server that accepts a
connection and never answers hangs the caller forever (and `asyncio.to_thread` cannot cancel
a thread). `TimedClient` is chromadb's own `Client` that sets the session's timeout before
its first request (`get_user_identity`, at construction); everything else is chromadb's.
"""

from __future__ import annotations

from typing import Any

import httpx
from chromadb.api.client import Client

DEFAULT_TIMEOUT_SECONDS = 30.0


class TimedClient(Client):
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def get_user_identity(self) -> Any:
        session = getattr(self._server, "_session", None)
        if isinstance(session, httpx.Client):
            seconds = self.timeout_seconds
            session.timeout = httpx.Timeout(seconds, connect=min(seconds, 10.0))
        return super().get_user_identity()


def http_client(
    host: str,
    port: int,
    ssl: bool,
    headers: dict[str, str] | None,
    tenant: str,
    database: str,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Any:
    """What `chromadb.HttpClient` builds, with every request under `timeout` seconds."""
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    settings.chroma_api_impl = "chromadb.api.fastapi.FastAPI"
    settings.chroma_server_host = host
    settings.chroma_server_http_port = port
    settings.chroma_server_ssl_enabled = ssl
    settings.chroma_server_headers = headers
    client_class = type("TimedClient", (TimedClient,), {"timeout_seconds": timeout})
    return client_class(tenant=tenant, database=database, settings=settings)
