"""Payload layouts: the shape each framework's Qdrant store reads, and the library ones
(flat, LangChain, LlamaIndex, Haystack). The registry and detection are in the package
(core/layouts/__init__.py); the application frameworks' layouts in core/layouts/apps.py.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ferry.core.errors import PermanentError, PreflightError
from ferry.core.mapping import (
    PayloadFields,
    canonical_point_id,
    from_payload,
    to_payload,
)
from ferry.core.model import Metadata, Metric

LIBRARY_LAYOUT_NAMES = ("flat", "langchain", "llamaindex", "haystack")
FOREIGN = "payload:"  # prefix of an unexpected top-level payload key, reported as metadata

# qdrant-haystack 13.1 converters.py: `UUID_NAMESPACE`, fixed by that library.
HAYSTACK_NAMESPACE = uuid.UUID("3896d314-1e95-4a3a-b45a-945f9f0b541d")

Record = tuple[str, Metadata | None, str | None]


class PayloadLayout(ABC):
    """One way of laying a record out in a Qdrant point; the connectors ask it for ids and
    payloads, validation and the router read through it."""

    name: ClassVar[str]
    framework: ClassVar[str | None] = None
    # What the framework's Qdrant store creates its collections with, where the target must
    # match it for the app to read (core.layouts.apps): a distance (None: the source's), named
    # sparse vector slots (IDF modifier) and keyword payload indexes beside the dense vector.
    target_metric: ClassVar[Metric | None] = None
    sparse_slots: ClassVar[tuple[str, ...]] = ()
    keyword_indexes: ClassVar[tuple[str, ...]] = ()
    # A query hit's source id needs the whole payload, not just `id_field` (CrewAI: the id is
    # recomputed from content and metadata): the connectors fetch it for such layouts.
    hits_need_payload: ClassVar[bool] = False

    def __init__(self, fields: PayloadFields | None = None) -> None:
        self.fields = fields or PayloadFields()

    @property
    def id_field(self) -> str:
        """The top-level payload key that holds the source id (indexed, asked for by queries)."""
        return self.fields.source_id

    def point_id(self, source_id: str) -> int | str:
        return canonical_point_id(source_id)

    def maps_id(self, source_id: str) -> bool:
        """Whether this source id is stored under another point id."""
        return str(self.point_id(source_id)) != source_id

    @abstractmethod
    def to_payload(
        self, source_id: str, metadata: Metadata | None, document: str | None
    ) -> dict[str, Any]: ...

    @abstractmethod
    def from_payload(self, point_id: Any, payload: dict[str, Any] | None) -> Record: ...

    def hit_source_id(self, point_id: Any, payload: dict[str, Any] | None) -> str:
        """The source id of a query hit whose payload holds at least `id_field`."""
        value = (payload or {}).get(self.id_field)
        return str(value) if value is not None else str(point_id)

    def check_metadata_keys(self, keys: list[str], where: str) -> None:
        """Preflight: a metadata key this layout would overwrite is refused before writing."""
        return None

    # Where a metadata key sits in the payload ("" : at the top level): what a payload index
    # (core.tuning) is created on, and what an app's filter names.
    metadata_prefix: ClassVar[str] = ""

    def metadata_path(self, key: str) -> str:
        """The Qdrant JSON path of metadata `key`, quoted when it is not a bare identifier
        (core/payload_paths.py); the plan leaves out keys no path can name."""
        from ferry.core.payload_paths import path_segment

        segment = path_segment(key) or key
        return f"{self.metadata_prefix}.{segment}" if self.metadata_prefix else segment

    def to_json(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PayloadLayout)
            and other.name == self.name
            and other.fields == self.fields
        )

    def __hash__(self) -> int:
        return hash((self.name, self.fields))

    def __repr__(self) -> str:
        return f"<{self.name} layout>"


def _source_id(payload: dict[str, Any], key: str, point_id: Any) -> str:
    value = payload.pop(key, None)
    return str(value) if value is not None else str(point_id)


def _with_foreign(metadata: Metadata | None, rest: dict[str, Any]) -> Metadata | None:
    """Unexpected top-level keys join the metadata under `payload:<key>` (a visible difference)."""
    if not rest:
        return metadata
    merged = dict(metadata or {})
    merged.update({f"{FOREIGN}{k}": v for k, v in rest.items()})
    return merged


class FlatLayout(PayloadLayout):
    """Ferry's own: metadata at the top level, text in `document`, the id in `source_id`."""

    name = "flat"

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        return to_payload(source_id, metadata, document, self.fields)

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        return from_payload(point_id, payload, self.fields)

    def check_metadata_keys(self, keys: list[str], where: str) -> None:
        self.fields.check_against(keys, where)


