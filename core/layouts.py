"""Payload layouts: how a Chroma record becomes a Qdrant point so that the *application* reads it.

Most Chroma collections are written by a framework, and each framework's Qdrant store reads
its own shape of payload. A layout writes exactly that shape, so the app switches store class
and keeps its data, ids, metadata and filters. Verified against the frameworks' own code:

* langchain-qdrant 1.1.0 (`QdrantVectorStore`, langchain-core 1.7) / langchain-chroma 1.1.0
* llama-index-vector-stores-qdrant 0.10.4 / llama-index-vector-stores-chroma 0.6.0
  (llama-index-core 0.14.25: `node_to_metadata_dict`, `metadata_dict_to_node`)
* qdrant-haystack 13.1.0 (`QdrantDocumentStore`, `convert_id`) / chroma-haystack 5.0.0
  (haystack-ai 3.4)

Shapes written (``sid`` is the Chroma id; ``source_id`` is `PayloadFields.source_id`):

* ``flat``: ``{**metadata, "source_id": sid, "document": text}``; point id canonical or uuid5.
* ``langchain``: ``{"page_content": text, "metadata": {…}, "source_id": sid}``. LangChain hands
  the app ``metadata`` (+ its own ``_id`` / ``_collection_name``) and ``page_content``; any
  other top-level key stays out of the app's sight. Canonical UUIDs and u64 ids are kept as
  point ids (LangChain passes ids to Qdrant unchanged), others become uuid5.
* ``llamaindex``: the metadata as LlamaIndex's Chroma store saved it (user keys,
  ``_node_content``, ``_node_type``, ``doc_id``, ``document_id``, ``ref_doc_id``) with the
  document text put back into ``_node_content`` (its Chroma store blanks it there; its Qdrant
  store reads the text only from there), plus ``source_id`` at the top level, which
  `metadata_dict_to_node` ignores (and ``document: None`` for a record without a Chroma
  document, which LlamaIndex never writes). A record without ``_node_content`` gets its text in
  ``text`` (the store's legacy ``text_key``).
* ``haystack``: ``{"id": sid, "content": text, "blob": None, "meta": {…}, "score": None,
  "sparse_embedding": None}`` (`Document.to_dict(flatten=False)` without the embedding); the
  point id is ``uuid5(3896d314-…, sid)`` as `convert_id` derives it. ``id`` *is* the source id:
  `Document.from_dict` folds any other top-level key into the app's ``meta``.

Reading back (`from_payload`) is exact for records written either by Ferry or by the framework
itself (an app writing during dual-write), and strict: a payload key the layout does not
expect comes back as metadata ``payload:<key>``, so a collection written half in one layout
and half in another shows up as differences in validation instead of silence.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.errors import PermanentError, PreflightError
from core.mapping import (
    PayloadFields,
    canonical_point_id,
    from_payload,
    to_payload,
)
from core.model import CollectionInfo, Metadata, Metric

LAYOUT_NAMES = ("flat", "langchain", "llamaindex", "haystack")
FOREIGN = "payload:"  # prefix of an unexpected top-level payload key, reported as metadata

# qdrant-haystack 13.1 converters.py: `UUID_NAMESPACE`, fixed by that library.
HAYSTACK_NAMESPACE = uuid.UUID("3896d314-1e95-4a3a-b45a-945f9f0b541d")

Record = tuple[str, Metadata | None, str | None]


class PayloadLayout(ABC):
    """One way of laying a record out in a Qdrant point; the connectors ask it for ids and
    payloads, validation and the router read through it."""

    name: ClassVar[str]
    framework: ClassVar[str | None] = None

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
        from core.payload_paths import path_segment

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


LAYOUTS: dict[str, type[PayloadLayout]] = {
    cls.name: cls for cls in (FlatLayout, LangChainLayout, LlamaIndexLayout, HaystackLayout)
}


def make_layout(name: str | None, fields: PayloadFields | None = None) -> PayloadLayout:
    """The layout of this name (flat when None); an unknown name is a one-line error."""
    key = (name or "flat").lower()
    if key not in LAYOUTS:
        raise PreflightError(
            f"unknown layout {name!r}", fix=f"choose one of: {', '.join(LAYOUT_NAMES)}"
        )
    return LAYOUTS[key](fields)


# -- detection ------------------------------------------------------------------------------
@dataclass
class Detection:
    """Which framework wrote a collection, as far as its data says, and the evidence."""

    framework: str | None = None  # "LangChain" | "LlamaIndex" | "Haystack" | None
    layout: str = "flat"
    marks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"framework": self.framework, "layout": self.layout, "marks": self.marks}


def haystack_ids(content: str | None, meta: Metadata | None) -> set[str]:
    """The ids Haystack gives a Document of this content and meta (`Document._create_id`):
    haystack-ai 2.x (meta as a Python dict) and 3.x (meta as sorted JSON), no blob and no
    embedding at creation (a Document is embedded after its id is made)."""
    text = content or None
    variants = {f"{meta or {}}"}  # 2.x
    variants.add(json.dumps(meta, sort_keys=True, default=str) if meta else "{}")  # 3.x
    return {hashlib.sha256(f"{text}NoneNoneNone{m}None".encode()).hexdigest() for m in variants}


def detect_framework(
    info: CollectionInfo, ids: list[str], metadatas: list[Metadata | None], documents: list[Any]
) -> Detection:
    """Marks each framework's Chroma integration leaves in the data (a sample of records):

    * LlamaIndex: `_node_content` and `_node_type` metadata keys on its records.
    * Haystack: ids that are Haystack's content hash of (document, meta) — a default
      `Document` id; custom ids leave no mark.
    * LangChain: langchain-chroma adds nothing to records; its default collection name
      ``langchain`` is the only mark.
    """
    n = len(ids)
    llama = sum(
        1
        for m in metadatas
        if m and LlamaIndexLayout.NODE_CONTENT in m and LlamaIndexLayout.NODE_TYPE in m
    )
    if llama:
        return Detection(
            "LlamaIndex",
            "llamaindex",
            [f"_node_content/_node_type metadata in {llama} of {n} sampled records"],
        )
    hashed = sum(
        1
        for sid, meta, doc in zip(ids, metadatas, documents, strict=True)
        if len(sid) == 64 and sid in haystack_ids(doc, meta)
    )
    if hashed:
        return Detection(
            "Haystack",
            "haystack",
            [f"{hashed} of {n} sampled ids are Haystack content hashes of (content, meta)"],
        )
    if info.name == "langchain":
        return Detection(
            "LangChain", "langchain", ["collection name 'langchain' (langchain-chroma's default)"]
        )
    return Detection()


def detect_written_layout(payloads: list[dict[str, Any] | None], fields: PayloadFields) -> str:
    """Which layout a Qdrant collection's points were written in (a sample of raw payloads,
    e.g. read through the flat layout: metadata holds every top-level key but the id and the
    document). The most common shape wins; a mixed collection then shows differences."""
    votes: dict[str, int] = {}
    for payload in payloads:
        keys = set(payload or {}) - {fields.source_id}
        langchain = {LangChainLayout.CONTENT, LangChainLayout.METADATA}
        haystack = {"id", "content", "meta", *HaystackLayout.EMPTY_FIELDS}
        if LangChainLayout.METADATA in keys and keys <= langchain:
            shape = "langchain"
        elif {"id", "meta"} <= keys and keys <= haystack:
            shape = "haystack"
        elif LlamaIndexLayout.NODE_CONTENT in keys and fields.document not in keys:
            shape = "llamaindex"
        else:
            shape = "flat"
        votes[shape] = votes.get(shape, 0) + 1
    return max(votes, key=lambda k: votes[k]) if votes else "flat"


# -- switching the app ----------------------------------------------------------------------
QDRANT_DISTANCE_NAME = {Metric.L2: "EUCLID", Metric.COSINE: "COSINE", Metric.IP: "DOT"}
HAYSTACK_SIMILARITY = {Metric.L2: "l2", Metric.COSINE: "cosine", Metric.IP: "dot_product"}


def score_lines(metric: Metric | None, framework: str | None) -> list[str]:
    """How a score or threshold tuned on Chroma reads on Qdrant (see core.connectors.traits).

    Chroma reports distances (lower is better): squared L2, 1 − cos, 1 − dot. Qdrant reports
    the plain Euclidean distance (lower is better) and cos / dot (higher is better), and its
    `score_threshold` keeps hits on the better side of the threshold.
    """
    metric = metric or Metric.L2
    if framework == "LlamaIndex":
        # llama-index-vector-stores-chroma reports similarity = exp(-distance).
        if metric is Metric.L2:
            return [
                "scores: Chroma's node similarity was exp(-d²); Qdrant's is the plain distance d "
                "(lower is better): a similarity_cutoff c becomes a maximum distance √(-ln c)"
            ]
        word = "cos" if metric is Metric.COSINE else "dot"
        return [
            f"scores: Chroma's node similarity was exp(-(1 - {word})); Qdrant's is {word}: "
            f"a similarity_cutoff c becomes 1 + ln(c)"
        ]
    if metric is Metric.L2:
        return [
            "scores: Chroma gave the squared distance d², Qdrant gives d (lower is better on "
            "both): a Chroma threshold t becomes score_threshold=√t"
        ]
    word = "cos" if metric is Metric.COSINE else "dot"
    return [
        f"scores: Chroma gave 1 - {word} (lower is better), Qdrant gives {word} (higher is "
        f"better): a Chroma threshold t becomes score_threshold=1 - t"
    ]


def switch_lines(
    layout: PayloadLayout,
    info: CollectionInfo,
    target_name: str,
    client: str,
    sample_ids: list[str] | None = None,
) -> list[str]:
    """The few lines an application changes to read this migrated collection.

    `client` is how the app builds its Qdrant client (e.g. ``QdrantClient(path="/data/q")``).
    """
    metric = info.metric or Metric.L2
    lines: list[str] = []
    if layout.name == "langchain":
        distance = QDRANT_DISTANCE_NAME[metric]
        setting = "" if metric is Metric.COSINE else f", distance=models.Distance.{distance}"
        lines.append(
            f"from langchain_qdrant import QdrantVectorStore; QdrantVectorStore(client={client}, "
            f'collection_name="{target_name}", embedding=<your embeddings>{setting})'
        )
    elif layout.name == "llamaindex":
        lines.append(
            "from llama_index.vector_stores.qdrant import QdrantVectorStore; "
            f'QdrantVectorStore(collection_name="{target_name}", client={client})'
        )
    elif layout.name == "haystack":
        where = client.removeprefix("QdrantClient(").removesuffix(")")
        lines.append(
            "from haystack_integrations.document_stores.qdrant import QdrantDocumentStore; "
            f'QdrantDocumentStore({where}, index="{target_name}", '
            f'embedding_dim={info.dimension}, similarity="{HAYSTACK_SIMILARITY[metric]}")'
        )
    else:
        lines.append(
            f'{client}.query_points("{target_name}", query=<vector>, limit=k): metadata at the '
            f"payload's top level, text in {layout.fields.document!r}, the Chroma id in "
            f"{layout.fields.source_id!r}"
        )
    mapped = [sid for sid in (sample_ids or []) if layout.maps_id(sid)]
    if layout.name == "haystack":
        lines.append("ids: Haystack document ids are kept (the store derives point ids itself)")
    elif mapped:
        from core.mapping import FERRY_ID_NAMESPACE

        lines.append(
            f"ids: ids that are not UUIDs (e.g. {mapped[0]!r}) live at point "
            f'uuid5(UUID("{FERRY_ID_NAMESPACE}"), id); get/delete by that'
            + ("; nodes still report their own id" if layout.name == "llamaindex" else "")
        )
    lines += score_lines(metric, layout.framework)
    return lines
