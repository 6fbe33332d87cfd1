"""How a Chroma record becomes a Qdrant point, and back.

Qdrant accepts only unsigned 64-bit integers and UUIDs as point ids. Two different Chroma
ids must never become one point: ``"12"`` and ``"00012"`` are different ids, and so are a
UUID in upper and in lower case. So an id is kept as-is only in its *canonical* form
(``str(int(x)) == x`` within u64, or ``str(UUID(x)) == x``); every other id becomes
``uuid5(FERRY_ID_NAMESPACE, id)``. The original id always travels in the payload
(``source_id`` by default) so the mapping can be reversed and validation can join on it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from ferry.core.errors import PermanentError, PreflightError
from ferry.core.model import Metadata, Metric

# Fixed forever: changing it would map the same source id to a different point on re-runs.
FERRY_ID_NAMESPACE = uuid.UUID("6f1b7c1e-5a3d-5f0e-9c8a-0f3e2d1c4b5a")
U64_MAX = 2**64 - 1

QDRANT_DISTANCE = {Metric.L2: "Euclid", Metric.COSINE: "Cosine", Metric.IP: "Dot"}
METRIC_FROM_QDRANT = {v: k for k, v in QDRANT_DISTANCE.items()}


def canonical_point_id(source_id: str) -> int | str:
    """The Qdrant point id for a source id: itself when canonical, else a stable uuid5."""
    if source_id.isascii() and source_id.isdigit():
        value = int(source_id)
        if value <= U64_MAX and str(value) == source_id:
            return value
    elif len(source_id) == 36:
        try:
            if str(uuid.UUID(source_id)) == source_id:
                return source_id
        except ValueError:
            pass
    return ferry_uuid5(source_id)


_NAMESPACE_SHA1 = hashlib.sha1(FERRY_ID_NAMESPACE.bytes, usedforsecurity=False)


def ferry_uuid5(source_id: str) -> str:
    """``str(uuid.uuid5(FERRY_ID_NAMESPACE, source_id))`` at a third of its cost (one per
    record of every copy: it showed in profiles). Same bytes, same RFC 4122 bits."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update(source_id.encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def needs_id_mapping(source_id: str) -> bool:
    return str(canonical_point_id(source_id)) != source_id


@dataclass(frozen=True)
class PayloadFields:
    """Names of the payload fields Ferry adds beside the user's metadata."""

    source_id: str = "source_id"
    document: str = "document"

    def check_against(self, metadata_keys: list[str], where: str) -> None:
        """Preflight: a metadata key with one of our names would be silently overwritten."""
        clash = sorted({self.source_id, self.document} & set(metadata_keys))
        if clash:
            raise PreflightError(
                f"metadata key(s) {', '.join(clash)} collide with Ferry's payload fields",
                where=where,
                fix="rename them with --id-field / --document-field",
            )
        if self.source_id == self.document:
            raise PreflightError(
                "--id-field and --document-field must differ", fix="choose two names"
            )


def to_payload(
    source_id: str, metadata: Metadata | None, document: str | None, fields: PayloadFields
) -> dict[str, Any]:
    """Metadata as-is (types preserved), plus the original id and the document if any."""
    payload: dict[str, Any] = {}
    if metadata:
        if fields.source_id in metadata or fields.document in metadata:
            raise PermanentError(
                f"record {source_id!r} has a metadata key that collides with Ferry's fields",
                fix="rename the payload fields with --id-field / --document-field",
            )
        payload.update(metadata)
    payload[fields.source_id] = source_id
    if document is not None:
        payload[fields.document] = document
    return payload


def from_payload(
    point_id: int | str | uuid.UUID, payload: dict[str, Any] | None, fields: PayloadFields
) -> tuple[str, Metadata | None, str | None]:
    """Reverse `to_payload`: (source id, metadata or None, document or None)."""
    payload = dict(payload or {})
    source_id = payload.pop(fields.source_id, None)
    document = payload.pop(fields.document, None)
    if source_id is None:
        source_id = str(point_id)
    return str(source_id), (payload or None), document


def check_unique_targets(source_ids: list[str], point_ids: list[int | str]) -> None:
    """Within a batch, two source ids mapping to one point would silently lose a record."""
    if len(set(point_ids)) != len(point_ids):
        seen: dict[int | str, str] = {}
        for sid, pid in zip(source_ids, point_ids, strict=True):
            if pid in seen and seen[pid] != sid:
                raise PermanentError(
                    f"source ids {seen[pid]!r} and {sid!r} map to the same point id {pid}",
                    fix="report this: it should be impossible with canonical ids",
                )
            seen[pid] = sid