class LangChainLayout(PayloadLayout):
    """langchain-qdrant's `_build_payloads`: {"page_content", "metadata"}."""

    name = "langchain"
    framework = "LangChain"
    CONTENT = "page_content"  # QdrantVectorStore.CONTENT_KEY
    METADATA = "metadata"  # QdrantVectorStore.METADATA_KEY
    metadata_prefix = METADATA

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        if self.id_field in (self.CONTENT, self.METADATA):
            raise PermanentError(
                f"--id-field {self.id_field!r} is a LangChain payload key",
                fix="choose another --id-field",
            )
        payload: dict[str, Any] = {}
        if document is not None:  # LangChain reads a missing page_content as ""
            payload[self.CONTENT] = document
        payload[self.METADATA] = dict(metadata) if metadata else {}
        payload[self.id_field] = source_id
        return payload

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        source_id = _source_id(rest, self.id_field, point_id)
        document = rest.pop(self.CONTENT, None)
        metadata = rest.pop(self.METADATA, None)
        if metadata is not None and not isinstance(metadata, dict):
            rest[self.METADATA] = metadata
            metadata = None
        return source_id, _with_foreign(metadata or None, rest), document


class LlamaIndexLayout(PayloadLayout):
    """llama-index's `node_to_metadata_dict(remove_text=False)`: flat keys, text in
    `_node_content`. Its Chroma store saved the same dict with the text blanked there."""

    name = "llamaindex"
    framework = "LlamaIndex"
    NODE_CONTENT = "_node_content"
    NODE_TYPE = "_node_type"
    TEXT_KEY = "text"  # the Qdrant store's `text_key`, read for records without _node_content

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        payload = dict(metadata or {})
        if self.id_field in payload:
            raise PermanentError(
                f"record {source_id!r} has a metadata key {self.id_field!r} (Ferry's id field)",
                fix="rename the payload field with --id-field",
            )
        node = _node(payload.get(self.NODE_CONTENT))
        if node is not None:
            if document is not None:
                raw = payload[self.NODE_CONTENT]
                node["text"] = document
                payload[self.NODE_CONTENT] = json.dumps(node, ensure_ascii=raw.isascii())
            else:  # no Chroma document (LlamaIndex always writes one): say so, out of sight
                payload[self.fields.document] = None
        elif document is not None:
            if self.TEXT_KEY in payload:
                raise PermanentError(
                    f"record {source_id!r} has no _node_content and a metadata key 'text'",
                    fix="migrate this collection with --layout flat",
                )
            payload[self.TEXT_KEY] = document
        payload[self.id_field] = source_id
        return payload

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        source_id = _source_id(rest, self.id_field, point_id)
        node = _node(rest.get(self.NODE_CONTENT))
        if node is None:
            document = rest.pop(self.TEXT_KEY, None)
            return source_id, rest or None, document
        raw = rest[self.NODE_CONTENT]
        document = node.get("text")
        if self.fields.document in rest and rest[self.fields.document] is None:
            del rest[self.fields.document]
            document = None
        node["text"] = ""  # as LlamaIndex's Chroma store keeps it
        rest[self.NODE_CONTENT] = json.dumps(node, ensure_ascii=raw.isascii())
        return source_id, rest, document if isinstance(document, str) else None

    def check_metadata_keys(self, keys: list[str], where: str) -> None:
        if self.id_field in keys:
            raise PreflightError(
                f"metadata key {self.id_field} collides with Ferry's id field",
                where=where,
                fix="rename it with --id-field",
            )


def _node(raw: Any) -> dict[str, Any] | None:
    """`_node_content` parsed, when it is LlamaIndex's JSON object with a text field."""
    if not isinstance(raw, str):
        return None
    try:
        node = json.loads(raw)
    except ValueError:
        return None
    return node if isinstance(node, dict) and "text" in node else None


class HaystackLayout(PayloadLayout):
    """qdrant-haystack's `convert_haystack_documents_to_qdrant_points`."""

    name = "haystack"
    framework = "Haystack"
    metadata_prefix = "meta"
    # `Document.to_dict(flatten=False)` keys, the embedding being the point's vector.
    EMPTY_FIELDS = ("blob", "score", "sparse_embedding")

    @property
    def id_field(self) -> str:
        return "id"

    def point_id(self, source_id: str) -> str:
        return str(uuid.uuid5(HAYSTACK_NAMESPACE, source_id))  # `convert_id`, hyphenated

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        return {
            "id": source_id,
            "content": document,
            "blob": None,
            "meta": dict(metadata) if metadata else {},
            "score": None,
            "sparse_embedding": None,
        }

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        source_id = _source_id(rest, "id", point_id)
        document = rest.pop("content", None)
        metadata = rest.pop("meta", None)
        for key in (*self.EMPTY_FIELDS, "embedding"):
            if key in rest and rest[key] is None:
                del rest[key]
        if metadata is not None and not isinstance(metadata, dict):
            rest["meta"] = metadata
            metadata = None
        return source_id, _with_foreign(metadata or None, rest), document


# -- detection ------------------------------------------------------------------------------
@dataclass
class Detection:
    """Which framework wrote a collection, as far as its data says, and the evidence."""

    framework: str | None = None  # "LangChain" | "LlamaIndex" | "Haystack" | None
    layout: str = "flat"
    marks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"framework": self.framework, "layout": self.layout, "marks": self.marks}
