"""A real TCP proxy that drops chosen HTTP requests: faults a real server won't make on demand.

It runs in its own thread with its own event loop, forwards bytes both ways, and when the
client starts its Nth request (a chunk beginning with an HTTP method, optionally only
those whose request line contains `only`) listed in `drop`, it
closes both sides without forwarding — the client sees a reset connection, as on a flaky link.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ")


class DroppingProxy:
    def __init__(self, upstream_port: int, drop: set[int], only: bytes = b"") -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.only = only  # count only requests whose first chunk contains this (e.g. b"/upsert")
        self.requests = 0
        self.dropped = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                if data.startswith(METHODS) and self.only in data.split(b"\r\n", 1)[0]:
                    self.requests += 1
                    if self.requests in self.drop:
                        self.dropped += 1
                        writer.transport.abort()
                        up_writer.transport.abort()
                        return
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)


class FaultProxy:
    """A TCP proxy in front of a real server that injects the faults of a bad network.

    Faults are tied to request numbers (requests whose request line contains `only`), not to
    time, so a test says exactly which requests fail:

    * ``reset``: both sides are aborted — the client sees "connection reset by peer";
    * ``silent``: the request is swallowed and the connection stays open, never answered —
      a server that accepts and hangs;
    * ``echo400`` / ``echo500``: answered at once with that status and a JSON body quoting
      the request's headers (API key included), as a careless server does;
    * ``throttle429`` / ``busy503``: answered at once with that status, `Retry-After:
      retry_after` (seconds or an HTTP date; omitted when None) and a plain-text body, as a
      gateway or rate limiter in front of the server answers;
    * ``slow``: the request goes through, its reply trickles back a few bytes at a time;
    * ``refuse``: the request is reset and the listening socket closes (new connections are
      refused by the kernel) for `refuse_seconds`, then reopens on the same port;
      `refuse_for(seconds)` does the same at once.

    `schedule` maps a request number (from 1) to a fault; `from_request = (n, fault)` applies
    a fault to request n and every one after it.
    """

    def __init__(self, upstream_port: int, only: bytes = b"") -> None:
        self.upstream_port = upstream_port
        self.only = only
        self.schedule: dict[int, str] = {}
        self.from_request: tuple[int, str] | None = None
        self.requests = 0
        self.refuse_seconds = 1.0
        self.retry_after: str | None = "2"
        self.answered_at: list[float] = []  # when each throttle429/busy503 was answered
        self.injected: dict[str, int] = {}
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(10)

    def heal(self) -> None:
        """No more faults: every request from now on goes through."""
        self.schedule = {}
        self.from_request = None

    def refuse_for(self, seconds: float) -> None:
        """Close the listener (and every open connection) now; listen again after `seconds`."""

        asyncio.run_coroutine_threadsafe(self._refuse(seconds), self._loop).result(10 + seconds)

    async def _refuse(self, seconds: float) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self.injected["refused listener"] = self.injected.get("refused listener", 0) + 1
        await asyncio.sleep(seconds)
        await self._listen(self.port)

    def _fault_for(self, number: int) -> str | None:
        if number in self.schedule:
            return self.schedule[number]
        if self.from_request and number >= self.from_request[0]:
            return self.from_request[1]
        return None

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen(0))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(writer)
        slow = False

        async def client_to_server() -> None:
            nonlocal slow
            while data := await reader.read(65536):
                if data.startswith(METHODS) and self.only in data.split(b"\r\n", 1)[0]:
                    self.requests += 1
                    fault = self._fault_for(self.requests)
                    if fault:
                        self.injected[fault] = self.injected.get(fault, 0) + 1
                    if fault == "reset":
                        writer.transport.abort()
                        up_writer.transport.abort()
                        return
                    if fault == "refuse":  # this request is reset, then nobody listens
                        writer.transport.abort()
                        up_writer.transport.abort()
                        asyncio.get_running_loop().create_task(self._refuse(self.refuse_seconds))
                        return
                    if fault in ("echo400", "echo500"):  # a server that quotes our headers
                        status = fault[4:]
                        headers = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                        secret = [
                            line.split(":", 1)[1].strip()
                            for line in headers.split("\r\n")
                            if line.lower().startswith(("x-chroma-token", "api-key", "authoriz"))
                        ]
                        message = f"invalid token {secret}; you sent: {headers}"
                        body = json.dumps(
                            {"error": "InvalidArgumentError", "message": message}
                        ).encode()
                        writer.write(
                            f"HTTP/1.1 {status} Echo\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                            + body
                        )
                        await writer.drain()
                        writer.close()
                        up_writer.transport.abort()
                        return
                    if fault in ("throttle429", "busy503"):
                        status = (
                            "429 Too Many Requests"
                            if fault == "throttle429"
                            else ("503 Service Unavailable")
                        )
                        body = status.split(" ", 1)[1].encode()
                        self.answered_at.append(time.monotonic())
                        wait = f"Retry-After: {self.retry_after}\r\n" if self.retry_after else ""
                        writer.write(
                            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n{wait}"
                            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                            + body
                        )
                        await writer.drain()
                        writer.close()
                        up_writer.transport.abort()
                        return
                    if fault == "silent":
                        while await reader.read(65536):  # swallow; never answer
                            pass
                        up_writer.transport.abort()
                        return
                    slow = fault == "slow"
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                if slow:
                    for start in range(0, len(data), 64):
                        writer.write(data[start : start + 64])
                        await writer.drain()
                        await asyncio.sleep(0.002)
                else:
                    writer.write(data)
                    await writer.drain()
            writer.close()

        try:
            await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
        finally:
            self._writers.discard(writer)
