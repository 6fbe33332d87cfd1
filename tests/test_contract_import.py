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


def test_one_registration_makes_a_scheme_open_a_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend registered once is a valid URI, opens through `open_connector` and is named
    in the error for a URI nobody serves; a scheme already served is refused."""
    from ferry.core import uri
    from ferry.core.connectors import Backend, Scheme, register, registry
    from ferry.core.connectors.memory import MemoryConnector
    from ferry.core.errors import FerryError

    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))  # restored afterwards
    for table in ("SCHEMES", "OPTIONS", "DEFAULT_PORTS", "EXAMPLES"):
        monkeypatch.setattr(uri, table, type(getattr(uri, table))(getattr(uri, table)))

    register(Backend("toy", {"toy+mem": Scheme("toy", "memory", example="toy+mem:")}, _open_toy))
    connector = open_connector("toy+mem:")
    assert isinstance(connector, MemoryConnector) and connector.uri == "toy+mem:"
    with pytest.raises(FerryError) as caught:
        uri.parse_uri("nobody+file:///x")
    assert caught.value.fix is not None and "toy+mem:" in caught.value.fix
    with pytest.raises(ValueError, match="already served by the memory backend"):
        register(Backend("other", {"memory": Scheme("memory", "memory")}, _open_toy))


def _open_toy(spec, fields=None, layout=None):  # type: ignore[no-untyped-def]
    from ferry.core.connectors.memory import MemoryConnector

    return MemoryConnector(spec)
