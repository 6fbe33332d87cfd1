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

from core.connectors import open_connector
from core.connectors.base import Connector


class OpenConnectors:
    """One source and one target, opened on first use and kept until `close`."""

    def __init__(self) -> None:
        self._uris: tuple[str, str] | None = None
        self._pair: tuple[Connector, Connector] | None = None
        self._lock = asyncio.Lock()  # two workers asking at once get the same pair
        self.opened = 0  # pairs opened so far

    @property
    def is_open(self) -> bool:
        return self._pair is not None

    async def get(self, source_uri: str, target_uri: str) -> tuple[Connector, Connector]:
        """The pair for these URIs: the open one, or (after closing another pair) a new one."""
        async with self._lock:
            if self._pair is not None and self._uris == (source_uri, target_uri):
                return self._pair
            await self._close()
            self._pair = (open_connector(source_uri), open_connector(target_uri))
            self._uris = (source_uri, target_uri)
            self.opened += 1
            return self._pair

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        pair, self._pair, self._uris = self._pair, None, None
        if pair is not None:
            for connector in pair:
                await connector.close()
