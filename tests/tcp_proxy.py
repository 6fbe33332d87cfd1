"""A real TCP proxy that drops chosen HTTP requests: faults a real server won't make on demand.

It runs in its own thread with its own event loop, forwards bytes both ways, and when the
client starts its Nth request (a chunk beginning with an HTTP method, optionally only
those whose request line contains `only`) listed in `drop`, it
closes both sides without forwarding — the client sees a reset connection, as on a flaky link.
"""

from __future__ import annotations

import asyncio
import threading

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
