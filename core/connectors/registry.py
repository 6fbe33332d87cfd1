"""The one list of backends: which URI schemes each serves, and how to open a connector.

A backend package registers itself in its ``__init__`` (dlt's ``destinations/impl/<name>/``
does the same through its ``factory.py``)::

    register(Backend("jsonl", {"jsonl+file": Scheme("jsonl", "file", example=...)}, _open))

and nothing else names it: `open_connector` and `ferry.core.uri.parse_uri` read this list, and
tests/test_connector_contract.py runs the contract suite on every backend registered here.

Why the factory imports its connector lazily: the packages are imported to register, and a
registration must not load chromadb or qdrant-client — ``ferry --help`` and `parse_uri` stay
fast, and a missing optional client fails only when its scheme is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ferry.core import uri

if TYPE_CHECKING:
    from ferry.core.connectors.base import SourceConnector
    from ferry.core.mapping import PayloadFields
    from ferry.core.uri import ConnectionSpec

# (spec, fields, layout) -> a connector; `fields` and `layout` matter to Qdrant targets only.
Factory = Callable[["ConnectionSpec", "PayloadFields | None", "str | None"], "SourceConnector"]


@dataclass(frozen=True)
class Scheme:
    """One URI scheme: the engine and transport it means, and the ?options it understands."""

    engine: str  # chroma | qdrant | parquet | jsonl | memory
    transport: str  # file | edge | memory | http | https
    options: frozenset[str] = frozenset()
    example: str | None = None  # shown when a URI is not understood; None: not advertised
    default_port: int | None = None  # for a URI with a host and no port


@dataclass(frozen=True)
class Backend:
    """One backend package: its schemes and the factory that opens a connector for a URI."""

    name: str
    schemes: dict[str, Scheme]
    open: Factory


_BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add a backend; its schemes become valid URIs. A scheme served twice is a bug."""
    for scheme in backend.schemes:
        owner = next((b.name for b in _BACKENDS.values() if scheme in b.schemes), None)
        if owner not in (None, backend.name):
            raise ValueError(f"scheme {scheme} is already served by the {owner} backend")
    _BACKENDS[backend.name] = backend
    for scheme, entry in backend.schemes.items():
        uri.add_scheme(
            scheme, entry.engine, entry.transport, entry.options, entry.example, entry.default_port
        )
    return backend


def backends() -> Iterator[Backend]:
    yield from _BACKENDS.values()


def backend_for(spec: ConnectionSpec) -> Backend | None:
    """The backend serving this parsed URI's engine and transport."""
    for backend in _BACKENDS.values():
        for entry in backend.schemes.values():
            if (entry.engine, entry.transport) == (spec.engine, spec.transport):
                return backend
    return None
