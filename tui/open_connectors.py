"""The source and target connectors a screen keeps open while it is shown.

Opening is the slow part on some engines: the Chroma file reader loads its id map, Qdrant
Edge starts a worker process, qdrant-client local mode loads every collection. A screen
therefore opens both sides once and every check, repair and highlighted record reuses them
(re-opening per highlighted row cost ~10 s a row on qdrant-client local).

The screen closes them when it is left and when the app exits: an Edge shard or a
qdrant-client directory is locked by the process that opened it, and the next migration
into that target runs in another process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import Connector

Pair = tuple[Connector, Connector]


class OpenConnectors:
    """One source and one target, opened on first use and kept until `close`."""

    def __init__(self) -> None:
        self._uris: tuple[str, str] | None = None
        self._pair: Pair | None = None
        self._users = 0
        self._lock = asyncio.Lock()  # two workers asking at once get the same pair

    @asynccontextmanager
    async def lease(self, source_uri: str, target_uri: str) -> AsyncIterator[Pair]:
        """The open pair for these URIs (opened now if need be).

        A pair for other URIs is replaced only when nobody is using it; otherwise (a row of
        an older result highlighted while new checks run) the caller gets a pair of its
        own, closed after use, so a running check never loses its connectors.
        """
        async with self._lock:
            if self._pair is not None and self._uris == (source_uri, target_uri):
                pair, shared = self._pair, True
            elif self._users == 0:
                await self._close()
                pair, shared = _open(source_uri, target_uri), True
                self._pair, self._uris = pair, (source_uri, target_uri)
            else:
                pair, shared = _open(source_uri, target_uri), False
            if shared:
                self._users += 1
        try:
            yield pair
        finally:
            if not shared:
                await _close_pair(pair)
            elif self._pair is pair:  # not closed under us meanwhile (screen left, app exit)
                self._users -= 1

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        pair, self._pair, self._uris, self._users = self._pair, None, None, 0
        if pair is not None:
            await _close_pair(pair)


def _open(source_uri: str, target_uri: str) -> Pair:
    return open_connector(source_uri), open_connector(target_uri)


async def _close_pair(pair: Pair) -> None:
    for connector in pair:
        await connector.close()
