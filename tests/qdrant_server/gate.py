"""What stands in front of the routes: the request log, the `api-key` check, Qdrant's request
size limit, and the faults a test asked for (see faults.py)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tests.qdrant_server.faults import Seen
from tests.qdrant_server.shapes import CONTROL, error

if TYPE_CHECKING:
    from tests.qdrant_server.app import Emulator

LOG_LIMIT = 5000


class Gate:
    """Pure ASGI in front of the routes: the request log, the `api-key` check and faults."""

    def __init__(self, app: Any, em: Emulator) -> None:
        self.app, self.em = app, em

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL):
            await self.app(scope, receive, send)
            return
        em = self.em
        body = b""
        more = True
        while more:  # read the body once, to look for the key in it, then replay it
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode(errors="replace") for k, v in scope["headers"]}
        sent_key = headers.get("api-key")
        elsewhere = False
        if em.api_key:
            others = [v for k, v in headers.items() if k != "api-key"]
            haystack = [scope["path"], scope.get("query_string", b"").decode(), *others]
            elsewhere = any(em.api_key in h for h in haystack) or em.api_key.encode() in body
        seen = Seen(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode(),
            0,
            sent_key is not None,
            elsewhere,
            at=time.time(),
            bytes=len(body),
        )
        em.log.append(seen)
        del em.log[:-LOG_LIMIT]

        replayed = False

        async def replay() -> Any:
            """The body once, then the real channel (a streamed answer waits on it for a
            disconnect)."""
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            await send(message)

        started = time.perf_counter()
        bearer = headers.get("authorization", "")
        if em.api_key and sent_key != em.api_key and bearer != f"Bearer {em.api_key}":
            response = error(
                401, "Must provide an API key or an Authorization bearer token", started
            )
            await response(scope, replay, sending)
            return
        if len(body) > em.max_request_bytes:  # Qdrant's words and status for it
            message = (
                f"Payload error: JSON payload ({len(body)} bytes) is larger than allowed "
                f"(limit: {em.max_request_bytes} bytes)."
            )
            await error(400, message, started)(scope, replay, sending)
            return
        fault = next((f for f in em.faults if f.matches(scope["method"], scope["path"])), None)
        if fault is not None:
            fault.hits += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.cut:
                await sending(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"4096"),
                        ],
                    }
                )
                await send(
                    {"type": "http.response.body", "body": b'{"result": ', "more_body": True}
                )
                raise ConnectionAbortedError("fault: answer cut short")
            if fault.status:
                headers_out = {"Retry-After": fault.retry_after} if fault.retry_after else None
                response = error(
                    fault.status,
                    f"fault injected by the test ({fault.status})",
                    started,
                    headers_out,
                )
                await response(scope, replay, sending)
                return

        scope.setdefault("state", {})
        await self.app(scope, replay, sending)
        seen.collection_status = scope["state"].get("collection_status")
        seen.seconds = time.perf_counter() - started
