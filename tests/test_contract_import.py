"""How a new connector joins the contract: its own test file imports the suite and gives it a
subject. Shown here on `memory://` (fast, process-local); a new backend's file looks the same
with its own URI or server fixture (docs/architecture.md, "Adding a connector")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ferry.core.connectors import open_connector
from tests.connector_contract import ConnectorContract, Subject


class TestMemoryJoinsByImport(ConnectorContract):
    @pytest.fixture
    async def subject(self) -> AsyncIterator[Subject]:
        async with open_connector(f"memory://joined-{uuid.uuid4().hex[:8]}") as connector:
            yield Subject("memory", connector)
